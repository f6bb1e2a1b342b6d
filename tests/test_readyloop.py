"""The shared Ready loop: the order of the duties, the deferred commit-only hard state, a duty
that stops a Ready, and the synchronous drive."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from agree.raft import (
    Config,
    ConfState,
    Entry,
    HardState,
    Message,
    RaftNode,
    ReadState,
    Snapshot,
    SoftState,
)
from agree.raft.messages import AppendEntries, Heartbeat
from agree.runtime.readyloop import ReadyLoop, run_sync


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.stop_at: str | None = None

    def _do(self, duty: str, what: object) -> None:
        self.calls.append((duty, what))
        if duty == self.stop_at:
            raise RuntimeError(f"stopped at {duty}")

    async def persist(
        self, hard_state: HardState | None, entries: tuple[Entry, ...], snapshot: Snapshot | None
    ) -> None:
        self._do("persist", (hard_state, len(entries)))

    def send(self, messages: tuple[Message, ...]) -> None:
        self._do("send", len(messages))

    def applying(self) -> AbstractAsyncContextManager[None]:
        @asynccontextmanager
        async def held() -> AsyncIterator[None]:
            self._do("lock", None)
            yield
            self._do("unlock", None)

        return held()

    def restore(self, snapshot: Snapshot) -> None:
        self._do("restore", snapshot.meta.index)

    def apply(self, entries: tuple[Entry, ...]) -> None:
        self._do("apply", [e.index for e in entries])

    def read_states(self, states: tuple[ReadState, ...]) -> None:
        self._do("reads", len(states))

    def soft_state(self, soft: SoftState) -> None:
        self._do("soft", soft.role.value)


def _follower() -> tuple[RaftNode, Recorder, ReadyLoop]:
    """Node b of a bootstrapped a, b, c cluster, its founding Ready carried out."""
    node = RaftNode(
        Config(id="b"), rng=random.Random(0), bootstrap=ConfState(voters=frozenset("abc"))
    )
    host = Recorder()
    loop = ReadyLoop(node, host)
    loop.handle_sync(node.ready())
    host.calls.clear()
    return node, host, loop


def _append(node: RaftNode, data: bytes, commit: int) -> int:
    """Leader a sends ``node`` one new entry; its index."""
    last = node.last_index
    node.step(
        AppendEntries(
            src="a", dst="b", term=1, prev_log_index=last, prev_log_term=1,
            entries=(Entry(1, last + 1, data=data),), leader_commit=commit,
        )
    )
    return last + 1


def _commit(node: RaftNode, index: int) -> None:
    node.step(Heartbeat(src="a", dst="b", term=1, leader_commit=index))


def test_the_duties_run_in_order_and_advance_comes_last() -> None:
    node, host, loop = _follower()
    x = _append(node, b"x", 0)
    _commit(node, x - 1)
    loop.handle_sync(node.ready())
    assert [duty for duty, _ in host.calls] == ["persist", "send", "reads", "soft"]
    host.calls.clear()
    _commit(node, x)
    rd = node.ready()
    assert rd.committed_entries and not rd.must_sync
    host.stop_at = "reads"  # advance has not run when the reads are answered
    with pytest.raises(RuntimeError):
        loop.handle_sync(rd)
    assert [duty for duty, _ in host.calls] == ["send", "lock", "apply", "unlock", "reads"]
    assert node.applied_index < x


def test_a_commit_only_hard_state_waits_for_the_next_write() -> None:
    node, host, loop = _follower()
    x = _append(node, b"x", 0)
    loop.handle_sync(node.ready())
    _commit(node, x)
    loop.handle_sync(node.ready())
    assert loop.deferred == HardState(1, None, x)
    written = [what[0] for duty, what in host.calls if duty == "persist"]  # type: ignore[index]
    assert all(hs is None or hs.commit < x for hs in written)
    host.calls.clear()
    _append(node, b"y", x)
    rd = node.ready()
    assert rd.must_sync and rd.hard_state is None  # the entry alone: the commit is not news
    loop.handle_sync(rd)
    assert host.calls[0] == ("persist", (HardState(1, None, x), 1))
    assert loop.deferred is None


def test_a_duty_that_raises_stops_the_ready_before_advance() -> None:
    node, host, loop = _follower()
    x = _append(node, b"x", 0)
    y = _append(node, b"y", 0)
    loop.handle_sync(node.ready())
    _commit(node, y)
    host.stop_at = "apply"
    with pytest.raises(RuntimeError, match="stopped at apply"):
        loop.handle_sync(node.ready())
    assert host.calls[-1] == ("apply", [x, y])
    assert node.applied_index < x  # not advanced: a restart would apply them again


def test_run_sync_refuses_a_coroutine_that_waits() -> None:
    async def waits() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="waited"):
        run_sync(waits())

    async def answers() -> int:
        return 7

    assert run_sync(answers()) == 7
