"""What a leader knows about each follower's log (etcd's tracker.Progress), and how it
sends more: one probe at a time, a bounded pipeline of appends, or a chunked snapshot."""

from __future__ import annotations

import enum
from collections import deque

from agree.raft.entries import Snapshot

NEVER = -(1 << 62)  # a clock reading before any tick


class ProgressState(enum.Enum):
    PROBE = "probe"  # next is a guess: one AppendEntries per heartbeat until one matches
    REPLICATE = "replicate"  # next is known: pipeline appends, at most max_inflight_msgs
    SNAPSHOT = "snapshot"  # the follower needs compacted entries: send InstallSnapshot chunks


class Inflights:
    """The AppendEntries sent but not yet acknowledged, oldest first: each one's last index and
    entry bytes.  Full at ``capacity`` messages or ``max_bytes`` bytes (etcd's MaxInflightMsgs
    and MaxInflightBytes): a follower that persists more slowly than the leader produces must
    not gather an unbounded backlog in front of it, behind which its heartbeats would wait."""

    __slots__ = ("_bytes", "_capacity", "_max_bytes", "_queue")

    def __init__(self, capacity: int, max_bytes: int = 0) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes  # 0: no bound in bytes
        self._queue: deque[tuple[int, int]] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def bytes(self) -> int:
        return self._bytes

    def full(self) -> bool:
        return len(self._queue) >= self._capacity or (
            self._max_bytes > 0 and self._bytes >= self._max_bytes
        )

    def add(self, last_index: int, size: int = 0) -> None:
        self._queue.append((last_index, size))
        self._bytes += size

    def free_le(self, index: int) -> None:
        """Forget every message acknowledged by a match at ``index``."""
        queue = self._queue
        while queue and queue[0][0] <= index:
            self._bytes -= queue.popleft()[1]

    def free_first(self) -> None:
        if self._queue:
            self._bytes -= self._queue.popleft()[1]

    def reset(self) -> None:
        self._queue.clear()
        self._bytes = 0


class Progress:
    """One follower, as the leader sees it.

    Invariant: ``match < next``; ``match`` only grows within a term.
    """

    __slots__ = (
        "heard",
        "inflights",
        "lease_tick",
        "match",
        "next",
        "paused",
        "pending_snapshot",
        "recent_active",
        "snap_checksum",
        "snap_offset",
        "snap_view",
        "snapshot",
        "state",
    )

    def __init__(
        self,
        next_index: int,
        max_inflight: int,
        match: int = 0,
        *,
        heard: int = 0,
        max_inflight_bytes: int = 0,
    ) -> None:
        self.match = match  # highest index known to be replicated on the follower
        self.next = next_index  # index of the next entry to send
        self.state = ProgressState.PROBE
        self.paused = False  # PROBE only: a probe is outstanding
        self.inflights = Inflights(max_inflight, max_inflight_bytes)  # REPLICATE only
        self.recent_active = False  # heard from within the last election timeout (§6.2)
        # The leader's clock (ticks) when it last heard from the follower in its term; a new
        # leader starts it at its election, which a quorum just granted (§4.2.3 stickiness).
        self.heard = heard
        # The leader's clock when the latest heartbeat round the follower answered began: the
        # follower heard from the leader at or after it (the lease of §6.4.1).
        self.lease_tick = NEVER
        self.pending_snapshot = 0  # SNAPSHOT only: the snapshot's last included index
        self.snapshot: Snapshot | None = None  # SNAPSHOT only: the snapshot being sent
        self.snap_view: memoryview | None = None  # its data, sliced without copying
        self.snap_checksum = b""  # its checksum, sent with every chunk
        self.snap_offset = 0  # the byte the follower said it expects next

    def is_paused(self) -> bool:
        """Whether no AppendEntries may be sent now."""
        if self.state is ProgressState.PROBE:
            return self.paused
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True

    def _reset_state(self, state: ProgressState) -> None:
        self.state = state
        self.paused = False
        self.inflights.reset()
        self.pending_snapshot = 0
        self.snapshot = None
        self.snap_view = None
        self.snap_checksum = b""
        self.snap_offset = 0

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            # The follower will have the snapshot (or reported a match beyond it).
            next_index = max(self.match + 1, self.pending_snapshot + 1)
        else:
            next_index = self.match + 1
        self._reset_state(ProgressState.PROBE)
        self.next = next_index

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot: Snapshot, checksum: bytes) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot.meta.index
        self.snapshot = snapshot
        self.snap_view = memoryview(snapshot.data)
        self.snap_checksum = checksum

    def maybe_update(self, index: int) -> bool:
        """The follower acknowledged ``index``; False if that is old news."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.paused = False
        if self.next < index + 1:
            self.next = index + 1
        return updated

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected an append at ``rejected``; back ``next`` off to just past
        ``match_hint`` (its hint, refined by our log).  False if the rejection is stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.paused = False
        return True
