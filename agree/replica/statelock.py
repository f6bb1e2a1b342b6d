"""The lock on a node's replicated state, shared by its event loop and by reader threads.

The loop holds it while it restores a snapshot, applies entries or runs a query; a worker
thread holds it while it serializes a snapshot (the loop goes on meanwhile); ``read_lock()``
holds it, from any thread, to look at the objects directly.

The loop must never *block* on it.  A reader in another thread may hold it as long as it
likes, and a reader that then calls the node and waits for the answer would wait forever for a
loop that waits for it.  So the loop takes it with :meth:`StateLock.held`, which polls between
awaits: timers, heartbeats and the deadlines of other calls go on meanwhile, and a caller
whose deadline passes gets its timeout.  Reader threads may block: they are not the loop.
Each thread's read holds are counted, so a call made from inside a read can be refused at once
(:meth:`StateLock.read_by_this_thread`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from types import TracebackType

from agree.errors import AgreeTimeoutError

# Polling backs off from the first delay to the last: a short read costs the loop little
# latency, a long one little CPU.
_FIRST_POLL = 0.0005
_LAST_POLL = 0.02


class _Reads(threading.local):
    """The read holds of the current thread.  A class attribute gives every thread its 0:
    reading a missing attribute of a plain threading.local (on every call) raises and catches
    an AttributeError."""

    depth = 0


class StateLock:
    def __init__(self) -> None:
        # Re-entrant: host methods take it again under the loop's own hold.
        self._lock = threading.RLock()
        self._reads = _Reads()

    def __enter__(self) -> None:
        """A blocking hold, for code that already holds the lock or runs before anyone else
        can see the state (e.g. the host's own methods under :meth:`held`)."""
        self._lock.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the lock for a direct read, from any thread (it may block)."""
        with self._lock:
            self._reads.depth += 1
            try:
                yield
            finally:
                self._reads.depth -= 1

    def read_by_this_thread(self) -> bool:
        """Whether the current thread is inside :meth:`reading`."""
        return self._reads.depth > 0

    def held(self, deadline: float | None = None) -> _Held:
        """``async with lock.held():`` holds the lock on the event loop without blocking it;
        the body must not await.  With ``deadline`` (the loop's clock), AgreeTimeoutError once
        it passes."""
        return _Held(self, deadline)

    def try_acquire(self) -> bool:
        """Take the lock on the event loop if it is free now (then :meth:`release` it)."""
        # A read held by the loop's own thread (across an await) counts as held by another:
        # the lock being re-entrant, it would otherwise be taken straight from under it.
        return not self.read_by_this_thread() and self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()


class _Held:
    """The async context manager of :meth:`StateLock.held`: a class rather than a generator,
    as it is on the path of every apply and every query."""

    __slots__ = ("_deadline", "_lock")

    def __init__(self, lock: StateLock, deadline: float | None) -> None:
        self._lock = lock
        self._deadline = deadline

    async def __aenter__(self) -> None:
        lock = self._lock
        if lock.try_acquire():
            return
        loop = asyncio.get_running_loop()
        deadline = self._deadline
        delay = _FIRST_POLL
        while True:
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise AgreeTimeoutError(
                        "the replicated state stayed locked by a read_lock() until the deadline"
                    )
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LAST_POLL)
            if lock.try_acquire():
                return

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()
