"""The follower's side of a chunked InstallSnapshot (§7, Figure 13): chunks are accepted
only in order, and every chunk is answered with the offset wanted next, so the leader
resumes after a lost, duplicated or reordered chunk without restarting the transfer."""

from __future__ import annotations

from agree.raft.messages import InstallSnapshot


class SnapshotAssembler:
    """Accumulates one snapshot, identified by its last included (index, term)."""

    __slots__ = ("_buf", "_key")

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._buf = bytearray()

    def reset(self) -> None:
        self._key = None
        self._buf = bytearray()

    def offer(self, m: InstallSnapshot) -> tuple[int, bytes | None]:
        """Take a chunk: (the offset wanted next, the whole data once the last chunk is in)."""
        key = (m.last_included_index, m.last_included_term)
        if self._key != key:
            if m.offset != 0:
                return 0, None  # a chunk of a transfer we are not (or no longer) part of
            self._key = key
            self._buf = bytearray()
        buf = self._buf
        if m.offset == len(buf):
            buf += m.data
            if m.done:
                data = bytes(buf)
                self.reset()
                return len(data), data
        return len(buf), None
