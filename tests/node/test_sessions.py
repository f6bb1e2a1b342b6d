"""Exactly-once commands: the session table (unit) and retried calls in a cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agree.replica.sessions import SessionTable, Verdict
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter
from agree.wire.calls import Call, CallKind


def test_session_table_deduplicates_and_forgets_acknowledged() -> None:
    t: SessionTable[str] = SessionTable(ttl_ns=100)
    assert t.check("c", 1) == (Verdict.NEW, None)
    t.record("c", 1, 0, "r1", now_ns=10)
    assert t.check("c", 1) == (Verdict.DUPLICATE, "r1")
    t.record("c", 3, 0, "r3", now_ns=11)
    # seq 2 never applied though 3 did (out of order): it is still new.
    assert t.check("c", 2) == (Verdict.NEW, None)
    t.record("c", 2, 1, "r2", now_ns=12)  # ack=1: the client has the outcome of seq 1
    assert t.check("c", 1) == (Verdict.STALE, None)
    assert t.check("c", 2) == (Verdict.DUPLICATE, "r2")
    assert t.check("c", 3) == (Verdict.DUPLICATE, "r3")
    assert t.check("", 1) == (Verdict.NEW, None)  # anonymous calls are not deduplicated


def test_sessions_expire_by_entry_time_not_local_clock() -> None:
    t: SessionTable[str] = SessionTable(ttl_ns=100)
    t.record("old", 1, 0, "x", now_ns=0)
    t.record("new", 1, 0, "y", now_ns=50)
    t.record("new", 2, 1, "z", now_ns=150)  # 150 - 0 > ttl: "old" goes
    assert len(t) == 1
    assert t.check("old", 1) == (Verdict.NEW, None)
    assert t.check("new", 2) == (Verdict.DUPLICATE, "z")


async def test_a_retried_command_applies_once(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        call = Call(
            object="counter",
            method="add",
            kind=CallKind.COMMAND,
            args=[5],
            client_id="client-1",
            seq=1,
            ack=0,
        )
        first = await follower.call(call)
        # The same (client id, seq) again, through another node and concurrently twice more.
        again = await asyncio.gather(leader.call(call), follower.call(call))
        assert first.result == 5
        assert [o.result for o in again] == [5, 5]
        assert all(o.index == first.index for o in again)
        assert await leader.proxy("counter").get() == 5
        nxt = Call(
            object="counter",
            method="add",
            kind=CallKind.COMMAND,
            args=[1],
            client_id="client-1",
            seq=2,
            ack=1,
        )
        assert (await leader.call(nxt)).result == 6
