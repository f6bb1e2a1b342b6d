"""The node's one ticker: every tick interval, one tick for every Raft group it hosts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

from agree.runtime.clock import Clock


class Ticker:
    def __init__(
        self, clock: Clock, interval: float, targets: Callable[[], Iterable[Callable[[], None]]]
    ) -> None:
        """``targets`` lists, at each tick, what to call (each group's ``tick``)."""
        self._clock = clock
        self._interval = interval
        self._targets = targets
        self._task: asyncio.Task[None] | None = None

    def start(self, name: str) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=name)

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self._interval)
            for tick in self._targets():
                tick()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
