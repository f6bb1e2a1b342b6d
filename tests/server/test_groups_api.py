"""The HTTP API of a node hosting several Raft groups: every group in /v1/status and
/v1/members, membership changes in every group through each leader, reported per group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from agree import Node
from agree.server.app import create_app
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter, KVStore

OBJECTS = {"counter": Counter, "kv": KVStore}
GROUPS = {"other": ["kv"]}


async def leaders(cluster: MemoryCluster) -> tuple[Node, Node, Node]:
    """The leaders of "default" and "other" (different nodes), and the third node."""
    first = await cluster.wait_leader(group="default")
    second = next(n for n in cluster.running() if n is not first)
    await first.transfer_leader(second.id, group="other", timeout=10)
    # An election or a transfer ends once the leader (or the old one) knows it; the third node
    # may not have heard from the leader yet.
    await cluster.wait_until(
        lambda: all(
            (n.status("default").leader_id, n.status("other").leader_id) == (first.id, second.id)
            for n in cluster.running()
        ),
        what="every node following both leaders",
    )
    third = next(n for n in cluster.running() if n not in (first, second))
    return first, second, third


async def answer(client: TestClient[Any, Any], method: str, path: str, **kw: Any) -> Any:
    async with client.request(method, path, **kw) as response:
        body = await response.json()
        assert response.status == 200, body
        return body


async def test_every_group_in_status_and_members(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS, GROUPS=GROUPS) as cluster:
        first, second, third = await leaders(cluster)
        await third.proxy("kv").set("a", "1")
        async with TestClient(TestServer(create_app(third, start_node=False))) as client:
            status = await answer(client, "GET", "/v1/status")
            # The top level stays the "default" group's, as before.
            assert status["leader_id"] == first.id and status["role"] == "follower"
            assert set(status["groups"]) == {"default", "other"}
            other = status["groups"]["other"]
            assert other["leader_id"] == second.id
            assert other["leader_url"] == cluster.addresses[second.id]
            assert other["commit_index"] >= other["applied_index"] >= 1
            assert other["term"] == second.status("other").term
            assert status["groups"]["default"]["commit_index"] == status["commit_index"]

            members = await answer(client, "GET", "/v1/members")
            assert sorted(members["members"]) == ["n1", "n2", "n3"]
            assert members["groups"]["other"]["leader_id"] == second.id
            assert sorted(members["groups"]["other"]["members"]) == ["n1", "n2", "n3"]


async def test_membership_and_leadership_through_any_node(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS, GROUPS=GROUPS) as cluster:
        first, second, third = await leaders(cluster)
        url = "http://127.0.0.1:7004"  # a learner needs no process to be added
        async with TestClient(TestServer(create_app(third, start_node=False))) as client:
            body = {"id": "n4", "url": url, "learner": True, "timeout": 10}
            added = await answer(client, "POST", "/v1/members", json=body)
            assert {g: info["change"] for g, info in added["groups"].items()} == {
                "default": "added",
                "other": "added",
            }
            for group_id, leader in (("default", first), ("other", second)):
                assert "n4" in leader.status(group_id).learners
            again = await answer(client, "POST", "/v1/members", json=body)
            assert {info["change"] for info in again["groups"].values()} == {"unchanged"}

            removed = await answer(client, "DELETE", "/v1/members/n4?group=other")
            assert removed["groups"]["other"]["change"] == "removed"
            assert "change" not in removed["groups"]["default"]
            assert "n4" not in second.status("other").members
            assert "n4" in first.status("default").learners

            moved = await answer(
                client, "POST", "/v1/leader", json={"id": third.id, "group": "other"}
            )
            assert moved == {"leader_id": third.id, "group": "other"}
            # Each node's view follows once it has handled the change (the new leader's own
            # once its first Ready as leader is persisted).
            await cluster.wait_until(
                lambda: cluster.leader("other") is third, what="third leading 'other'"
            )
            assert cluster.leader("default") is first

            async with client.post("/v1/leader", json={"id": "n1", "group": "nope"}) as response:
                error = (await response.json())["error"]
                assert response.status == 400 and "no Raft group 'nope'" in error["message"]
