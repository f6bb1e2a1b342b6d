"""Stopping and starting the same node object: the state machine is rebuilt from storage
(snapshot + log), never replayed on top of the state it already holds.  A clean stop
snapshots first; a crash-like stop (``snapshot=False``) leaves the whole log to replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from agree import Node, Settings
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter

WAIT = 30.0  # generous: the machine may be loaded


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings.single_node(tmp_path, TICK_INTERVAL=0.01, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("crash", [False, True], ids=["clean", "crash"])
async def test_stop_then_start_keeps_the_state_and_the_next_snapshot(
    tmp_path: Path, crash: bool
) -> None:
    node = Node(_settings(tmp_path), objects={"counter": Counter()})
    await node.start()
    try:
        await node.wait_ready(WAIT)
        for _ in range(5):
            await node.proxy("counter").add(1)
        await node.stop(snapshot=not crash)
        await node.start()
        await node.wait_ready(WAIT)
        assert await node.proxy("counter").get() == 5
        assert await node.proxy("counter").add(1) == 6
        await node.snapshot()
    finally:
        await node.stop()
    # A new node on the same database starts from that snapshot.
    async with Node(_settings(tmp_path), objects={"counter": Counter()}) as again:
        await again.wait_ready(WAIT)
        assert again.status().applied_index >= 1
        assert await again.proxy("counter").get() == 6


async def test_the_objects_given_to_a_node_are_its_initial_state_not_its_live_state(
    tmp_path: Path,
) -> None:
    given = Counter()
    async with Node(_settings(tmp_path), objects={"counter": given}) as node:
        await node.wait_ready(WAIT)
        assert await node.proxy("counter").add(3) == 3
    assert given.value == 0


@pytest.mark.parametrize("crash", [False, True], ids=["clean", "crash"])
async def test_stop_node_then_start_node_keeps_replicas_equal(tmp_path: Path, crash: bool) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}) as cluster:
        leader = await cluster.wait_leader(WAIT)
        follower = next(n for n in cluster.ids if n != leader.id)
        for _ in range(5):
            await leader.proxy("counter").add(1)
        await cluster.wait_applied(leader.host.applied_index, WAIT)
        await cluster.stop_node(follower, crash=crash)
        await cluster.start_node(follower)
        leader = await cluster.wait_leader(WAIT)
        assert await leader.proxy("counter").add(1) == 6
        await cluster.wait_applied(leader.host.applied_index, WAIT)
        assert cluster.local_state("counter", lambda c: c.value) == {n: 6 for n in cluster.ids}
