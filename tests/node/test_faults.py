"""Faults on a running cluster: partitions, isolation and crashes under concurrent clients, with
every history checked for linearizability; stale reads on a deposed leader; replay of failing
commands and snapshot catch-up after restarts."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agree.errors import AgreeError, AgreeTimeoutError, NotLeaderError, UnavailableError
from agree.objects.replicated import Consistency, Replicated, command, query
from agree.raft.entries import EntryType
from agree.testing.cluster import MemoryCluster
from agree.testing.linearizability import Operation, Read, RegisterModel, Write, check
from agree.testing.models import Counter, KVStore
from agree.testing.virtualtime import VirtualTimeLoop
from agree.wire.codec import COMMAND_MAGIC, decode_command

KEYS = ("a", "b", "c")


@dataclass
class History:
    loop: asyncio.AbstractEventLoop
    ops: list[Operation[Any, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    not_applied: set[str] = field(default_factory=set)  # writes refused as "not applied"

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


async def _client(
    cluster: MemoryCluster, node_id: str, name: str, rng: random.Random, h: History, end: float
) -> None:
    """Writes unique values and reads them back at LINEARIZABLE, always through ``node_id``."""
    n = 0
    while h.loop.time() < end:
        node = cluster.nodes[node_id]
        if not node._started:  # crashed by the nemesis: nothing is invoked meanwhile
            await asyncio.sleep(0.02)
            continue
        kv = node.proxy("kv").options(timeout=0.5)
        key = rng.choice(KEYS)
        invoke = h.loop.time()
        if rng.random() < 0.5:
            n += 1
            value = f"{name}-{n}"
            try:
                await kv.set(key, value)
            except AgreeError as exc:
                # Timed out, outcome unknown, node stopped under it: for the check it may have
                # applied, at any time after its invocation.
                h.count(f"write {type(exc).__name__}")
                if type(exc) is AgreeTimeoutError:  # it says the write was not applied
                    h.not_applied.add(value)
                h.ops.append(Operation(name, key, Write(value), None, invoke, None))
            else:
                h.count("write ok")
                h.ops.append(Operation(name, key, Write(value), None, invoke, h.loop.time()))
        else:
            try:
                got = await kv.get(key)
            except AgreeError as exc:
                h.count(f"read {type(exc).__name__}")  # a failed read has no effect: dropped
            else:
                h.count("read ok")
                h.ops.append(Operation(name, key, Read(), got, invoke, h.loop.time()))
        await asyncio.sleep(rng.uniform(0, 0.01))


def _voters(cluster: MemoryCluster) -> tuple[str, ...]:
    leader = cluster.leader()
    return () if leader is None else leader.status().voters


async def _nemesis(
    cluster: MemoryCluster,
    rng: random.Random,
    end: float,
    actions: list[str],
    *,
    membership: bool = False,
) -> None:
    """Seeded faults until ``end``: partitions, isolation (of the leader too), crashes of a
    minority, restarts, reboots of every node, leadership transfers and, with ``membership``,
    adding and removing voters.  Every fault is healed at the end."""
    loop = asyncio.get_running_loop()
    net = cluster.network
    size = len(cluster.ids)
    kinds = ["isolate", "partition", "heal", "crash", "restart", "leader", "transfer", "reboot"]
    if membership:
        kinds += ["member", "member"]
    while loop.time() < end:
        await asyncio.sleep(rng.uniform(0.1, 1.0))
        ids = list(cluster.ids)  # grows as nodes join
        stopped = [nid for nid in ids if not cluster.nodes[nid]._started]
        choice = rng.choice(kinds)
        if choice == "isolate":
            victim = rng.choice(ids)
            net.heal()
            net.isolate(victim)
            actions.append(f"isolate {victim}")
        elif choice == "leader":
            leader = cluster.leader()
            if leader is not None:
                net.heal()
                net.isolate(leader.id)
                actions.append(f"isolate leader {leader.id}")
        elif choice == "partition":
            shuffled = rng.sample(ids, len(ids))
            cut = rng.randint(1, len(ids) - 1)
            net.heal()
            net.partition(shuffled[:cut], shuffled[cut:])
            actions.append(f"partition {shuffled[:cut]} | {shuffled[cut:]}")
        elif choice == "heal":
            net.heal()
            actions.append("heal")
        elif choice == "crash" and len(stopped) < (len(_voters(cluster)) - 1) // 2:
            victim = rng.choice([nid for nid in ids if nid not in stopped])
            await cluster.stop_node(victim, crash=True)
            actions.append(f"crash {victim}")
        elif choice == "restart" and stopped:
            victim = rng.choice(stopped)
            await cluster.restart_node(victim)
            actions.append(f"restart {victim}")
        elif choice == "transfer":
            leader = cluster.leader()
            if leader is not None:
                target = rng.choice([nid for nid in _voters(cluster) if nid != leader.id])
                try:
                    await leader.transfer_leader(target, timeout=0.5)
                    actions.append(f"transfer {leader.id} -> {target}")
                except AgreeError as exc:  # unreachable or stopped target: a fault like others
                    actions.append(f"transfer {leader.id} -> {target} failed: {exc!r}")
        elif choice == "reboot":  # every node at once: all of them restart from their storage
            for nid in ids:
                await cluster.stop_node(nid, crash=True)
            for nid in ids:
                await cluster.restart_node(nid)
            actions.append("reboot all")
        elif choice == "member":
            leader = cluster.leader()
            voters = _voters(cluster)
            if leader is None:
                continue
            try:
                if len(voters) <= size:
                    nid = f"m{len(cluster.ids) + 1}"
                    actions.append(f"add {nid}")
                    await cluster.add_node(nid, timeout=1.0)
                else:  # the leader itself may go
                    victim = rng.choice(voters)
                    actions.append(f"remove {victim}")
                    await leader.remove_member(victim, timeout=1.0)
            except AgreeError as exc:
                actions.append(f"  failed: {exc!r}")
    net.heal()
    for nid in cluster.ids:
        if not cluster.nodes[nid]._started:
            await cluster.restart_node(nid)
            actions.append(f"restart {nid}")


@pytest.mark.parametrize(
    ("size", "seed", "snapshot_entries", "membership"),
    [(3, 1, 10_000, False), (5, 3, 10_000, False), (3, 5, 40, True)],
)
async def test_histories_under_partitions_and_crashes_are_linearizable(
    tmp_path: Path, size: int, seed: int, snapshot_entries: int, membership: bool
) -> None:
    """With few SNAPSHOT_ENTRIES, snapshots are taken, installed and restored under the faults;
    with ``membership`` voters are added and removed meanwhile."""
    rng = random.Random(seed)
    async with MemoryCluster(
        tmp_path, {"kv": KVStore}, size=size, seed=seed, SNAPSHOT_ENTRIES=snapshot_entries
    ) as cluster:
        await cluster.wait_leader()
        loop = asyncio.get_running_loop()
        h = History(loop)
        actions: list[str] = []
        end = loop.time() + 5.0
        clients = [
            _client(cluster, cluster.ids[i % size], f"c{i}", random.Random(rng.random()), h, end)
            for i in range(6)
        ]
        nemesis = _nemesis(
            cluster, random.Random(rng.random()), end, actions, membership=membership
        )
        await asyncio.gather(nemesis, *clients)

        # After the faults: every node serves, and a last read of each key joins the history.
        leader = await cluster.wait_leader(timeout=10.0)
        await leader.wait_ready(10.0)  # it applied everything committed before now
        for key in KEYS:
            invoke = loop.time()
            got = await leader.proxy("kv").get(key)
            h.ops.append(Operation("final", key, Read(), got, invoke, loop.time()))
        # Every member holds the same state (a removed node may have stopped learning).
        members = set(leader.members())
        await cluster.wait_applied(leader.host.applied_index, among=members)
        states = cluster.local_state("kv", lambda kv: dict(kv.data), among=members)
        assert set(states) == members
        assert len({tuple(sorted(s.items())) for s in states.values()}) == 1, states

        # Every acknowledged write is in the log; one that failed with a plain timeout was
        # promised not to be.  (Only while the log is whole: no snapshot compacted it.)
        assert leader._store is not None
        if await leader._store.snapshot() is None:
            logged = {
                decode_command(e.data).args[1]
                for e in await leader._store.entries(1, leader.host.applied_index + 1)
                if e.type is EntryType.NORMAL and e.data.startswith(COMMAND_MAGIC)
            }
            acked = {op.input.value for op in h.ops if isinstance(op.input, Write) and op.complete}
            assert acked <= logged, f"acknowledged but not in the log: {acked - logged}"
            refused = h.not_applied & logged
            assert not refused, f"said not applied, yet logged: {refused}"
        else:
            assert snapshot_entries < 10_000
        result = check(RegisterModel(), h.ops)
        assert result.ok, (
            f"{result.verdict}\n{result.explanation}\nnemesis: {actions}\ncounts: {h.counts}"
        )
        # The run exercised what it claims to: faults happened and operations went through them.
        assert h.counts.get("write ok", 0) > 20 and h.counts.get("read ok", 0) > 20, h.counts
        assert actions, "the nemesis did nothing"
        if membership:
            assert any(a.startswith(("add", "remove")) for a in actions), actions


async def _adder(
    cluster: MemoryCluster, node_id: str, rng: random.Random, end: float, tally: dict[str, Any]
) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < end:
        node = cluster.nodes[node_id]
        if not node._started:
            await asyncio.sleep(0.02)
            continue
        try:
            tally["ok"].append(await node.proxy("counter").options(timeout=0.5).add(1))
        except AgreeError as exc:
            # A plain timeout says "not applied"; anything else may have applied.
            tally["not applied" if type(exc) is AgreeTimeoutError else "maybe"] += 1
        await asyncio.sleep(rng.uniform(0, 0.01))


@pytest.mark.parametrize("seed", [7])
async def test_retried_commands_apply_at_most_once_under_faults(tmp_path: Path, seed: int) -> None:
    """Writing a value twice is invisible to the register check; adding 1 twice is not."""
    rng = random.Random(seed)
    async with MemoryCluster(tmp_path, {"counter": Counter}, seed=seed) as cluster:
        await cluster.wait_leader()
        loop = asyncio.get_running_loop()
        end = loop.time() + 4.0
        tally: dict[str, Any] = {"ok": [], "maybe": 0, "not applied": 0}
        actions: list[str] = []
        adders = [
            _adder(cluster, cluster.ids[i % 3], random.Random(rng.random()), end, tally)
            for i in range(6)
        ]
        await asyncio.gather(_nemesis(cluster, random.Random(rng.random()), end, actions), *adders)
        leader = await cluster.wait_leader()
        final = await leader.proxy("counter").options(timeout=10.0).get()
        ok: list[int] = tally["ok"]
        # Each add returns the counter after it: acknowledged adds saw distinct values.
        assert len(set(ok)) == len(ok)
        assert len(ok) <= final <= len(ok) + tally["maybe"], (final, tally, actions)
        assert len(ok) > 20 and actions, (tally, actions)


async def test_isolated_old_leader_never_serves_a_stale_linearizable_read(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"kv": KVStore}) as cluster:
        old = await cluster.wait_leader()
        await old.proxy("kv").set("x", "v1")
        cluster.network.isolate(old.id)
        # Right away, while it may still believe it leads: it cannot confirm its leadership.
        early = asyncio.create_task(
            old.proxy("kv").options(consistency=Consistency.LINEARIZABLE, timeout=1.0).get("x")
        )
        rest = [nid for nid in cluster.ids if nid != old.id]
        new = await cluster.wait_leader(among=rest)
        await new.proxy("kv").set("x", "v2")
        with pytest.raises((AgreeTimeoutError, NotLeaderError, UnavailableError)):
            await early
        # After the new leader committed v2, the old one still holds v1 ...
        assert await old.proxy("kv").options(consistency=Consistency.ANY).get("x") == "v1"
        # ... and still refuses to serve it as linearizable.
        with pytest.raises((AgreeTimeoutError, NotLeaderError, UnavailableError)):
            await old.proxy("kv").options(timeout=0.5).get("x")
        # Healed, it catches up and serves the current value.
        cluster.network.heal()
        assert await old.proxy("kv").options(timeout=5.0).get("x") == "v2"


class Ledger(Replicated):
    """A command that changes state and then raises: replay must reproduce both."""

    def __init__(self) -> None:
        self.entries: list[int] = []

    @command
    def append(self, n: int) -> int:
        self.entries.append(n)
        if n % 3 == 0:
            raise ValueError(f"{n} is a multiple of 3")
        return len(self.entries)

    @query
    def all(self) -> list[int]:
        return list(self.entries)


async def test_failing_commands_replay_after_restarting_every_node(tmp_path: Path) -> None:
    objects = {"ledger": Ledger, "counter": Counter}
    async with MemoryCluster(tmp_path, objects) as cluster:
        leader = await cluster.wait_leader()
        ledger = cluster.nodes["n2"].proxy("ledger")
        for n in range(1, 10):
            if n % 3 == 0:
                with pytest.raises(ValueError, match="multiple of 3"):
                    await ledger.append(n)
            else:
                await ledger.append(n)
        c = leader.proxy("counter")
        with pytest.raises(ValueError):
            await c.add(-1)
        await c.add(4)
        await cluster.wait_applied(leader.host.applied_index)
        before = cluster.local_state("ledger", lambda o: list(o.entries))
        assert set(map(tuple, before.values())) == {tuple(range(1, 10))}

        for nid in cluster.ids:  # no snapshot was taken: the whole log is replayed
            store = cluster.nodes[nid]._store
            assert store is not None and await store.snapshot() is None
            await cluster.restart_node(nid, crash=True)
        leader = await cluster.wait_leader()
        for node in cluster.nodes.values():
            await node.wait_ready(10)
            assert node.failure is None
        await cluster.wait_applied(leader.host.applied_index)
        assert cluster.local_state("ledger", lambda o: list(o.entries)) == before
        assert set(cluster.local_state("counter", lambda o: int(o.value)).values()) == {4}
        assert await leader.proxy("counter").add(1) == 5


async def test_snapshots_on_every_node_and_a_lagging_follower_installs_one(
    tmp_path: Path,
) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}, SNAPSHOT_ENTRIES=10) as cluster:
        leader = await cluster.wait_leader()
        c = leader.proxy("counter")
        for _ in range(25):
            await c.add(1)
        await cluster.wait_applied(leader.host.applied_index)
        for node in cluster.nodes.values():  # several snapshots were taken everywhere
            assert node._store is not None
            snap = await node._store.snapshot()
            assert snap is not None and snap.meta.index >= 20

        lagging = next(nid for nid in cluster.ids if nid != leader.id)
        lag_last = cluster.nodes[lagging].status().last_index
        await cluster.stop_node(lagging)
        for _ in range(40):
            await c.add(1)
        # The leader's log no longer holds what the follower misses: only a snapshot can help.
        assert leader._store is not None
        leader_snap = await leader._store.snapshot()
        assert leader_snap is not None and leader_snap.meta.index > lag_last + 1

        node = await cluster.restart_node(lagging)
        await cluster.wait_applied(leader.host.applied_index)
        assert node._store is not None
        snap = await node._store.snapshot()
        assert snap is not None and snap.meta.index > lag_last
        assert set(cluster.local_state("counter", lambda o: int(o.value)).values()) == {65}

        for nid in list(cluster.ids):  # snapshot + log restore, on every node
            await cluster.restart_node(nid)
        leader = await cluster.wait_leader()
        for n in cluster.nodes.values():
            await n.wait_ready(10)
        assert set(cluster.local_state("counter", lambda o: int(o.value)).values()) == {65}
        assert await cluster.nodes[lagging].proxy("counter").add(1) == 66


async def _seeded_run(directory: Path, seed: int) -> list[str]:
    """A faulty run on virtual time, as a trace: every client operation with its result and
    (virtual) times, every fault, and where each node ended."""
    rng = random.Random(seed)
    trace: list[str] = []
    async with MemoryCluster(directory, {"kv": KVStore}, seed=seed) as cluster:
        leader = await cluster.wait_leader()
        loop = asyncio.get_running_loop()
        trace.append(f"{loop.time():.6f} leader {leader.id}")
        h = History(loop)
        actions: list[str] = []
        end = loop.time() + 2.0
        clients = [
            _client(cluster, cluster.ids[i % 3], f"c{i}", random.Random(rng.random()), h, end)
            for i in range(3)
        ]
        await asyncio.gather(_nemesis(cluster, random.Random(rng.random()), end, actions), *clients)
        leader = await cluster.wait_leader(timeout=10.0)
        await leader.wait_ready(10.0)
        trace += actions
        trace += [repr(op) for op in h.ops]
        trace += [repr(n.status()) for n in cluster.running()]
        assert actions and len(h.ops) > 20  # the trace is worth comparing
    return trace


def test_the_same_seed_replays_the_same_history(tmp_path: Path) -> None:
    """On virtual time a run is a function of its seed: partitions, crashes, elections,
    timeouts and every client's results come out the same, to the (virtual) nanosecond."""

    def run(name: str, seed: int) -> list[str]:
        loop = VirtualTimeLoop()
        try:
            return loop.run_until_complete(_seeded_run(tmp_path / name, seed))
        finally:
            loop.close()

    first = run("first", 11)
    assert run("second", 11) == first
    assert run("other", 12) != first  # the seed, not luck, decides it
