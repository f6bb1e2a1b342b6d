"""``self.context``: available only while a command is applied, and never on the instance."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agree import CommandContext, ContextUnavailableError, Replicated, command, query
from agree.errors import AgreeError
from agree.objects.replicated import applying, current_context
from agree.objects.schema import schema_of

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


class Journal(Replicated):
    def __init__(self) -> None:
        self.lines: list[str] = []

    @command
    def write(self, text: str) -> int:
        ctx = self.context
        self.lines.append(f"{ctx.index}/{ctx.term}@{ctx.timestamp.isoformat()}: {text}")
        return ctx.index

    @query
    def when(self) -> str:
        return self.context.timestamp.isoformat()


def test_context_inside_applying() -> None:
    journal = Journal()
    ctx = CommandContext(index=12, term=3, timestamp=T0)
    with applying(ctx) as entered:
        assert entered is ctx
        assert journal.context is ctx
        assert journal.write("hi") == 12
    assert journal.lines == ["12/3@2024-05-06T07:08:09+00:00: hi"]


def test_context_outside_a_command_is_a_clear_error() -> None:
    journal = Journal()
    with pytest.raises(ContextUnavailableError, match="only available while a @command"):
        _ = journal.context
    with pytest.raises(ContextUnavailableError):
        journal.write("x")
    # A query has no command context either.
    with pytest.raises(ContextUnavailableError):
        schema_of(Journal).operation("when").bind([], {}).invoke(journal)
    assert issubclass(ContextUnavailableError, AgreeError)
    assert issubclass(ContextUnavailableError, RuntimeError)


def test_context_is_reset_after_the_block_even_on_error() -> None:
    with pytest.raises(ValueError), applying(CommandContext(1, 1, T0)):
        raise ValueError("user error")
    with pytest.raises(ContextUnavailableError):
        current_context()


def test_nested_applying_restores_the_outer_context() -> None:
    outer, inner = CommandContext(1, 1, T0), CommandContext(2, 1, T0 + timedelta(seconds=1))
    with applying(outer):
        with applying(inner):
            assert current_context() is inner
        assert current_context() is outer


def test_context_is_not_stored_on_the_instance() -> None:
    journal = Journal()
    with applying(CommandContext(5, 2, T0)):
        journal.write("x")
        assert "context" not in vars(journal)
    assert vars(journal) == {"lines": [f"5/2@{T0.isoformat()}: x"]}


def test_context_does_not_leak_to_other_threads() -> None:
    seen: list[BaseException | CommandContext] = []

    def other() -> None:
        try:
            seen.append(current_context())
        except ContextUnavailableError as exc:
            seen.append(exc)

    with applying(CommandContext(1, 1, T0)):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert isinstance(seen[0], ContextUnavailableError)


async def test_context_is_per_task() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def applying_task() -> int:
        with applying(CommandContext(7, 1, T0)):
            started.set()
            await release.wait()
            return current_context().index

    async def observer() -> bool:
        await started.wait()
        try:
            current_context()
        except ContextUnavailableError:
            return True
        finally:
            release.set()
        return False

    index, isolated = await asyncio.gather(applying_task(), observer())
    assert index == 7 and isolated


def test_a_copied_context_carries_it_explicitly() -> None:
    with applying(CommandContext(4, 1, T0)):
        snapshot = contextvars.copy_context()
    assert snapshot.run(current_context).index == 4
    with pytest.raises(ContextUnavailableError):
        current_context()


def test_command_context_is_frozen_and_timezone_aware() -> None:
    ctx = CommandContext(1, 1, T0)
    with pytest.raises(AttributeError):
        ctx.index = 2  # type: ignore[misc]
    with pytest.raises(ValueError, match="timezone-aware"):
        CommandContext(1, 1, datetime(2024, 1, 1))
    # Any aware timestamp is accepted; the host stamps UTC.
    assert CommandContext(1, 1, datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=1))))


def test_context_property_is_on_every_replicated_class() -> None:
    class Plain(Replicated):
        @command
        def noop(self) -> None: ...

    with applying(CommandContext(3, 9, T0)):
        assert Plain().context.term == 9


def test_query_decorator_does_not_change_the_function() -> None:
    # Queries are plain methods too: calling one locally is an ordinary call.
    j = Journal()
    with applying(CommandContext(1, 1, T0)):
        assert j.when() == T0.isoformat()
