"""A command or query that raises a BaseException (KeyboardInterrupt, SystemExit...): the
outcome is recorded like any other error, on every replica and on replay, reported to the
caller, and the node goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agree.errors import RemoteError
from agree.replicated import Replicated, command, query
from agree.testing.cluster import MemoryCluster

WAIT = 30.0

RAISES: dict[str, type[BaseException]] = {
    "interrupt": KeyboardInterrupt,
    "exit": SystemExit,
    "generator": GeneratorExit,
    "cancelled": asyncio.CancelledError,
}


class Tripwire(Replicated):
    """Records each call, then raises what it is told to."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @command
    def trip(self, what: str) -> int:
        self.calls.append(what)
        if what in RAISES:
            raise RAISES[what](f"tripped by {what}")
        return len(self.calls)

    @query
    def probe(self, what: str) -> int:
        if what in RAISES:
            raise RAISES[what](f"probed by {what}")
        return len(self.calls)


async def test_base_exceptions_are_outcomes_on_every_replica_and_on_replay(
    tmp_path: Path,
) -> None:
    async with MemoryCluster(tmp_path, {"t": Tripwire}) as cluster:
        await cluster.wait_leader(WAIT)
        t = cluster.nodes["n2"].proxy("t")
        for what, exc_type in RAISES.items():
            with pytest.raises(RemoteError, match=f"{exc_type.__name__}.*tripped by {what}"):
                await t.trip(what)
            with pytest.raises(RemoteError, match=f"{exc_type.__name__}.*probed by {what}"):
                await t.probe(what)
        assert await t.trip("fine") == len(RAISES) + 1
        leader = await cluster.wait_leader(WAIT)
        await cluster.wait_applied(leader.host.applied_index, WAIT)
        expected = [*RAISES, "fine"]
        assert cluster.local_state("t", lambda o: list(o.calls)) == {
            n: expected for n in cluster.ids
        }

        for node_id in cluster.ids:  # no snapshot: the whole log is replayed
            await cluster.restart_node(node_id, crash=True)
        leader = await cluster.wait_leader(WAIT)
        for node in cluster.nodes.values():
            await node.wait_ready(WAIT)
            assert node.failure is None
        assert await leader.proxy("t").trip("again") == len(expected) + 1
        await cluster.wait_applied(leader.host.applied_index, WAIT)
        expected.append("again")
        assert cluster.local_state("t", lambda o: list(o.calls)) == {
            n: expected for n in cluster.ids
        }
