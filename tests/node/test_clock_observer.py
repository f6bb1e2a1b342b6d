"""The runtime's injected parts: the clock it reads time from and the observer it reports to."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest

from agree.runtime.clock import SystemClock
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter, Types

EPOCH = datetime.datetime(2001, 2, 3, tzinfo=datetime.UTC)


class StoppedWallClock(SystemClock):
    """The loop's monotonic time, and a wall clock that never moves."""

    def wall_ns(self) -> int:
        return int(EPOCH.timestamp()) * 10**9


async def test_the_leader_stamps_commands_from_the_clock_it_was_given(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"types": Types}, clock=StoppedWallClock()) as cluster:
        await cluster.wait_leader()
        t = cluster.nodes["n1"].proxy("types")
        times = [(await t.stamp())[2] for _ in range(3)]
        # The stopped clock (made strictly increasing by the leader, 1 ns at a time).
        assert times == sorted(times)
        assert all(EPOCH <= t < EPOCH + datetime.timedelta(seconds=1) for t in times)


async def test_virtual_time_passes_without_the_wall_clock(tmp_path: Path) -> None:
    """A minute of heartbeats on virtual time: the leader stays, nothing is slept for real."""
    loop = asyncio.get_running_loop()
    async with MemoryCluster(tmp_path, {"counter": Counter}) as cluster:
        leader = await cluster.wait_leader()
        began = loop.time()
        await asyncio.sleep(60)
        assert loop.time() - began == pytest.approx(60, abs=0.05)
        assert cluster.leader() is leader and leader.status().term == leader.status().term


class Recorder:
    def __init__(self) -> None:
        self.calls: dict[str, list[dict[str, object]]] = {}

    def _add(self, name: str, **fields: object) -> None:
        self.calls.setdefault(name, []).append(fields)

    def persisted(self, *, entries: int, seconds: float) -> None:
        self._add("persisted", entries=entries, seconds=seconds)

    def sent(self, *, messages: int, seconds: float) -> None:
        self._add("sent", messages=messages, seconds=seconds)

    def applied(self, *, entries: int, seconds: float) -> None:
        self._add("applied", entries=entries, seconds=seconds)

    def snapshotted(self, *, index: int, size: int, seconds: float) -> None:
        self._add("snapshotted", index=index, size=size, seconds=seconds)


async def test_the_observer_sees_persist_send_apply_and_snapshot(tmp_path: Path) -> None:
    seen = Recorder()
    async with MemoryCluster(tmp_path, {"counter": Counter}, observer=seen) as cluster:
        leader = await cluster.wait_leader()
        counter = leader.proxy("counter")
        for _ in range(5):
            await counter.add(1)
        index = await leader.snapshot()
    calls = seen.calls
    # Three nodes applied the founding entries, the leader's no-op and schema record, and 5 adds.
    assert sum(int(c["entries"]) for c in calls["applied"]) >= 3 * 5  # type: ignore[call-overload]
    assert sum(int(c["entries"]) for c in calls["persisted"]) >= 3 * 5  # type: ignore[call-overload]
    assert all(int(c["messages"]) > 0 for c in calls["sent"])  # type: ignore[call-overload]
    assert [c["index"] for c in calls["snapshotted"]][:1] == [index]
    assert all(float(c["seconds"]) >= 0 for cs in calls.values() for c in cs)  # type: ignore[arg-type]


def test_the_system_clock_reads_monotonic_time_outside_a_loop() -> None:
    """``Node.status()`` may be called from a thread with no event loop (an embedded handle's
    caller); the clock it reads must answer there too, on the same scale as a default loop's."""
    import time as _time

    from agree.runtime.clock import SystemClock

    before = _time.monotonic()
    assert before <= SystemClock().monotonic() <= _time.monotonic()
