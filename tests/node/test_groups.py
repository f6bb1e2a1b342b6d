"""Several Raft groups in one node process: each its own objects, leader and log, sharing one
storage (one transaction per loop turn), one ticker and one peer connection per node."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import pytest

from agree import Node
from agree.backup import restore_backup, take_backup
from agree.conf.settings import Settings
from agree.errors import (
    AgreeTimeoutError,
    ConfigurationError,
    SchemaMismatchError,
    UnknownObjectError,
)
from agree.raft.ready import Role
from agree.storage import MemoryStorage
from agree.storage.base import GroupWrite
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter, KVStore
from agree.wire.backup import decode_backup

OBJECTS = {"counter": Counter, "kv": KVStore}
GROUPS = {"other": ["kv"]}


async def separate_leaders(cluster: MemoryCluster) -> tuple[Node, Node]:
    """The leaders of "default" and "other", made different nodes by a transfer."""
    first = await cluster.wait_leader(group="default")
    second = await cluster.wait_leader(group="other")
    if second is first:
        target = next(n for n in cluster.running() if n is not first)
        await first.transfer_leader(target.id, group="other", timeout=10)
        await cluster.wait_until(
            lambda: cluster.leader("other") is target, what="the transfer of other"
        )
        second = target
    assert cluster.leader("default") is first
    return first, second


async def commands_on_both(cluster: MemoryCluster, via: Node, n: int) -> None:
    counter, kv = via.proxy("counter"), via.proxy("kv")
    for i in range(n):
        await counter.add(1)
        await kv.set(f"k{i}", str(i))


async def logged_objects(node: Node, group_id: str) -> set[str]:
    """The objects named by the commands in a group's log on ``node``."""
    group = node.groups[group_id]
    entries = await group.view.entries(1, group.host.applied_index + 1)
    names = set()
    for entry in entries:
        for name in OBJECTS:
            if f'"{name}"'.encode() in entry.data:
                names.add(name)
    return names


@pytest.mark.parametrize(
    "backend", ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_two_groups_with_their_own_leaders_and_logs(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("per_node_url") if backend == "postgres" else None
    # In memory: each node's storage outlives its stops, as a database would.
    memory = {node_id: MemoryStorage() for node_id in ("n1", "n2", "n3")}
    async with MemoryCluster(
        tmp_path,
        OBJECTS,
        database_url=url,
        storage=memory.__getitem__ if backend == "memory" else None,
        GROUPS=GROUPS,
        SNAPSHOT_ENTRIES=4,
    ) as cluster:
        first, second = await separate_leaders(cluster)
        assert first is not second
        # One ticker per node drives both groups' drivers.
        names = [task.get_name() for task in asyncio.all_tasks()]
        assert sorted(n for n in names if n.startswith("agree-ticker")) == [
            "agree-ticker-n1",
            "agree-ticker-n2",
            "agree-ticker-n3",
        ]
        assert len([n for n in names if n.startswith("agree-driver")]) == 6
        for node in cluster.running():
            assert sorted(node.groups) == ["default", "other"]
            assert node.groups["default"].objects == ["counter"]
            assert node.groups["other"].objects == ["kv"]
        # Each leader serves its own group's objects and forwards the other's.
        await commands_on_both(cluster, first, 5)
        await commands_on_both(cluster, second, 5)
        assert first.status("default").term >= 1 and second.status("other").role is Role.LEADER
        for node in cluster.running():
            await node.wait_ready(10)
            assert await node.proxy("counter").get() == 10
            assert await node.proxy("kv").get("k4") == "4"
            # Two logs, each compacted by its own snapshots: each holds its own group's
            # commands only.
            assert await logged_objects(node, "default") <= {"counter"}
            assert await logged_objects(node, "other") <= {"kv"}
            for group in node.groups.values():
                snapshot = await group.view.snapshot()
                assert snapshot is not None and snapshot.meta.index >= 4
        # Both groups' logs in each node's one database.
        for node in cluster.running():
            assert node._storage is not None
            assert await node._storage.group_ids() == ["default", "other"]
        for node_id in list(cluster.ids):
            await cluster.restart_node(node_id)
        for node in cluster.running():
            await node.wait_ready(10)
            assert await node.proxy("counter").get() == 10
            assert await node.proxy("kv").get("k0") == "0"
        await separate_leaders(cluster)
        leader = await cluster.wait_leader(group="other")
        assert await leader.proxy("kv").set("after", "1") is None
        assert await leader.proxy("counter").add(1) == 11


async def test_one_transaction_carries_every_group_of_a_loop_turn(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS, size=1, GROUPS=GROUPS) as cluster:
        node = cluster.nodes["n1"]
        await node.wait_ready(10)
        assert node._storage is not None and node._batcher is not None
        storage = node._storage.storage
        commits: list[Mapping[str, GroupWrite]] = []
        save_groups = storage.save_groups

        def counting(writes: Mapping[str, GroupWrite]) -> None:
            commits.append(dict(writes))
            save_groups(writes)

        storage.save_groups = counting  # type: ignore[method-assign]
        before = node._batcher.transactions
        # Proposed in the same turn of the loop: both groups' entries in one transaction.
        added, was_set = await asyncio.gather(
            node.proxy("counter").add(3), node.proxy("kv").set("k", "v")
        )
        assert (added, was_set) == (3, None)
        both = [c for c in commits if set(c) == {"default", "other"}]
        assert both, commits
        assert all(w.entries for w in both[0].values())
        assert node._batcher.transactions - before == len(commits)
        assert sum(len(c) for c in commits) > len(commits)


def test_groups_are_validated_with_clear_errors(tmp_path: Path) -> None:
    base = dict(NODE_ID="n1", DATABASE_URL=f"sqlite:///{tmp_path}/n1.db")
    with pytest.raises(ConfigurationError, match="'kv' is in two groups"):
        Settings(**base, GROUPS={"a": ["kv"], "b": ["kv"]})
    with pytest.raises(ConfigurationError, match="names no object"):
        Settings(**base, GROUPS={"a": []})
    with pytest.raises(ConfigurationError, match="invalid group id"):
        Settings(**base, GROUPS={"no/slash": ["kv"]})


async def test_a_group_naming_an_object_not_hosted_is_refused(tmp_path: Path) -> None:
    node = Node(
        NODE_ID="n1",
        DATABASE_URL=f"sqlite:///{tmp_path}/n1.db",
        AUTO_MIGRATE=True,
        GROUPS={"other": ["nope"]},
        objects={"counter": Counter()},
    )
    with pytest.raises(ConfigurationError, match=r"GROUPS\['other'\] names 'nope'"):
        await node.start()


async def test_a_call_goes_to_the_group_hosting_its_object(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS, size=1, GROUPS=GROUPS) as cluster:
        node = cluster.nodes["n1"]
        await node.wait_ready(10)
        await node.proxy("kv").set("a", "1")
        assert node.status("other").applied_index > 0
        before = node.status("default").last_index
        await node.proxy("kv").set("b", "2")
        assert node.status("default").last_index == before
        with pytest.raises(UnknownObjectError, match="hosted: counter, kv"):
            node.proxy("nope")


async def test_a_new_node_joins_every_group_through_each_leader(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS, GROUPS=GROUPS) as cluster:
        first, second = await separate_leaders(cluster)
        await commands_on_both(cluster, first, 3)
        n4 = await cluster.add_node("n4", timeout=10)
        assert cluster.leader("other") is second  # it added n4 to its group
        for group_id in ("default", "other"):
            leader = await cluster.wait_leader(group=group_id)
            assert "n4" in leader.status(group_id).voters
        await n4.wait_ready(10)
        assert await n4.proxy("counter").get() == 3
        assert await n4.proxy("kv").get("k2") == "2"


async def test_membership_changes_every_group_through_its_leader(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS, GROUPS=GROUPS) as cluster:
        first, second = await separate_leaders(cluster)
        bystander = next(n for n in cluster.running() if n not in (first, second))
        await commands_on_both(cluster, first, 3)
        # Asked of a node that leads neither group: each change is forwarded to its leader.
        n4 = await cluster.add_node("n4", timeout=10, via=bystander)
        for group_id, leader in (("default", first), ("other", second)):
            assert "n4" in leader.status(group_id).voters
        # A retry (say, after a timeout) changes nothing and says so.
        again = await bystander.add_member("n4", cluster.addresses["n4"], timeout=10)
        assert again == {"default": "unchanged", "other": "unchanged"}
        await n4.wait_ready(10)
        assert await n4.proxy("kv").get("k2") == "2"

        assert await bystander.remove_member("n4", timeout=10) == {
            "default": "removed",
            "other": "removed",
        }
        for group_id, leader in (("default", first), ("other", second)):
            assert "n4" not in leader.status(group_id).members
        assert await first.remove_member("n4", timeout=10) == {
            "default": "unchanged",
            "other": "unchanged",
        }


async def test_a_failure_in_one_group_names_it_and_a_retry_is_safe(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS, GROUPS=GROUPS) as cluster:
        first, second = await separate_leaders(cluster)
        n4 = "http://127.0.0.1:7004"  # no process runs there
        await first.add_member("n4", n4, learner=True, timeout=10, group="default")
        await second.add_member("n4", n4, learner=True, timeout=10, group="other")
        await cluster.wait_until(
            lambda: "n4" in first.status("other").learners, what="n4 a learner of other"
        )
        await first.remove_member("n4", timeout=10, group="other")
        # n4 is now a learner of "default" only; it cannot be a voter, its process is not
        # running: the promotion times out in "default", the first group changed.
        with pytest.raises(AgreeTimeoutError, match=r"group .default.: .*did not catch up"):
            await first.add_member("n4", n4, timeout=2)
        assert "n4" in first.status("default").learners
        # Added as a learner everywhere, retried as a whole: "default" changes nothing.
        assert await first.add_member("n4", n4, learner=True, timeout=10) == {
            "default": "unchanged",
            "other": "added",
        }


async def test_transfer_leader_of_a_group_asked_of_any_node(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS, GROUPS=GROUPS) as cluster:
        first, second = await separate_leaders(cluster)
        bystander = next(n for n in cluster.running() if n not in (first, second))
        await bystander.transfer_leader(bystander.id, group="other", timeout=10)
        assert cluster.leader("other") is bystander
        assert cluster.leader("default") is first
        with pytest.raises(UnknownObjectError, match="no Raft group 'third'"):
            await bystander.transfer_leader(first.id, group="third", timeout=10)


async def test_mutations_of_an_object_in_another_group(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS, GROUPS=GROUPS) as cluster:
        _, second = await separate_leaders(cluster)
        node = next(n for n in cluster.running() if n is not second)
        seen = []
        stream = node.mutations("kv")
        await commands_on_both(cluster, node, 2)
        async for mutation in stream:
            seen.append(mutation)
            if len(seen) == 2:
                break
        assert [m.object for m in seen] == ["kv", "kv"]
        assert seen[0].index < seen[1].index


async def test_a_backup_holds_every_group_and_a_restore_writes_each(tmp_path: Path) -> None:
    paths = {"counter": "agree.testing.models.Counter", "kv": "agree.testing.models.KVStore"}
    settings = {"GROUPS": GROUPS, "OBJECTS": paths}
    async with MemoryCluster(tmp_path / "a", OBJECTS, **settings) as cluster:
        first, second = await separate_leaders(cluster)
        await commands_on_both(cluster, second, 3)
        # Taken by the leader of "default"; "other" is led by another node.
        data = await take_backup(first, 10)
    backup = decode_backup(data)
    states = backup.states()
    assert data.startswith(b"AGREE-BACKUP 2\n")
    assert {g: sorted(s.objects) for g, s in states.items()} == {
        "default": ["counter"],
        "other": ["kv"],
    }

    restored = MemoryCluster(tmp_path / "b", OBJECTS, **settings)
    (tmp_path / "b").mkdir()
    for node_id in restored.ids:
        written = restore_backup(restored.node_settings(node_id), data)
        assert written.groups == {g: s.index for g, s in states.items()}
    async with restored:
        node = await restored.wait_leader(group="other")
        await node.wait_ready(10)
        # Every command acknowledged before the backup is in it, in each group.
        assert await node.proxy("kv").get("k2") == "2"
        assert await node.proxy("counter").get() == 3
        for group_id, state in states.items():
            assert node.status(group_id).applied_index >= state.index

    # Restored into settings that place "kv" elsewhere: refused, saying which group.
    settings_elsewhere = MemoryCluster(tmp_path / "c", OBJECTS, OBJECTS=paths)
    with pytest.raises(SchemaMismatchError, match="'kv' is in group 'other' in the backup"):
        restore_backup(settings_elsewhere.node_settings("n1"), data)
