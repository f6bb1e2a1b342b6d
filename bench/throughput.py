"""Throughput and latency of a cluster of separate node processes on loopback.

Each node is its own process running the same code as ``agree-manage runnode`` (the aiohttp
app, the peer transport, durable SQLite with ``synchronous=FULL`` in a temporary directory, or
PostgreSQL with ``--database postgres``).  Commands are ``KVStore.set`` with a ``--payload``-byte
value, issued *from inside one node's process* (the leader's, or a follower's with ``--via
follower``, which forwards each command to the leader over the peer transport) through the
node's own proxy, with W commands in flight (W asyncio tasks, each awaiting one call after
another) — so the figures are the runtime's, not an HTTP client's.  The bench reaches that
process through a route it adds to the node's app (``POST /bench/run``), used only here.

Measured on a fresh cluster per run, median of ``--runs``:

* ``writes_per_s``: committed commands per second with W in flight;
* ``seq_p50_ms``/``seq_p99_ms``: latency of one command at a time (W = 1);
* ``cpu_us_per_command``: CPU time (user + system, from /proc) of all node processes together,
  divided by the commands committed.

``--window W --n N`` runs one configuration; without them the whole table (W = 1, 100, 1,000,
10,000).  ``--json FILE`` writes the figures of the configuration run (the last one of a table).

Run by hand: ``.venv/bin/python bench/throughput.py [--window W --n N] [--nodes 3]
[--via leader|follower] [--payload 64] [--database sqlite|postgres] [--runs 3] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from agree.testing.ports import free_ports
from agree.testing.processes import NodeProcesses

SECRET = "bench-cluster-secret-0123456789"
KEY_SPACE = 1024
TABLE = ((1, 2_000), (100, 20_000), (1_000, 40_000), (10_000, 60_000))
POSTGRES_URL = os.environ.get(
    "AGREE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# -- inside a node process ---------------------------------------------------------------------


def serve_node(module: str, node_id: str) -> None:
    """The node process: runnode's serve() plus the bench route."""
    from aiohttp import web

    from agree.conf.settings import load_settings
    from agree.management.commands.runnode import serve
    from agree.runtime.node import Node

    settings = load_settings(module, NODE_ID=node_id)
    host, port = settings.bind_address()

    stalls = LoopStalls()

    def configure(app: web.Application, node: Node) -> None:
        async def watch(app: web.Application) -> Any:
            task = asyncio.ensure_future(stalls.watch())
            yield
            task.cancel()

        async def longest_stall(request: web.Request) -> web.Response:
            return web.json_response({"ms": stalls.take() * 1000})

        app.cleanup_ctx.append(watch)
        app.router.add_get("/bench/stall", longest_stall)

        async def run(request: web.Request) -> web.Response:
            body = await request.json()
            result = await issue(
                node,
                int(body["window"]),
                int(body["n"]),
                int(body["payload"]),
                str(body.get("op", "write")),
                float(body.get("seconds", 1e9)),
                float(body.get("answer_within", 1e9)),
            )
            return web.json_response(result)

        app.router.add_post("/bench/run", run)

    asyncio.run(serve(settings, host, port, configure=configure))


class LoopStalls:
    """The longest time the node's event loop went without running a 5 ms timer, past when
    it was due: ticks, heartbeats and peer frames waited that long.  A stall past the election
    timeout (0.5 s by default) lets the followers elect another leader."""

    PERIOD = 0.005

    def __init__(self) -> None:
        self.longest = 0.0

    async def watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.PERIOD
            await asyncio.sleep(self.PERIOD)
            self.longest = max(self.longest, loop.time() - due)

    def take(self) -> float:
        """The longest stall since the last call."""
        longest, self.longest = self.longest, 0.0
        return longest


async def issue(
    node: Any,
    window: int,
    n: int,
    payload: int,
    op: str = "write",
    seconds: float = 1e9,
    answer_within: float = 1e9,
) -> dict[str, Any]:
    """``n`` commands (``op="write"``, ``KVStore.set``) or linearizable reads (``op="read"``,
    ``KVStore.get``) with ``window`` in flight through the node's proxy, no new one started
    after ``seconds``; latencies in ms.  Once no call has been answered for ``answer_within``
    seconds (the node's own REQUEST_TIMEOUT should have failed them before), the calls still in
    flight are given up and counted in the failures as ``NoAnswer``, so that a stranded call
    cannot hold the run up for ever."""
    from agree.errors import AgreeError

    kv = node.proxy("kv")
    value = "v" * payload
    latencies: list[float] = []
    failures: dict[str, int] = {}
    next_i = 0
    stop_at = time.perf_counter() + seconds
    in_flight = 0

    async def worker() -> None:
        nonlocal next_i, in_flight
        while next_i < n and time.perf_counter() < stop_at:
            i = next_i
            next_i += 1
            started = time.perf_counter()
            key = f"k{i % KEY_SPACE:04d}"
            in_flight += 1
            try:
                # Awaited as it is: a timer and a task per call (asyncio.wait_for) would cost
                # the leader's CPU as much as some of the layers measured.
                await (kv.set(key, value) if op == "write" else kv.get(key))
            except AgreeError as exc:  # e.g. timed out: counted, not in the rate
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                continue
            finally:
                in_flight -= 1
            latencies.append((time.perf_counter() - started) * 1000)

    term = node.status().term
    started = time.perf_counter()
    workers = {asyncio.ensure_future(worker()) for _ in range(min(window, n))}
    # One watchdog for the run instead of a timer per call: once no call has been answered
    # for ``answer_within`` seconds, the calls still in flight are given up as NoAnswer.
    answered = -1
    while workers and answered != len(latencies) + sum(failures.values()):
        answered = len(latencies) + sum(failures.values())
        _, workers = await asyncio.wait(workers, timeout=answer_within)
    if workers:
        failures["NoAnswer"] = failures.get("NoAnswer", 0) + in_flight
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    result = summary(latencies, time.perf_counter() - started)
    # Elections during the run (a leader whose loop stalls past the election timeout is
    # deposed, and its commands in flight are then forwarded to the new leader).
    result["terms_passed"] = node.status().term - term
    result["failures"] = failures
    return result


def summary(latencies: list[float], seconds: float) -> dict[str, Any]:
    latencies.sort()
    return {
        "n": len(latencies),
        "seconds": seconds,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


# -- the orchestrator -----------------------------------------------------------------------------


def request(method: str, url: str, body: Any = None, timeout: float = 600) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cluster:
    def __init__(
        self, directory: Path, nodes: int, database: str, request_timeout: float = 60.0
    ) -> None:
        ids = [f"n{i}" for i in range(1, nodes + 1)]
        self.urls = {
            i: f"http://127.0.0.1:{p}" for i, p in zip(ids, free_ports(nodes), strict=True)
        }
        self.schemas: list[str] = []
        if database == "postgres":
            prefix = f"agree_b_{uuid.uuid4().hex[:8]}"
            self.schemas = [f"{prefix}_{i}" for i in ids]
            self._postgres("CREATE SCHEMA")
            url = f"{POSTGRES_URL}?options=-csearch_path%3D{prefix}_{{node_id}}"
        else:
            url = f"sqlite:///{(directory / '{node_id}.db').as_posix()}"
        settings: dict[str, Any] = {
            "NODES": self.urls,
            "DATABASE_URL": url,
            "OBJECTS": {"kv": "agree.testing.models.KVStore"},
            "AUTO_MIGRATE": True,
            # A command that gets no answer (e.g. stranded on a deposed leader) fails after
            # this long, counted in the run's failures, instead of holding the run up.
            "REQUEST_TIMEOUT": request_timeout,
            "LOG_LEVEL": "WARNING",
        }
        if nodes > 1:
            settings["CLUSTER_SECRET"] = SECRET
        self.processes = NodeProcesses(directory, settings, name="bench_settings", urls=self.urls)
        for node_id in ids:
            self.processes.spawn(
                node_id,
                [sys.executable, __file__, "--serve", self.processes.module, node_id],
                log=False,
            )
        self.procs = self.processes.procs

    def _postgres(self, statement: str) -> None:
        import psycopg

        plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as conn:
            for schema in self.schemas:
                suffix = " CASCADE" if statement.startswith("DROP") else ""
                conn.execute(f'{statement} "{schema}"{suffix}')

    def wait_leader(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node_id, url in self.urls.items():
                if self.procs[node_id].poll() is not None:
                    raise SystemExit(f"node {node_id} exited")
                try:
                    status, ready = request("GET", url + "/readyz", timeout=1)
                except OSError:
                    continue
                if status == 200 and ready.get("leader_id"):
                    leader = str(ready["leader_id"])
                    if all(self._ready(u) for u in self.urls.values()):
                        return leader
            time.sleep(0.1)
        raise SystemExit("no leader elected")

    def _ready(self, url: str) -> bool:
        try:
            return request("GET", url + "/readyz", timeout=1)[0] == 200
        except OSError:
            return False

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs.values())

    def roles(self, leader: str) -> dict[str, str]:
        """Each node's id by role: ``leader``, ``follower1``, ``follower2``, ..."""
        followers = [i for i in self.urls if i != leader]
        return {"leader": leader, **{f"follower{k}": i for k, i in enumerate(followers, 1)}}

    def pids(self, leader: str) -> dict[str, int]:
        """Each node's pid by role."""
        return {role: self.procs[i].pid for role, i in self.roles(leader).items()}

    def longest_stalls(self, leader: str) -> dict[str, float]:
        """Each node's longest event-loop stall (ms) since the last call, by role."""
        return {
            f"stall_ms_{role}": float(request("GET", self.urls[i] + "/bench/stall")[1]["ms"])
            for role, i in self.roles(leader).items()
        }

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # a clean stop, then a kill if it takes long
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        self.processes.close()
        if self.schemas:
            self._postgres("DROP SCHEMA IF EXISTS")


def cpu_by_process(pids: dict[str, int]) -> dict[str, float]:
    return {role: cpu_seconds(pid) for role, pid in pids.items()}


def per_command(
    before: dict[str, float], after: dict[str, float], commands: int
) -> dict[str, float]:
    """CPU µs per committed command of each process, and of all of them (``cpu_us_per_command``)."""
    figures = {f"cpu_us_{role}": (after[role] - before[role]) / commands * 1e6 for role in before}
    figures["cpu_us_per_command"] = sum(figures.values())
    return figures


def one_run(
    args: argparse.Namespace, window: int, n: int, reads: int = 0, profile: str | None = None
) -> dict[str, float]:
    """One fresh agree cluster: one-at-a-time latency, then ``n`` commands with ``window`` in
    flight (profiled with py-spy when ``profile`` names an output file), then ``reads``
    linearizable reads with ``--read-window`` in flight on the leader and on a follower."""
    with tempfile.TemporaryDirectory(prefix="agree-bench-") as tmp:
        cluster = Cluster(Path(tmp), args.nodes, args.database, args.request_timeout)
        try:
            leader = cluster.wait_leader()
            follower = next(i for i in cluster.urls if i != leader)
            via = leader if args.via == "leader" else follower
            url = cluster.urls[via] + "/bench/run"
            payload = {
                "window": 1,
                "n": 100,
                "payload": args.payload,
                "seconds": args.seconds,
                # Past the nodes' REQUEST_TIMEOUT: an answer that late is a lost call.
                "answer_within": args.request_timeout + 30,
            }
            post(url, payload)  # warm-up
            seq = post(url, {**payload, "n": min(n, 500)})
            pids = cluster.pids(leader)
            spies = [
                start_profile(args, pid, profile_path(profile, role))
                for role, pid in (pids.items() if profile else ())
            ]
            cluster.longest_stalls(leader)  # from now on
            before = cpu_by_process(pids)
            result = post(url, {**payload, "window": window, "n": n})
            after = cpu_by_process(pids)
            stalls = cluster.longest_stalls(leader)
            for spy in spies:
                stop_profile(spy)
            if result["failures"]:
                print(f"  (agree, W={window}: failed {result['failures']})", flush=True)
            figures = {
                "terms_passed": result["terms_passed"],
                "writes_per_s": result["n"] / result["seconds"],
                "seq_p50_ms": seq["p50_ms"],
                "seq_p99_ms": seq["p99_ms"],
                "p50_ms": result["p50_ms"],
                "p99_ms": result["p99_ms"],
                **per_command(before, after, result["n"]),
                **stalls,
            }
            for where, node_id in (("leader", leader), ("follower", follower)) if reads else ():
                read = {**payload, "op": "read", "window": args.read_window, "n": reads}
                read_url = cluster.urls[node_id] + "/bench/run"
                before = cpu_by_process(pids)
                outcome = post(read_url, read)
                after = cpu_by_process(pids)
                if outcome["failures"]:
                    print(f"  (agree reads on the {where}: failed {outcome['failures']})")
                figures[f"reads_per_s_{where}"] = outcome["n"] / outcome["seconds"]
                figures[f"reads_p50_ms_{where}"] = outcome["p50_ms"]
                cpu = per_command(before, after, outcome["n"])["cpu_us_per_command"]
                figures[f"reads_cpu_us_per_read_{where}"] = cpu
        finally:
            cluster.close()
    return figures


def post(url: str, body: dict[str, Any]) -> Any:
    status, result = request("POST", url, body)
    if status != 200:
        raise SystemExit(f"bench run failed: {result}")
    return result


def pysyncobj_run(args: argparse.Namespace, mode: str, window: int, n: int) -> dict[str, float]:
    """The same workload on a fresh PySyncObj cluster in ``mode`` (see pysyncobj_cluster)."""
    from pysyncobj_cluster import PySyncObjCluster

    with tempfile.TemporaryDirectory(prefix="pysyncobj-bench-") as tmp:
        cluster = PySyncObjCluster(Path(tmp), args.nodes, mode, free_ports(args.nodes))
        try:
            leader = cluster.wait_leader()
            run = {"cmd": "run", "window": 1, "n": 100, "payload": args.payload}
            run["seconds"] = args.seconds
            cluster.ask(leader, {**run, "n": 20})  # warm-up
            seq = cluster.ask(leader, {**run, "n": min(n, 500)})
            followers = [a for a in cluster.addresses if a != leader]
            pids = {"leader": cluster.procs[leader].pid}
            pids.update({f"follower{k}": cluster.procs[a].pid for k, a in enumerate(followers, 1)})
            before = cpu_by_process(pids)
            result = cluster.ask(leader, {**run, "window": window, "n": n})
            after = cpu_by_process(pids)
        finally:
            cluster.close()
            warnings = cluster.warnings()
    if result["failures"] or warnings:
        print(
            f"  (PySyncObj {mode}, W={window}: {result['failures']} commands failed; "
            f"{warnings} warnings from its nodes, e.g. truncating applied entries)",
            flush=True,
        )
    return {
        "writes_per_s": result["n"] / result["seconds"],
        "seq_p50_ms": seq["p50_ms"],
        "seq_p99_ms": seq["p99_ms"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        **per_command(before, after, result["n"]),
    }


# -- profiling the leader -------------------------------------------------------------------------


def cluster_roles(figures: dict[str, float]) -> list[str]:
    """The roles a run's CPU figures name: ``leader``, ``follower1``, ..."""
    roles = [k.removeprefix("cpu_us_") for k in figures if k.startswith("cpu_us_")]
    return sorted((r for r in roles if r != "per_command"), key=lambda r: (r != "leader", r))


def profile_path(profile: str, role: str) -> str:
    """Where the samples of the process in ``role`` go: ``FILE`` for the leader, ``FILE.ROLE``
    for the others."""
    return profile if role == "leader" else f"{profile}.{role}"


def start_profile(args: argparse.Namespace, pid: int, output: str) -> subprocess.Popen[bytes]:
    """py-spy sampling one node's process (every thread) in its raw (collapsed) format."""
    options = ["-f", "raw", "--threads", "--rate", "250", "--nonblocking"]
    spy = subprocess.Popen(
        [args.py_spy, "record", *options, "--pid", str(pid), "-o", output],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches before the measured run starts
    return spy


def stop_profile(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    spy.wait(timeout=60)


# -- the table ------------------------------------------------------------------------------------

SYSTEMS = ("agree", "pysyncobj-memory", "pysyncobj-file")
LABELS = {
    "agree": "agree",
    "pysyncobj-memory": "PySyncObj memory journal, batching",
    "pysyncobj-file": "PySyncObj file journal, no batching",
}


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def print_row(label: str, window: int, figures: dict[str, float]) -> None:
    cpu = " ".join(
        f"{figures[k]:.0f}"
        for k in sorted(figures, key=lambda k: (k != "cpu_us_leader", k))
        if k.startswith(("cpu_us_leader", "cpu_us_follower"))
    )
    print(
        f"{label:<36} {window:>6} {figures['writes_per_s']:>9.0f} {figures['p50_ms']:>8.2f} "
        f"{figures['p99_ms']:>8.2f} {figures['seq_p50_ms']:>8.2f} {figures['seq_p99_ms']:>8.2f} "
        f"{figures['cpu_us_per_command']:>7.0f} ({cpu})",
        flush=True,
    )


def plot(table: dict[str, dict[int, dict[str, float]]], path: Path, title: str) -> None:
    """Throughput and p50 against the in-flight window, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 8), sharex=True)
    for system, rows in table.items():
        windows = sorted(rows)
        top.plot(windows, [rows[w]["writes_per_s"] for w in windows], "o-", label=LABELS[system])
        bottom.plot(windows, [rows[w]["p50_ms"] for w in windows], "o-", label=LABELS[system])
    top.set_ylabel("committed commands/s")
    bottom.set_ylabel("p50 latency (ms)")
    bottom.set_xlabel("commands in flight")
    for axes in (top, bottom):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.grid(True, which="both", alpha=0.3)
    top.legend()
    top.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve_node(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, help="commands in flight (with --n)")
    parser.add_argument("--n", type=int, help="commands to issue (with --window)")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--via", choices=("leader", "follower"), default="leader")
    parser.add_argument("--payload", type=int, default=64, help="bytes of each value")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="no new command after this long in a run"
    )
    parser.add_argument(
        "--reads",
        type=int,
        default=20_000,
        help="linearizable reads on the leader and on a follower, with the configuration run "
        "(the last of a table); 0: none",
    )
    parser.add_argument("--read-window", type=int, default=1_000)
    parser.add_argument(
        "--request-timeout", type=float, default=60.0, help="the nodes' REQUEST_TIMEOUT"
    )
    parser.add_argument("--compare", choices=("pysyncobj",), help="the same workload on it")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="py-spy's raw samples of each node during the configuration run (its last run):"
        " the leader's in FILE, the followers' in FILE.follower1, FILE.follower2, ...",
    )
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    if (args.window is None) != (args.n is None):
        parser.error("--window and --n go together")
    windows = ((args.window, args.n),) if args.window is not None else TABLE
    systems = SYSTEMS if args.compare else SYSTEMS[:1]
    title = (
        f"{args.nodes} node processes, {args.database}, via {args.via}, {args.payload}-byte values"
    )
    print(f"{title}; medians of {args.runs} runs, alternating")
    print(
        f"{'system':<36} {'W':>6} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'seq p50':>8} {'seq p99':>8} {'CPU us/cmd (leader follower...)'}"
    )
    table: dict[str, dict[int, dict[str, float]]] = {s: {} for s in systems}
    for position, (window, n) in enumerate(windows):
        last = position == len(windows) - 1
        runs: dict[str, list[dict[str, float]]] = {s: [] for s in systems}
        for run in range(args.runs):
            profile = args.profile if last and run == args.runs - 1 else None
            reads = args.reads if last else 0
            runs["agree"].append(one_run(args, window, n, reads, profile))
            if runs["agree"][-1]["terms_passed"]:
                print(
                    f"  (agree, W={window}: {runs['agree'][-1]['terms_passed']:.0f} new terms "
                    "during the measured run: the leader was deposed and its commands forwarded)",
                    flush=True,
                )
            if args.compare:
                runs["pysyncobj-memory"].append(pysyncobj_run(args, "memory", window, n))
                runs["pysyncobj-file"].append(pysyncobj_run(args, "file", window, n))
            # Each run as it ends, so that a run cut short still leaves the ones before it.
            rates = ", ".join(f"{s} {runs[s][-1]['writes_per_s']:.0f}/s" for s in systems)
            stalls = " ".join(
                f"{v:.0f}" for k, v in runs["agree"][-1].items() if k.startswith("stall_ms_")
            )
            print(
                f"  (W={window}, run {run + 1}: {rates}; agree's longest loop stalls, ms,"
                f" leader first: {stalls})",
                flush=True,
            )
        for system in systems:
            table[system][window] = medians(runs[system])
            print_row(LABELS[system], window, table[system][window])
    agree = table["agree"][windows[-1][0]]
    if "reads_per_s_leader" in agree:
        for where in ("leader", "follower"):
            print(
                f"linearizable reads on the {where}, {args.read_window} in flight: "
                f"{agree[f'reads_per_s_{where}']:.0f}/s (p50 "
                f"{agree[f'reads_p50_ms_{where}']:.2f} ms, "
                f"{agree[f'reads_cpu_us_per_read_{where}']:.0f} CPU us per read), "
                f"{agree[f'reads_per_s_{where}'] / agree['writes_per_s']:.2f}x the write rate",
                flush=True,
            )
    ratios: dict[str, dict[str, float]] = {}
    if args.compare:
        print("ratios (agree / PySyncObj; throughput: higher is better, latency: lower):")
        for window, _ in windows:
            mine = table["agree"][window]
            memory = table["pysyncobj-memory"][window]
            file = table["pysyncobj-file"][window]
            ratios[str(window)] = {
                "writes_per_s_vs_memory": mine["writes_per_s"] / memory["writes_per_s"],
                "writes_per_s_vs_file": mine["writes_per_s"] / file["writes_per_s"],
                "seq_p50_vs_file": mine["seq_p50_ms"] / file["seq_p50_ms"],
                "seq_p50_vs_memory": mine["seq_p50_ms"] / memory["seq_p50_ms"],
                # /proc counts CPU in clock ticks (10 ms): a tiny run may show none.
                "cpu_vs_memory": mine["cpu_us_per_command"]
                / max(memory["cpu_us_per_command"], 1e-9),
            }
            r = ratios[str(window)]
            print(
                f"  W={window:>6}: writes/s {r['writes_per_s_vs_memory']:.2f}x memory-batching, "
                f"{r['writes_per_s_vs_file']:.2f}x file-no-batching; one-at-a-time p50 "
                f"{r['seq_p50_vs_file']:.2f}x file-no-batching, "
                f"{r['seq_p50_vs_memory']:.2f}x memory-batching; "
                f"CPU/cmd {r['cpu_vs_memory']:.2f}x memory-batching",
                flush=True,
            )
    if args.profile:
        from profile_layers import print_layers

        for role in cluster_roles(agree):
            print_layers(Path(profile_path(args.profile, role)), agree[f"cpu_us_{role}"], who=role)
    if args.json:
        keys = ("writes_per_s", "seq_p50_ms", "seq_p99_ms", "cpu_us_per_command")
        document: dict[str, Any] = {k: agree[k] for k in keys}
        document.update({k: v for k, v in agree.items() if k not in keys})
        document["config"] = {
            "nodes": args.nodes,
            "database": args.database,
            "via": args.via,
            "payload": args.payload,
            "runs": args.runs,
            "window": windows[-1][0],
            "n": windows[-1][1],
        }
        document["table"] = {s: {str(w): f for w, f in rows.items()} for s, rows in table.items()}
        if ratios:
            document["ratios"] = ratios
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"figures written to {path}")
        try:
            plot(table, path.with_suffix(".png"), title)
        except ImportError:
            print("(no plot: matplotlib is in the bench extra)")
        else:
            print(f"plot written to {path.with_suffix('.png')}")


if __name__ == "__main__":
    main()
