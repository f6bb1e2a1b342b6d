"""Raft groups in one database: each group's log, hard state, snapshot and metadata are its own,
and one storage commits several groups' writes in one transaction (agree.storage.base.Storage)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

import pytest

from agree.errors import StorageError
from agree.raft.entries import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from agree.storage import (
    DEFAULT_GROUP,
    AsyncStorage,
    GroupWrite,
    MemoryStorage,
    SqlStorage,
    SqlStore,
    Storage,
)

CONF = ConfState(voters=frozenset({"n1"}))


def entries(lo: int, hi: int, term: int = 1, tag: bytes = b"") -> list[Entry]:
    return [Entry(term=term, index=i, data=tag + b"%d" % i) for i in range(lo, hi)]


def snap(index: int, data: bytes) -> Snapshot:
    return Snapshot(meta=SnapshotMeta(index=index, term=1, conf=CONF), data=data)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def reopen(request: pytest.FixtureRequest) -> Iterator[Callable[[], Storage]]:
    """Opens the storage; for SQL, closes the previous one first and opens the database anew."""
    if request.param == "memory":
        memory = MemoryStorage()
        yield lambda: memory
        memory.close()
        return
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    current: list[SqlStorage] = []

    def open_sql() -> Storage:
        for storage in current:
            storage.close()
        current[:] = [SqlStorage(url, auto_migrate=True)]
        return current[0]

    yield open_sql
    for storage in current:
        storage.close()


def test_two_groups_keep_separate_logs_hard_states_snapshots_and_meta(
    reopen: Callable[[], Storage],
) -> None:
    storage = reopen()
    a, b = storage.group("a"), storage.group("b")
    assert storage.group("a") is a
    a.save(hard_state=HardState(term=3, vote="n1", commit=2), entries=entries(1, 6, tag=b"a"))
    b.save(hard_state=HardState(term=9, vote="n2", commit=1), entries=entries(1, 3, tag=b"b"))
    a.compact(snap(3, b"A" * 2000))
    b.save(hard_state=None, entries=entries(2, 4, term=9, tag=b"b2"))  # b's suffix only
    a.set_meta("node_id", "na")
    b.set_meta("node_id", "nb")
    for again in (False, True):
        storage = reopen() if again else storage
        a, b = storage.group("a"), storage.group("b")
        state_a, state_b = a.load(), b.load()
        assert state_a.hard_state == HardState(term=3, vote="n1", commit=2)
        assert state_a.snapshot == snap(3, b"A" * 2000)
        assert state_a.entries == tuple(entries(4, 6, tag=b"a"))
        assert state_b.hard_state == HardState(term=9, vote="n2", commit=1)
        assert state_b.snapshot is None
        assert state_b.entries == tuple(entries(1, 2, tag=b"b") + entries(2, 4, term=9, tag=b"b2"))
        assert (a.last_index(), b.last_index()) == (5, 3)
        assert a.entries(1, 10) == entries(4, 6, tag=b"a")
        assert (a.get_meta("node_id"), b.get_meta("node_id")) == ("na", "nb")
        assert storage.group("c").load().entries == ()
        assert storage.group_ids() == ["a", "b"]


def test_save_groups_writes_every_group_in_one_transaction(reopen: Callable[[], Storage]) -> None:
    storage = reopen()
    storage.save_groups(
        {
            "a": GroupWrite(hard_state=HardState(term=1), entries=entries(1, 4)),
            "b": GroupWrite(hard_state=HardState(term=2), entries=entries(1, 2)),
        }
    )
    # One refused write refuses them all: a's batch is fine, b's leaves a gap.
    with pytest.raises(StorageError, match="gap"):
        storage.save_groups(
            {
                "a": GroupWrite(hard_state=HardState(term=5), entries=entries(4, 6)),
                "b": GroupWrite(entries=entries(5, 6)),
            }
        )
    storage = reopen()
    assert storage.group("a").load().entries == tuple(entries(1, 4))
    assert storage.group("a").load().hard_state == HardState(term=1)
    assert storage.group("b").load().entries == tuple(entries(1, 2))
    storage.save_groups(
        {
            "a": GroupWrite(entries=entries(2, 3, term=2), snapshot=None),
            "b": GroupWrite(snapshot=snap(10, b"b"), entries=entries(11, 12)),
        }
    )
    assert storage.group("a").load().entries == tuple(entries(1, 2) + entries(2, 3, term=2))
    assert storage.group("b").load().snapshot == snap(10, b"b")
    assert storage.group("b").last_index() == 11


def test_closing_a_group_leaves_the_storage_open(reopen: Callable[[], Storage]) -> None:
    storage = reopen()
    a, b = storage.group("a"), storage.group("b")
    a.close()
    with pytest.raises(StorageError, match="closed"):
        a.load()
    b.save(hard_state=HardState(term=1), entries=[])
    storage.close()
    with pytest.raises(StorageError, match="closed"):
        b.load()
    with pytest.raises(StorageError, match="closed"):
        storage.group("a")


@pytest.mark.parametrize("bad", ["", "x" * 256])
def test_a_group_id_the_tables_cannot_hold_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="group id"):
        MemoryStorage().group(bad)


def test_a_plain_store_is_the_default_group(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url, auto_migrate=True)
    store.save(hard_state=HardState(term=4), entries=entries(1, 3))
    store.close()
    with SqlStorage(sqlite_url) as storage:
        assert storage.group_ids() == [DEFAULT_GROUP]
        assert storage.group(DEFAULT_GROUP).load().entries == tuple(entries(1, 3))


async def test_the_async_storage_runs_groups_and_save_groups_on_one_thread(
    reopen: Callable[[], Storage],
) -> None:
    storage = reopen()
    threads: set[int] = set()
    original = storage.save_groups

    def recording(writes: Mapping[str, GroupWrite]) -> None:
        threads.add(threading.get_ident())
        original(writes)

    storage.save_groups = recording  # type: ignore[method-assign]
    wrapped = AsyncStorage(storage)
    a = await wrapped.group("a")
    assert await wrapped.group("a") is a
    await wrapped.save_groups(
        {
            "a": GroupWrite(hard_state=HardState(term=1), entries=entries(1, 3)),
            "b": GroupWrite(hard_state=HardState(term=2), entries=entries(1, 2)),
        }
    )
    await a.compact(snap(1, b"s"))
    assert await a.entries(1, 5) == entries(2, 3)
    b = await wrapped.group("b")
    assert (await b.load()).hard_state == HardState(term=2)
    assert await wrapped.group_ids() == ["a", "b"]
    assert len(threads) == 1 and threading.get_ident() not in threads
    await a.close()  # one group's store: the storage and the others stay open
    assert await b.last_index() == 1
    await wrapped.close()
    with pytest.raises(StorageError, match="closed"):
        await b.load()
    with pytest.raises(StorageError, match="closed"):
        await wrapped.save_groups({})
