"""CPU per one-entry durable save: the Raft hot path of storage (one Ready, one entry + hard state).

    .venv/bin/python bench/save_cpu.py                       # SQLite and PostgreSQL
    .venv/bin/python bench/save_cpu.py --saves 3000 --json out.json

For each backend, ``SqlStore.save`` of one 64 B entry with a hard state, ``--saves`` times after
a warm-up, and the same statements issued by hand on a bare DBAPI connection (the floor: what
the database driver alone costs).  Prints the process CPU time (user + system, this process
only: PostgreSQL's server work is not in it; with SQLite's default ``synchronous=FULL`` it
includes the system time of an fsync per commit) and the wall time per save, the median of
``--runs`` runs, and writes them as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage import DEFAULT_POSTGRES, postgres_url, sqlite_url

from agree.raft.entries import Entry, HardState
from agree.storage import SqlStore
from agree.storage.blobs import entry_checksum, hard_state_checksum

PAYLOAD = os.urandom(64)
# (URL, saves, runs) -> (CPU µs, wall µs) per save, for each run
Runner = Callable[[str, int, int], list[tuple[float, float]]]


def measure(save: Callable[[int], None], first: int, count: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per save for saves ``first`` .. ``first + count - 1``."""
    cpu, wall = time.process_time(), time.perf_counter()
    for index in range(first, first + count):
        save(index)
    return (
        (time.process_time() - cpu) / count * 1e6,
        (time.perf_counter() - wall) / count * 1e6,
    )


def store_saves(url: str, count: int, runs: int) -> list[tuple[float, float]]:
    store = SqlStore(url, auto_migrate=True)

    def save(index: int) -> None:
        store.save(
            hard_state=HardState(term=1, vote="n1", commit=index - 1),
            entries=[Entry(term=1, index=index, data=PAYLOAD)],
        )

    try:
        next_index = store.last_index() + 1
        measure(save, next_index, 200)  # warm-up: statement caches, prepared statements
        next_index += 200
        results = []
        for _ in range(runs):
            results.append(measure(save, next_index, count))
            next_index += count
        return results
    finally:
        store.close()


def _row(index: int) -> tuple[int, int, int, int, bytes, int]:
    return (index, 1, 0, 1, PAYLOAD, entry_checksum(index, 1, 0, 1, PAYLOAD))


def sqlite_floor(url: str, count: int, runs: int) -> list[tuple[float, float]]:
    SqlStore(url, auto_migrate=True).close()
    path, _, query = url.removeprefix("sqlite:///").partition("?synchronous=")
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={query or 'FULL'}")
    connection.execute(
        "INSERT INTO agree_hard_state (group_id, term, vote, commit_index, checksum) "
        "VALUES ('default', 1, 'n1', 0, 0)"
    )

    def save(index: int) -> None:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO agree_log (group_id, log_index, term, entry_type, codec, data, "
            "checksum) VALUES ('default', ?, ?, ?, ?, ?, ?)",
            _row(index),
        )
        connection.execute(
            "UPDATE agree_hard_state SET term = ?, vote = ?, commit_index = ?, checksum = ? "
            "WHERE group_id = 'default'",
            (1, "n1", index - 1, hard_state_checksum(1, "n1", index - 1)),
        )
        connection.execute("COMMIT")

    try:
        return _floor_runs(save, count, runs)
    finally:
        connection.close()


def postgres_floor(url: str, count: int, runs: int) -> list[tuple[float, float]]:
    from sqlalchemy.engine import make_url

    SqlStore(url, auto_migrate=True).close()
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg.connect(conninfo)
    connection.execute(
        "INSERT INTO agree_hard_state (group_id, term, vote, commit_index, checksum) "
        "VALUES ('default', 1, 'n1', 0, 0)"
    )
    connection.commit()

    def save(index: int) -> None:
        connection.execute(
            "INSERT INTO agree_log (group_id, log_index, term, entry_type, codec, data, "
            "checksum) VALUES ('default', %s, %s, %s, %s, %s, %s)",
            _row(index),
        )
        connection.execute(
            "UPDATE agree_hard_state SET term = %s, vote = %s, commit_index = %s, "
            "checksum = %s WHERE group_id = 'default'",
            (1, "n1", index - 1, hard_state_checksum(1, "n1", index - 1)),
        )
        connection.commit()

    try:
        return _floor_runs(save, count, runs)
    finally:
        connection.close()


def _floor_runs(save: Callable[[int], None], count: int, runs: int) -> list[tuple[float, float]]:
    next_index = 1
    measure(save, next_index, 200)
    next_index += 200
    results = []
    for _ in range(runs):
        results.append(measure(save, next_index, count))
        next_index += count
    return results


@contextlib.contextmanager
def sqlite_with(synchronous: str) -> Iterator[str]:
    with sqlite_url() as url:
        yield url if synchronous == "FULL" else f"{url}?synchronous={synchronous}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--postgres", default=os.environ.get("AGREE_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--sqlite-synchronous",
        choices=["FULL", "NORMAL"],
        default="FULL",
        help="NORMAL leaves out the fsync of every commit (and its system CPU time), which "
        "shows the CPU of the code path alone",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the bare-DBAPI floor")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()

    backends: list[tuple[str, Callable[[], contextlib.AbstractContextManager[str]], Runner]] = [
        ("sqlite", lambda: sqlite_with(args.sqlite_synchronous), sqlite_floor)
    ]
    if not args.no_postgres:
        backends.append(("postgresql", lambda: postgres_url(args.postgres), postgres_floor))
    figures: dict[str, dict[str, float]] = {}
    print(f"{'backend':<12} {'path':<10} {'CPU µs/save':>12} {'wall µs/save':>13}   runs (CPU)")
    for name, make, floor in backends:
        paths: list[tuple[str, Runner]] = [("store", store_saves)]
        if not args.no_floor:
            paths.append(("dbapi", floor))
        for path, run in paths:
            with make() as url:
                results = run(url, args.saves, args.runs)
            cpu = statistics.median(r[0] for r in results)
            wall = statistics.median(r[1] for r in results)
            shown = ", ".join(f"{r[0]:.0f}" for r in results)
            print(f"{name:<12} {path:<10} {cpu:>12.1f} {wall:>13.1f}   [{shown}]")
            figures[f"{name}/{path}"] = {"cpu_us_per_save": cpu, "wall_us_per_save": wall}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
