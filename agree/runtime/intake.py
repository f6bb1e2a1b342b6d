"""How many calls a node starts in one turn of its event loop.

Starting a call costs CPU on the loop (checks, encoding, the proposal); thousands of callers
awakened together -- a ``gather`` of 10,000 commands, or a commit that answers a whole window at
once and lets every caller issue its next command -- would all start within one turn, and for
that long nothing else runs: no tick, no heartbeat, no peer frame.  Past an election timeout the
followers elect another leader.  :class:`Intake` lets at most ``per_turn`` calls start in a turn;
the rest wait for a later turn, in the order they came, and the loop runs ticks and frames in
between.  A call waiting here has done nothing yet: cancelling it loses nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque

#: Calls started per turn of the loop: a few milliseconds of work at most.
CALLS_PER_TURN = 256


class Intake:
    """At most ``per_turn`` calls start in one turn of the event loop, first come first served."""

    __slots__ = ("_loop", "_per_turn", "_scheduled", "_started", "_waiting")

    def __init__(self, per_turn: int = CALLS_PER_TURN) -> None:
        if per_turn < 1:
            raise ValueError(f"per_turn must be at least 1, got {per_turn}")
        self._per_turn = per_turn
        self._started = 0  # calls started since the last turn boundary
        self._scheduled = False  # a turn boundary is scheduled
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def waiting(self) -> int:
        """Calls waiting for a later turn."""
        return len(self._waiting)

    def admit(self) -> asyncio.Future[None] | None:
        """``None``: start now; else a future to await, done when the call's turn has come."""
        if self._started < self._per_turn and not self._waiting:
            self._started += 1
            if not self._scheduled:
                self._schedule()
            return None
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiting.append(fut)
        if not self._scheduled:
            self._schedule()
        return fut

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._scheduled = True
        # Runs in the next turn: every call started in this one has done its work by then.
        loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._scheduled = False
        self._started = 0
        waiting = self._waiting
        while waiting and self._started < self._per_turn:
            fut = waiting.popleft()
            if not fut.done():  # a caller that gave up while waiting takes no place
                fut.set_result(None)
                self._started += 1
        if self._started:
            self._schedule()
