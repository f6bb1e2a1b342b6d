"""Throughput and latency of the client HTTP API: N concurrent clients against a cluster of
separate node processes on loopback (started as in ``bench/throughput.py``), and with
``--compare etcd`` the same workload against a 3-member etcd on loopback in the same
invocation.

(The performance issue calls this ``bench/http.py``; that name would shadow the standard
library's ``http`` package for a script run from this folder.)

Each of ``--clients`` asyncio tasks has its own client (for agree an :class:`agree.AsyncClient`,
for etcd an aiohttp session: each its own connection pool) and issues, one after another,
either 64-byte ``KVStore.set`` commands (etcd: ``PUT /v3/kv/put``) or linearizable
``KVStore.get`` reads (etcd: ``POST /v3/kv/range``, linearizable by default) for ``--seconds``.
Clients are spread over the members (``--via all``; followers forward to the leader in both
systems).  The clients run in this one process, whose CPU is part of what is measured: the
figures are a floor for what separate client machines would see.

Without ``--clients``/``--op`` it runs the table: writes and reads with 64 in flight and one at
a time, on a fresh cluster per run, runs alternating between the systems, medians of ``--runs``;
prints ops/s, p50/p99 latency, the nodes' CPU µs per operation per process (from /proc), this
process's (the clients') CPU µs per operation, and the ratios agree/etcd.  ``--json FILE``
writes them.

etcd is Debian's ``etcd-server`` package (etcd 3.4: ``apt-get install etcd-server``), three
members with their own data directories (fsync'ed, as etcd always does) and free ports,
stopped by pid.

Run by hand: ``.venv/bin/python bench/http_api.py [--compare etcd] [--clients 64 --op
write|read] [--seconds 5] [--runs 3] [--nodes 3] [--via leader|follower|all] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import KEY_SPACE, Cluster, cpu_by_process, free_ports, per_command

import agree

ROWS = (("write", 64), ("write", 1), ("read", 64), ("read", 1))

Op = Callable[[int], Awaitable[Any]]


async def drive(
    clients: int, seconds: float, client: Callable[[int], Any], operation: Callable[[Any], Op]
) -> dict[str, float]:
    """``clients`` tasks, each with ``client(worker)`` (an async context manager) issuing
    ``operation(client)(i)`` one after another for ``seconds``."""
    latencies: list[float] = []
    ready = 0
    go = asyncio.Event()
    started = stop_at = cpu_started = 0.0

    async def one(worker: int) -> None:
        nonlocal ready, started, stop_at, cpu_started
        async with client(worker) as c:
            op = operation(c)
            await op(worker)  # untimed: the connection, and agree's client its schema
            ready += 1
            if ready == clients:  # the clock starts when every client is connected
                started = time.perf_counter()
                cpu_started = time.process_time()
                stop_at = started + seconds
                go.set()
            await go.wait()
            i = worker + clients
            while time.perf_counter() < stop_at:
                sent = time.perf_counter()
                await op(i)
                latencies.append((time.perf_counter() - sent) * 1000)
                i += clients

    tasks = [asyncio.ensure_future(one(w)) for w in range(clients)]
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    latencies.sort()
    return {
        "ops_per_s": len(latencies) / elapsed,
        "ops": len(latencies),
        # This process's, all its clients' (and their closing), from the start of the clock.
        "cpu_us_client": cpu / len(latencies) * 1e6,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def rotate(urls: list[str], worker: int) -> list[str]:
    return urls[worker % len(urls) :] + urls[: worker % len(urls)]


class AgreeSide:
    name = "agree"

    def __init__(self, directory: Path, nodes: int, via: str) -> None:
        self.cluster = Cluster(directory, nodes, "sqlite")
        leader = self.cluster.wait_leader()
        self.pids = self.cluster.pids(leader)
        urls = self.cluster.urls
        if via == "leader":
            self.urls = [urls[leader]]
        elif via == "follower":
            self.urls = [u for i, u in urls.items() if i != leader]
        else:
            self.urls = list(urls.values())

    def client(self, worker: int) -> Any:
        return agree.AsyncClient(rotate(self.urls, worker))

    def operation(self, op: str, payload: int) -> Callable[[Any], Op]:
        value = "v" * payload

        def bind(client: Any) -> Op:
            kv = client.proxy("kv")
            if op == "write":
                return lambda i: kv.set(f"k{i % KEY_SPACE:04d}", value)  # type: ignore[no-any-return]
            return lambda i: kv.get(f"k{i % KEY_SPACE:04d}")  # type: ignore[no-any-return]

        return bind

    def close(self) -> None:
        self.cluster.close()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class EtcdSide:
    """``nodes`` etcd members on loopback, each its own process and data directory."""

    name = "etcd"

    def __init__(self, directory: Path, nodes: int, via: str) -> None:
        etcd = shutil.which("etcd")
        if etcd is None:
            raise SystemExit("etcd is not installed (Debian: apt-get install etcd-server)")
        ports = free_ports(2 * nodes)
        names = [f"m{i}" for i in range(1, nodes + 1)]
        client_urls = {n: f"http://127.0.0.1:{ports[2 * k]}" for k, n in enumerate(names)}
        peer_urls = {n: f"http://127.0.0.1:{ports[2 * k + 1]}" for k, n in enumerate(names)}
        initial = ",".join(f"{n}={peer_urls[n]}" for n in names)
        self.procs = {
            n: subprocess.Popen(
                [
                    etcd,
                    f"--name={n}",
                    f"--data-dir={directory / n}",
                    f"--listen-client-urls={client_urls[n]}",
                    f"--advertise-client-urls={client_urls[n]}",
                    f"--listen-peer-urls={peer_urls[n]}",
                    f"--initial-advertise-peer-urls={peer_urls[n]}",
                    f"--initial-cluster={initial}",
                    "--initial-cluster-state=new",
                    f"--initial-cluster-token=bench-{directory.name}",
                    "--logger=zap",
                    "--log-level=error",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for n in names
        }
        try:
            leader = self._wait_leader(client_urls)
        except BaseException:
            self.close()
            raise
        followers = [n for n in names if n != leader]
        self.pids = {"leader": self.procs[leader].pid}
        self.pids.update({f"follower{k}": self.procs[n].pid for k, n in enumerate(followers, 1)})
        if via == "leader":
            self.urls = [client_urls[leader]]
        elif via == "follower":
            self.urls = [client_urls[n] for n in followers]
        else:
            self.urls = list(client_urls.values())

    def _wait_leader(self, client_urls: dict[str, str], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                statuses = {
                    n: _post(u + "/v3/maintenance/status", {}) for n, u in client_urls.items()
                }
            except OSError:
                time.sleep(0.2)
                continue
            leaders = {s.get("leader") for s in statuses.values()}
            if len(leaders) == 1 and None not in leaders:
                leader_id = leaders.pop()
                for name, status in statuses.items():
                    if status["header"]["member_id"] == leader_id:
                        return name
            time.sleep(0.2)
        raise SystemExit("etcd elected no leader")

    def client(self, worker: int) -> Any:
        import aiohttp

        return _EtcdClient(rotate(self.urls, worker)[0], aiohttp)

    def operation(self, op: str, payload: int) -> Callable[[Any], Op]:
        value = b64("v" * payload)

        def bind(client: _EtcdClient) -> Op:
            if op == "write":
                return lambda i: client.call(
                    "/v3/kv/put", {"key": b64(f"k{i % KEY_SPACE:04d}"), "value": value}
                )
            return lambda i: client.call("/v3/kv/range", {"key": b64(f"k{i % KEY_SPACE:04d}")})

        return bind

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class _EtcdClient:
    def __init__(self, url: str, aiohttp: Any) -> None:
        self.url = url
        self.session = aiohttp.ClientSession()

    async def __aenter__(self) -> _EtcdClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def call(self, path: str, body: dict[str, Any]) -> Any:
        async with self.session.post(self.url + path, json=body) as response:
            answer = await response.json()
            if response.status != 200:
                raise RuntimeError(f"etcd {path}: {response.status} {answer}")
            return answer


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=2) as response:
        return json.loads(response.read())


def measure(side: Any, op: str, clients: int, args: argparse.Namespace) -> dict[str, float]:
    if op == "read":  # something to read
        asyncio.run(drive(4, 0.5, side.client, side.operation("write", args.payload)))
    before = cpu_by_process(side.pids)
    figures = asyncio.run(
        drive(clients, args.seconds, side.client, side.operation(op, args.payload))
    )
    after = cpu_by_process(side.pids)
    return {**figures, **per_command(before, after, int(figures["ops"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, help="concurrent clients (with --op)")
    parser.add_argument("--op", choices=("write", "read"), help="(with --clients)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--via", choices=("leader", "follower", "all"), default="all")
    parser.add_argument("--payload", type=int, default=64)
    parser.add_argument("--compare", choices=("etcd",), help="the same workload on it")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    if (args.clients is None) != (args.op is None):
        parser.error("--clients and --op go together")
    rows = ((args.op, args.clients),) if args.op else ROWS
    sides = [AgreeSide] + ([EtcdSide] if args.compare else [])
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        s.name: {f"{op} {c}": [] for op, c in rows} for s in sides
    }
    for _ in range(args.runs):
        for kind in sides:
            with tempfile.TemporaryDirectory(prefix=f"{kind.name}-bench-") as tmp:
                side = kind(Path(tmp), args.nodes, args.via)
                try:
                    for op, clients in rows:
                        runs[kind.name][f"{op} {clients}"].append(measure(side, op, clients, args))
                finally:
                    side.close()
    print(
        f"{args.nodes} members on loopback, HTTP clients via {args.via}, {args.payload}-byte "
        f"values, {args.seconds:g} s a row; medians of {args.runs} runs, alternating"
    )
    print(
        f"{'system':<7} {'op':<6} {'clients':>7} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        "CPU us/op: nodes (leader follower...), clients' process"
    )
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, by_row in runs.items():
        table[name] = {}
        for row, results in by_row.items():
            figures = {k: statistics.median(r[k] for r in results) for k in results[0]}
            table[name][row] = figures
            op, clients = row.split()
            cpu = " ".join(
                f"{figures[k]:.0f}"
                for k in sorted(figures, key=lambda k: (k != "cpu_us_leader", k))
                if k.startswith(("cpu_us_leader", "cpu_us_follower"))
            )
            print(
                f"{name:<7} {op:<6} {clients:>7} {figures['ops_per_s']:>8.0f} "
                f"{figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f} "
                f"{figures['cpu_us_per_command']:>5.0f} ({cpu}) {figures['cpu_us_client']:>5.0f}",
                flush=True,
            )
    ratios: dict[str, dict[str, float]] = {}
    if args.compare:
        print("ratios agree/etcd (ops/s: higher is better; p50: lower is better):")
        for row in table["agree"]:
            mine, theirs = table["agree"][row], table["etcd"][row]
            ratios[row] = {
                "ops_per_s": mine["ops_per_s"] / theirs["ops_per_s"],
                "p50": mine["p50_ms"] / theirs["p50_ms"],
                # /proc counts CPU in clock ticks (10 ms): a tiny run may show none.
                "cpu": mine["cpu_us_per_command"] / max(theirs["cpu_us_per_command"], 1e-9),
            }
            r = ratios[row]
            print(
                f"  {row:<9} ops/s {r['ops_per_s']:.2f}x, p50 {r['p50']:.2f}x, "
                f"CPU/op {r['cpu']:.2f}x",
                flush=True,
            )
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        document: dict[str, Any] = {"table": table}
        if ratios:
            document["ratios"] = ratios
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"figures written to {path}")


if __name__ == "__main__":
    main()
