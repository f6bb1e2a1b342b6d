"""A node whose code disagrees with the schema the cluster recorded is refused, with reasons."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agree import Replicated, SchemaMismatchError, command, query
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter


class CounterV2(Replicated):
    """Same object name, but ``add`` now takes a string: it would apply the log differently."""

    def __init__(self) -> None:
        self.value = 0

    @command
    def add(self, n: str = "1") -> int:
        self.value += int(n)
        return self.value

    @query
    def get(self) -> int:
        return self.value


async def test_a_node_with_an_incompatible_schema_is_refused(tmp_path: Path) -> None:
    cluster = MemoryCluster(
        tmp_path, {"counter": Counter}, node_objects={"n3": {"counter": CounterV2}}
    )
    await cluster.start(only=["n1", "n2"])
    try:
        leader = await cluster.wait_leader()
        assert await leader.proxy("counter").add(2) == 2
        assert "counter" in leader.host.cluster_schemas
        n3 = await cluster.start_node("n3")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while n3.failure is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert isinstance(n3.failure, SchemaMismatchError)
        message = str(n3.failure)
        assert "'n3'" in message and "counter" in message and "add" in message
        with pytest.raises(SchemaMismatchError):
            n3.proxy("counter")
        # The rest of the cluster goes on.
        assert await leader.proxy("counter").add(1) == 3
    finally:
        await cluster.stop()


async def test_matching_nodes_record_one_schema(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}) as cluster:
        leader = await cluster.wait_leader()
        await leader.proxy("counter").add(1)
        await cluster.wait_applied(leader.host.applied_index)
        recorded = {str(sorted(n.host.cluster_schemas)) for n in cluster.nodes.values()}
        assert recorded == {"['counter']"}
        assert all(n.failure is None for n in cluster.nodes.values())


def test_announcements_ignore_documentation_but_not_signatures() -> None:
    from agree.objects.schema import schema_of
    from agree.replica.cluster_schema import SchemaRecord, announce

    class Documented(Counter):
        """A docstring changes nothing that applies."""

    recorded = {"counter": schema_of(Counter).json_schema()}
    same = SchemaRecord("n9", {"counter": schema_of(Documented).json_schema()})
    merged, by_node, conflicts = announce(recorded, {}, same, ())
    assert (merged, conflicts) == (recorded, [])
    assert by_node == {"n9": same.schemas}
    other = SchemaRecord("n9", {"counter": schema_of(CounterV2).json_schema(), "x": {}})
    merged, by_node, conflicts = announce(recorded, {}, other, ())
    # Refused whole: "x" not added, and n9's announcement not kept.
    assert conflicts == ["counter"] and merged == recorded and by_node == {}
