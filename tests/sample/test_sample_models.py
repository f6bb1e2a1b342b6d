"""sample_project.models: the classes the sample project hosts, on an embedded node and on a
3-node cluster."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import agree
from agree.testing.cluster import MemoryCluster
from sample_project.models import (
    AccountExists,
    Bank,
    Counter,
    InsufficientFunds,
    KVStore,
    Lock,
    UnknownAccount,
)

if TYPE_CHECKING:
    from tests.conftest import LeaderClock

OBJECTS: dict[str, type[agree.Replicated]] = {
    "kv": KVStore,
    "counter": Counter,
    "bank": Bank,
    "lock": Lock,
}


def test_kvstore_and_counter_embedded(tmp_path: Path) -> None:
    with agree.wrap(KVStore(), path=tmp_path / "kv") as kv:
        kv.set("user:1", {"name": "Ada", "tags": ["admin"], "age": 36})
        assert kv.get("user:1") == {"name": "Ada", "tags": ["admin"], "age": 36}
        assert kv.get("nobody") is None
        assert kv.keys() == ["user:1"] and kv.size() == 1
        assert kv.delete("user:1") is True and kv.delete("user:1") is False
    with agree.wrap(Counter(), path=tmp_path / "counter") as c:
        assert c.add() == 1 and c.add(4) == 5
        with pytest.raises(ValueError, match="n must be >= 0"):
            c.add(-1)
        assert c.get() == 5


def test_bank_refusals_keep_their_type_and_attributes_and_change_nothing(tmp_path: Path) -> None:
    with agree.wrap(Bank(), path=tmp_path) as bank:
        bank.open_account("alice", 100)
        bank.open_account("bob")
        with pytest.raises(AccountExists, match="'alice' already exists"):
            bank.open_account("alice")
        with pytest.raises(InsufficientFunds) as refused:
            bank.transfer("bob", "alice", 5)
        assert (refused.value.account, refused.value.needed, refused.value.available) == (
            "bob",
            5,
            0,
        )
        assert str(refused.value) == "account 'bob' holds 0 but 5 was asked for"
        with pytest.raises(UnknownAccount) as unknown:
            bank.transfer("alice", "carol", 5)
        assert unknown.value.account == "carol"
        with pytest.raises(ValueError, match="amount must be > 0"):
            bank.transfer("alice", "bob", 0)
        with pytest.raises(ValueError, match="same account"):
            bank.transfer("alice", "alice", 1)
        assert bank.accounts() == {"alice": 100, "bob": 0}
        bank.transfer("alice", "bob", 30)
        assert bank.deposit("bob", 5) == 35
        assert bank.withdraw("alice", 20) == 50
        with pytest.raises(InsufficientFunds):
            bank.withdraw("alice", 51)
        assert (bank.balance("alice"), bank.balance("bob"), bank.total()) == (50, 35, 85)


async def test_concurrent_transfers_keep_the_total_on_every_node(tmp_path: Path) -> None:
    rng = random.Random(7)
    names = [f"acct{i}" for i in range(5)]
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        await cluster.wait_leader()
        banks = [n.proxy("bank") for n in cluster.nodes.values()]
        for name in names:
            await banks[0].open_account(name, 100)

        async def transfer(i: int) -> bool:
            source, target = rng.sample(names, 2)
            try:
                await banks[i % 3].transfer(source, target, rng.randint(1, 80))
            except InsufficientFunds as exc:
                assert exc.needed > exc.available
                return False
            return True

        async def totals() -> list[int]:
            return [await b.total() for b in banks]

        # Transfers through every node, totals read meanwhile: never anything but 500.
        results, seen = await asyncio.gather(
            asyncio.gather(*(transfer(i) for i in range(60))),
            asyncio.gather(*(totals() for _ in range(5))),
        )
        assert True in results and False in results  # some went through, some were refused
        assert {t for ts in seen for t in ts} == {500}
        leader = await cluster.wait_leader()
        await cluster.wait_applied(leader.host.applied_index)
        balances = cluster.local_state("bank", lambda b: dict(b.balances))
        assert len({tuple(sorted(b.items())) for b in balances.values()}) == 1
        assert all(sum(b.values()) == 500 and min(b.values()) >= 0 for b in balances.values())


async def test_sample_lock_expires_on_the_leader_stamped_time(
    tmp_path: Path, leader_clock: LeaderClock
) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        await cluster.wait_leader()
        lock = cluster.nodes["n2"].proxy("lock")
        assert await lock.acquire("worker-1", 60.0) is True
        assert await lock.acquire("worker-2", 60.0) is False
        leader_clock.advance(60)  # real time since the acquire only adds to it
        assert await lock.acquire("worker-2", 10.0) is True
        assert await lock.release("worker-1") is False
        assert await lock.holder() == "worker-2"
