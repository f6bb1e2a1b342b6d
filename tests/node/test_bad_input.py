"""Bad calls at the JSON level (what forwarded and HTTP calls carry): a clear error, nothing
written to the log, and the node keeps serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from agree.errors import UnknownMethodError, UnknownObjectError, ValidationError
from agree.objects.replicated import Consistency
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter, KVStore
from agree.wire.calls import Call, CallKind

BAD_CALLS = [
    (Call("nope", "add", CallKind.COMMAND, [1]), UnknownObjectError, "no replicated object"),
    (Call("counter", "nope", CallKind.COMMAND, [1]), UnknownMethodError, "nope"),
    (Call("counter", "get", CallKind.COMMAND), UnknownMethodError, "is a query"),
    (Call("counter", "add", CallKind.QUERY, [1]), UnknownMethodError, "is a command"),
    (Call("counter", "add", CallKind.COMMAND, ["x"]), ValidationError, "'n'"),
    (Call("counter", "add", CallKind.COMMAND, [1.5]), ValidationError, "'n'"),
    (Call("counter", "add", CallKind.COMMAND, [1, 2]), ValidationError, "argument"),
    (Call("counter", "add", CallKind.COMMAND, [], {"m": 1}), ValidationError, "'m'"),
    (Call("kv", "set", CallKind.COMMAND, ["k"]), ValidationError, "value"),
    (Call("kv", "set", CallKind.COMMAND, [None, "v"]), ValidationError, "key"),
]


@pytest.mark.parametrize(("call", "error", "says"), BAD_CALLS)
async def test_bad_calls_are_refused_before_the_log(
    tmp_path: Path, call: Call, error: type[Exception], says: str
) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter, "kv": KVStore}) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        await leader.proxy("counter").add(1)
        before = leader.status().last_index
        for node in (leader, follower):
            with pytest.raises(error, match=says):
                await node.call(call, timeout=2)
        assert leader.status().last_index == before
        assert await follower.proxy("counter").add(1) == 2  # and it goes on


async def test_an_unknown_consistency_is_refused(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}, size=1) as cluster:
        leader = await cluster.wait_leader()
        c = leader.proxy("counter")
        with pytest.raises(ValidationError, match="consistency"):
            await c.read("get", "sometimes")
        assert await c.read("get", Consistency.LEADER) == 0


async def test_an_unknown_object_has_no_proxy(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}, size=1) as cluster:
        leader = await cluster.wait_leader()
        with pytest.raises(UnknownObjectError, match="counter"):
            leader.proxy("counters")
