"""A 3-node cluster in one process: real cores, real SQLite storage, the in-memory transport."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from pathlib import Path

import pytest

from agree.errors import (
    OutcomeUnknownError,
    ProposalLost,
    ResultValidationError,
    UnknownMethodError,
    ValidationError,
)
from agree.raft.entries import Entry, EntryType
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Color, Counter, KVStore, Point, Types
from agree.wire.calls import Outcome
from agree.wire.codec import COMMAND_MAGIC, CommandRecord, encode_command

OBJECTS = {"counter": Counter, "kv": KVStore, "types": Types}


async def _applied_log(
    node_dir: Path, cluster: MemoryCluster, node_id: str
) -> list[tuple[int, int, bytes]]:
    store = cluster.nodes[node_id]._store
    assert store is not None
    entries = await store.entries(1, cluster.nodes[node_id].host.applied_index + 1)
    return [
        (e.index, e.term, e.data)
        for e in entries
        if e.type is EntryType.NORMAL and e.data.startswith(COMMAND_MAGIC)
    ]


async def test_three_nodes_apply_the_same_sequence(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        # Calls go through every node: followers forward commands to the leader.
        proxies = [n.proxy("counter") for n in cluster.nodes.values()]
        results = await asyncio.gather(*(proxies[i % 3].add(i + 1) for i in range(30)))
        assert sorted(results)[-1] == sum(range(1, 31))
        for p in proxies:
            assert await p.get() == sum(range(1, 31))
        index = leader.host.applied_index
        await cluster.wait_applied(index)
        logs = [await _applied_log(tmp_path, cluster, nid) for nid in cluster.ids]
        assert logs[0] == logs[1] == logs[2]
        assert len(logs[0]) == 30
        values = set()
        for node in cluster.nodes.values():
            with node.read_lock("counter") as obj:
                values.add(obj.value)
        assert values == {sum(range(1, 31))}


async def test_the_leader_applies_the_commands_it_proposed_without_decoding_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command bound by a proxy (on the leader, or forwarded by a follower) is applied on the
    leader from the record it proposed; the other replicas decode the entry, to the same
    state and outcome."""
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        from_record: dict[str, list[bool]] = {nid: [] for nid in cluster.ids}
        outcomes: dict[str, list[Outcome]] = {nid: [] for nid in cluster.ids}
        for node in cluster.nodes.values():

            def apply(
                entry: Entry,
                record: CommandRecord | None = None,
                *,
                nid: str = node.id,
                original: Callable[[Entry, CommandRecord | None], Outcome] = node.host.apply,
            ) -> Outcome:
                outcome = original(entry, record)
                if entry.data.startswith(COMMAND_MAGIC):
                    from_record[nid].append(record is not None)
                    outcomes[nid].append(outcome)
                return outcome

            monkeypatch.setattr(node.host, "apply", apply)
        assert await leader.proxy("counter").add(2) == 2
        assert await follower.proxy("counter").add(3) == 5
        await cluster.wait_applied(leader.host.applied_index)
        assert from_record[leader.id] == [True, True]
        assert all(from_record[nid] == [False, False] for nid in cluster.ids if nid != leader.id)
        assert len({repr(o) for o in outcomes.values()}) == 1
        for node in cluster.nodes.values():
            with node.read_lock("counter") as obj:
                assert obj.value == 5


async def test_user_exception_keeps_its_type_and_the_next_command_works(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        await cluster.wait_leader()
        c = cluster.nodes["n2"].proxy("counter")
        assert await c.add(2) == 2
        with pytest.raises(ValueError, match="n must be >= 0"):
            await c.add(-1)
        assert await c.add(3) == 5


async def test_bad_calls_write_nothing(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        c = leader.proxy("counter")
        await c.add(1)
        before = leader.status().last_index
        with pytest.raises(UnknownMethodError):
            c.nope  # noqa: B018
        with pytest.raises(ValidationError):
            await c.add("1")
        with pytest.raises(ValidationError):
            await c.add(1, 2)
        with pytest.raises(ValidationError):
            await c.add(m=3)
        assert leader.status().last_index == before


async def test_values_round_trip_faithfully(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        await cluster.wait_leader()
        t = cluster.nodes["n3"].proxy("types")
        n = await t.echo_int(2**62 + 1)
        assert n == 2**62 + 1 and type(n) is int
        when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
        assert await t.echo_when(when) == when
        p = Point(1, 2.5, frozenset({"a"}))
        assert await t.echo_point(p) == p
        assert await t.echo_set({1, 2, 3}) == {1, 2, 3}
        assert await t.echo_tuple((1, "x", Color.RED)) == (1, "x", Color.RED)
        # Applied, so not a ValidationError (which says nothing was written).
        with pytest.raises(ResultValidationError, match="applied at index"):
            await t.bad_result()


async def test_commands_see_index_term_and_a_monotonic_leader_time(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        await cluster.wait_leader()
        t = cluster.nodes["n1"].proxy("types")
        stamps = [await t.stamp() for _ in range(5)]
        indexes = [s[0] for s in stamps]
        times = [s[2] for s in stamps]
        assert indexes == sorted(indexes) and len(set(indexes)) == 5
        assert times == sorted(times)
        await cluster.wait_applied(indexes[-1])
        # Every replica saw the same timestamps: they come from the entries, not local clocks.
        seen = set()
        for node in cluster.nodes.values():
            with node.read_lock("types") as obj:
                seen.add(tuple(obj.stamps))
        assert len(seen) == 1


async def test_leader_failover_keeps_committed_state(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        kv = leader.proxy("kv")
        for i in range(10):
            await kv.set(f"k{i}", str(i))
        await cluster.stop_node(leader.id)
        new_leader = await cluster.wait_leader()
        assert new_leader.id != leader.id
        kv2 = new_leader.proxy("kv")
        assert await kv2.size() == 10
        await kv2.set("after", "failover")
        restarted = await cluster.restart_node(leader.id)
        await restarted.wait_ready(10)
        assert await restarted.proxy("kv").get("after") == "failover"


async def test_restart_from_snapshot_and_log_gives_the_same_state(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS, SNAPSHOT_ENTRIES=20) as cluster:
        leader = await cluster.wait_leader()
        c = leader.proxy("counter")
        for _ in range(55):
            await c.add(1)
        await cluster.wait_applied(leader.host.applied_index)
        for node_id in list(cluster.ids):
            store = cluster.nodes[node_id]._store
            assert store is not None
            snap = await store.snapshot()
            assert snap is not None and snap.meta.index >= 20  # snapshots were taken
        for node_id in list(cluster.ids):
            await cluster.restart_node(node_id)
        leader = await cluster.wait_leader()
        await leader.wait_ready(10)
        for node in cluster.nodes.values():
            await node.wait_ready(10)
            assert await node.proxy("counter").get() == 55


async def test_a_command_in_the_log_of_a_stopping_node_has_an_unknown_outcome(
    tmp_path: Path,
) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        c = leader.proxy("counter")
        await c.add(1)
        cluster.network.isolate(leader.id)  # nothing it proposes can commit now
        before = leader.status().last_index
        task = asyncio.create_task(c.add(1))
        await cluster.wait_until(
            lambda: leader.status().last_index > before, what="the proposal in the log"
        )
        await cluster.stop_node(leader.id)
        with pytest.raises(OutcomeUnknownError):
            await task


async def test_snapshot_on_demand_twice_in_a_row(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        await leader.proxy("counter").add(1)
        first = await leader.snapshot()
        assert first == leader.host.applied_index
        assert await leader.snapshot() == first  # nothing new applied: no new snapshot
        assert leader.failure is None
        assert await leader.proxy("counter").add(1) == 2
        assert await leader.snapshot() > first


async def test_one_read_index_round_serves_many_linearizable_reads(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        await leader.proxy("counter").add(3)
        for node in (leader, follower):
            raft = node.driver.raft
            rounds = 0
            original = raft.read_index

            def counting(ctx: bytes, original=original) -> None:  # type: ignore[no-untyped-def]
                nonlocal rounds
                rounds += 1
                original(ctx)

            raft.read_index = counting  # type: ignore[method-assign]
            c = node.proxy("counter")
            assert await asyncio.gather(*(c.get() for _ in range(200))) == [3] * 200
            assert 1 <= rounds <= 5, rounds  # batched per loop turn, not one per read


async def test_a_read_index_round_that_cannot_be_confirmed_times_out_by_its_deadline(
    tmp_path: Path,
) -> None:
    """The driver fails a read still unconfirmed at its deadline (at the next tick, no timer
    per read); a read without a deadline waits on."""
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        await leader.proxy("counter").add(1)
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        cluster.network.isolate(follower.id)  # its requests never reach the leader
        driver = follower.driver
        now = asyncio.get_running_loop().time()
        timed = [driver.read_index(now + 0.2) for _ in range(20)]
        untimed = driver.read_index()
        results = await asyncio.wait_for(asyncio.gather(*timed, return_exceptions=True), 5.0)
        assert all(isinstance(r, TimeoutError) for r in results), results
        assert asyncio.get_running_loop().time() - now >= 0.2
        assert not untimed.done()
        untimed.cancel()


async def test_a_deposed_leader_hands_back_every_pending_proposal_at_once(
    tmp_path: Path,
) -> None:
    """Proposals a leader appended but could not commit are given back (ProposalLost, which the
    router retries with the same client id and seq) as soon as it steps down -- not left waiting
    until the new leader's log happens to reach their slots, which an idle cluster never does."""
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        old = await cluster.wait_leader()
        await old.proxy("counter").add(1)
        cluster.network.isolate(old.id)
        before = old.status().last_index
        driver = old.driver
        futures = [
            driver.propose(
                encode_command(
                    CommandRecord(
                        object="counter",
                        method="add",
                        args=[1],
                        kwargs={},
                        client_id="deposed-test",
                        seq=seq,
                        ack=0,
                        timestamp_ns=0,
                    )
                )
            )
            for seq in (1, 2, 3)
        ]
        await cluster.wait_until(
            lambda: old.status().last_index >= before + 3, what="the proposals in its log"
        )
        others = [n for n in cluster.running() if n is not old]
        await cluster.wait_until(
            lambda: any(n.is_leader for n in others), what="a leader among the others"
        )
        cluster.network.heal()
        await cluster.wait_until(lambda: not old.is_leader, what="the old leader stepping down")
        await asyncio.sleep(0.1)  # a few ticks: no new command reaches the slots meanwhile
        assert all(f.done() for f in futures)
        for f in futures:
            with pytest.raises(ProposalLost):
                f.result()
