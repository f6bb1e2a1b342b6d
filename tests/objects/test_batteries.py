"""agree.batteries: the replicated dict, counter, lock with a TTL and queue, applied directly,
through an embedded node and through a 3-node cluster.

The lock's time-to-live is judged on the leader-stamped time of each entry.  The tests move that
time with the ``leader_clock`` fixture (tests/conftest.py), never by sleeping.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import agree
from agree import CommandContext, ContextUnavailableError
from agree.batteries import (
    Lease,
    ReplicatedCounter,
    ReplicatedDict,
    ReplicatedLock,
    ReplicatedQueue,
)
from agree.objects.replicated import applying
from agree.testing.cluster import MemoryCluster

if TYPE_CHECKING:
    from tests.conftest import LeaderClock

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def at(seconds: float, index: int = 1) -> CommandContext:
    """The context of a command stamped ``seconds`` after T0."""
    return CommandContext(index=index, term=1, timestamp=T0 + timedelta(seconds=seconds))


# -- the lock's rules, applied directly --------------------------------------------------------


def test_lock_lease_ends_exactly_at_the_stamped_time_plus_ttl() -> None:
    lock = ReplicatedLock()
    with applying(at(0)):
        assert lock.acquire("a", 10) is True
        assert lock.acquire("b", 10) is False  # held by another owner
    assert lock.lease == Lease("a", T0 + timedelta(seconds=10))
    with applying(at(9.999999)):
        assert lock.holder() == "a"
        assert lock.acquire("b", 10) is False
    with applying(at(10)):  # the lease covers [t, t + ttl)
        assert lock.holder() is None
        assert lock.acquire("b", 5) is True
    with applying(at(12)):
        assert lock.release("a") is False  # a's lease ended: it cannot free b's
        assert lock.holder() == "b"


def test_lock_refresh_extends_only_a_running_lease_of_its_owner() -> None:
    lock = ReplicatedLock()
    with applying(at(0)):
        assert lock.refresh("a", 10) is False  # never taken
        assert lock.acquire("a", 10) is True
    with applying(at(8)):
        assert lock.refresh("b", 10) is False
        assert lock.refresh("a", 10) is True
    with applying(at(17)):
        assert lock.holder() == "a"  # refreshed at 8 for 10 s
    with applying(at(18)):
        assert lock.refresh("a", 10) is False  # too late: the lease ended at 18
        assert lock.holder() is None


def test_lock_acquire_by_its_holder_extends_and_release_frees() -> None:
    lock = ReplicatedLock()
    with applying(at(0)):
        assert lock.acquire("a", 10)
    with applying(at(5)):
        assert lock.acquire("a", 10)  # re-entrant: extends to 15
    with applying(at(14)):
        assert lock.holder() == "a"
        assert lock.release("b") is False
        assert lock.release("a") is True
        assert lock.holder() is None
        assert lock.release("a") is False
        assert lock.acquire("b", 1)


@pytest.mark.parametrize("ttl", [0.0, -1.0, math.inf, math.nan])
def test_lock_refuses_a_ttl_that_is_not_positive_and_finite(ttl: float) -> None:
    lock = ReplicatedLock()
    with applying(at(0)):
        assert lock.acquire("a", 10)
        for call in (lambda: lock.acquire("a", ttl), lambda: lock.acquire("b", ttl),
                     lambda: lock.refresh("a", ttl), lambda: lock.refresh("b", ttl)):
            with pytest.raises(ValueError, match="ttl must be a positive, finite number"):
                call()
    assert lock.lease == Lease("a", T0 + timedelta(seconds=10))


def test_lock_needs_a_command_context() -> None:
    # Time comes from the entry being applied; outside one there is no time to judge by.
    with pytest.raises(ContextUnavailableError):
        ReplicatedLock().acquire("a", 1)


def test_dict_counter_and_queue_rules_applied_directly() -> None:
    d = ReplicatedDict()
    d.set("a", 1)
    assert d.setdefault("a", 2) == 1 and d.setdefault("b", 2) == 2
    assert d.compare_and_set("a", 1, 10) is True
    assert d.compare_and_set("a", 1, 11) is False
    assert d.compare_and_set("missing", None, 1) is False  # absent is not "equal to None"
    assert "missing" not in d.data
    assert d.pop("a") == 10 and d.pop("a", "gone") == "gone"
    assert d.delete("b") is True and d.delete("b") is False
    c = ReplicatedCounter()
    assert c.add() == 1 and c.add(5) == 6 and c.sub(2) == 4 and c.add(-4) == 0
    assert c.set(7) == 0 and c.get() == 7
    assert c.compare_and_set(6, 1) is False and c.compare_and_set(7, 1) is True and c.value == 1
    q = ReplicatedQueue()
    assert q.get() is None and q.peek() is None
    assert q.put("x") == 1 and q.put(0) == 2 and q.put(False) == 3
    assert [q.get(), q.get(), q.get(), q.get()] == ["x", 0, False, None]
    with pytest.raises(ValueError, match="None cannot be queued"):
        q.put(None)


# -- through an embedded node ------------------------------------------------------------------

VALUES: list[Any] = [
    None,
    True,
    0,
    -(2**70),
    1.5,
    -0.0,
    "é ☃ 日本",
    [1, "two", [3.0, None]],
    {"nested": {"list": [True, False]}, "": ""},
    # Not JSON values: typed Any, they still come back as themselves.
    (1, "a", (2.5,)),
    {1: "int key", (2, 3): frozenset({4})},
    b"\x00\xff",
    math.inf,
    Decimal("1.10"),
    datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
]


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            same(k1, k2) and same(a[k1], b[k2]) for k1, k2 in zip(a, b, strict=True)
        )
    return bool(a == b)


def test_dict_through_an_embedded_node_and_after_a_restart(tmp_path: Path) -> None:
    with agree.wrap(ReplicatedDict(), path=tmp_path) as d:
        for i, value in enumerate(VALUES):
            assert d.set(f"k{i}", value) is None
        for i, value in enumerate(VALUES):
            assert same(d.get(f"k{i}"), value), (value, d.get(f"k{i}"))
        assert d.get("absent") is None and d.get("absent", 7) == 7
        assert d.size() == len(VALUES)
        assert d.keys() == [f"k{i}" for i in range(len(VALUES))]
        assert d.items()[7] == ("k7", [1, "two", [3.0, None]])
        assert d.contains("k0") and not d.contains("absent")
        assert d.compare_and_set("k2", 0, 100) is True
        assert d.compare_and_set("k2", 0, 200) is False
        assert d.setdefault("k2", 5) == 100 and d.setdefault("new", [1]) == [1]
        assert d.pop("k3") == -(2**70) and d.pop("k3", "x") == "x"
        assert d.delete("k4") is True and d.delete("k4") is False
        d.update({"u1": 1, "u2": {"a": [2]}})
        with pytest.raises(agree.ValidationError):
            d.set(1, "not a str key")
        snapshot_state = d.items()
        assert same(d.pop("k9"), VALUES[9])
        d.set("k9", VALUES[9])
        # Re-inserted: last in insertion order.
        assert same(d.items(), [kv for kv in snapshot_state if kv[0] != "k9"] + [("k9", VALUES[9])])
        snapshot_state = d.items()
    with agree.wrap(ReplicatedDict(), path=tmp_path) as d:
        assert same(d.items(), snapshot_state)
        assert d.clear() == len(snapshot_state)
        assert d.size() == 0


def test_counter_and_queue_through_an_embedded_node(tmp_path: Path) -> None:
    with agree.wrap(ReplicatedCounter(), path=tmp_path / "c") as c:
        assert c.add() == 1 and c.add(41) == 42 and c.sub(2) == 40
        assert c.set(5) == 40 and c.get() == 5
        assert c.compare_and_set(4, 9) is False and c.compare_and_set(5, 9) is True
        with pytest.raises(agree.ValidationError):
            c.add(1.5)
    with agree.wrap(ReplicatedCounter(), path=tmp_path / "c") as c:
        assert c.get() == 9
    with agree.wrap(ReplicatedQueue(), path=tmp_path / "q") as q:
        assert q.get() is None and q.size() == 0
        assert [q.put(v) for v in VALUES[1:]] == list(range(1, len(VALUES)))
        with pytest.raises(ValueError, match="None cannot be queued"):
            q.put(None)
        assert q.peek() is True and q.size() == len(VALUES) - 1
        assert q.get() is True
    with agree.wrap(ReplicatedQueue(), path=tmp_path / "q") as q:
        drained = [q.get() for _ in range(len(VALUES) - 2)]
        assert same(drained, VALUES[2:])
        assert q.get() is None and q.peek() is None


def test_lock_ttl_on_the_leader_stamped_time_through_an_embedded_node(
    tmp_path: Path, leader_clock: LeaderClock
) -> None:
    # The real time that passes meanwhile only adds to the shifts, so every "still held" check
    # keeps a margin of 100 s and every "ended" check is past the end whatever the real delay.
    with agree.wrap(ReplicatedLock(), path=tmp_path) as lock:
        assert lock.lease_info() is None
        assert lock.acquire("a", 300.0) is True
        assert lock.acquire("b", 300.0) is False
        lease = lock.lease_info()
        assert isinstance(lease, Lease) and lease.owner == "a"
        assert lease.expires_at.tzinfo is not None
        leader_clock.advance(200)
        assert lock.holder() == "a"
        assert lock.refresh("a", 300.0) is True  # now runs 300 s from the refresh
        leader_clock.advance(200)
        assert lock.holder() == "a"  # 400 s after acquire, 200 s after refresh
        with pytest.raises(ValueError, match="ttl must be a positive"):
            lock.acquire("a", -1.0)
    # The lease is replicated state: it survives a restart (snapshot at the clean stop).
    with agree.wrap(ReplicatedLock(), path=tmp_path) as lock:
        assert lock.holder() == "a"
        leader_clock.advance(101)  # past refresh + 300 s
        assert lock.holder() is None
        assert lock.release("a") is False
        assert lock.acquire("b", 1.0) is True
        assert lock.holder() == "b"


# -- through a 3-node cluster --------------------------------------------------------------------

OBJECTS: dict[str, type[agree.Replicated]] = {
    "dict": ReplicatedDict,
    "counter": ReplicatedCounter,
    "lock": ReplicatedLock,
    "queue": ReplicatedQueue,
}


async def test_batteries_agree_on_every_node_of_a_cluster(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        await cluster.wait_leader()
        nodes = list(cluster.nodes.values())
        counters = [n.proxy("counter") for n in nodes]
        # Concurrent increments through every node, followers forwarding to the leader.
        results = await asyncio.gather(*(counters[i % 3].add(1) for i in range(30)))
        assert sorted(results) == list(range(1, 31))
        # Compare-and-set races: exactly one of the contenders wins.
        wins = await asyncio.gather(*(c.compare_and_set(30, 100 + i) for i, c in
                                      enumerate(counters)))
        assert wins.count(True) == 1
        queues = [n.proxy("queue") for n in nodes]
        await asyncio.gather(*(queues[i % 3].put(i) for i in range(12)))
        taken = await asyncio.gather(*(queues[i % 3].get() for i in range(15)))
        assert sorted(t for t in taken if t is not None) == list(range(12))
        assert taken.count(None) == 3  # each item is taken once; the rest find it empty
        dicts = [n.proxy("dict") for n in nodes]
        created = await asyncio.gather(*(d.setdefault("owner", f"n{i}") for i, d in
                                         enumerate(dicts)))
        assert len(set(created)) == 1
        await dicts[1].update({"a": [1, 2], "b": {"c": None}})
        leader = await cluster.wait_leader()
        await cluster.wait_applied(leader.host.applied_index)
        states = cluster.local_state("dict", lambda d: list(d.data.items()))
        assert len({repr(s) for s in states.values()}) == 1
        counts = cluster.local_state("counter", lambda c: c.value)
        assert len(set(counts.values())) == 1
        queued = cluster.local_state("queue", lambda q: list(q.items))
        assert set(map(tuple, queued.values())) == {()}


async def test_lock_lease_survives_a_leader_change_and_ends_on_stamped_time(
    tmp_path: Path, leader_clock: LeaderClock
) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        first = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes.values() if n is not first)
        contenders = [n.proxy("lock") for n in cluster.nodes.values()]
        won = await asyncio.gather(*(p.acquire(f"owner{i}", 600.0) for i, p in
                                     enumerate(contenders)))
        assert won.count(True) == 1
        owner = f"owner{won.index(True)}"
        await cluster.stop_node(first.id, crash=True)
        second = await cluster.wait_leader(among=[n for n in cluster.ids if n != first.id])
        lock = follower.proxy("lock")
        assert await lock.holder() == owner  # the lease is replicated state, not the leader's
        leader_clock.advance(300)  # a margin of 300 s for the real time the election took
        assert await lock.acquire("late", 60.0) is False
        leader_clock.advance(301)  # past the 600 s, whatever real time passed
        assert await lock.holder() is None
        assert await second.proxy("lock").acquire("late", 60.0) is True
        await cluster.wait_applied(second.host.applied_index, among=[second.id, follower.id])
        leases = cluster.local_state("lock", lambda lk: lk.lease)
        assert len(set(leases.values())) == 1
        assert next(iter(leases.values())).owner == "late"
