"""A snapshot is serialized off the event loop: while a large state is pickled, the node goes on
ticking and sending heartbeats, and no apply of its group lands in the middle of the capture."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from agree.objects.replicated import Replicated, command, query
from agree.runtime.node import Node
from agree.testing.cluster import MemoryCluster

PICKLING = 0.5  # seconds one armed capture takes


class Window:
    """What happened while an armed state was being pickled."""

    def __init__(self) -> None:
        self.sends = 0  # messages handed to the transport by any node, so far
        self.reset()

    def reset(self) -> None:
        self.armed = False
        self.started = self.finished = False
        self.sends_during: int | None = None
        self.applied_during: tuple[int, int] | None = None  # the holder's count, start and end


WINDOW = Window()


class Turns:
    """Turns of the event loop, counted while ``counting``; each apply of ``Holder.add`` notes
    the holder and the turn it ran in."""

    def __init__(self) -> None:
        self.turn = 0
        self.counting = False
        self.applied: list[tuple[int, int]] = []

    def count(self) -> None:
        self.turn += 1
        if self.counting:
            asyncio.get_running_loop().call_soon(self.count)


TURNS = Turns()


class SlowToPickle:
    """Part of a replicated state whose pickling takes PICKLING seconds when armed."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder

    def __getstate__(self) -> dict[str, Any]:
        if WINDOW.armed:
            WINDOW.armed = False  # one capture only
            sends, count = WINDOW.sends, self.holder.count
            WINDOW.started = True
            time.sleep(PICKLING)
            WINDOW.sends_during = WINDOW.sends - sends
            WINDOW.applied_during = (count, self.holder.count)
            WINDOW.finished = True
        return dict(self.__dict__)


class Holder(Replicated):
    def __init__(self) -> None:
        self.count = 0
        self.slow = SlowToPickle(self)

    @command
    def add(self) -> int:
        self.count += 1
        TURNS.applied.append((id(self), TURNS.turn))
        return self.count

    @query
    def get(self) -> int:
        return self.count


class CountSends:
    def persisted(self, *, entries: int, seconds: float) -> None:
        pass

    def sent(self, *, messages: int, seconds: float) -> None:
        WINDOW.sends += 1

    def applied(self, *, entries: int, seconds: float) -> None:
        pass

    def snapshotted(self, *, index: int, size: int, seconds: float) -> None:
        pass


async def _quiet(cluster: MemoryCluster, leader: Node) -> None:
    """Wait until every node applied everything (the followers' schema announcements too), so
    that nothing commits during the capture: this group's applies would wait for it."""
    seen = -1
    while True:
        last = leader.status().last_index
        nodes = cluster.running()
        # A follower announces its schemas (a command) until its log holds them: none may be
        # still to come, or it would commit during the capture.
        announced = all(n.host.announced() for n in nodes)
        if announced and last == seen and all(n.status().applied_index == last for n in nodes):
            return
        seen = last
        await asyncio.sleep(0.05)


async def _capture_under_way(leader: Node) -> asyncio.Future[int]:
    """Start an armed snapshot on ``leader``; return once its state is being pickled (or, on a
    loop that pickles in place, once the snapshot is done)."""
    WINDOW.reset()
    WINDOW.armed = True
    snapshot = asyncio.ensure_future(leader.snapshot())
    while not WINDOW.started and not snapshot.done():
        await asyncio.sleep(0.005)
    return snapshot


@pytest.mark.wall_clock
async def test_the_node_goes_on_sending_heartbeats_while_a_snapshot_is_pickled(
    tmp_path: Path,
) -> None:
    async with MemoryCluster(tmp_path, {"h": Holder}, observer=CountSends()) as cluster:
        leader = await cluster.wait_leader()
        await leader.proxy("h").add()
        await _quiet(cluster, leader)
        term = leader.status().term
        index = await (await _capture_under_way(leader))
        # Heartbeats and their answers went on during the capture (about 25 rounds at the
        # cluster's 10 ms tick and 2-tick heartbeat; a loop blocked by the pickling sends none),
        # so no follower's election timer (100 ms) ran out.
        assert WINDOW.sends_during is not None and WINDOW.sends_during >= 5, WINDOW.sends_during
        assert leader.status().term == term and cluster.leader() is leader
        assert index == leader.status().applied_index


@pytest.mark.wall_clock
async def test_commands_commit_during_the_capture_and_apply_after_it(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"h": Holder}, observer=CountSends()) as cluster:
        leader = await cluster.wait_leader()
        holder = leader.proxy("h")
        for _ in range(3):
            await holder.add()
        await _quiet(cluster, leader)
        term = leader.status().term
        snapshot = await _capture_under_way(leader)
        assert not WINDOW.finished  # the test goes on while the leader's state is pickled
        added = await holder.add()  # committed meanwhile, applied on the leader after
        index = await snapshot
        # The leader applied nothing while its state was captured: the snapshot holds the
        # state at exactly its index; the command proposed meanwhile came after it.
        assert WINDOW.applied_during == (3, 3)
        assert added == 4 and index < leader.status().applied_index
        # Committing it did not stop the leader's heartbeats either.
        assert WINDOW.sends_during is not None and WINDOW.sends_during >= 5, WINDOW.sends_during
        assert leader.status().term == term and cluster.leader() is leader
        # The blob is the state at its index: restarted from it, replaying the log after it,
        # the node counts each command once.
        restarted = await cluster.restart_node(leader.id, crash=True)
        assert await restarted.proxy("h").get() == 4


@pytest.mark.wall_clock
async def test_a_backlog_gathered_during_a_capture_is_applied_over_several_turns(
    tmp_path: Path,
) -> None:
    """Commands that commit during a long capture wait in a backlog; it is applied a Ready's
    share at a time with the loop running in between (in one turn before: with large states
    and many commands the leader stopped for over a second and was deposed)."""
    async with MemoryCluster(tmp_path, {"h": Holder}, observer=CountSends()) as cluster:
        leader = await cluster.wait_leader()
        holder = leader.proxy("h")
        await holder.add()
        await _quiet(cluster, leader)
        snapshot = await _capture_under_way(leader)
        adds = []
        for _ in range(12):  # waves that commit in separate Readys during the capture
            adds += [asyncio.ensure_future(holder.add()) for _ in range(10)]
            await asyncio.sleep(0.02)
        assert not WINDOW.finished
        del TURNS.applied[:]
        TURNS.counting = True
        TURNS.count()
        try:
            await snapshot
        finally:
            TURNS.counting = False
        assert sorted(await asyncio.gather(*adds)) == list(range(2, 122))
        mine = id(leader.host.object("h"))
        turns = [turn for holder_id, turn in TURNS.applied if holder_id == mine]
        assert len(turns) == 120
        assert len(set(turns)) >= 6, turns  # spread over turns, one Ready's share in each
