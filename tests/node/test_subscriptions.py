"""Subscriptions on a running cluster: filtered async iterators, resuming from an index on any
node, slow subscribers cut off without holding up commands, ordered callbacks, cancellation."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from agree.errors import SubscriptionOverflowError
from agree.objects.mutation import Mutation
from agree.replica.subscriptions import MutationRecord, MutationStream, SubscriptionHub
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter, KVStore

OBJECTS = {"counter": Counter, "kv": KVStore}
WAIT = 5.0  # bound on any single wait for a mutation


async def _take(stream: MutationStream, n: int) -> list[Mutation]:
    return [await asyncio.wait_for(anext(stream), WAIT) for _ in range(n)]


async def test_filtered_streams_get_their_mutations_in_log_order(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        adds = follower.mutations("counter", method="add")
        kv_all = follower.mutations("kv")
        everything = leader.mutations()
        c, kv = leader.proxy("counter"), cluster.nodes[follower.id].proxy("kv")
        await c.add(2)
        await kv.set("a", "1")
        with pytest.raises(ValueError):
            await c.add(-1)
        await kv.delete("a")
        await c.add(3)

        got = await _take(adds, 3)
        assert [(m.object, m.method, m.args) for m in got] == [
            ("counter", "add", (2,)),
            ("counter", "add", (-1,)),
            ("counter", "add", (3,)),
        ]
        assert [m.result for m in got] == [2, None, 5]
        assert got[0].error is None and got[2].error is None
        assert isinstance(got[1].error, ValueError) and "n must be >= 0" in str(got[1].error)
        assert got[0].index < got[1].index < got[2].index
        assert got[0].timestamp <= got[1].timestamp <= got[2].timestamp
        assert all(m.term >= 1 for m in got)

        kvs = await _take(kv_all, 2)
        assert [(m.method, m.args, m.result) for m in kvs] == [
            ("set", ("a", "1"), None),
            ("delete", ("a",), True),
        ]
        # The unfiltered stream on another node saw the same five, at the same indexes.
        all5 = await _take(everything, 5)
        assert [m.index for m in all5] == sorted(m.index for m in got + kvs)
        assert [(m.object, m.method) for m in all5] == [
            ("counter", "add"),
            ("kv", "set"),
            ("counter", "add"),
            ("kv", "delete"),
            ("counter", "add"),
        ]
        for s in (adds, kv_all, everything):
            s.close()
        with pytest.raises(StopAsyncIteration):
            await anext(adds)


async def test_resume_from_an_index_on_any_node(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        watch = leader.mutations("counter")
        c = leader.proxy("counter")
        for i in range(1, 7):
            await c.add(i)
        seen = await _take(watch, 6)
        watch.close()
        resume_at = seen[3].index
        await cluster.wait_applied(seen[-1].index)

        for node in cluster.nodes.values():  # indexes are the log's: the same everywhere
            stream = node.mutations("counter", from_index=resume_at)
            replay = await _take(stream, 3)
            assert [(m.index, m.args, m.result) for m in replay] == [
                (m.index, m.args, m.result) for m in seen[3:]
            ]
            # Past the history it goes on live.
            await c.add(100)
            live = await _take(stream, 1)
            assert live[0].args == (100,) and live[0].index > seen[-1].index
            stream.close()

        # A node restarted after a crash rebuilds its history by replaying the log.
        follower = next(n for n in cluster.ids if n != leader.id)
        restarted = await cluster.restart_node(follower, crash=True)
        await restarted.wait_ready(10)
        stream = restarted.mutations("counter", from_index=resume_at)
        replayed = [m.args for m in await _take(stream, 6)]
        assert replayed == [(4,), (5,), (6,), (100,), (100,), (100,)]
        stream.close()


def test_resuming_before_the_kept_history_is_refused() -> None:
    def decode(rec: MutationRecord) -> Any:
        return rec.index

    hub = SubscriptionHub(decode, history=3)
    for index in range(1, 6):
        hub.publish(MutationRecord("o", "m", [], {}, None, None, index, 1, 0))
    assert hub.oldest_index() == 3
    with pytest.raises(SubscriptionOverflowError) as info:
        hub.stream(from_index=2)
    assert info.value.last_index == 1
    s = hub.stream(from_index=3)
    assert [s._sub.queue[i].index for i in range(3)] == [3, 4, 5]


def test_resuming_from_before_the_first_mutation_loses_nothing() -> None:
    # Log indexes without a mutation (the founding configuration, no-ops, schema records) are
    # not dropped history: watching from index 1 works on a node that kept every mutation.
    def decode(rec: MutationRecord) -> Any:
        return rec.index

    hub = SubscriptionHub(decode, history=3)
    for index in (9, 12):
        hub.publish(MutationRecord("o", "m", [], {}, None, None, index, 1, 0))
    s = hub.stream(from_index=1)
    assert [rec.index for rec in s._sub.queue] == [9, 12]
    # Once a mutation was dropped, resuming from it or before is refused.
    for index in (13, 15):
        hub.publish(MutationRecord("o", "m", [], {}, None, None, index, 1, 0))
    with pytest.raises(SubscriptionOverflowError, match="before index 10") as info:
        hub.stream(from_index=9)
    assert info.value.last_index == 8
    assert [rec.index for rec in hub.stream(from_index=10)._sub.queue] == [12, 13, 15]
    none_kept = SubscriptionHub(decode, history=0)
    none_kept.publish(MutationRecord("o", "m", [], {}, None, None, 4, 1, 0))
    with pytest.raises(SubscriptionOverflowError, match="before index 5"):
        none_kept.stream(from_index=4)
    assert list(none_kept.stream(from_index=5)._sub.queue) == []


def test_resuming_ahead_of_this_node_skips_what_it_applies_before_the_resume_point() -> None:
    # Regression (found by agree.testing.chaos): a watcher resuming from index N on a node that
    # was behind (restarted, or re-added and catching up) got the mutations that node applied
    # below N -- ones it had already seen -- out of order.
    def decode(rec: MutationRecord) -> Any:
        return rec.index

    hub = SubscriptionHub(decode, history=3)
    for index in (1, 2):
        hub.publish(MutationRecord("o", "m", [], {}, None, None, index, 1, 0))
    s = hub.stream(from_index=6)
    for index in range(3, 9):
        hub.publish(MutationRecord("o", "m", [], {}, None, None, index, 1, 0))
    assert [rec.index for rec in s._sub.queue] == [6, 7, 8]


async def test_a_slow_stream_is_cut_off_and_commands_go_on(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        assert leader.groups["default"].hub is not None
        slow = leader.groups["default"].hub.stream("counter", maxsize=3)
        steady = leader.mutations("counter")
        c = leader.proxy("counter").options(timeout=WAIT)
        await c.add(1)
        first = await _take(slow, 1)
        for _ in range(10):  # the slow stream reads nothing meanwhile
            await c.add(1)
        # Every command completed; the slow reader was cut off, naming where to resume.
        with pytest.raises(SubscriptionOverflowError) as info:
            await asyncio.wait_for(anext(slow), WAIT)
        assert info.value.last_index == first[0].index
        assert [m.result for m in await _take(steady, 11)] == list(range(1, 12))
        resumed = leader.mutations("counter", from_index=info.value.last_index + 1)
        assert [m.result for m in await _take(resumed, 10)] == list(range(2, 12))


@pytest.mark.wall_clock  # its callback blocks a real thread while the loop goes on
async def test_a_blocked_callback_is_cut_off_and_commands_go_on(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        assert leader.groups["default"].hub is not None
        release = threading.Event()
        entered = threading.Event()

        def stuck(m: Mutation) -> None:
            entered.set()
            release.wait(WAIT)

        sub = leader.groups["default"].hub.subscribe(stuck, "counter", maxsize=2, in_thread=True)
        c = leader.proxy("counter").options(timeout=WAIT)
        try:
            await c.add(1)
            await asyncio.to_thread(entered.wait, WAIT)
            for _ in range(5):  # the callback is blocked in its thread all along
                await c.add(1)
            assert await c.get() == 6
            assert not sub.active
            assert isinstance(sub.error, SubscriptionOverflowError)
            assert sub.error.last_index > 0
        finally:
            release.set()


async def test_callbacks_in_order_and_cancel_stops_them(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        node = cluster.nodes[next(n for n in cluster.ids if n != leader.id)]
        loop = asyncio.get_running_loop()
        in_thread: list[Mutation] = []
        got_all = asyncio.Event()

        def on_add(m: Mutation) -> None:  # runs in a worker thread
            in_thread.append(m)
            if len(in_thread) == 20:
                loop.call_soon_threadsafe(got_all.set)

        on_loop: list[Mutation] = []

        async def on_any(m: Mutation) -> None:
            on_loop.append(m)

        sub = node.subscribe(on_add, "counter", "add")
        sub2 = node.subscribe(on_any)
        proxies = [n.proxy("counter") for n in cluster.nodes.values()]
        await asyncio.gather(*(proxies[i % 3].add(1) for i in range(20)))
        await asyncio.wait_for(got_all.wait(), WAIT)
        # Concurrent adds from three nodes: the callback saw them in the order they applied.
        assert [m.result for m in in_thread] == list(range(1, 21))
        assert [m.index for m in in_thread] == sorted(m.index for m in in_thread)
        await cluster.wait_until(lambda: len(on_loop) == 20, timeout=WAIT, what="async callback")
        assert [m.index for m in on_loop] == [m.index for m in in_thread]

        sub2.cancel()
        assert not sub2.active and sub2.error is None
        last = await proxies[0].add(1)
        # The still-subscribed callback gets the new add through a worker thread, which takes
        # longer than a delivery on the loop: had the cancelled one been offered it, it would
        # have run by then.
        await cluster.wait_until(lambda: len(in_thread) == 21, timeout=WAIT, what="callback")
        assert in_thread[-1].result == last
        assert len(on_loop) == 20
        sub.cancel()


async def test_a_snapshot_installed_under_a_live_stream_cuts_it_off(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}, SNAPSHOT_ENTRIES=10) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        stream = follower.mutations("counter")
        c = leader.proxy("counter")
        assert await c.add(1) == 1
        first = await _take(stream, 1)
        cluster.network.isolate(follower.id)
        for _ in range(30):  # the leader compacts past what the follower holds
            await c.add(1)
        cluster.network.heal()
        await c.add(1)
        await cluster.wait_applied(leader.host.applied_index)
        # The follower's state jumped over mutations its subscriber never saw: rather than a
        # silent gap, the stream is cut off at the last mutation it delivered.
        with pytest.raises(SubscriptionOverflowError) as info:
            await asyncio.wait_for(anext(stream), WAIT)
        assert info.value.last_index == first[0].index
        # This node cannot replay them; the leader, which applied them one by one, can.
        with pytest.raises(SubscriptionOverflowError):
            follower.mutations("counter", from_index=info.value.last_index + 1)
        resumed = leader.mutations("counter", from_index=info.value.last_index + 1)
        assert [m.result for m in await _take(resumed, 31)] == list(range(2, 33))


async def test_resuming_from_before_a_restored_snapshot_is_refused(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}) as cluster:
        leader = await cluster.wait_leader()
        c = leader.proxy("counter")
        for _ in range(5):
            await c.add(1)
        node_id = next(n for n in cluster.ids if n != leader.id)
        for n in cluster.running():  # each node's schema announcement is in the log
            await n.wait_ready(WAIT)
        await cluster.wait_applied(leader.host.applied_index)
        snap_index = await cluster.nodes[node_id].snapshot()
        node = await cluster.restart_node(node_id)
        await node.wait_ready(WAIT)
        # Restarted from the snapshot, it never published what came before it.
        with pytest.raises(SubscriptionOverflowError) as info:
            node.mutations("counter", from_index=1)
        assert info.value.last_index == 0
        with pytest.raises(SubscriptionOverflowError):
            node.mutations(from_index=snap_index)
        after = node.mutations("counter", from_index=snap_index + 1)
        assert await c.add(1) == 6
        assert [m.result for m in await _take(after, 1)] == [6]
