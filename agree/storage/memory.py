"""The in-memory twin of the SQL store: same contract, no durability.

The one in-memory store: used by the node tests, by ``open_store("memory://")``, as the
model a real store is checked against, and as every simulated node's durable storage (the Raft
core's test harness and :mod:`agree.testing.sim`): what a ``save`` or ``compact`` stored is
exactly what survives a simulated crash.  The inspection methods at the end of
:class:`MemoryStore` (``hard_state``, ``term_at``, ``entry``, ...) serve the simulator's
invariant checks.  It keeps its own copies (payloads are frozen to ``bytes``) so that a
caller mutating a buffer after ``save`` cannot change what was "persisted".

:class:`MemoryStorage` is the twin of :class:`~agree.storage.sql.SqlStorage`: one store per group,
and :meth:`MemoryStorage.save_groups` applies several groups' writes all or nothing.  A
:class:`MemoryStore` made on its own is a single group with a storage of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agree.errors import StorageError
from agree.raft.entries import Entry, HardState, PersistedState, Snapshot
from agree.storage.base import GroupWrite, check_append, check_group_id


def _own(entry: Entry) -> Entry:
    if type(entry.data) is bytes:
        return entry
    return Entry(term=entry.term, index=entry.index, type=entry.type, data=bytes(entry.data))


def _own_snapshot(snapshot: Snapshot) -> Snapshot:
    if type(snapshot.data) is bytes:
        return snapshot
    return Snapshot(meta=snapshot.meta, data=bytes(snapshot.data))


@dataclass(frozen=True, slots=True)
class _Pending:
    """A validated save, not applied yet."""

    snapshot: Snapshot | None  # a snapshot received from a leader: it replaces the log
    entries: list[Entry]
    hard_state: HardState | None


class MemoryStore:
    """A :class:`~agree.storage.base.LogStore` held in process memory."""

    def __init__(self, *, lock: threading.RLock | None = None) -> None:
        # The contract allows calls from any one thread at a time; the groups of one
        # MemoryStorage share its lock so that save_groups sees and changes them all at once.
        self._lock = lock or threading.RLock()
        self._hard_state = HardState()
        self._snapshot: Snapshot | None = None
        # Invariant: _log[i].index == _snapshot_index() + 1 + i (contiguous after the snapshot).
        self._log: list[Entry] = []
        self._meta: dict[str, str] = {}
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed")

    def _snapshot_index(self) -> int:
        return self._snapshot.meta.index if self._snapshot is not None else 0

    def _last_index(self) -> int:
        return self._log[-1].index if self._log else self._snapshot_index()

    def _is_empty(self) -> bool:
        return (
            self._snapshot is None
            and not self._log
            and not self._meta
            and self._hard_state == HardState()
        )

    def load(self) -> PersistedState:
        with self._lock:
            self._check_open()
            return PersistedState(
                hard_state=self._hard_state, snapshot=self._snapshot, entries=tuple(self._log)
            )

    def _prepare(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> _Pending:
        """Validate against the would-be state, so that a refused save changes nothing."""
        self._check_open()
        own = _own_snapshot(snapshot) if snapshot is not None else None
        if entries:
            if own is not None:
                snapshot_index = last = own.meta.index
            else:
                snapshot_index, last = self._snapshot_index(), self._last_index()
            check_append(entries, snapshot_index=snapshot_index, last_index=last)
        return _Pending(snapshot=own, entries=[_own(e) for e in entries], hard_state=hard_state)

    def _apply(self, pending: _Pending) -> None:
        # In place: a save costs what it writes, not the length of the stored log.
        if pending.snapshot is not None:
            self._snapshot = pending.snapshot
            self._log = []
        if pending.entries:
            del self._log[pending.entries[0].index - self._snapshot_index() - 1 :]
            self._log.extend(pending.entries)
        if pending.hard_state is not None:
            self._hard_state = pending.hard_state

    def save(
        self,
        *,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None = None,
    ) -> None:
        with self._lock:
            self._apply(self._prepare(hard_state, entries, snapshot))

    def compact(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._check_open()
            if snapshot.meta.index <= self._snapshot_index():
                return
            self._log = [e for e in self._log if e.index > snapshot.meta.index]
            self._snapshot = _own_snapshot(snapshot)

    def entries(self, lo: int, hi: int) -> list[Entry]:
        with self._lock:
            self._check_open()
            base = self._snapshot_index() + 1
            start = max(lo - base, 0)
            stop = max(hi - base, 0)
            return self._log[start:stop]

    def last_index(self) -> int:
        with self._lock:
            self._check_open()
            return self._last_index()

    def snapshot(self) -> Snapshot | None:
        with self._lock:
            self._check_open()
            return self._snapshot

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            self._check_open()
            return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._check_open()
            self._meta[key] = value

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # -- inspection, for the simulator's checks (no counterpart in the LogStore protocol) ---------
    def hard_state(self) -> HardState:
        """The stored hard state."""
        with self._lock:
            return self._hard_state

    def snapshot_index(self) -> int:
        """The stored snapshot's index; 0 if there is none."""
        with self._lock:
            return self._snapshot_index()

    def entry(self, index: int) -> Entry | None:
        """The stored entry at ``index``; None if compacted away or beyond the end."""
        with self._lock:
            k = index - self._snapshot_index() - 1
            return self._log[k] if 0 <= k < len(self._log) else None

    def term_at(self, index: int) -> int | None:
        """The term of the stored entry (or snapshot) at ``index``; None if unknown."""
        with self._lock:
            snapshot = self._snapshot
            if index == self._snapshot_index():  # index 0 precedes every log: term 0
                return snapshot.meta.term if snapshot is not None else 0
            entry = self.entry(index)
            return entry.term if entry is not None else None


class MemoryStorage:
    """A :class:`~agree.storage.base.Storage` held in process memory: one store per group."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._groups: dict[str, MemoryStore] = {}
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the storage is closed")

    def __enter__(self) -> MemoryStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def group(self, group_id: str) -> MemoryStore:
        check_group_id(group_id)
        with self._lock:
            self._check_open()
            store = self._groups.get(group_id)
            if store is None:
                store = self._groups[group_id] = MemoryStore(lock=self._lock)
            return store

    def group_ids(self) -> list[str]:
        with self._lock:
            self._check_open()
            return sorted(gid for gid, store in self._groups.items() if not store._is_empty())

    def save_groups(self, writes: Mapping[str, GroupWrite]) -> None:
        with self._lock:
            self._check_open()
            # Every group is validated before any is changed: all or nothing.
            pending = [
                (self.group(gid), self.group(gid)._prepare(w.hard_state, w.entries, w.snapshot))
                for gid, w in writes.items()
            ]
            for store, change in pending:
                store._apply(change)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for store in self._groups.values():
                store.close()
