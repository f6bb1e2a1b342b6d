"""An asyncio event loop on virtual time, for deterministic node-level tests.

The loop's clock starts at 0.  When nothing is ready to run and no I/O is pending, instead of
sleeping until the next timer the loop jumps straight to it; so a test that waits ten election
timeouts takes no wall time.  Each turn of the loop that has work also costs a fixed ``turn``
of virtual time (the CPU the turn would have taken): without it, a loop kept busy -- clients
retrying in a tight loop -- would never let a timer come due, and ticks would stop.  Since
nothing depends on how long the machine took, a run is a function of its seed (in one process:
string hashing is salted per process, and set order follows it).

Work handed to an executor (``run_in_executor``, ``asyncio.to_thread``) runs inline, on the
loop, at once: a thread finishing at a moment the wall clock chooses would make "idle" and the
order of events depend on the machine.  Its result is delivered ``io`` virtual seconds later,
as a disk's latency would delay it, so storage costs virtual time as it would real time (and a
test doing five seconds of work does about as much as it would on a machine).  Code that must
block on another thread (``agree.runtime.embedded``'s handles, a callback run ``in_thread`` that
waits) does not belong on this loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import selectors
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class _IdleSelector(selectors.BaseSelector):
    """The loop's selector: polls real I/O (the loop's self-pipe, sockets) without blocking;
    when none is ready and the loop would sleep until a timer, advances virtual time instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._real.select(0)
        if events or timeout == 0:
            self._loop.advance(self._loop.turn)
            return events
        if timeout is None:
            # No timer at all: only another thread or a socket can wake the loop.
            return self._real.select(None)
        self._loop.advance(timeout)
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, turn: float = 50e-6, io: float = 1e-3) -> None:
        self._now = 0.0
        self.turn = turn  # virtual seconds one busy turn of the loop costs
        self.io = io  # virtual seconds from a call handed to an executor to its result
        super().__init__(_IdleSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def run_in_executor(  # type: ignore[override]
        self, executor: concurrent.futures.Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        fut: asyncio.Future[T] = self.create_future()
        try:
            # to_thread wraps its function in a context copy; run it the same way.
            result = contextvars.copy_context().run(func, *args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.call_later(self.io, _settle, fut, None, exc)
        else:
            self.call_later(self.io, _settle, fut, result, None)
        return fut


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():  # its awaiter was cancelled meanwhile
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
