"""The storage seam: the :class:`LogStore` and :class:`Storage` protocols and the rules every
implementation shares.

A node persists exactly what its Raft core hands it in a ``Ready`` — hard state, new entries,
maybe a snapshot received from the leader — in ONE atomic, durable transaction, before any
message that depends on it is sent (Raft paper Figure 2, "Persistent state on all servers ...
updated on stable storage before responding to RPCs").  The protocol is synchronous by design:
the node runtime calls it from one dedicated thread (see :mod:`agree.storage.threaded`).

A process opens one :class:`Storage` per database: it holds the database's exclusive claim and
its one engine, and hands out a :class:`LogStore` view per Raft group (every table is keyed by
group id).  :meth:`Storage.save_groups` commits what several groups produced in one loop turn
in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from agree.errors import CorruptionError, StorageError
from agree.raft.entries import Entry, HardState, PersistedState, Snapshot

# The group a single-group node uses (today's settings make exactly one).
DEFAULT_GROUP = "default"
# Group ids are stored in VARCHAR(255) columns.
MAX_GROUP_ID_LENGTH = 255


def check_group_id(group_id: str) -> str:
    """Refuse a group id the tables cannot hold."""
    if not isinstance(group_id, str) or not group_id or len(group_id) > MAX_GROUP_ID_LENGTH:
        raise ValueError(
            f"a group id is a non-empty string of at most {MAX_GROUP_ID_LENGTH} characters, "
            f"not {group_id!r}"
        )
    return group_id


@dataclass(frozen=True, slots=True)
class GroupWrite:
    """What one group's Ready asks to persist (the arguments of :meth:`LogStore.save`)."""

    hard_state: HardState | None = None
    entries: Sequence[Entry] = ()
    snapshot: Snapshot | None = None


@runtime_checkable
class LogStore(Protocol):
    """One Raft group's durable log, hard state and latest snapshot."""

    def load(self) -> PersistedState:
        """Hard state, the last snapshot (with its data) or None, and the log after it."""
        ...

    def save(
        self,
        *,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None = None,
    ) -> None:
        """Persist one Ready atomically and durably, in this order:

        1. ``snapshot`` (received from a leader, §7): becomes the current snapshot and ALL log
           entries are deleted — the snapshot replaces the log;
        2. ``entries``: stored entries with index >= ``entries[0].index`` are deleted (a
           conflicting suffix, §5.3), then ``entries`` are appended; they must be contiguous and
           follow the stored log or the snapshot without a gap, else :class:`StorageError`;
        3. ``hard_state``: replaces the stored one.

        Durable when it returns.
        """
        ...

    def compact(self, snapshot: Snapshot) -> None:
        """Store a snapshot the host took (replacing any older one) and delete the entries it
        covers (index <= ``snapshot.meta.index``), atomically.  A snapshot no newer than the
        stored one is ignored."""
        ...

    def entries(self, lo: int, hi: int) -> list[Entry]:
        """Stored entries with ``lo <= index < hi``, in index order."""
        ...

    def last_index(self) -> int:
        """The last log index; the snapshot's index if the log is empty; 0 if there is neither."""
        ...

    def snapshot(self) -> Snapshot | None:
        """The current snapshot with its data, or None."""
        ...

    def get_meta(self, key: str) -> str | None:
        """A small fact recorded about this store (e.g. the owning node's id), or None."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Record a small fact about this store, durably."""
        ...

    def close(self) -> None:
        """Release connections and files.  Further calls fail."""
        ...


@runtime_checkable
class Storage(Protocol):
    """One database, held exclusively by this process for as long as it is open."""

    def group(self, group_id: str) -> LogStore:
        """The store of one group (the same object for the same id); closing it leaves the
        storage and the other groups open."""
        ...

    def group_ids(self) -> list[str]:
        """The groups that have anything stored, sorted."""
        ...

    def save_groups(self, writes: Mapping[str, GroupWrite]) -> None:
        """Persist several groups' writes in ONE atomic, durable transaction: each as
        :meth:`LogStore.save` would, and if any is refused none is written."""
        ...

    def close(self) -> None:
        """Release the claim, connections and files; every group's store is closed too."""
        ...


def check_append(entries: Sequence[Entry], *, snapshot_index: int, last_index: int) -> None:
    """Validate ``entries`` for appending to a log whose snapshot ends at ``snapshot_index`` and
    whose last stored index is ``last_index``.  Raises :class:`StorageError` if the batch is not
    contiguous, starts after a gap, or reaches back into the snapshot (those entries are
    committed and compacted; rewriting them would be a Raft safety bug upstream)."""
    first = entries[0].index
    for offset, entry in enumerate(entries):
        if entry.index != first + offset:
            raise StorageError(
                f"entries to save are not contiguous: index {entry.index} at position {offset} "
                f"of a batch starting at {first}"
            )
    if first > last_index + 1:
        raise StorageError(
            f"entries to save start at index {first}, leaving a gap after the stored log "
            f"(last index {last_index})"
        )
    if first <= snapshot_index:
        raise StorageError(
            f"entries to save start at index {first}, inside the snapshot "
            f"(which covers up to index {snapshot_index})"
        )


def check_loaded_log(entries: Sequence[Entry], *, snapshot_index: int, where: str) -> None:
    """Structure check on a loaded log: contiguous and right after the snapshot."""
    expected = snapshot_index + 1
    for entry in entries:
        if entry.index != expected:
            raise CorruptionError(
                f"{where} index {entry.index}: log is not contiguous after the snapshot "
                f"(expected index {expected})"
            )
        expected += 1
