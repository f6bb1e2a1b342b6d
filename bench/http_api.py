"""Throughput and latency of the client HTTP API: N concurrent clients against a cluster of
separate node processes on loopback (started as in ``bench/throughput.py``).

Each of ``--clients`` asyncio tasks has its own :class:`agree.AsyncClient` (its own connection
pool and session) and issues, one after another, either 64-byte ``KVStore.set`` commands
(``--op write``) or linearizable ``KVStore.get`` reads (``--op read``) for ``--seconds``.  The
clients run in this one process, whose CPU is part of what is measured: the figures are a floor
for what separate client machines would see.

Prints ops/s and p50/p99 latency; ``--json FILE`` writes them.

Run by hand: ``.venv/bin/python bench/http_api.py [--clients 16] [--op write|read]
[--seconds 5] [--nodes 3] [--via leader|follower|all] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import KEY_SPACE, Cluster

import agree


async def drive(urls: list[str], clients: int, op: str, seconds: float, payload: int) -> Any:
    value = "v" * payload
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def one(worker: int) -> None:
        async with agree.AsyncClient(urls[worker % len(urls) :] + urls[: worker % len(urls)]) as c:
            kv = c.proxy("kv")
            i = worker
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                if op == "write":
                    await kv.set(f"k{i % KEY_SPACE:04d}", value)
                else:
                    await kv.get(f"k{i % KEY_SPACE:04d}")
                latencies.append((time.perf_counter() - started) * 1000)
                i += clients

    started = time.perf_counter()
    await asyncio.gather(*(one(w) for w in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "ops_per_s": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--op", choices=("write", "read"), default="write")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--via", choices=("leader", "follower", "all"), default="all")
    parser.add_argument("--payload", type=int, default=64)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agree-bench-") as tmp:
        cluster = Cluster(Path(tmp), args.nodes, "sqlite")
        try:
            leader = cluster.wait_leader()
            if args.via == "leader":
                urls = [cluster.urls[leader]]
            elif args.via == "follower":
                urls = [u for i, u in cluster.urls.items() if i != leader]
            else:
                urls = list(cluster.urls.values())
            if args.op == "read":  # something to read
                asyncio.run(drive(urls, 4, "write", 1.0, args.payload))
            figures = asyncio.run(drive(urls, args.clients, args.op, args.seconds, args.payload))
        finally:
            cluster.close()
    print(
        f"{args.nodes} nodes, {args.clients} HTTP clients via {args.via}, {args.op}: "
        f"{figures['ops_per_s']:.0f} ops/s, p50 {figures['p50_ms']:.2f} ms, "
        f"p99 {figures['p99_ms']:.2f} ms"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
