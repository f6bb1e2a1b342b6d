"""A 3-node cluster of real ``runnode`` processes: writes survive SIGKILLed leaders exactly once,
membership changes and leader transfer from the client, and a clean SIGTERM with calls stuck in
flight."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import aiohttp
import pytest
from processes import ProcessCluster, free_ports, http

import agree


def _tags_on(cluster: ProcessCluster, node_id: str) -> list[str]:
    """Every tag on ``node_id`` after a linearizable read there (ReadIndex on a follower)."""
    status, body = http(
        "POST", cluster.urls[node_id] + "/v1/objects/ledger/all_tags", {"timeout": 10}
    )
    assert status == 200, body
    return list(body["result"])


async def _write_while_killing_leaders(cluster: ProcessCluster, total: int, kills: int) -> None:
    acked: list[str] = []
    unknown: list[str] = []
    sent: list[str] = []
    killed = 0

    async with agree.AsyncClient(list(cluster.urls.values()), timeout=15.0) as client:
        ledger = client.proxy("ledger")

        async def writer(worker: int) -> None:
            for i in range(worker, total, 4):
                tag = f"t{i}"
                sent.append(tag)
                try:
                    await ledger.append(tag)
                except agree.OutcomeUnknownError:
                    unknown.append(tag)
                else:
                    acked.append(tag)

        async def killer() -> None:
            nonlocal killed
            for round_ in range(kills):
                while len(acked) < (round_ + 1) * total // (kills + 2):
                    await asyncio.sleep(0.01)
                leader = await asyncio.to_thread(cluster.leader)
                cluster.kill(leader)
                killed += 1
                await asyncio.sleep(0.3)
                cluster.start(leader)

        await asyncio.gather(killer(), *(writer(w) for w in range(4)))
    assert killed == kills
    await asyncio.to_thread(cluster.wait_ready, cluster.ids, 60)
    lists = {node_id: _tags_on(cluster, node_id) for node_id in cluster.ids}
    reference = lists[cluster.ids[0]]
    for node_id, tags in lists.items():
        assert tags == reference, f"{node_id} differs"
    assert len(reference) == len(set(reference)), "a command applied twice"
    assert set(acked) <= set(reference), "an acknowledged command is missing"
    assert set(reference) <= set(sent), "a command that was never sent is present"
    # A command whose outcome was unknown is there at most once (checked above), and every
    # other sent command was acknowledged.
    assert set(sent) - set(acked) <= set(unknown)


def test_leader_sigkilled_twice_while_writing_sqlite(
    process_cluster: Callable[..., ProcessCluster],
) -> None:
    cluster = process_cluster(3, SNAPSHOT_ENTRIES=100)
    cluster.start_all()
    asyncio.run(_write_while_killing_leaders(cluster, total=300, kills=2))


@pytest.mark.postgres
def test_leader_sigkilled_while_writing_postgres(
    process_cluster: Callable[..., ProcessCluster], per_node_url: str
) -> None:
    cluster = process_cluster(3, database_url=per_node_url, SNAPSHOT_ENTRIES=100)
    cluster.start_all()
    asyncio.run(_write_while_killing_leaders(cluster, total=150, kills=1))


def test_membership_and_leader_transfer_from_the_client(
    process_cluster: Callable[..., ProcessCluster],
) -> None:
    cluster = process_cluster(3, SNAPSHOT_ENTRIES=20)
    cluster.start_all()
    (port,) = free_ports(1)
    n4 = f"http://127.0.0.1:{port}"
    with agree.Client(list(cluster.urls.values()), timeout=20.0) as client:
        ledger = client.proxy("ledger")
        for i in range(50):  # past SNAPSHOT_ENTRIES: the new node catches up from a snapshot
            ledger.append(f"a{i}")
        # Leadership moves where asked.
        leader = client.status()["leader_id"]
        _, metrics = http("GET", cluster.urls[leader] + "/metrics")
        for peer in cluster.ids:
            if peer != leader:
                assert f'agree_network_peer_sent_failures_total{{To="{peer}"}}' in metrics
        target = next(node_id for node_id in cluster.ids if node_id != leader)
        client.transfer_leader(target)
        assert cluster.leader() == target
        # A fourth node, started empty with --join, is added, catches up, and votes.
        cluster.urls["n4"] = n4
        cluster.start("n4", "--join", overrides={"NODES": dict(cluster.urls)})
        client.add_member("n4", n4)
        members = client.members()
        assert members["n4"] == {"url": n4, "role": "voter"}
        ledger.append("after-join")
        cluster.wait_ready(["n4"])
        assert _tags_on(cluster, "n4")[-1] == "after-join"
        assert len(_tags_on(cluster, "n4")) == 51
        # And removed again (here the current leader itself).
        client.remove_member(target)
        deadline = time.monotonic() + 15
        while target in client.members() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(client.members()) == sorted(set(cluster.urls) - {target})
        assert ledger.append("after-remove") == 52


async def test_sigterm_answers_calls_stuck_in_flight(
    process_cluster: Callable[..., ProcessCluster],
) -> None:
    cluster = process_cluster(3, REQUEST_TIMEOUT=1.0)
    await asyncio.to_thread(cluster.start_all)
    leader = await asyncio.to_thread(cluster.leader)
    for node_id in cluster.ids:
        if node_id != leader:
            cluster.kill(node_id)  # no quorum: commands cannot commit
    base = cluster.urls[leader]
    async with aiohttp.ClientSession() as session:

        async def post(i: int) -> tuple[int, dict[str, object]]:
            body = {"args": [f"stuck{i}"], "client_id": "c", "seq": i + 1, "timeout": 60}
            async with session.post(base + "/v1/objects/ledger/append", json=body) as resp:
                return resp.status, await resp.json()

        calls = [asyncio.create_task(post(i)) for i in range(5)]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until all five are in flight on the node
            _, text = await asyncio.to_thread(http, "GET", base + "/metrics")
            if "agree_server_proposals_pending 5.0" in text:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the calls never got in flight")
        cluster.signal(leader, signal.SIGTERM)
        # Every call is answered, explicitly, long before its own 60 s deadline.
        answers = await asyncio.wait_for(asyncio.gather(*calls), 20)
    for status, body in answers:
        assert status in (503, 504), body
        assert body["error"]["type"] in ("outcome_unknown", "unavailable")  # type: ignore[index]
    code = await asyncio.to_thread(cluster.procs[leader].wait, 15)
    assert code == 0, cluster.log(leader)
