"""agree.progress: a line redrawn in place on a terminal, nothing at all elsewhere."""

from __future__ import annotations

import re
from io import StringIO

from agree.progress import Progress, format_amount


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
