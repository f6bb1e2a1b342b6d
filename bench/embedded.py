"""Throughput and latency of the node runtime: a 3-node cluster in one process.

Three real nodes (Raft cores, Ready loops, state-machine hosts) on durable SQLite files
(WAL, ``synchronous=FULL``) in a temporary directory, joined by the in-memory transport
(:class:`agree.testing.cluster.MemoryCluster`).  Every command is ``KVStore.set`` with a short
key and value, called through a node's proxy exactly as an application would.

Measured, each ``--runs`` times on a fresh cluster:

* committed commands/s with 1, 100 and 10,000 commands in flight (closed loop: that many asyncio
  tasks each awaiting one call after another), through the leader's proxy and through a
  follower's proxy (which forwards every command to the leader);
* p50/p99 latency of each call (the 1-in-flight rows are the one-at-a-time latency);
* storage transactions per node and entries per leader transaction, counted by wrapping the
  stores' ``save`` at runtime: with ``synchronous=FULL`` each transaction costs an fsync, so
  entries per transaction is what batching buys.

``--profile`` runs the 100-in-flight leader case once more under cProfile (the event-loop thread;
the storage threads only show as waiting there) and prints the top functions by cumulative and by
own time, and own time grouped by layer.

``--json FILE`` writes, for each configuration, ``commands_per_s``, ``p50_ms``, ``p99_ms`` and
``cpu_us_per_command`` (process CPU time, all three nodes together, over committed commands):
medians across the runs.

Run by hand: ``.venv/bin/python bench/embedded.py [--runs 3] [--profile] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agree.runtime.node import Node
from agree.testing.cluster import MemoryCluster
from agree.testing.models import KVStore
from agree.wire.codec import CommandRecord, encode_command

OBJECTS = {"kv": KVStore}
KEY_SPACE = 1024  # keys are reused so that state (and snapshots) stay small and constant
IN_FLIGHT = (1, 100, 10_000)
PROFILE_IN_FLIGHT = 100

# Production Raft timings (agree.conf.defaults), not MemoryCluster's fast test timings; a
# generous timeout because with 10,000 calls queued each one waits behind the others.
CLUSTER_SETTINGS: dict[str, Any] = {
    "TICK_INTERVAL": 0.05,
    "ELECTION_TICKS": 10,
    "HEARTBEAT_TICKS": 1,
    "REQUEST_TIMEOUT": 120.0,
}


def key(i: int) -> str:
    return f"k{i % KEY_SPACE:04d}"


def encoded_size(value: str) -> int:
    """Bytes of the log entry a ``set(key, value)`` becomes, with a realistic envelope (32-hex
    client id, 19-digit nanosecond timestamp, six-digit seq and ack)."""
    record = CommandRecord(
        object="kv",
        method="set",
        args=[key(0), value],
        kwargs={},
        client_id=uuid.uuid4().hex,
        seq=123_456,
        timestamp_ns=time.time_ns(),
        ack=123_400,
    )
    return len(encode_command(record))


def value_for(target: int, minimum: int) -> str:
    """A value of at least ``minimum`` characters, longer if that brings the entry to
    ``target`` bytes."""
    floor = encoded_size("")
    return "v" * max(minimum, target - floor)


# -- storage accounting -------------------------------------------------------------------------


@dataclass
class StoreCounter:
    """Transactions one node's store made; updated only on that store's worker thread."""

    transactions: int = 0  # save() calls that wrote something (each one commit, one fsync)
    entries: int = 0
    seconds: float = 0.0  # time inside save(), on the storage thread
    compactions: int = 0

    def reset(self) -> None:
        self.transactions = self.entries = self.compactions = 0
        self.seconds = 0.0


def count_storage(node: Node) -> StoreCounter:
    """Wrap the node's synchronous storage so that every transaction is counted and timed (one
    ``save_groups`` commits what every group of the node wrote in one loop turn)."""
    counter = StoreCounter()
    assert node._storage is not None and node._store is not None
    storage: Any = node._storage.storage
    store: Any = node._store.store
    save_groups, compact = storage.save_groups, store.compact

    def counted_save_groups(writes: Any) -> None:
        started = time.perf_counter()
        save_groups(writes)
        if writes:
            counter.seconds += time.perf_counter() - started
            counter.transactions += 1
            counter.entries += sum(len(w.entries) for w in writes.values())

    def counted_compact(snapshot: Any) -> None:
        compact(snapshot)
        counter.compactions += 1

    # The storage thread looks the methods up at each call, so instance attributes win.
    storage.save_groups = counted_save_groups
    store.compact = counted_compact
    return counter


# -- one measurement ----------------------------------------------------------------------------


@dataclass
class Sample:
    ops: int
    seconds: float
    latencies: list[float]
    leader_txns: int
    leader_entries: int
    leader_save_s: float
    follower_txns: int
    snapshots: int
    leader_changed: bool
    cpu_seconds: float  # process CPU (every thread: event loop and storage) during the sample

    @property
    def cpu_us_per_command(self) -> float:
        return 1e6 * self.cpu_seconds / self.ops if self.ops else 0.0

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def closed_loop(
    proxy: Any, in_flight: int, value: str, min_seconds: float, min_commands: int
) -> tuple[int, float, list[float]]:
    """``in_flight`` tasks each issuing one ``set`` after another until both minimums are met;
    returns (completed calls, seconds from the first call to the last answer, latencies)."""
    latencies: list[float] = []
    done = 0
    stop = False
    clock = time.perf_counter
    start = clock()

    async def worker(first: int) -> None:
        nonlocal done, stop
        i = first
        while not stop:
            t0 = clock()
            await proxy.set(key(i), value)
            t1 = clock()
            latencies.append(t1 - t0)
            done += 1
            if done >= min_commands and t1 - start >= min_seconds:
                stop = True
            i += in_flight

    await asyncio.gather(*(worker(w) for w in range(in_flight)))
    return done, clock() - start, latencies


class Bench:
    def __init__(self, cluster: MemoryCluster, value: str) -> None:
        self.cluster = cluster
        self.value = value
        self.counters = {node_id: count_storage(n) for node_id, n in cluster.nodes.items()}

    async def leader(self) -> Node:
        return await self.cluster.wait_leader(30)

    async def follower(self) -> Node:
        leader = await self.leader()
        return next(n for n in self.cluster.nodes.values() if n.id != leader.id)

    async def settle(self) -> None:
        """Let every replica catch up so that one case's tail does not bill the next."""
        leader = await self.leader()
        await self.cluster.wait_applied(leader.host.applied_index, 60)

    async def measure(
        self,
        via: str,
        in_flight: int,
        min_seconds: float,
        min_commands: int,
        profiler: cProfile.Profile | None = None,
    ) -> Sample:
        await self.settle()
        leader = await self.leader()
        node = leader if via == "leader" else await self.follower()
        proxy = node.proxy("kv")
        for counter in self.counters.values():
            counter.reset()
        if profiler is not None:
            profiler.enable()
        cpu_start = time.process_time()
        try:
            ops, seconds, latencies = await closed_loop(
                proxy, in_flight, self.value, min_seconds, min_commands
            )
        finally:
            cpu_seconds = time.process_time() - cpu_start
            if profiler is not None:
                profiler.disable()
        now_leader = self.cluster.leader()
        lc = self.counters[leader.id]
        return Sample(
            ops=ops,
            seconds=seconds,
            latencies=latencies,
            leader_txns=lc.transactions,
            leader_entries=lc.entries,
            leader_save_s=lc.seconds,
            follower_txns=sum(c.transactions for i, c in self.counters.items() if i != leader.id),
            snapshots=sum(c.compactions for c in self.counters.values()),
            leader_changed=now_leader is None or now_leader.id != leader.id,
            cpu_seconds=cpu_seconds,
        )


# -- reporting ----------------------------------------------------------------------------------


@dataclass
class Case:
    via: str
    in_flight: int
    samples: list[Sample] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.via:<8} {self.in_flight:>6}"


def case_json(case: Case) -> dict[str, Any]:
    """One configuration's medians across runs, as ``--json`` writes them."""
    ss = case.samples
    return {
        "via": case.via,
        "in_flight": case.in_flight,
        "runs": len(ss),
        "commands_per_s": statistics.median(s.rate for s in ss),
        "p50_ms": statistics.median(1000 * s.percentile(0.5) for s in ss),
        "p99_ms": statistics.median(1000 * s.percentile(0.99) for s in ss),
        "cpu_us_per_command": statistics.median(s.cpu_us_per_command for s in ss),
        "leader_entries_per_txn": statistics.median(
            s.leader_entries / s.leader_txns if s.leader_txns else 0.0 for s in ss
        ),
    }


def median_spread(values: Sequence[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def fmt_rate(values: Sequence[float]) -> str:
    med, lo, hi = median_spread(values)
    return f"{med:>8,.0f} [{lo:,.0f}-{hi:,.0f}]"


def fmt_ms(values: Sequence[float]) -> str:
    med, lo, hi = median_spread([v * 1000 for v in values])
    if med >= 1000:
        return f"{med:>8,.0f} [{lo:,.0f}-{hi:,.0f}]"
    return f"{med:>8.2f} [{lo:.2f}-{hi:.2f}]"


def print_sample(case: Case, run: int, s: Sample) -> None:
    per_txn = s.leader_entries / s.leader_txns if s.leader_txns else 0.0
    save_ms = 1000 * s.leader_save_s / s.leader_txns if s.leader_txns else 0.0
    print(
        f"  run {run} {case.label}: {s.ops:>7,} cmds in {s.seconds:5.2f} s = {s.rate:>8,.0f}/s"
        f"  p50 {1000 * s.percentile(0.5):8.2f} ms  p99 {1000 * s.percentile(0.99):8.2f} ms"
        f"  leader txns {s.leader_txns:>6,} ({per_txn:6.1f} entries/txn, {save_ms:5.2f} ms/txn)"
        f"  follower txns {s.follower_txns:>6,}  snapshots {s.snapshots}"
        f"  cpu {s.cpu_us_per_command:6.1f} us/cmd"
        + ("  LEADER CHANGED" if s.leader_changed else ""),
        flush=True,
    )


def print_table(cases: Sequence[Case], runs: int) -> None:
    print()
    print(f"Median of {runs} run(s), [min-max] across runs")
    header = (
        f"{'via':<8} {'flight':>6} | {'commands/s':>24} | {'p50 ms':>24} | {'p99 ms':>24} |"
        f" {'entries/txn':>11} | {'ms/txn':>6} | {'txns/s':>6} | {'cpu us/cmd':>10}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        ss = case.samples
        per_txn = statistics.median(
            s.leader_entries / s.leader_txns if s.leader_txns else 0.0 for s in ss
        )
        save_ms = statistics.median(
            1000 * s.leader_save_s / s.leader_txns if s.leader_txns else 0.0 for s in ss
        )
        txn_rate = statistics.median(s.leader_txns / s.seconds for s in ss)
        cpu = statistics.median(s.cpu_us_per_command for s in ss)
        print(
            f"{case.label} | {fmt_rate([s.rate for s in ss]):>24} |"
            f" {fmt_ms([s.percentile(0.5) for s in ss]):>24} |"
            f" {fmt_ms([s.percentile(0.99) for s in ss]):>24} |"
            f" {per_txn:>11.1f} | {save_ms:>6.2f} | {txn_rate:>6.1f} | {cpu:>10.1f}"
        )
    print(
        "entries/txn, ms/txn (time inside one save transaction, fsync included) and txns/s are"
        " the leader's; each follower makes about as many transactions (per-run lines above)."
    )
    print(
        "cpu us/cmd is the process's CPU time (all three nodes, the callers and the storage"
        " threads) divided by the commands committed in the sample."
    )
    changed = sum(s.leader_changed for case in cases for s in case.samples)
    if changed:
        print(f"leadership changed during {changed} measurement(s) (marked above)")


# -- profile ------------------------------------------------------------------------------------

LAYERS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("agree.raft (core)", lambda f: "/agree/raft/" in f),
    ("agree.runtime.driver", lambda f: f.endswith("/agree/runtime/driver.py")),
    (
        "agree.runtime.node + proxy + calls",
        lambda f: f.endswith(("/agree/runtime/node.py", "/agree/runtime/proxy.py")),
    ),
    (
        "agree.replica.host + sessions",
        lambda f: f.endswith(("/agree/replica/host.py", "/agree/replica/sessions.py")),
    ),
    ("agree.objects.schema", lambda f: f.endswith("/agree/objects/schema.py")),
    ("agree.wire.codec + json", lambda f: f.endswith("/agree/wire/codec.py") or "/json/" in f),
    ("agree.storage (loop side)", lambda f: "/agree/storage/" in f),
    ("agree.transport", lambda f: "/agree/transport/" in f),
    ("agree (other)", lambda f: "/agree/" in f),
    ("pydantic", lambda f: "pydantic" in f),
    ("sqlalchemy", lambda f: "sqlalchemy" in f),
    ("asyncio", lambda f: "/asyncio/" in f),
    ("bench", lambda f: f.endswith("bench/embedded.py")),
)


def layer_of(filename: str, funcname: str) -> str:
    filename = filename.replace(os.sep, "/")
    for name, match in LAYERS:
        if match(filename):
            return name
    if filename == "~":  # a builtin: name it by what it is
        if "epoll" in funcname or "select" in funcname:
            return "waiting (epoll: storage fsync, timers)"
        if "pydantic" in funcname or "SchemaValidator" in funcname or "Serializer" in funcname:
            return "pydantic"
        if "json" in funcname:
            return "agree.wire.codec + json"
        return "builtins (other)"
    return "other"


def print_profile(
    profiler: cProfile.Profile, sample: Sample, in_flight: int, top: int = 25
) -> None:
    print()
    print(
        f"cProfile of leader / {in_flight} in flight: {sample.ops:,} commands in"
        f" {sample.seconds:.2f} s ({sample.rate:,.0f}/s under the profiler)"
    )
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(top)
        print(f"\n--- top {top} by {order} ---")
        text = out.getvalue()
        print(text[text.index("   ncalls") :] if "   ncalls" in text else text)
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    by_layer: dict[str, float] = {}
    for (filename, _line, funcname), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        layer = layer_of(filename, funcname)
        by_layer[layer] = by_layer.get(layer, 0.0) + tottime
    total = sum(by_layer.values())
    print("--- own time by layer (event-loop thread) ---")
    for layer, seconds in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        print(
            f"{layer:<42} {seconds:8.3f} s {100 * seconds / total:5.1f} %"
            f"  {1e6 * seconds / sample.ops:7.1f} us/cmd"
        )
    print(f"{'total':<42} {total:8.3f} s")


# -- main ---------------------------------------------------------------------------------------


async def one_run(
    run: int, cases: Sequence[Case], args: argparse.Namespace, value: str
) -> None:
    with tempfile.TemporaryDirectory(prefix="agree-bench-") as tmp:
        async with MemoryCluster(Path(tmp), OBJECTS, seed=run, **CLUSTER_SETTINGS) as cluster:
            bench = Bench(cluster, value)
            await (await bench.leader()).wait_ready(30)
            # Warm-up: lazy imports, schema caches, SQLite pages and WAL file growth.
            await bench.measure("leader", 100, 0.5, 2_000)
            for case in cases:
                min_commands = max(args.min_commands, 3 * case.in_flight)
                sample = await bench.measure(
                    case.via, case.in_flight, args.seconds, min_commands
                )
                case.samples.append(sample)
                print_sample(case, run, sample)


async def profile_run(args: argparse.Namespace, value: str) -> None:
    with tempfile.TemporaryDirectory(prefix="agree-bench-") as tmp:
        async with MemoryCluster(Path(tmp), OBJECTS, **CLUSTER_SETTINGS) as cluster:
            bench = Bench(cluster, value)
            await (await bench.leader()).wait_ready(30)
            await bench.measure("leader", 100, 0.5, 2_000)
            profiler = cProfile.Profile()
            in_flight = args.profile_in_flight
            min_commands = max(args.min_commands, 3 * in_flight)
            sample = await bench.measure(
                "leader", in_flight, args.seconds, min_commands, profiler
            )
            print_profile(profiler, sample, in_flight)
            if args.profile_out:
                profiler.dump_stats(args.profile_out)
                print(f"profile written to {args.profile_out} (python -m pstats)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh clusters per case (3)")
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum seconds per case")
    parser.add_argument(
        "--min-commands", type=int, default=2_000, help="minimum commands per case (and at"
        " least three times the number in flight)"
    )
    parser.add_argument(
        "--payload", type=int, default=64, help="target size of the encoded command in bytes"
    )
    parser.add_argument(
        "--via", nargs="+", choices=("leader", "follower"), default=["leader", "follower"],
        help="whose proxy the calls go through",
    )
    parser.add_argument("--profile", action="store_true", help="also profile leader/100")
    parser.add_argument(
        "--profile-in-flight", type=int, default=PROFILE_IN_FLIGHT, help="in flight when profiling"
    )
    parser.add_argument("--profile-out", help="also write the raw cProfile stats to this file")
    parser.add_argument(
        "--in-flight", type=int, nargs="+", default=list(IN_FLIGHT), help="1 100 10000"
    )
    parser.add_argument("--json", metavar="FILE", help="also write each configuration's medians")
    args = parser.parse_args(argv)

    value = value_for(args.payload, minimum=8)
    size = encoded_size(value)
    floor = encoded_size("")
    print(
        f"agree embedded bench: 3 nodes, SQLite WAL synchronous=FULL, in-memory transport;"
        f" Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(f"settings: {CLUSTER_SETTINGS}")
    print(
        "all three nodes and the callers share one event loop (one core, one GIL): commands/s"
        " is bounded by the CPU of three replicas together, fsyncs run on one thread per node"
    )
    print(
        f"command: kv.set({key(0)!r}, {len(value)}-char value) -> encoded CommandRecord {size} B"
        f" (target {args.payload} B; the envelope alone, with key {key(0)!r} and an empty value,"
        f" is {floor} B)"
    )
    cases = [Case(via, n) for via in args.via for n in args.in_flight]
    for run in range(1, args.runs + 1):
        asyncio.run(one_run(run, cases, args, value))
    if args.runs > 0:
        print_table(cases, args.runs)
        if args.json:
            report = {
                "bench": "embedded",
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "settings": CLUSTER_SETTINGS,
                "payload_bytes": size,
                "configurations": [case_json(case) for case in cases],
            }
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
            print(f"figures written to {args.json}")
    if args.profile:
        if args.runs == 0:
            print("(no timed runs: --runs 0)")
        asyncio.run(profile_run(args, value))


if __name__ == "__main__":
    main()
