"""Time, as the runtime reads it: the one place it comes from.

The runtime (node, driver, test cluster) never calls :mod:`time` or ``asyncio.sleep`` itself; it
asks the :class:`Clock` it was given.  Monotonic time is the running event loop's clock, the
one asyncio's own timeouts (``wait_for``, ``sleep``) use, so deadlines and timeouts agree; a
loop with virtual time (:mod:`agree.testing.virtualtime`) makes both virtual at once.  Wall time
is read only to stamp commands on the leader, and a virtual clock makes it a function of
virtual time so that a replayed run stamps the same values.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on the running loop's clock, for deadlines."""
        ...

    def wall_ns(self) -> int:
        """Nanoseconds since the Unix epoch, for the leader's timestamps."""
        ...

    async def sleep(self, seconds: float) -> None:
        ...


class SystemClock:
    """Production time: the loop's monotonic clock and the system's wall clock."""

    def monotonic(self) -> float:
        # Read on every call: asyncio's own lookup of the running loop, without the exception
        # get_running_loop() raises when there is none.
        loop = asyncio._get_running_loop()
        if loop is None:
            # Read from a thread without a loop (e.g. ``node.status()`` from an embedded
            # handle's caller): a default loop's clock is time.monotonic() itself.
            return time.monotonic()
        return loop.time()

    def wall_ns(self) -> int:
        return time.time_ns()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class LoopClock(SystemClock):
    """Wall time derived from the loop's clock: ``epoch_ns`` plus the loop's time.  On a loop
    with virtual time the whole clock is virtual, and a replay by seed sees the same stamps."""

    def __init__(self, epoch_ns: int = 1_700_000_000 * 10**9) -> None:
        self.epoch_ns = epoch_ns

    def wall_ns(self) -> int:
        return self.epoch_ns + int(asyncio.get_running_loop().time() * 1e9)
