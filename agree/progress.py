"""Progress of long operations (backup, restore, a node applying its log at start, catching up
with the leader or receiving a snapshot from it), for a person watching.

A :class:`Progress` writes to a terminal only: when its stream (stderr by default) is not a
TTY -- a pipe, a log file, a test's capture -- it writes nothing at all, so scripts and logs see
only the commands' own output.  On a terminal it redraws one line in place (``\\r``), at most
every ``interval`` seconds, and ends it with a newline when the operation is over (used as a
context manager, also when it failed).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

__all__ = ["CatchUp", "Progress", "format_amount"]


def format_amount(value: int, unit: str) -> str:
    """``value`` in ``unit``; bytes in KiB/MiB/GiB once they are many."""
    if unit != "bytes":
        return f"{value} {unit}"
    size = float(value)
    for name in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or name == "GiB":
            return f"{value} bytes" if name == "bytes" else f"{size:.1f} {name}"
        size /= 1024
    raise AssertionError("unreachable")


class Progress:
    """One operation's progress line: ``label: 3.2 MiB of 10.0 MiB (32%)`` or a stage's text."""

    def __init__(
        self,
        label: str,
        *,
        unit: str = "bytes",
        stream: TextIO | None = None,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty is not None and isatty())
        self._interval = interval
        self._clock = clock
        self._last_draw: float | None = None
        self._width = 0  # of the line on screen, so a shorter one blanks the rest

    def _draw(self, text: str) -> None:
        line = f"{self.label}: {text}"
        pad = max(0, self._width - len(line))
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self._width = len(line)

    def stage(self, text: str) -> None:
        """Show what is being done now (always drawn: stages are few)."""
        if self.enabled:
            self._draw(text)
            self._last_draw = self._clock()

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` of ``total`` units so far; drawn at most every ``interval`` seconds, and
        always when ``done`` reaches ``total``."""
        if not self.enabled:
            return
        now = self._clock()
        finished = total is not None and done >= total
        if not finished and self._last_draw is not None and now - self._last_draw < self._interval:
            return
        text = format_amount(done, self.unit)
        if total is not None:
            percent = 100 if total <= 0 else min(100, done * 100 // total)
            text = f"{text} of {format_amount(total, self.unit)} ({percent}%)"
        self._draw(text)
        self._last_draw = now

    def finish(self, text: str = "done") -> None:
        """End the line with ``text``."""
        if self.enabled:
            self._draw(text)
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._width:  # a line is on screen: end it, so the error prints on its own line
            self.finish("failed" if exc_type is not None else "done")


#: A lag below this many entries is ordinary replication, not worth a progress line.
CATCH_UP_MIN_LAG = 100


class CatchUp:
    """A node applying its log (replayed at start, or catching up with the leader) or receiving
    a snapshot, shown on ``progress``: ``indexes()`` gives the node's (applied, commit) indexes,
    ``receiving()`` the snapshot being received (its index, bytes so far) or None.  The first sample
    shows any lag (the log a start replays); later ones a lag of ``min_lag`` entries or more.

    Call :meth:`sample` once right after the node starts, before the loop applies anything
    (applying a long log holds the loop, so the line says what is coming first), then run
    :meth:`follow` as a task until the node stops.
    """

    def __init__(
        self,
        indexes: Callable[[], tuple[int, int]],
        progress: Progress,
        *,
        receiving: Callable[[], tuple[int, int] | None] | None = None,
        min_lag: int = CATCH_UP_MIN_LAG,
    ) -> None:
        self._indexes = indexes
        self._receiving = receiving
        self._snapshot: int | None = None  # the index of a snapshot being received
        self.progress = progress
        self._min_lag = min_lag
        self._behind_from: int | None = None  # the applied index when the lag was first seen
        self._first = True

    def sample(self) -> None:
        if not self.progress.enabled:
            return
        incoming = self._receiving() if self._receiving is not None else None
        if incoming is not None:  # a snapshot from the leader, chunk by chunk
            self._snapshot, received = incoming
            what = f"receiving a snapshot at index {self._snapshot}"
            self.progress.stage(f"{what}: {format_amount(received, 'bytes')}")
            self._first = False
            return
        applied, commit = self._indexes()
        if self._snapshot is not None:
            self.progress.finish(
                f"installed the snapshot at index {self._snapshot}"
                if applied >= self._snapshot
                else f"the snapshot at index {self._snapshot} was not installed"
            )
            self._snapshot = None
        lag = commit - applied
        if self._behind_from is None and (lag >= self._min_lag or (self._first and lag > 0)):
            self._behind_from = applied
        if self._behind_from is not None:
            if lag > 0:
                self.progress.update(applied - self._behind_from, commit - self._behind_from)
            else:
                self.progress.finish(f"applied up to index {applied}")
                self._behind_from = None
        self._first = False

    async def follow(self, interval: float = 0.2) -> None:
        """Sample every ``interval`` seconds until cancelled (at once nothing, off a terminal)."""
        while self.progress.enabled:
            await asyncio.sleep(interval)
            self.sample()
