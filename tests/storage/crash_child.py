"""The writer process of test_crash.py, and the workload both processes replay.

:func:`main` (run in a forked process by the test, or standalone as
``python crash_child.py URL SEED START``) opens the store (which holds the state after START calls
of the workload, as the parent has checked), copies it into an in-memory model, prints
``ready``, then performs calls START, START+1, ... on the store forever, printing the number of
calls done after each one returns — i.e. after each one is durable.  The parent kills it at random.

The workload is a pure function of (seed, call number, model state): batches of entries with a
hard state, conflicting suffixes rewritten under a new term, snapshots installed from a
"leader" and compactions, so every kind of transaction is interrupted sooner or later.
"""

from __future__ import annotations

import random
import sys
from typing import Any

from agree.raft.entries import ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMeta
from agree.storage import LogStore, MemoryStore, SqlStore

CONF = ConfState(voters=frozenset({"n1", "n2", "n3"}))


def next_call(seed: int, number: int, model: MemoryStore) -> tuple[str, dict[str, Any]]:
    rng = random.Random(seed * 1_000_003 + number)
    state = model.load()
    last = model.last_index()
    base = state.snapshot.meta.index if state.snapshot is not None else 0
    term = state.hard_state.term + (1 if rng.random() < 0.1 else 0) or 1
    hard = HardState(term=term, vote=rng.choice(["n1", "n2", "n3", None]), commit=number)

    def batch(first: int, count: int) -> list[Entry]:
        return [
            Entry(
                term=term,
                index=first + i,
                type=EntryType.NORMAL if rng.random() < 0.95 else EntryType.NOOP,
                data=rng.randbytes(rng.choice([0, 16, 64, 300])),
            )
            for i in range(count)
        ]

    roll = rng.random()
    if roll < 0.08 and last > base:
        size = 1_500_000 if rng.random() < 0.1 else rng.randint(0, 200_000)
        meta = SnapshotMeta(index=rng.randint(base + 1, last), term=term, conf=CONF)
        return "compact", {"snapshot": Snapshot(meta=meta, data=rng.randbytes(size))}
    if roll < 0.12:
        at = last + rng.randint(0, 3)
        installed = Snapshot(
            meta=SnapshotMeta(index=at, term=term, conf=CONF),
            data=rng.randbytes(rng.randint(0, 100_000)),
        )
        return "save", {
            "hard_state": hard,
            "entries": batch(at + 1, rng.randint(0, 5)),
            "snapshot": installed,
        }
    if roll < 0.25:
        first = rng.randint(max(base + 1, last - 10), last + 1)
        return "save", {"hard_state": hard, "entries": batch(first, rng.randint(1, 10))}
    if roll < 0.3:
        return "save", {"hard_state": hard, "entries": []}
    return "save", {
        "hard_state": hard if rng.random() < 0.7 else None,
        "entries": batch(last + 1, rng.randint(1, 40)),
    }


def apply(store: LogStore, call: tuple[str, dict[str, Any]]) -> None:
    name, kwargs = call
    getattr(store, name)(**kwargs)


def advance(model: MemoryStore, seed: int, done: int, until: int) -> None:
    """Replay calls ``done`` .. ``until - 1`` on the model."""
    for number in range(done, until):
        apply(model, next_call(seed, number, model))


def main(url: str, seed: int, start: int) -> None:
    store = SqlStore(url, auto_migrate=True)
    # The parent checked that the database holds the state after ``start`` calls, so the model
    # starts from what is stored instead of replaying every call since the beginning.
    state = store.load()
    model = MemoryStore()
    model.save(hard_state=state.hard_state, entries=state.entries, snapshot=state.snapshot)
    print("ready", flush=True)
    number = start
    while True:
        call = next_call(seed, number, model)
        apply(model, call)
        apply(store, call)
        number += 1
        print(number, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
