"""The follower's side of a chunked InstallSnapshot (§7, Figure 13).

A transfer is one sender's snapshot in one term: (sender, term, last included index and
term, checksum).  A chunk at offset 0 always starts a new file (Figure 13, step 2); later
chunks are accepted only in order and only for the transfer under way, and every chunk is
answered with the offset wanted next, so the leader resumes after a lost, duplicated or
reordered chunk without restarting.  Two leaders may hold snapshots of the same (index,
term) whose bytes differ, so a transfer never continues another sender's (or another
term's) bytes, and the whole is checked against its checksum before it is handed out.
"""

from __future__ import annotations

import hashlib

from agree.raft.messages import InstallSnapshot


def snapshot_checksum(data: bytes) -> bytes:
    """The checksum an InstallSnapshot carries: SHA-256 of the whole snapshot."""
    return hashlib.sha256(data).digest()


class SnapshotAssembler:
    """Accumulates one transfer's chunks.

    Invariant: ``_sum`` hashes exactly ``_buf``; both are empty when ``_key`` is None.
    """

    __slots__ = ("_buf", "_key", "_sum")

    def __init__(self) -> None:
        self._key: tuple[str, int, int, int, bytes] | None = None
        self._buf = bytearray()
        self._sum = hashlib.sha256()

    def reset(self) -> None:
        self._key = None
        self._buf = bytearray()
        self._sum = hashlib.sha256()

    @property
    def receiving(self) -> tuple[int, int] | None:
        """The transfer under way, as (its last included index, bytes received so far)."""
        return None if self._key is None else (self._key[2], len(self._buf))

    def offer(self, m: InstallSnapshot) -> tuple[int, bytes | None]:
        """Take a chunk: (the offset wanted next, the whole data once the last chunk is in
        and matches its checksum).  A mismatch discards the transfer: wanted next is 0."""
        key = (m.src, m.term, m.last_included_index, m.last_included_term, m.checksum)
        if m.offset == 0:
            self.reset()
            self._key = key
        elif self._key != key:
            return 0, None  # a chunk of a transfer we are not (or no longer) part of
        buf = self._buf
        if m.offset != len(buf):
            return len(buf), None
        buf += m.data
        self._sum.update(m.data)
        if not m.done:
            return len(buf), None
        ok = self._sum.digest() == m.checksum
        data = bytes(buf) if ok else None
        self.reset()
        return (len(m.data) + m.offset, data) if ok else (0, None)
