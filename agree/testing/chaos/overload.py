"""Overload: many thousands of commands in flight, then the load stops, and the cluster must
converge, stay live and have kept its memory bounded.

``python -m agree.testing.chaos --overload 20000 --seconds 60`` keeps 20,000 register writes
outstanding over HTTP for 60 s, spread over every node (a follower forwards what it gets to
the leader, so the leader holds its own calls and the forwarded ones).  The calls come from
load processes of their own (one process cannot hold 20,000 sockets under the usual file
limit), each call on its own connection, a new one sent as soon as one is answered.

Then no new call is sent; when the last one is answered (or has timed out), the checks:

* convergence: every node has applied the same index and holds the same registers within
  10 election timeouts;
* liveness: a write through every node succeeds, and a linearizable read through every node
  sees it;
* memory: every node's resident set size is sampled throughout; its peak must stay under a
  generous bound relative to its size before the load (``rss_bound``).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from agree.testing.chaos.cluster import ChaosCluster, Database, NodeOptions

KEYS = [f"o{i}" for i in range(64)]
PER_PROCESS = 8_000  # calls one load process holds (each a socket, under a 20,000-file limit)
MIB = 1 << 20


def rss_bound(start: int, in_flight: int) -> int:
    """The most a node may hold at its peak: what it held before the load, plus a generous
    allowance per call in flight (a request, its proposal, its future and its answer on the
    busiest node), plus slack for the allocator."""
    return 2 * start + in_flight * 64 * 1024 + 256 * MIB


@dataclass
class OverloadReport:
    in_flight: int
    seconds: float
    nodes: int
    database: str
    outcomes: Counter[str] = field(default_factory=Counter)
    rss_start: dict[str, int] = field(default_factory=dict)
    rss_peak: dict[str, int] = field(default_factory=dict)
    rss_end: dict[str, int] = field(default_factory=dict)
    terms: tuple[int, int] = (0, 0)  # the leader's term before and after the load
    drained_after: float = 0.0  # from the stop until the last call was answered
    converged_after: float | None = None
    anomalies: list[str] = field(default_factory=list)
    directory: Path | None = None

    @property
    def calls(self) -> int:
        return sum(self.outcomes.values())

    def lines(self) -> list[str]:
        mib = {n: f"{v / MIB:.0f}" for n, v in self.rss_peak.items()}
        start = {n: f"{v / MIB:.0f}" for n, v in self.rss_start.items()}
        end = {n: f"{v / MIB:.0f}" for n, v in self.rss_end.items()}
        converged = "no" if self.converged_after is None else f"{self.converged_after:.2f}s"
        return [
            "outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items())),
            f"rss MiB: start {start}, peak {mib}, end {end}",
            f"terms {self.terms[0]} -> {self.terms[1]}; in flight answered "
            f"{self.drained_after:.1f}s after the stop; converged {converged} after that",
            f"overload: in_flight={self.in_flight} seconds={self.seconds:g} nodes={self.nodes} "
            f"calls={self.calls} anomalies={len(self.anomalies)}",
        ]


# --- the load processes --------------------------------------------------------------------------


def _load_process(urls: list[str], count: int, seconds: float, timeout: float, out: Any) -> None:
    out.put(asyncio.run(_load(urls, count, seconds, timeout)))


async def _load(urls: list[str], count: int, seconds: float, timeout: float) -> dict[str, int]:
    """``count`` callers, each sending a write as soon as its previous one is answered, until
    ``seconds`` have passed; what came back, by kind."""
    outcomes: Counter[str] = Counter()
    stop = time.monotonic() + seconds
    rng = random.Random()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def caller(k: int) -> None:
            url = urls[k % len(urls)] + "/v1/objects/registers/write"
            while time.monotonic() < stop:
                body = {"args": [rng.choice(KEYS), rng.randrange(1 << 30)], "timeout": timeout}
                try:
                    async with session.post(
                        url, json=body, timeout=aiohttp.ClientTimeout(total=timeout + 10)
                    ) as response:
                        await response.read()
                        outcomes["ok" if response.status == 200 else f"http-{response.status}"] += 1
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    outcomes[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)  # a refused connection: do not spin

        await asyncio.gather(*(caller(k) for k in range(count)))
    return dict(outcomes)


# --- the run -------------------------------------------------------------------------------------


async def _sample(cluster: ChaosCluster, report: OverloadReport, stop: asyncio.Event) -> None:
    while not stop.is_set():
        for node in cluster.ids:
            rss = cluster.processes.rss(node)
            report.rss_peak[node] = max(report.rss_peak.get(node, 0), rss)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def _term(cluster: ChaosCluster, session: aiohttp.ClientSession) -> int:
    terms = []
    for node in cluster.ids:
        body = await cluster.status(session, node)
        if body is not None:
            terms.append(int(body.get("term", 0)))
    return max(terms, default=0)


async def _converged(cluster: ChaosCluster, deadline: float) -> tuple[bool, str]:
    """Until every node has applied the same index and holds the same registers."""
    last = ""
    async with aiohttp.ClientSession() as session:
        while True:
            seen = {}
            for node in cluster.ids:
                body = await cluster.status(session, node)
                try:
                    dump = await cluster.local_read(session, node, "registers", "dump")
                except Exception as exc:
                    dump = repr(exc)
                applied = None if body is None else body.get("applied_index")
                seen[node] = (applied, repr(dump))
            if len(set(seen.values())) == 1 and None not in {a for a, _ in seen.values()}:
                return True, ""
            last = ", ".join(f"{n}: applied {a}" for n, (a, _) in seen.items())
            if time.monotonic() > deadline:
                return False, last
            await asyncio.sleep(0.1)


async def _live(cluster: ChaosCluster, report: OverloadReport) -> None:
    """A write through every node succeeds and a linearizable read through every node sees
    it."""
    async with aiohttp.ClientSession() as session:
        for k, node in enumerate(cluster.ids):
            value = -(k + 1)
            base = cluster.urls[node] + "/v1/objects/registers/"
            try:
                async with session.post(
                    base + "write",
                    json={"args": ["live", value], "timeout": 10},
                    timeout=aiohttp.ClientTimeout(total=20),
                ) as response:
                    wrote = response.status == 200
                reads = {}
                for reader in cluster.ids:
                    async with session.post(
                        cluster.urls[reader] + "/v1/objects/registers/get",
                        json={"args": ["live"], "consistency": "linearizable", "timeout": 10},
                        timeout=aiohttp.ClientTimeout(total=20),
                    ) as response:
                        body = await response.json(content_type=None)
                        reads[reader] = body.get("result") if response.status == 200 else body
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                report.anomalies.append(f"liveness: a write through {node} failed: {exc!r}")
                continue
            if not wrote or any(v != value for v in reads.values()):
                report.anomalies.append(
                    f"liveness: a write of {value} through {node} "
                    f"{'succeeded' if wrote else 'failed'}; linearizable reads saw {reads}"
                )


async def run_overload(
    *,
    in_flight: int,
    seconds: float,
    nodes: int = 3,
    seed: int = 1,
    database: str = "sqlite",
    directory: Path | None = None,
    keep: bool = False,
    request_timeout: float = 30.0,
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/test",
    tick: float = 0.05,
    proxied: bool = True,
) -> OverloadReport:
    """``request_timeout``: the nodes' REQUEST_TIMEOUT, long, so that a call stays in flight
    rather than being given up on at once; ``proxied``: the peer links through the (healthy)
    proxies, or direct."""
    report = OverloadReport(in_flight, seconds, nodes, database)
    workdir = directory or Path(tempfile.mkdtemp(prefix=f"agree-overload-{seed}-"))
    report.directory = workdir
    ids = [f"n{i}" for i in range(1, nodes + 1)]
    cluster = ChaosCluster(
        workdir,
        nodes,
        database=Database(database, workdir, postgres_url),
        rng=random.Random(seed),
        options={n: NodeOptions(tick_interval=tick) for n in ids},
        request_timeout=request_timeout,
        proxied=proxied,
    )
    stop_sampling = asyncio.Event()
    context = multiprocessing.get_context("spawn")
    loaders: list[Any] = []
    try:
        await cluster.start()
        async with aiohttp.ClientSession() as session:
            report.terms = (await _term(cluster, session), 0)
        for node in cluster.ids:
            report.rss_start[node] = cluster.processes.rss(node)
        sampler = asyncio.ensure_future(_sample(cluster, report, stop_sampling))
        urls = [cluster.urls[n] for n in cluster.ids]
        out = context.Queue()
        shares = [PER_PROCESS] * (in_flight // PER_PROCESS)
        if in_flight % PER_PROCESS:
            shares.append(in_flight % PER_PROCESS)
        for k, share in enumerate(shares):
            rotated = urls[k % len(urls) :] + urls[: k % len(urls)]
            loader = context.Process(
                target=_load_process,
                args=(rotated, share, seconds, request_timeout, out),
                daemon=True,
            )
            loader.start()
            loaders.append(loader)
        load_stops = time.monotonic() + seconds  # no call is sent after this
        for _ in loaders:
            # Each load process answers once its last call is back (or timed out).
            counts = await asyncio.to_thread(out.get, True, seconds + 2 * request_timeout + 120)
            report.outcomes.update(counts)
        drained = time.monotonic()
        report.drained_after = max(0.0, drained - load_stops)
        ok, why = await _converged(cluster, drained + 10 * cluster.election_timeout)
        if ok:
            report.converged_after = time.monotonic() - drained
        else:
            report.anomalies.append(
                f"convergence: replicas differ {10 * cluster.election_timeout:.1f}s after the "
                f"load stopped: {why}"
            )
        await _live(cluster, report)
        stop_sampling.set()
        await sampler
        for node in cluster.ids:
            report.rss_end[node] = cluster.processes.rss(node)
            bound = rss_bound(report.rss_start[node], in_flight)
            if report.rss_peak.get(node, 0) > bound:
                report.anomalies.append(
                    f"memory: {node} peaked at {report.rss_peak[node] / MIB:.0f} MiB, over "
                    f"{bound / MIB:.0f} MiB ({report.rss_start[node] / MIB:.0f} MiB before)"
                )
        async with aiohttp.ClientSession() as session:
            report.terms = (report.terms[0], await _term(cluster, session))
        for node in cluster.ids:
            if not cluster.running(node):
                report.anomalies.append(f"process: {node} exited:\n{cluster.log(node)[-2000:]}")
    finally:
        stop_sampling.set()
        for loader in loaders:
            if loader.is_alive():
                loader.kill()  # by its own pid
            loader.join(5)
        await cluster.close()
    if not report.anomalies and not keep:
        cluster.remove_files()
        report.directory = None
    return report
