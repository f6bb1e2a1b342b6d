"""A 3-node cluster whose nodes keep their logs in PostgreSQL (one schema per node)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter, KVStore

pytestmark = pytest.mark.postgres


async def test_cluster_on_postgres_replicates_snapshots_and_restarts(
    tmp_path: Path, per_node_url: str
) -> None:
    objects = {"counter": Counter, "kv": KVStore}
    async with MemoryCluster(
        tmp_path, objects, database_url=per_node_url, SNAPSHOT_ENTRIES=15
    ) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        c = follower.proxy("counter")
        for _ in range(40):
            await c.add(1)
        await follower.proxy("kv").set("k", "v")
        await cluster.wait_applied(leader.host.applied_index)
        for node_id in list(cluster.ids):
            await cluster.restart_node(node_id)
        for node in cluster.nodes.values():
            await node.wait_ready(10)
            assert await node.proxy("counter").get() == 40
            assert await node.proxy("kv").get("k") == "v"
            store = node._store
            assert store is not None
            snap = await store.snapshot()
            assert snap is not None and snap.meta.index >= 15
    # The state really lives in PostgreSQL, one schema per node.
    plain = per_node_url.split("?")[0].replace("postgresql+psycopg://", "postgresql://")
    schema = per_node_url.split("search_path%3D")[1].format(node_id="n2")
    with psycopg.connect(plain) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".agree_snapshot').fetchone()
    assert row is not None and row[0] >= 1
