"""Storage throughput and snapshot cost, on SQLite and PostgreSQL, with durable settings.

    .venv/bin/python bench/storage.py                 # everything (PostgreSQL if reachable)
    .venv/bin/python bench/storage.py --snapshot-mb 50 --runs 5
    .venv/bin/python bench/storage.py --profile       # where a 1000-entry save spends its time

Prints, per backend: entries/s for ``save`` batches of 1, 10, 100 and 1000 entries of 64 B and
4 KB (each batch one durable transaction, as the node's Ready loop issues them), then the time
to save and load a large snapshot and the peak Python memory (tracemalloc) of each, plus the
process's peak RSS.  Every figure is the median of ``--runs`` runs.  The PostgreSQL URL comes
from ``--postgres`` or AGREE_TEST_POSTGRES_URL; a scratch schema is created and dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator

import psycopg
from sqlalchemy.engine import make_url

from agree.raft.entries import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from agree.storage import SqlStore

BATCHES = (1, 10, 100, 1000)
PAYLOADS = (64, 4096)
# Enough batches per measurement to take a fraction of a second at the expected rate.
ENTRIES_PER_RUN = {1: 300, 10: 2_000, 100: 10_000, 1000: 20_000}
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="agree-bench-") as folder:
        yield f"sqlite:///{folder}/bench.db"


@contextlib.contextmanager
def postgres_url(base: str) -> Iterator[str]:
    schema = f"agree_bench_{uuid.uuid4().hex[:8]}"
    conninfo = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Appender:
    """Appends batches to a store the way a follower's Ready loop does."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.next_index = store.last_index() + 1

    def batches(self, size: int, payload: int, count: int) -> list[list[Entry]]:
        data = os.urandom(payload)
        out = []
        for _ in range(count):
            first = self.next_index
            out.append([Entry(term=1, index=first + i, data=data) for i in range(size)])
            self.next_index += size
        return out

    def run(self, batches: list[list[Entry]]) -> float:
        started = time.perf_counter()
        for batch in batches:
            hard = HardState(term=1, vote="n1", commit=batch[-1].index)
            self.store.save(hard_state=hard, entries=batch)
        return time.perf_counter() - started


def throughput(url: str, runs: int) -> None:
    store = SqlStore(url, auto_migrate=True)
    appender = Appender(store)
    print(f"{'batch':>6} {'payload':>8} {'entries/s (median)':>20}   runs")
    for payload in PAYLOADS:
        for size in BATCHES:
            count = max(ENTRIES_PER_RUN[size] // size, 3)
            if payload > 1024:
                count = max(count // 4, 3)
            rates = []
            for _ in range(runs):
                batches = appender.batches(size, payload, count)
                rates.append(size * count / appender.run(batches))
            shown = ", ".join(f"{r:,.0f}" for r in rates)
            print(f"{size:>6} {payload:>7}B {statistics.median(rates):>20,.0f}   [{shown}]")
        # Keep the table small between payload sizes: compaction is part of normal operation.
        store.compact(snapshot_at(appender.next_index - 1, b""))
    store.close()


def snapshot_at(index: int, data: bytes) -> Snapshot:
    meta = SnapshotMeta(index=index, term=1, conf=ConfState(voters=frozenset({"n1"})))
    return Snapshot(meta=meta, data=data)


def measured(fn: Callable[[], object]) -> tuple[float, int]:
    """Seconds and peak traced Python memory of one call."""
    tracemalloc.start()
    try:
        started = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return elapsed, peak


def snapshots(url: str, size_mb: int, runs: int) -> None:
    store = SqlStore(url, auto_migrate=True)
    data = os.urandom(size_mb << 20)
    index = store.last_index() + 1
    store.save(hard_state=HardState(term=1), entries=[Entry(term=1, index=index)])
    saves, loads = [], []
    for run in range(runs):
        snapshot = snapshot_at(index + run, data)
        if run:
            store.save(hard_state=None, entries=[Entry(term=1, index=index + run)])
        saves.append(measured(lambda snapshot=snapshot: store.compact(snapshot)))
        loads.append(measured(store.snapshot))
    mib = 1 << 20
    for name, results in (("save", saves), ("load", loads)):
        seconds = statistics.median(r[0] for r in results)
        peak = statistics.median(r[1] for r in results)
        print(
            f"snapshot {size_mb} MB {name}: {seconds:.2f} s ({size_mb / seconds:,.0f} MB/s), "
            f"peak Python memory {peak / mib:,.1f} MiB"
        )
    store.close()


def profile(url: str) -> None:
    store = SqlStore(url, auto_migrate=True)
    appender = Appender(store)
    batches = appender.batches(1000, 64, 30)
    profiler = cProfile.Profile()
    profiler.enable()
    appender.run(batches)
    profiler.disable()
    print("profile of 30 saves of 1000 x 64 B entries (cumulative time, top 25):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--snapshot-mb", type=int, default=200)
    parser.add_argument(
        "--postgres", default=os.environ.get("AGREE_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile SQLite batch saves only")
    args = parser.parse_args()

    if args.profile:
        with sqlite_url() as url:
            profile(url)
        return

    backends: list[tuple[str, Callable[[], contextlib.AbstractContextManager[str]]]] = [
        ("SQLite (WAL, synchronous=FULL)", sqlite_url)
    ]
    if not args.no_postgres:
        backends.append(
            ("PostgreSQL (psycopg 3, synchronous_commit=on)", lambda: postgres_url(args.postgres))
        )
    for title, make in backends:
        print(f"== {title}")
        try:
            with make() as url:
                throughput(url, args.runs)
                snapshots(url, args.snapshot_mb, args.runs)
        except psycopg.OperationalError as exc:
            print(f"   skipped: {exc}")
        print()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_rss:,.0f} MiB")


if __name__ == "__main__":
    main()
