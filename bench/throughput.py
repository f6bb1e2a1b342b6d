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
import json
import os
import signal
import socket
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

REPO = Path(__file__).resolve().parent.parent
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

    from agree.management.commands.runnode import serve
    from agree.node import Node
    from agree.settings import load_settings

    settings = load_settings(module, NODE_ID=node_id)
    host, port = settings.bind_address()

    def configure(app: web.Application, node: Node) -> None:
        async def run(request: web.Request) -> web.Response:
            body = await request.json()
            result = await issue(node, int(body["window"]), int(body["n"]), int(body["payload"]))
            return web.json_response(result)

        app.router.add_post("/bench/run", run)

    asyncio.run(serve(settings, host, port, configure=configure))


async def issue(node: Any, window: int, n: int, payload: int) -> dict[str, Any]:
    """``n`` commands with ``window`` in flight through the node's proxy; latencies in ms."""
    kv = node.proxy("kv")
    value = "v" * payload
    latencies: list[float] = []
    next_i = 0

    async def worker() -> None:
        nonlocal next_i
        while next_i < n:
            i = next_i
            next_i += 1
            started = time.perf_counter()
            await kv.set(f"k{i % KEY_SPACE:04d}", value)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(window, n))))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "n": n,
        "seconds": elapsed,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


# -- the orchestrator -----------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


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
    def __init__(self, directory: Path, nodes: int, database: str) -> None:
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
        self.module = f"bench_settings_{uuid.uuid4().hex[:8]}"
        settings: dict[str, Any] = {
            "NODES": self.urls,
            "DATABASE_URL": url,
            "OBJECTS": {"kv": "agree.testing.models.KVStore"},
            "AUTO_MIGRATE": True,
            "REQUEST_TIMEOUT": 600.0,
            "LOG_LEVEL": "WARNING",
        }
        if nodes > 1:
            settings["CLUSTER_SECRET"] = SECRET
        (directory / f"{self.module}.py").write_text(
            "".join(f"{k} = {v!r}\n" for k, v in settings.items())
        )
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(directory)]))
        self.procs = {
            node_id: subprocess.Popen(
                [sys.executable, __file__, "--serve", self.module, node_id],
                env=env,
                cwd=directory,
            )
            for node_id in ids
        }

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
        if self.schemas:
            self._postgres("DROP SCHEMA IF EXISTS")


def one_run(args: argparse.Namespace, window: int, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="agree-bench-") as tmp:
        cluster = Cluster(Path(tmp), args.nodes, args.database)
        try:
            leader = cluster.wait_leader()
            via = leader if args.via == "leader" else next(i for i in cluster.urls if i != leader)
            url = cluster.urls[via] + "/bench/run"
            payload = {"window": 1, "n": 100, "payload": args.payload}
            request("POST", url, payload)  # warm-up
            seq = request("POST", url, {**payload, "n": min(n, 500)})[1]
            cpu_before = cluster.cpu()
            status, result = request("POST", url, {**payload, "window": window, "n": n})
            cpu = cluster.cpu() - cpu_before
            if status != 200:
                raise SystemExit(f"bench run failed: {result}")
        finally:
            cluster.close()
    return {
        "writes_per_s": result["n"] / result["seconds"],
        "seq_p50_ms": seq["p50_ms"],
        "seq_p99_ms": seq["p99_ms"],
        "cpu_us_per_command": cpu / result["n"] * 1e6,
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
    }


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
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    if (args.window is None) != (args.n is None):
        parser.error("--window and --n go together")
    table = ((args.window, args.n),) if args.window is not None else TABLE
    print(
        f"{args.nodes} node processes, {args.database}, via {args.via}, "
        f"{args.payload}-byte values; medians of {args.runs} runs"
    )
    print(
        f"{'W':>6} {'N':>7} {'writes/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'seq p50':>8} {'seq p99':>8} {'CPU us/cmd':>11}"
    )
    figures: dict[str, float] = {}
    for window, n in table:
        runs = [one_run(args, window, n) for _ in range(args.runs)]
        figures = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(
            f"{window:>6} {n:>7} {figures['writes_per_s']:>10.0f} {figures['p50_ms']:>8.2f} "
            f"{figures['p99_ms']:>8.2f} {figures['seq_p50_ms']:>8.2f} "
            f"{figures['seq_p99_ms']:>8.2f} {figures['cpu_us_per_command']:>11.0f}",
            flush=True,
        )
    if args.json:
        keys = ("writes_per_s", "seq_p50_ms", "seq_p99_ms", "cpu_us_per_command")
        Path(args.json).write_text(json.dumps({k: figures[k] for k in keys}, indent=2) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
