"""A burst of thousands of commands in flight must not starve the leader's heartbeats.

Committed entries are applied in bounded chunks (the core's max_committed_bytes_per_ready),
and the driver lets the loop run between two chunks: ticks, heartbeats and peer messages get
through while a backlog is applied.  Applying everything in one turn of the loop would leave
the followers without a word from the leader for longer than an election timeout -- on real
machines they would elect another leader.

The cost of applying is made visible to virtual time: on the leader each command charges
``COST`` virtual seconds of CPU to the loop's clock, as a slow state machine would take real
time.  The followers apply for free, so the silence they hear is the leader's alone.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agree.objects.replicated import command
from agree.objects.schema import Operation
from agree.raft.messages import AppendEntries, Heartbeat, Message
from agree.runtime.node import Node
from agree.storage.base import DEFAULT_GROUP
from agree.testing.cluster import MemoryCluster
from agree.testing.models import KVStore
from agree.testing.virtualtime import VirtualTimeLoop

# The production timings (agree.conf.defaults): a heartbeat every tick of 50 ms, an
# election timeout of at least 10 ticks.
TICK = 0.05
ELECTION_TICKS = 10
COST = 50e-6  # virtual seconds one command takes to apply on the leader
BURST = 10_000  # commands in flight at once: 0.5 s of applying on the leader


class CostlyKV(KVStore):
    @command
    def set(self, key: str, value: str) -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        loop.advance(COST)
        self.data[key] = value


def _cluster(tmp_path: Path, **options: Any) -> MemoryCluster:
    """Three nodes with the production timings (above)."""
    return MemoryCluster(
        tmp_path,
        {"kv": KVStore},
        TICK_INTERVAL=TICK,
        ELECTION_TICKS=ELECTION_TICKS,
        HEARTBEAT_TICKS=1,
        REQUEST_TIMEOUT=60.0,
        **options,
    )


async def _n1_leading(cluster: MemoryCluster) -> Node:
    """n1, once it leads and has applied a first command."""
    first = await cluster.wait_leader()
    await first.transfer_leader("n1")
    leader = await cluster.wait_leader(among=["n1"])
    await leader.proxy("kv").set("warm", "up")
    return leader


async def _burst_without_silence(cluster: MemoryCluster, leader: Node, cost: float) -> None:
    """BURST commands at once through ``leader``'s proxy, which take at least ``cost`` virtual
    seconds each; the followers hear from the leader all along and no election happens."""
    term = leader.status().term
    loop = asyncio.get_running_loop()
    heard = _listen_to_the_leader(cluster, leader.id)
    kv = leader.proxy("kv")
    started = loop.time()
    await asyncio.gather(*(kv.set(f"k{i % 512}", f"v{i}") for i in range(BURST)))
    ended = loop.time()
    assert ended - started >= BURST * cost  # the burst did cost the leader its time

    # The longest silence each follower heard from the leader during the burst stays
    # well under an election timeout (a follower campaigns after at least this long).
    election_timeout = ELECTION_TICKS * TICK
    for follower_id, times in heard.items():
        gaps = _gaps([started, *times, ended])
        assert max(gaps) < election_timeout / 2, (follower_id, max(gaps))
    # And no election happened: the same leader, in the same term, on every node.
    assert [n.leader_id for n in cluster.nodes.values()] == [leader.id] * 3
    assert leader.status().term == term


async def test_a_burst_of_commands_does_not_silence_the_leader(tmp_path: Path) -> None:
    async with _cluster(tmp_path, node_objects={"n1": {"kv": CostlyKV}}) as cluster:
        leader = await _n1_leading(cluster)
        await _burst_without_silence(cluster, leader, COST)


def _gaps(times: Sequence[float]) -> list[float]:
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


ISSUE_COST = 50e-6  # virtual seconds it takes the leader to start one call


async def test_a_crowd_of_callers_does_not_silence_the_leader(tmp_path: Path) -> None:
    """10,000 calls made in one turn of the loop start a few hundred per turn
    (agree.runtime.intake): starting them all at once took the leader 0.5 s of CPU without a
    tick or a heartbeat in between, and the followers elected another leader."""
    async with _cluster(tmp_path) as cluster:
        leader = await _n1_leading(cluster)
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        driver = leader.group(DEFAULT_GROUP).driver
        propose = driver.propose

        def costly(data: bytes, *rest: Any) -> Any:
            loop.advance(ISSUE_COST)  # as the checks and encodings of a real call take
            return propose(data, *rest)

        driver.propose = costly  # type: ignore[method-assign]
        await _burst_without_silence(cluster, leader, ISSUE_COST)
        kv = leader.proxy("kv")
        assert {await kv.get(f"k{i}") for i in range(512)} == {
            f"v{i}" for i in range(BURST - 512, BURST)
        }


async def test_a_crowd_with_large_arguments_does_not_silence_the_leader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy binds and encodes a call's arguments before the node sees it -- for 10 KB
    values that is most of a call's cost -- so the intake is passed before binding: 10,000
    proxy calls made at once bound all their arguments in one turn of the loop before, for
    0.9 s with nothing else running, and the leader was deposed."""
    async with _cluster(tmp_path) as cluster:
        leader = await _n1_leading(cluster)
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        bind = Operation.bind

        def costly(self: Operation, *args: Any) -> Any:
            loop.advance(ISSUE_COST)  # as checking and encoding a large value takes
            return bind(self, *args)

        monkeypatch.setattr(Operation, "bind", costly)
        await _burst_without_silence(cluster, leader, ISSUE_COST)


def _listen_to_the_leader(cluster: MemoryCluster, leader_id: str) -> dict[str, list[float]]:
    """The virtual times at which each follower heard from the leader, from now on."""
    loop = asyncio.get_running_loop()
    heard: dict[str, list[float]] = {n: [] for n in cluster.nodes if n != leader_id}
    for follower_id, times in heard.items():
        follower = cluster.nodes[follower_id]
        receive = follower.receive

        def listen(
            message: Message, *rest: Any, receive: Any = receive, times: list[float] = times
        ) -> None:
            if isinstance(message, AppendEntries | Heartbeat) and message.src == leader_id:
                times.append(loop.time())
            receive(message, *rest)

        follower.receive = listen  # type: ignore[method-assign]
    return heard
