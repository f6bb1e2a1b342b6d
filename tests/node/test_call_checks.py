"""What a caller gets wrong is refused at once and clearly: unknown names on a handle (and
hasattr), subscription filters that can never match, bad timeouts, over-size arguments, a
non-Replicated object or a file as the path of agree.wrap; and resuming a fresh node's
mutations from index 1 is not mistaken for lost history."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

import agree
from agree import Node, Settings
from agree.errors import (
    ConfigurationError,
    MethodNotFoundError,
    UnknownMethodError,
    UnknownObjectError,
    ValidationError,
)
from agree.objects.mutation import Mutation
from agree.replica.subscriptions import MutationRecord, SubscriptionHub
from agree.runtime.proxy import CallSession
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter, KVStore
from agree.wire.calls import Call, CallKind

WAIT = 30.0


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings.single_node(tmp_path, TICK_INTERVAL=0.01, **values)  # type: ignore[arg-type]


async def test_unknown_names_on_a_handle_are_attribute_errors(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}, size=1) as cluster:
        c = (await cluster.wait_leader(WAIT)).proxy("counter")
        assert not hasattr(c, "nope")
        assert getattr(c, "nope", None) is None
        assert hasattr(c, "add") and hasattr(c.options(timeout=1.0), "get")
        with pytest.raises(UnknownMethodError, match=r"no operation 'nope'.*commands: add"):
            await c.nope(1)
        with pytest.raises(MethodNotFoundError):
            c.options(timeout=1.0).nope  # noqa: B018
        assert await c.add(1) == 1


def test_unknown_names_on_a_sync_handle_are_attribute_errors(tmp_path: Path) -> None:
    with agree.wrap(Counter(), path=tmp_path) as c:
        assert not hasattr(c, "nope")
        assert hasattr(c, "add")
        with pytest.raises(UnknownMethodError, match="no operation 'nope'"):
            c.nope()


async def test_subscription_filters_that_can_never_match_are_refused(tmp_path: Path) -> None:
    objects = {"counter": Counter, "kv": KVStore}
    async with MemoryCluster(tmp_path, objects, size=1) as cluster:
        node = await cluster.wait_leader(WAIT)
        for obj, method, error, says in [
            ("counter", "nope", UnknownMethodError, "'counter' has no command 'nope'.*: add$"),
            ("counter", "get", UnknownMethodError, "'get' is a query of 'counter', not a command"),
            (None, "nope", UnknownMethodError, "no hosted object has command 'nope'"),
            (None, "size", UnknownMethodError, "'size' is a query, not a command"),
            ("nope", None, UnknownObjectError, "no replicated object named 'nope'"),
        ]:
            with pytest.raises(error, match=says):
                node.mutations(obj, method)
            with pytest.raises(error, match=says):
                node.subscribe(print, obj, method)
        # What can match is accepted, with or without the object.
        node.mutations("kv", "delete").close()
        node.mutations(None, "add").close()
        node.subscribe(print, "counter", "add").cancel()


def test_wrap_subscribe_to_an_unknown_method_is_refused(tmp_path: Path) -> None:
    with agree.wrap(Counter(), path=tmp_path) as c:
        with pytest.raises(UnknownMethodError, match="nope"):
            c.subscribe(print, method="nope")
        with pytest.raises(UnknownMethodError, match="not a command"):
            c.subscribe(print, method="get")


BAD_TIMEOUTS = ["1", math.nan, math.inf, -1.0, 0, True, [1]]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
async def test_bad_timeouts_are_refused(tmp_path: Path, timeout: object) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}, size=1) as cluster:
        node = await cluster.wait_leader(WAIT)
        c = node.proxy("counter")
        with pytest.raises(ValidationError, match="timeout must be"):
            c.options(timeout=timeout)
        with pytest.raises(ValidationError, match="timeout must be"):
            await node.call(Call("counter", "get", CallKind.QUERY), timeout)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="timeout must be"):
            await node.wait_ready(timeout)  # type: ignore[arg-type]
        before = node.status().last_index
        with pytest.raises(ValidationError, match="timeout must be"):
            c_ids = CallSession().next_call_ids()
            call = Call("counter", "add", CallKind.COMMAND, [1], {}, None, *c_ids)
            await node.call(call, timeout)  # type: ignore[arg-type]
        assert node.status().last_index == before
        assert await c.options(timeout=5).add(2) == 2


def test_bad_timeouts_are_refused_by_a_sync_handle(tmp_path: Path) -> None:
    with agree.wrap(Counter(), path=tmp_path) as c:
        for timeout in BAD_TIMEOUTS:
            with pytest.raises(ValidationError, match="timeout must be"):
                c.options(timeout=timeout)  # type: ignore[arg-type]
    for timeout in BAD_TIMEOUTS:
        with pytest.raises(ValidationError, match="timeout must be"):
            agree.wrap(Counter(), path=tmp_path / "other", timeout=timeout)  # type: ignore[arg-type]


async def test_over_size_arguments_are_refused_before_proposing(tmp_path: Path) -> None:
    objects = {"kv": KVStore}
    async with MemoryCluster(tmp_path, objects, MAX_CALL_BYTES=1000) as cluster:
        leader = await cluster.wait_leader(WAIT)
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        await leader.proxy("kv").set("k", "v")
        before = leader.status().last_index
        for node in (leader, follower):
            kv = node.proxy("kv")
            with pytest.raises(ValidationError, match=r"MAX_CALL_BYTES \(1000\)"):
                await kv.set("k", "x" * 1000)
            with pytest.raises(ValidationError, match="MAX_CALL_BYTES"):
                await kv.get("é" * 600)  # measured in encoded bytes, not characters
        assert leader.status().last_index == before
        assert await follower.proxy("kv").set("k", "x" * 900) is None


def test_the_default_cap_applies_to_the_embedded_handle(tmp_path: Path) -> None:
    with agree.wrap(KVStore(), path=tmp_path) as kv:
        with pytest.raises(ValidationError, match="MAX_CALL_BYTES"):
            kv.set("k", "x" * (1024 * 1024 + 1))
        kv.set("k", "x" * 1000)
        assert kv.get("k") == "x" * 1000


async def test_resuming_a_fresh_nodes_mutations_from_index_1(tmp_path: Path) -> None:
    async with Node(_settings(tmp_path), objects={"counter": Counter()}) as node:
        await node.wait_ready(WAIT)
        c = node.proxy("counter")
        await c.add(1)
        await c.add(2)
        stream = node.mutations(from_index=1)  # entries before the first command are no loss
        got: list[Mutation] = [await asyncio.wait_for(anext(stream), WAIT) for _ in range(2)]
        assert [m.args for m in got] == [(1,), (2,)]
        stream.close()


def test_the_hub_refuses_only_what_it_dropped() -> None:
    hub = SubscriptionHub(lambda rec: rec.index, history=3)  # type: ignore[arg-type,return-value]
    for index in (5, 7, 8):  # 1-4 and 6 were not mutations (configuration, no-ops...)
        hub.publish(MutationRecord("o", "m", [], {}, None, None, index, 1, 0))
    assert [r.index for r in hub.stream(from_index=1)._sub.queue] == [5, 7, 8]
    hub.publish(MutationRecord("o", "m", [], {}, None, None, 9, 1, 0))  # drops 5
    assert [r.index for r in hub.stream(from_index=6)._sub.queue] == [7, 8, 9]
    with pytest.raises(agree.SubscriptionOverflowError, match="before index 6"):
        hub.stream(from_index=5)


def test_wrap_refuses_what_is_not_a_replicated_instance(tmp_path: Path) -> None:
    for obj, says in [
        (object(), "an instance of object"),
        (Counter, "the class Counter"),
        (3, "an instance of int"),
    ]:
        with pytest.raises(TypeError, match=f"Replicated subclass, got {says}"):
            agree.wrap(obj, path=tmp_path / "x")  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()  # refused before anything was created
    with pytest.raises(TypeError, match="'c' must be an instance"):
        Node(_settings(tmp_path), objects={"c": {"value": 0}})  # type: ignore[dict-item]


def test_wrap_on_a_file_path_names_the_path(tmp_path: Path) -> None:
    file = tmp_path / "data"
    file.write_text("not a directory")
    with pytest.raises(ConfigurationError, match=f"path '{file}' is not a directory"):
        agree.wrap(Counter(), path=file)
    with pytest.raises(ConfigurationError, match="is not a directory"):
        agree.wrap(Counter(), path=file / "below")
