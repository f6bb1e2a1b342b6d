"""Synchronous handles never hang: a call from inside read_lock() or from the node's own loop
is refused at once, a closed handle fails at once, and every call honours its deadline even
while the state is locked or the loop is stuck."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import agree
from agree.errors import (
    AgreeTimeoutError,
    DeadlockError,
    OutcomeUnknownError,
    UnavailableError,
)
from agree.objects.replicated import Consistency, Replicated, command, query
from agree.testing.models import Counter

WAIT = 60.0  # bound on anything that must not hang; generous for a loaded machine


def _bounded(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a daemon thread; fail (instead of hanging the suite) if it never ends."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as exc:
            outcome.append(("raised", exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "the call hung"
    kind, value = outcome[0]
    if kind == "raised":
        raise value
    return value


def test_a_call_inside_read_lock_is_refused_at_once(tmp_path: Path) -> None:
    with agree.wrap(Counter(), path=tmp_path) as c:
        c.add(1)

        def inside() -> None:
            with c.read_lock() as obj:
                assert obj.value == 1
                for call in (
                    lambda: c.add(1),
                    lambda: c.get(),
                    lambda: c.options(timeout=1.0).add(1),
                    lambda: c.options(consistency=Consistency.ANY).get(),
                    lambda: c.mutate("add", 1),
                    lambda: c.read("get"),
                ):
                    with pytest.raises(DeadlockError, match="read_lock"):
                        call()

            with c.read_lock(), pytest.raises(DeadlockError, match="closed from inside"):
                c.close()

        _bounded(inside)
        assert c.add(1) == 2  # nothing was proposed, and the node goes on


def test_calls_wait_for_another_threads_read_lock_only_until_their_deadline(
    tmp_path: Path,
) -> None:
    with agree.wrap(Counter(), path=tmp_path) as c:
        c.add(1)
        locked, release = threading.Event(), threading.Event()

        def reader() -> None:
            with c.read_lock():
                locked.set()
                release.wait(WAIT)

        holder = threading.Thread(target=reader, daemon=True)
        holder.start()
        try:
            assert locked.wait(WAIT)
            quick = c.options(timeout=0.5)
            with pytest.raises(AgreeTimeoutError):
                _bounded(quick.get)
            with pytest.raises(AgreeTimeoutError):
                _bounded(quick.options(consistency=Consistency.ANY).get)
            # Proposed, then held off by the lock: its outcome is not known at the deadline.
            with pytest.raises(OutcomeUnknownError):
                _bounded(lambda: quick.add(1))
        finally:
            release.set()
            holder.join(WAIT)
        assert _bounded(c.get) == 2  # the command applied once the lock was released


class Gate(Replicated):
    """A query that blocks the node's event loop until the test opens the gate."""

    opened = threading.Event()

    def __init__(self) -> None:
        self.n = 0

    @command
    def bump(self) -> int:
        self.n += 1
        return self.n

    @query(consistency=Consistency.ANY)
    def wait_open(self) -> int:
        Gate.opened.wait(WAIT)
        return self.n


def test_a_call_honours_its_deadline_even_when_the_loop_is_stuck(tmp_path: Path) -> None:
    Gate.opened.clear()
    with agree.wrap(Gate(), path=tmp_path) as g:
        g.bump()
        # Blocks the loop until the gate opens (it may come after the calls below: either
        # way the loop is stuck for them).
        stuck = threading.Thread(target=g.options(timeout=WAIT).wait_open, daemon=True)
        stuck.start()
        try:
            with pytest.raises(AgreeTimeoutError, match="no answer"):
                _bounded(g.options(timeout=0.5).wait_open)
            with pytest.raises(OutcomeUnknownError, match="no answer"):
                _bounded(lambda: g.options(timeout=0.5).bump())
        finally:
            Gate.opened.set()
            stuck.join(WAIT)
        assert _bounded(g.wait_open) >= 1


def test_a_closed_handle_fails_at_once(tmp_path: Path) -> None:
    c = agree.wrap(Counter(), path=tmp_path)
    assert c.add(1) == 1
    c.close()
    for call in (
        lambda: c.add(1),
        lambda: c.get(),
        lambda: c.options(timeout=1.0).get(),
        lambda: c.mutate("add", 1),
        lambda: c.subscribe(print),
        lambda: c.read_lock().__enter__(),
    ):
        with pytest.raises(UnavailableError, match="closed"):
            _bounded(call)
    c.close()  # closing twice is harmless


def test_a_sync_handle_called_on_its_own_loop_is_refused(tmp_path: Path) -> None:
    seen: list[BaseException] = []
    done = threading.Event()

    with agree.wrap(Counter(), path=tmp_path) as c:

        async def on_mutation(m: agree.Mutation) -> None:  # runs on the node's loop
            try:
                c.get()
            except BaseException as exc:
                seen.append(exc)
            done.set()

        c.subscribe(on_mutation)
        c.add(1)
        assert done.wait(WAIT)
        assert c.add(1) == 2
    assert seen and all(isinstance(exc, DeadlockError) for exc in seen)


async def test_an_async_call_inside_read_lock_on_the_loop_is_refused(tmp_path: Path) -> None:
    settings = agree.Settings.single_node(tmp_path, TICK_INTERVAL=0.01)
    async with agree.Node(settings, objects={"counter": Counter()}) as node:
        await node.wait_ready(WAIT)
        c = node.proxy("counter")
        await c.add(1)
        with node.read_lock("counter") as obj:
            with pytest.raises(DeadlockError, match="read_lock"):
                await c.add(1)
            with pytest.raises(DeadlockError, match="read_lock"):
                await c.get()
            with pytest.raises(DeadlockError, match="read_lock"):
                await node.stop()
            assert obj.value == 1
        assert await c.add(1) == 2


async def test_calls_on_a_stopped_node_fail_at_once(tmp_path: Path) -> None:
    settings = agree.Settings.single_node(tmp_path, TICK_INTERVAL=0.01)
    node = agree.Node(settings, objects={"counter": Counter()})
    await node.start()
    await node.wait_ready(WAIT)
    c = node.proxy("counter")
    await c.add(1)
    await node.stop()
    for consistency in Consistency:
        with pytest.raises(UnavailableError):
            await asyncio.wait_for(c.options(consistency=consistency).get(), WAIT)
    with pytest.raises(UnavailableError):
        await asyncio.wait_for(c.add(1), WAIT)
