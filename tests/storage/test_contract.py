"""The LogStore contract (agree.storage.base), run against MemoryStore, SQLite and PostgreSQL.

Raft needs of its storage exactly what Figure 2 and §5.3/§7 of the paper say: the hard state and
log survive, a conflicting suffix is replaced, a snapshot replaces the log prefix it covers.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from agree.errors import StorageError
from agree.raft.entries import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    PersistedState,
    Snapshot,
    SnapshotMeta,
)
from agree.storage import AsyncLogStore, LogStore, MemoryStore, SqlStore

CONF = ConfState(voters=frozenset({"n1", "n2", "n3"}), learners=frozenset({"n4"}))


def entries(lo: int, hi: int, term: int = 1, tag: bytes = b"") -> list[Entry]:
    return [Entry(term=term, index=i, data=tag + f"cmd{i}".encode()) for i in range(lo, hi)]


def snap(index: int, term: int = 1, data: bytes = b"state") -> Snapshot:
    return Snapshot(meta=SnapshotMeta(index=index, term=term, conf=CONF), data=data)


def test_a_fresh_store_is_empty(store: LogStore) -> None:
    assert isinstance(store, LogStore)
    assert store.load() == PersistedState()
    assert store.last_index() == 0
    assert store.snapshot() is None
    assert store.entries(0, 100) == []


def test_save_and_load_round_trip(store: LogStore) -> None:
    batch = [
        Entry(term=1, index=1, type=EntryType.NOOP),
        Entry(term=1, index=2, type=EntryType.NORMAL, data=bytes(range(256)) * 3),
        Entry(term=2, index=3, type=EntryType.CONF_CHANGE, data=b'{"type":"remove"}'),
        Entry(term=2, index=4, data=b""),
    ]
    store.save(hard_state=HardState(term=2, vote="n2", commit=3), entries=batch)
    state = store.load()
    assert state.hard_state == HardState(term=2, vote="n2", commit=3)
    assert state.entries == tuple(batch)
    assert all(type(e.data) is bytes and type(e.type) is EntryType for e in state.entries)
    assert state.snapshot is None
    assert store.last_index() == 4
    assert store.entries(2, 4) == batch[1:3]
    assert store.entries(4, 100) == batch[3:]
    assert store.entries(5, 9) == []


def test_batches_append(store: LogStore) -> None:
    store.save(hard_state=HardState(term=1), entries=entries(1, 4))
    store.save(hard_state=None, entries=entries(4, 6))
    assert store.load().entries == tuple(entries(1, 6))
    assert store.load().hard_state == HardState(term=1)


def test_a_conflicting_suffix_is_replaced(store: LogStore) -> None:
    # §5.3: "If an existing entry conflicts with a new one (same index but different terms),
    # delete the existing entry and all that follow it".
    store.save(hard_state=HardState(term=1), entries=entries(1, 11))
    store.save(hard_state=HardState(term=2), entries=entries(6, 8, term=2))
    state = store.load()
    assert state.entries == tuple(entries(1, 6) + entries(6, 8, term=2))
    assert store.last_index() == 7
    assert store.entries(7, 11) == entries(7, 8, term=2)


def test_rewriting_from_the_first_index(store: LogStore) -> None:
    store.save(hard_state=None, entries=entries(1, 5))
    store.save(hard_state=None, entries=entries(1, 2, term=3))
    assert store.load().entries == tuple(entries(1, 2, term=3))


def test_a_gap_is_refused_and_nothing_is_written(store: LogStore) -> None:
    store.save(hard_state=HardState(term=1), entries=entries(1, 4))
    with pytest.raises(StorageError, match="gap"):
        store.save(hard_state=HardState(term=9, vote="x"), entries=entries(6, 8))
    expected = PersistedState(hard_state=HardState(term=1), entries=tuple(entries(1, 4)))
    assert store.load() == expected


def test_the_first_entry_must_be_index_1(store: LogStore) -> None:
    with pytest.raises(StorageError, match="gap"):
        store.save(hard_state=None, entries=entries(2, 3))


def test_a_non_contiguous_batch_is_refused(store: LogStore) -> None:
    batch = [*entries(1, 3), *entries(4, 5)]
    with pytest.raises(StorageError, match="contiguous"):
        store.save(hard_state=HardState(term=5), entries=batch)
    assert store.load() == PersistedState()


def test_hard_state_alone(store: LogStore) -> None:
    store.save(hard_state=HardState(term=3, vote="n1", commit=0), entries=[])
    store.save(hard_state=HardState(term=4, vote=None, commit=0), entries=[])
    assert store.load().hard_state == HardState(term=4, vote=None, commit=0)
    store.save(hard_state=None, entries=entries(1, 2))
    assert store.load().hard_state == HardState(term=4, vote=None, commit=0)


def test_an_empty_vote_is_not_none(store: LogStore) -> None:
    store.save(hard_state=HardState(term=1, vote=""), entries=[])
    assert store.load().hard_state.vote == ""


def test_a_snapshot_from_the_leader_replaces_the_log(store: LogStore) -> None:
    store.save(hard_state=HardState(term=1), entries=entries(1, 21))
    store.save(
        hard_state=HardState(term=3, vote="n2", commit=15),
        entries=entries(16, 18, term=3),
        snapshot=snap(15, term=2, data=b"S" * 1000),
    )
    state = store.load()
    assert state.snapshot == snap(15, term=2, data=b"S" * 1000)
    assert state.entries == tuple(entries(16, 18, term=3))
    assert state.hard_state == HardState(term=3, vote="n2", commit=15)
    assert store.last_index() == 17
    assert store.snapshot() == snap(15, term=2, data=b"S" * 1000)


def test_a_snapshot_ahead_of_the_log_leaves_it_empty(store: LogStore) -> None:
    store.save(hard_state=None, entries=entries(1, 3))
    store.save(hard_state=None, entries=[], snapshot=snap(50))
    assert store.load().entries == ()
    assert store.last_index() == 50
    store.save(hard_state=None, entries=entries(51, 53))
    assert store.last_index() == 52


def test_entries_must_follow_an_installed_snapshot(store: LogStore) -> None:
    store.save(hard_state=HardState(term=1), entries=entries(1, 5))
    with pytest.raises(StorageError, match="gap"):
        store.save(hard_state=None, entries=entries(12, 13), snapshot=snap(10))
    # Atomic: the refused save did not install the snapshot either.
    assert store.snapshot() is None
    assert store.load().entries == tuple(entries(1, 5))


def test_entries_inside_the_snapshot_are_refused(store: LogStore) -> None:
    store.save(hard_state=None, entries=entries(1, 11))
    store.compact(snap(5))
    with pytest.raises(StorageError, match="inside the snapshot"):
        store.save(hard_state=None, entries=entries(4, 8, term=2))
    assert store.load().entries == tuple(entries(6, 11))


def test_compact_drops_the_covered_prefix(store: LogStore) -> None:
    store.save(hard_state=HardState(term=1, commit=10), entries=entries(1, 11))
    store.compact(snap(6, data=b"six"))
    state = store.load()
    assert state.snapshot == snap(6, data=b"six")
    assert state.entries == tuple(entries(7, 11))
    assert state.hard_state == HardState(term=1, commit=10)
    assert store.entries(1, 11) == entries(7, 11)
    assert store.last_index() == 10


def test_compact_ignores_an_older_or_equal_snapshot(store: LogStore) -> None:
    store.save(hard_state=None, entries=entries(1, 11))
    store.compact(snap(6, data=b"six"))
    store.compact(snap(4, data=b"four"))
    store.compact(snap(6, data=b"six again"))
    assert store.snapshot() == snap(6, data=b"six")
    assert store.load().entries == tuple(entries(7, 11))


def test_compact_replaces_an_older_snapshot(store: LogStore) -> None:
    store.save(hard_state=None, entries=entries(1, 11))
    store.compact(snap(3, data=b"x" * 5000))
    store.compact(snap(8, term=1, data=b"eight"))
    assert store.snapshot() == snap(8, data=b"eight")
    assert store.load().entries == tuple(entries(9, 11))


def test_compact_past_the_last_index(store: LogStore) -> None:
    store.save(hard_state=None, entries=entries(1, 4))
    store.compact(snap(9))
    assert store.load().entries == ()
    assert store.last_index() == 9


def test_an_empty_snapshot(store: LogStore) -> None:
    store.compact(snap(1, data=b""))
    assert store.snapshot() == snap(1, data=b"")


def test_a_snapshot_larger_than_a_chunk(store: LogStore) -> None:
    data = random.Random(7).randbytes((1 << 20) * 2 + 12345)
    store.save(hard_state=None, entries=entries(1, 3))
    store.compact(snap(2, data=data))
    loaded = store.load().snapshot
    assert loaded is not None and loaded.data == data
    store.compact(snap(3, data=b"small"))
    assert store.snapshot() == snap(3, data=b"small")


def test_meta(store: LogStore) -> None:
    assert store.get_meta("node_id") is None
    store.set_meta("node_id", "n1")
    store.set_meta("cluster", "c")
    store.set_meta("node_id", "n2")
    assert (store.get_meta("node_id"), store.get_meta("cluster")) == ("n2", "c")


def test_a_closed_store_refuses_calls(store: LogStore) -> None:
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.load()
    with pytest.raises(StorageError, match="closed"):
        store.save(hard_state=HardState(term=1), entries=[])


def test_everything_survives_reopening(db_url: str) -> None:
    first = SqlStore(db_url, auto_migrate=True)
    first.save(hard_state=HardState(term=2, vote="n3", commit=4), entries=entries(1, 9))
    first.compact(snap(3, data=b"three"))
    first.set_meta("node_id", "n3")
    first.close()
    again = SqlStore(db_url)
    try:
        state = again.load()
        assert state.hard_state == HardState(term=2, vote="n3", commit=4)
        assert state.snapshot == snap(3, data=b"three")
        assert state.entries == tuple(entries(4, 9))
        assert again.get_meta("node_id") == "n3"
    finally:
        again.close()


def _random_call(rng: random.Random, model: MemoryStore, step: int) -> tuple[str, dict[str, Any]]:
    """A valid store call for the model's current state (gaps are never generated)."""
    last = model.last_index()
    snapshot = model.snapshot()
    base = snapshot.meta.index if snapshot is not None else 0
    term = model.load().hard_state.term + rng.choice([0, 0, 0, 1])
    hard = HardState(term=term, vote=rng.choice([None, "n1", "n2"]), commit=step)
    roll = rng.random()
    if roll < 0.1:
        data = rng.randbytes(rng.choice([0, 10, 3000]))
        index = rng.randint(base, last + 3)
        return "compact", {"snapshot": snap(index, term=max(term, 1), data=data)}
    if roll < 0.15:
        index = last + rng.randint(0, 4)
        follow = entries(index + 1, index + 1 + rng.randint(0, 3), term=max(term, 1))
        installed = snap(index, term=max(term, 1), data=rng.randbytes(50))
        return "save", {"hard_state": hard, "entries": follow, "snapshot": installed}
    first = rng.randint(max(base + 1, last - 5), last + 1)
    batch = entries(first, first + rng.randint(0, 8), term=max(term, 1), tag=bytes([step % 256]))
    return "save", {"hard_state": rng.choice([hard, None]), "entries": batch}


def test_behaves_like_the_model_under_random_calls(store: LogStore) -> None:
    """Same calls, same state: the SQL stores match the in-memory twin step by step."""
    model = MemoryStore()
    rng = random.Random(20261126)
    for step in range(60):
        name, kwargs = _random_call(rng, model, step)
        getattr(model, name)(**kwargs)
        getattr(store, name)(**kwargs)
        assert store.load() == model.load(), f"step {step}: {name}"
        assert store.last_index() == model.last_index()
        lo, hi = rng.randint(0, model.last_index() + 1), rng.randint(0, model.last_index() + 2)
        assert store.entries(lo, hi) == model.entries(lo, hi)


async def test_the_async_wrapper_runs_every_call_on_one_thread(store: LogStore) -> None:
    threads: set[int] = set()
    original_save = store.save

    def recording_save(**kwargs: Any) -> None:
        threads.add(threading.get_ident())
        original_save(**kwargs)

    store.save = recording_save  # type: ignore[method-assign]
    wrapped = AsyncLogStore(store)
    for i in range(1, 6):
        await wrapped.save(hard_state=HardState(term=1, commit=i - 1), entries=entries(i, i + 1))
    await wrapped.compact(snap(2))
    await wrapped.set_meta("k", "v")
    assert await wrapped.get_meta("k") == "v"
    assert await wrapped.last_index() == 5
    assert await wrapped.entries(3, 5) == entries(3, 5)
    assert await wrapped.snapshot() == snap(2)
    state = await wrapped.load()
    assert state.entries == tuple(entries(3, 6))
    assert len(threads) == 1 and threading.get_ident() not in threads
    await wrapped.close()
    with pytest.raises(StorageError, match="closed"):
        await wrapped.load()
