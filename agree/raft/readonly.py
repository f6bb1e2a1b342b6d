"""Linearizable reads on the leader (dissertation §6.4): ReadIndex requests wait until the
leader has committed an entry of its term, then are confirmed in batches: one heartbeat
round, acknowledged by a quorum, confirms every read queued before the round began."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PendingRead:
    context: bytes
    origin: str  # the node whose host asked: the leader itself or a follower
    index: int  # the leader's commit index when the read arrived (0 while deferred)


class ReadOnly:
    """At most one heartbeat round is outstanding; reads arriving meanwhile wait for the
    next round, which starts as soon as the current one is confirmed."""

    __slots__ = ("_acks", "_deferred", "_round", "_round_reads", "_waiting")

    def __init__(self) -> None:
        self._deferred: list[PendingRead] = []  # before the first commit in this term
        self._waiting: list[PendingRead] = []  # queued for the next round
        self._round = 0  # id of the outstanding round; 0: none (ids grow across terms)
        self._round_reads: list[PendingRead] = []
        self._acks: set[str] = set()

    def reset(self) -> None:
        """Leadership lost: every pending read is dropped (the host times out)."""
        self._deferred.clear()
        self._waiting.clear()
        self._round_reads = []
        self._acks = set()

    def defer(self, context: bytes, origin: str) -> None:
        self._deferred.append(PendingRead(context, origin, 0))

    def undefer(self, commit: int) -> None:
        """The leader committed in its term: deferred reads may now use ``commit``."""
        if self._deferred:
            self._waiting.extend(PendingRead(r.context, r.origin, commit) for r in self._deferred)
            self._deferred.clear()

    def add(self, context: bytes, origin: str, index: int) -> None:
        self._waiting.append(PendingRead(context, origin, index))

    @property
    def round_context(self) -> bytes:
        """The context heartbeats carry: the outstanding round, or empty."""
        return str(self._round).encode() if self._round_reads else b""

    def start_round(self) -> bool:
        """Start a round if none is outstanding and reads wait; True if one started."""
        if self._round_reads or not self._waiting:
            return False
        self._round += 1
        self._round_reads = self._waiting
        self._waiting = []
        self._acks = set()
        return True

    def ack(self, context: bytes, voter: str, quorum: int) -> list[PendingRead]:
        """Record ``voter``'s answer to a round; the reads it confirms (once, at quorum)."""
        if not self._round_reads or context != str(self._round).encode():
            return []
        self._acks.add(voter)
        if len(self._acks) < quorum:
            return []
        confirmed = self._round_reads
        self._round_reads = []
        self._acks = set()
        return confirmed
