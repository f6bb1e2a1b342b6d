"""The client-session table that makes retried commands exactly-once (Raft dissertation §6.3).

Every command carries ``(client_id, seq, ack)``.  The table keeps, per client, the outcome of each
applied command the client has not yet acknowledged, so a retry of an already-applied command is
answered from here instead of being applied twice.  The table is part of the replicated state:
every replica updates it identically while applying the log, it travels in snapshots, and sessions
expire by the leader-stamped time carried in the entries, never by a local clock.
"""

from __future__ import annotations

import enum
import heapq
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

#: A session untouched for this long (leader-stamped time) is forgotten.  Retries of a command
#: must happen well within it; clients time out calls after seconds, not hours.
DEFAULT_SESSION_TTL_NS = 3600 * 10**9


class Verdict(enum.Enum):
    NEW = "new"  # apply it
    DUPLICATE = "duplicate"  # applied before: answer with the stored outcome
    STALE = "stale"  # applied and acknowledged: the outcome is gone; the client is confused


@dataclass(slots=True)
class ClientSession(Generic[T]):
    outcomes: dict[int, T] = field(default_factory=dict)  # seq -> outcome, for seq > acked
    acked: int = 0  # Invariant: no key of outcomes is <= acked.
    highest: int = 0  # the highest seq applied
    last_seen_ns: int = 0
    order: list[int] = field(default_factory=list)  # heap of the keys of outcomes


class SessionTable(Generic[T]):
    def __init__(self, ttl_ns: int = DEFAULT_SESSION_TTL_NS) -> None:
        self.ttl_ns = ttl_ns
        # Ordered by last activity, oldest first, so expiry pops from the front in O(1).
        self._sessions: OrderedDict[str, ClientSession[T]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def check(self, client_id: str, seq: int) -> tuple[Verdict, T | None]:
        if not client_id:
            return Verdict.NEW, None  # an anonymous call opts out of deduplication
        session = self._sessions.get(client_id)
        if session is None or seq > session.highest:
            return Verdict.NEW, None
        if seq in session.outcomes:
            return Verdict.DUPLICATE, session.outcomes[seq]
        if seq <= session.acked:
            return Verdict.STALE, None
        # Not recorded yet not acknowledged: a seq below `highest` that never applied (the client
        # sent them out of order); applying it now is its first and only application.
        return Verdict.NEW, None

    def record(self, client_id: str, seq: int, ack: int, outcome: T, now_ns: int) -> None:
        """Remember ``outcome`` for ``seq`` and forget every outcome the client acknowledged."""
        if not client_id:
            return
        sessions = self._sessions
        session = sessions.get(client_id)
        if session is None:
            session = sessions[client_id] = ClientSession()
        else:
            sessions.move_to_end(client_id)  # the most recently active
        outcomes = session.outcomes
        if ack > session.acked:
            session.acked = ack
            order = session.order
            while order and order[0] <= ack:
                outcomes.pop(heapq.heappop(order), None)
        if seq > session.acked:
            if seq not in outcomes:
                heapq.heappush(session.order, seq)
            outcomes[seq] = outcome
        # Applied once per command on every replica: comparisons rather than max() calls, and
        # the oldest session looked at here before expire() is called to drop anything.
        if seq > session.highest:
            session.highest = seq
        if now_ns > session.last_seen_ns:
            session.last_seen_ns = now_ns
        if now_ns - next(iter(sessions.values())).last_seen_ns > self.ttl_ns:
            self.expire(now_ns)

    def expire(self, now_ns: int) -> int:
        """Forget sessions idle for longer than the TTL; returns how many."""
        dropped = 0
        while self._sessions:
            client_id, session = next(iter(self._sessions.items()))
            if now_ns - session.last_seen_ns <= self.ttl_ns:
                break
            del self._sessions[client_id]
            dropped += 1
        return dropped
