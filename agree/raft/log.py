"""The replicated log as one node holds it: the entries after its snapshot in a Python list
with an offset (O(1) lookup by index), and which of them storage already has."""

from __future__ import annotations

from collections.abc import Sequence

from agree.raft.entries import Entry, Snapshot


class RaftLog:
    """Entries ``offset+1 .. last_index``; the term at ``offset`` comes from the snapshot.

    Invariants: ``entries[i].index == offset + 1 + i``; ``offset <= stable <= last_index``
    where ``stable`` is the last index already handed to the host for persisting.
    """

    __slots__ = ("_entries", "_offset", "_snap_term", "snapshot", "stable")

    def __init__(self, snapshot: Snapshot | None = None, entries: Sequence[Entry] = ()) -> None:
        self.snapshot = snapshot  # the newest snapshot with data (sent to lagging followers)
        self._offset = snapshot.meta.index if snapshot is not None else 0
        self._snap_term = snapshot.meta.term if snapshot is not None else 0
        self._entries: list[Entry] = [e for e in entries if e.index > self._offset]
        if self._entries and self._entries[0].index != self._offset + 1:
            raise ValueError(
                f"the log after the snapshot at {self._offset} starts at "
                f"{self._entries[0].index}; it must be contiguous"
            )
        self.stable = self.last_index

    @property
    def offset(self) -> int:
        """The index of the snapshot the log starts after (0: none)."""
        return self._offset

    @property
    def first_index(self) -> int:
        return self._offset + 1

    @property
    def last_index(self) -> int:
        return self._offset + len(self._entries)

    @property
    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self._snap_term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``; None if compacted away or beyond the end."""
        i = index - self._offset
        if i == 0:
            return self._snap_term
        if 0 < i <= len(self._entries):
            return self._entries[i - 1].term
        return None

    def match_term(self, index: int, term: int) -> bool:
        return self.term_at(index) == term

    def entry(self, index: int) -> Entry:
        return self._entries[index - self._offset - 1]

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries ``lo <= index < hi``; ``lo`` must not be compacted."""
        off = self._offset
        return self._entries[lo - off - 1 : hi - off - 1]

    def batch(self, lo: int, max_bytes: int, hi: int | None = None) -> list[Entry]:
        """Entries from ``lo`` (up to ``hi`` inclusive, if given) holding at most ``max_bytes``
        of data, but at least one."""
        return self.sized_batch(lo, max_bytes, hi)[0]

    def sized_batch(
        self, lo: int, max_bytes: int, hi: int | None = None
    ) -> tuple[list[Entry], int]:
        """:meth:`batch` and the bytes of data it holds."""
        entries = self._entries
        start = lo - self._offset - 1
        end = start
        size = 0
        n = len(entries) if hi is None else hi - self._offset
        while end < n:
            grown = size + len(entries[end].data)
            if grown > max_bytes and end > start:
                break
            size = grown
            end += 1
        return entries[start:end], size

    def unstable(self) -> tuple[Entry, ...]:
        """Entries storage does not have yet."""
        return tuple(self._entries[self.stable - self._offset :])

    def append(self, entry: Entry) -> None:
        self._entries.append(entry)

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """The index of the first entry of ``entries`` that is new or differs from ours in
        term (0 if all match): only there may the log change (§5.3)."""
        for e in entries:
            if self.term_at(e.index) != e.term:
                return e.index
        return 0

    def truncate_and_append(self, entries: Sequence[Entry]) -> None:
        """Replace everything from ``entries[0].index`` on with ``entries``."""
        first = entries[0].index
        if first <= self._offset:
            raise ValueError(f"cannot overwrite compacted entry {first}")
        if first <= self.last_index:
            del self._entries[first - self._offset - 1 :]
            if self.stable >= first:
                self.stable = first - 1
        elif first != self.last_index + 1:
            raise ValueError(f"gap: appending {first} after {self.last_index}")
        self._entries.extend(entries)

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= ``index`` whose term is <= ``term``, with its term (0 when
        unknown).  Lets a rejection skip a whole conflicting term (end of §5.3)."""
        if index > self.last_index:
            index = self.last_index
        off = self._offset
        entries = self._entries
        while index > off:
            t = entries[index - off - 1].term
            if t <= term:
                return index, t
            index -= 1
        if index == off and self._snap_term <= term:
            return index, self._snap_term
        return index, 0

    def compact(self, snapshot: Snapshot) -> None:
        """Forget entries up to the snapshot's index; keep the snapshot to send it."""
        index = snapshot.meta.index
        del self._entries[: index - self._offset]
        self._offset = index
        self._snap_term = snapshot.meta.term
        self.snapshot = snapshot
        if self.stable < index:
            self.stable = index

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log by a snapshot received from the leader (§7)."""
        self._entries = []
        self._offset = snapshot.meta.index
        self._snap_term = snapshot.meta.term
        self.snapshot = snapshot
        self.stable = snapshot.meta.index
