"""A simulated node's durable storage: what survives a crash.

Owns: the persisted hard state, the last snapshot, and the log after it, and
how a Ready's persist step (Ready docstring, step 1) and a compaction change
them.  It refuses writes that would leave the log non-contiguous, since a real
store would be corrupt after them; the simulator reports such a refusal as a
violation of the core's contract.
"""

from __future__ import annotations

from agree.raft.entries import Entry, HardState, PersistedState, Snapshot


class StoreError(Exception):
    """The core asked for a write no storage could carry out consistently."""


class DurableStore:
    """Invariant: ``log[k].index == snap_index + 1 + k``."""

    __slots__ = ("hard", "log", "snapshot")

    def __init__(self) -> None:
        self.hard = HardState()
        self.snapshot: Snapshot | None = None
        self.log: list[Entry] = []

    @property
    def snap_index(self) -> int:
        return self.snapshot.meta.index if self.snapshot is not None else 0

    @property
    def snap_term(self) -> int:
        return self.snapshot.meta.term if self.snapshot is not None else 0

    @property
    def last_index(self) -> int:
        return self.snap_index + len(self.log)

    def entry(self, index: int) -> Entry | None:
        """The stored entry at ``index``; None if compacted away or beyond the end."""
        k = index - self.snap_index - 1
        if 0 <= k < len(self.log):
            return self.log[k]
        return None

    def term_at(self, index: int) -> int | None:
        if index == self.snap_index:
            return self.snap_term
        e = self.entry(index)
        return e.term if e is not None else None

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """A snapshot received from a leader: it replaces the whole stored log."""
        self.snapshot = snapshot
        self.log = []

    def append(self, entries: tuple[Entry, ...]) -> None:
        """Store ``entries``, replacing any stored entries from ``entries[0].index`` on."""
        if not entries:
            return
        first = entries[0].index
        if first <= self.snap_index:
            raise StoreError(
                f"entries from {first} overlap the snapshot at {self.snap_index}"
            )
        if first > self.last_index + 1:
            raise StoreError(f"entries from {first} leave a gap after {self.last_index}")
        for k in range(1, len(entries)):
            if entries[k].index != first + k:
                raise StoreError(f"entries handed to storage are not contiguous at {first + k}")
        del self.log[first - self.snap_index - 1 :]
        self.log.extend(entries)

    def compact(self, snapshot: Snapshot) -> None:
        """The host's own snapshot at an applied index: forget the entries it covers."""
        index = snapshot.meta.index
        if index < self.snap_index:
            raise StoreError(f"compaction to {index} behind the stored snapshot")
        if index > self.last_index:
            raise StoreError(f"compaction to {index} beyond the stored log ({self.last_index})")
        keep = self.log[index - self.snap_index :]
        self.snapshot = snapshot
        self.log = keep

    def load(self) -> PersistedState:
        return PersistedState(hard_state=self.hard, snapshot=self.snapshot, entries=tuple(self.log))
