"""agree.progress: a line redrawn in place on a terminal, nothing at all elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import re
from io import StringIO

from agree.progress import CatchUp, Progress, format_amount


class FakeTTY(StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nothing_is_written_when_the_stream_is_not_a_terminal() -> None:
    out = StringIO()
    progress = Progress("replay", unit="entries", stream=out)
    progress.stage("loading")
    progress.update(5, 10)
    progress.finish()
    assert not progress.enabled and out.getvalue() == ""


def test_a_terminal_sees_one_line_redrawn_at_most_every_interval() -> None:
    out, clock = FakeTTY(), Clock()
    progress = Progress("replay", unit="entries", stream=out, interval=0.5, clock=clock)
    progress.update(1, 10)
    clock.now = 0.1
    progress.update(2, 10)  # too soon: not drawn
    clock.now = 0.6
    progress.update(3, 10)
    clock.now = 0.7
    progress.update(10, 10)  # the end is always drawn
    progress.finish("caught up")
    assert out.getvalue() == (
        "\rreplay: 1 entries of 10 entries (10%)"
        "\rreplay: 3 entries of 10 entries (30%)"
        "\rreplay: 10 entries of 10 entries (100%)"
        "\rreplay: caught up                      \n"
    )


def test_amounts() -> None:
    assert format_amount(512, "bytes") == "512 bytes"
    assert format_amount(3 * 1024 * 1024 + 512 * 1024, "bytes") == "3.5 MiB"
    assert format_amount(7, "entries") == "7 entries"


def test_a_failure_ends_the_line_before_the_error_is_printed() -> None:
    out = FakeTTY()
    try:
        with Progress("restore", stream=out) as progress:
            progress.update(1, 10)
            raise OSError("disk full")
    except OSError:
        pass
    assert re.search(r"\rrestore: failed *\n$", out.getvalue())


class Indexes:
    """(applied, commit) pairs a node reports, one per call; the last one repeats."""

    def __init__(self, *pairs: tuple[int, int]) -> None:
        self.pairs = list(pairs)

    def __call__(self) -> tuple[int, int]:
        return self.pairs.pop(0) if len(self.pairs) > 1 else self.pairs[0]


async def _watch(indexes: Indexes, out: StringIO, turns: int) -> None:
    watcher = CatchUp(indexes, Progress("node n1", unit="entries", stream=out, interval=0))
    watcher.sample()  # as the node starts
    task = asyncio.create_task(watcher.follow(interval=0))
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_a_node_applying_its_log_at_start_shows_it_on_a_terminal() -> None:
    out = FakeTTY()
    # Replay at start (any lag), caught up, a small ordinary lag (not shown), then a long
    # catch-up (shown again).
    indexes = Indexes((10, 50), (30, 50), (50, 50), (60, 65), (65, 65), (65, 400), (400, 400))
    asyncio.run(_watch(indexes, out, 20))
    lines = out.getvalue().split("\n")
    assert lines[0].startswith("\rnode n1: 0 entries of 40 entries (0%)")
    assert "\rnode n1: 20 entries of 40 entries (50%)" in lines[0]
    assert re.search(r"\rnode n1: applied up to index 50 *$", lines[0])
    assert lines[1].startswith("\rnode n1: 0 entries of 335 entries (0%)")
    assert "applied up to index 400" in lines[1] and lines[2] == ""


def test_a_snapshot_being_received_shows_its_bytes_then_its_install() -> None:
    out = FakeTTY()
    chunks = [(120, 65536), (120, 3 * 1024 * 1024), None]
    watcher = CatchUp(
        Indexes((120, 120)),  # applied once the snapshot is installed
        Progress("node n4", unit="entries", stream=out, interval=0),
        receiving=lambda: chunks.pop(0) if len(chunks) > 1 else chunks[0],
    )
    for _ in range(4):
        watcher.sample()
    text = out.getvalue()
    assert "\rnode n4: receiving a snapshot at index 120: 64.0 KiB" in text
    assert "\rnode n4: receiving a snapshot at index 120: 3.0 MiB" in text
    assert re.search(r"\rnode n4: installed the snapshot at index 120 *\n", text)


def test_nothing_is_watched_off_a_terminal() -> None:
    out = StringIO()
    asyncio.run(_watch(Indexes((0, 500)), out, 5))
    assert out.getvalue() == ""
