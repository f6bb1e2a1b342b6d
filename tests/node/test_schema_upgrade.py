"""Upgrading code: a compatible extension is adopted through the log once every member runs it;
an incompatible change is refused at start with what differs (agree.replica.cluster_schema)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import agree
from agree import Replicated, SchemaMismatchError, UnknownMethodError, command, query
from agree.objects.mutation import Mutation
from agree.testing.cluster import MemoryCluster
from agree.testing.models import KVStore
from agree.wire.calls import Call, CallKind
from agree.wire.codec import CommandRecord, encode_command


class Counter(Replicated):
    def __init__(self) -> None:
        self.value = 0

    @command
    def add(self, n: int = 1) -> int:
        self.value += n
        return self.value

    @query
    def get(self) -> int:
        return self.value


class CounterWithReset(Counter):
    """Version 2: a new command."""

    @command
    def reset(self) -> int:
        self.value = 0
        return self.value


class CounterWithTimes(Replicated):
    """Version 2: ``add`` gains a parameter whose default means the old behaviour."""

    def __init__(self) -> None:
        self.value = 0

    @command
    def add(self, n: int = 1, times: int = 1) -> int:
        self.value += n * times
        return self.value

    @query
    def get(self) -> int:
        return self.value


class CounterWithoutAdd(Replicated):
    def __init__(self) -> None:
        self.value = 0

    @query
    def get(self) -> int:
        return self.value


class CounterRetyped(Replicated):
    def __init__(self) -> None:
        self.value = 0

    @command
    def add(self, n: str = "1") -> int:
        self.value += int(n)
        return self.value

    @query
    def get(self) -> int:
        return self.value


# -- embedded: one node reopened with new code ---------------------------------------------------


def test_reopening_with_an_added_command_makes_it_callable(tmp_path: Path) -> None:
    with agree.wrap(Counter(), path=tmp_path) as c:
        assert c.add(5) == 5
    with agree.wrap(CounterWithReset(), path=tmp_path) as c:
        assert c.get() == 5
        assert c.reset() == 0
        assert c.add(2) == 2
    with agree.wrap(CounterWithReset(), path=tmp_path) as c:  # and again, replaying it
        assert c.get() == 2


def test_reopening_with_an_added_parameter_with_a_default(tmp_path: Path) -> None:
    with agree.wrap(Counter(), path=tmp_path, SNAPSHOT_ENTRIES=10_000) as c:
        c.add(2)
    with agree.wrap(CounterWithTimes(), path=tmp_path) as c:
        assert c.get() == 2
        assert c.add(3, times=2) == 8
        assert c.add(1) == 9


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (
            CounterWithoutAdd,
            "command 'add' is recorded by the cluster but missing here (removed or renamed)",
        ),
        (CounterRetyped, "'add': parameter 'n' type str here, int recorded"),
    ],
)
def test_reopening_with_an_incompatible_change_is_refused(
    tmp_path: Path, cls: type[Replicated], expected: str
) -> None:
    with agree.wrap(Counter(), path=tmp_path) as c:
        c.add(1)
    with pytest.raises(SchemaMismatchError) as info:
        agree.wrap(cls(), path=tmp_path)
    message = str(info.value)
    assert expected in message
    assert f"object 'default' (class {cls.__qualname__})" in message
    assert "docs/upgrades.md" in message  # what to do
    with agree.wrap(Counter(), path=tmp_path) as c:  # the old code still opens it
        assert c.get() == 1


# -- a rolling upgrade of a three-node cluster ---------------------------------------------------


async def _eventually(action: Any, deadline: float) -> Any:
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await action()
        except UnknownMethodError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.02)


async def test_rolling_upgrade_adopts_a_new_command_once_every_member_runs_it(
    tmp_path: Path,
) -> None:
    cluster = MemoryCluster(tmp_path, {"counter": Counter})
    await cluster.start()
    applied_by_old_code: list[Mutation] = []
    try:
        leader = await cluster.wait_leader()
        old_id = leader.id
        leader.subscribe(applied_by_old_code.append)
        assert await leader.proxy("counter").add(3) == 3
        followers = sorted(n for n in cluster.nodes if n != old_id)
        for i, follower in enumerate(followers):
            cluster.node_objects[follower] = {"counter": CounterWithReset}
            node = await cluster.restart_node(follower)
            await node.wait_ready()
            await cluster.wait_applied(node.host.applied_index)  # its announcement, everywhere
            assert node.failure is None
            # Its old operations work alongside the old nodes.
            assert await node.proxy("counter").add(1) == 4 + i
            with pytest.raises(UnknownMethodError) as info:
                await node.proxy("counter").reset()
            message = str(info.value)
            assert "has not adopted 'reset'" in message and "(nothing was proposed)" in message
            lacking = [old_id, *followers[i + 1 :]]
            assert all(f"'{n}'" in message for n in lacking), message
            assert f"'{follower}'" not in message
        # The old leader's code knows no "reset": nothing of it was ever committed for it.
        await cluster.wait_applied(cluster.nodes[old_id].host.applied_index)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(applied_by_old_code) < 3 and loop.time() < deadline:  # delivered in a thread
            await asyncio.sleep(0.02)
        assert [m.method for m in applied_by_old_code] == ["add", "add", "add"]
        assert all(m.error is None for m in applied_by_old_code)
        # Last, the leader: a follower running the new code takes over.
        cluster.node_objects[old_id] = {"counter": CounterWithReset}
        node = await cluster.restart_node(old_id)
        await node.wait_ready()
        assert await _eventually(lambda: node.proxy("counter").reset(), loop.time() + 10) == 0
        assert await node.proxy("counter").add(7) == 7
        await cluster.wait_applied((await cluster.wait_leader()).host.applied_index)
        assert {n.host.objects["counter"].value for n in cluster.running()} == {7}  # type: ignore[attr-defined]
        assert all(n.failure is None for n in cluster.running())
    finally:
        await cluster.stop()


async def test_a_command_the_cluster_has_not_adopted_is_refused_alike_by_every_replica(
    tmp_path: Path,
) -> None:
    """Proposed without the entry node's check (e.g. by a node of an older agree), it applies
    as the same error everywhere: no replica runs it, whatever its code."""
    cluster = MemoryCluster(tmp_path, {"counter": Counter})
    await cluster.start()
    try:
        await (await cluster.wait_leader()).proxy("counter").add(2)
        cluster.node_objects["n1"] = {"counter": CounterWithReset}
        await (await cluster.restart_node("n1")).wait_ready()
        leader = await cluster.wait_leader()
        record = CommandRecord(
            object="counter", method="reset", args=[], kwargs={}, client_id="raw", seq=1,
            ack=0, timestamp_ns=1,
        )
        outcome = await leader.driver.propose(encode_command(record))
        assert outcome.error is not None and outcome.error.type.endswith(":UnknownMethodError")
        assert "has not adopted 'reset'" in outcome.error.message
        assert "refused as it applied, by every replica alike" in outcome.error.message
        await cluster.wait_applied(outcome.index)
        assert {n.host.objects["counter"].value for n in cluster.running()} == {2}  # type: ignore[attr-defined]
    finally:
        await cluster.stop()


async def test_a_new_parameter_is_refused_until_every_member_has_it(tmp_path: Path) -> None:
    cluster = MemoryCluster(tmp_path, {"counter": Counter})
    await cluster.start()
    try:
        await (await cluster.wait_leader()).wait_ready()
        cluster.node_objects["n1"] = {"counter": CounterWithTimes}
        n1 = await cluster.restart_node("n1")
        await n1.wait_ready()
        assert await n1.proxy("counter").add(2) == 2  # without the new parameter: fine
        with pytest.raises(UnknownMethodError, match="parameter\\(s\\) times"):
            await n1.proxy("counter").add(1, times=3)
        call = Call("counter", "add", CallKind.COMMAND, args=[1, 3])
        with pytest.raises(UnknownMethodError, match="#2 \\(positional\\)"):
            await n1.call(call)
        for node_id in ("n2", "n3"):
            cluster.node_objects[node_id] = {"counter": CounterWithTimes}
            await (await cluster.restart_node(node_id)).wait_ready()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            try:
                assert await n1.proxy("counter").add(1, times=3) == 5
                break
            except UnknownMethodError:
                assert loop.time() < deadline
                await asyncio.sleep(0.02)
    finally:
        await cluster.stop()


async def test_a_new_object_is_callable_once_every_member_hosts_it(tmp_path: Path) -> None:
    cluster = MemoryCluster(tmp_path, {"counter": Counter})
    await cluster.start()
    try:
        await (await cluster.wait_leader()).wait_ready()
        for i, node_id in enumerate(("n1", "n2", "n3")):
            cluster.node_objects[node_id] = {"counter": Counter, "kv": KVStore}
            node = await cluster.restart_node(node_id)
            await node.wait_ready()
            await cluster.wait_applied(node.host.applied_index)
            if i < 2:
                with pytest.raises(UnknownMethodError) as info:
                    await node.proxy("kv").set("a", "1")
                assert "has not adopted the object 'kv'" in str(info.value)
                assert "'n3'" in str(info.value) and f"'{node_id}'" not in str(info.value)
                assert all(n.failure is None for n in cluster.running())
        loop = asyncio.get_running_loop()
        kv = cluster.nodes["n2"].proxy("kv")
        await _eventually(lambda: kv.set("a", "1"), loop.time() + 10)
        assert await kv.get("a") == "1"
    finally:
        await cluster.stop()


async def test_removing_the_last_old_member_adopts_what_the_others_run(tmp_path: Path) -> None:
    cluster = MemoryCluster(tmp_path, {"counter": Counter})
    await cluster.start()
    try:
        await (await cluster.wait_leader()).wait_ready()
        for node_id in ("n1", "n2"):
            cluster.node_objects[node_id] = {"counter": CounterWithReset}
            await (await cluster.restart_node(node_id)).wait_ready()
        n1 = cluster.nodes["n1"]
        await cluster.wait_applied(cluster.nodes["n2"].host.applied_index)
        with pytest.raises(UnknownMethodError, match="nodes 'n3' have not announced"):
            await n1.proxy("counter").reset()
        await cluster.stop_node("n3")
        leader = await cluster.wait_leader(among=["n1", "n2"])
        await leader.remove_member("n3")
        loop = asyncio.get_running_loop()
        assert await _eventually(lambda: n1.proxy("counter").reset(), loop.time() + 10) == 0
    finally:
        await cluster.stop()
