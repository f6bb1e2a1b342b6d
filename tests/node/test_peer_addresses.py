"""NODES says how *this* node reaches each member: it takes precedence over the addresses
replicated in the membership, which are whichever node's view proposed or snapshotted them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter


async def test_a_node_keeps_its_own_addresses_after_a_snapshot_and_a_membership_change(
    tmp_path: Path,
) -> None:
    # Regression (found by agree.testing.chaos, where each node reaches the others through its
    # own proxies): after installing the leader's snapshot, a node dialled the members at the
    # leader's addresses on the next membership change, and learned nothing from the snapshot
    # itself.
    cluster = MemoryCluster(tmp_path, {"counter": Counter}, SNAPSHOT_ENTRIES=5)
    await cluster.start(only=["n1", "n3"])
    try:
        leader = await cluster.wait_leader(among=["n1", "n3"])
        for _ in range(20):
            await leader.proxy("counter").add(1)
        view = {
            "n1": "http://n2-to-n1.example:1",
            "n2": cluster.addresses["n2"],
            "n3": "http://n2-to-n3.example:1",
        }
        n2 = cluster.nodes["n2"] = cluster._new_node("n2", nodes=view)
        seen: list[dict[str, str]] = []
        assert n2._transport is not None
        original = n2._transport.update_peers

        def record(addresses: Mapping[str, str]) -> None:
            seen.append(dict(addresses))
            original(addresses)

        n2._transport.update_peers = record  # type: ignore[method-assign]
        await n2.start()
        await cluster.wait_applied(leader.host.applied_index, among=["n2"])
        assert n2.host.applied_index >= 20  # it caught up, from a snapshot (the log was compacted)
        await cluster.add_node("n4")
        await cluster.wait_applied(leader.host.applied_index, among=["n2"])
        assert "n4" in seen[-1]
        assert seen[-1]["n1"] == view["n1"] and seen[-1]["n3"] == view["n3"]
    finally:
        await cluster.stop()
