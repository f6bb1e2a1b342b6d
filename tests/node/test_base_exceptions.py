"""A command or query that raises a BaseException (KeyboardInterrupt, SystemExit...): the
outcome is recorded like any other error, on every replica and on replay, reported to the
caller, and the node goes on."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from agree.errors import RemoteError
from agree.objects.replicated import Replicated, command, query
from agree.runtime.proxy import CallSession
from agree.testing.cluster import MemoryCluster
from agree.wire.calls import Call, CallKind

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


@dataclasses.dataclass(frozen=True)
class Fussy:
    """An argument whose construction raises a BaseException for some values."""

    n: int

    def __post_init__(self) -> None:
        if self.n < 0:
            raise KeyboardInterrupt(f"refused {self.n} while binding")


class Sink(Replicated):
    def __init__(self) -> None:
        self.got: list[int] = []

    @command
    def put(self, item: Fussy) -> int:
        self.got.append(item.n)
        return len(self.got)

    @query
    def has(self, item: Fussy) -> bool:
        return item.n in self.got


async def test_a_base_exception_while_binding_in_the_log_is_an_outcome(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"sink": Sink}) as cluster:
        leader = await cluster.wait_leader(WAIT)
        # As if the node that validated the call ran other code: it reaches the log unbound.
        session = CallSession()
        client_id, seq, ack = session.next_call_ids()
        call = Call("sink", "put", CallKind.COMMAND, [{"n": -1}], {}, None, client_id, seq, ack)
        outcome = await leader.call(call, WAIT, validated=True)
        session.call_done(seq)
        assert outcome.error is not None
        assert (outcome.error.type, outcome.error.message) == (
            "builtins:KeyboardInterrupt",
            "refused -1 while binding",
        )
        query = Call("sink", "has", CallKind.QUERY, [{"n": -2}])
        outcome = await leader.call(query, WAIT, validated=True)
        assert outcome.error is not None
        assert outcome.error.message == "refused -2 while binding"
        sink = leader.proxy("sink")
        assert await sink.put(Fussy(3)) == 1
        for node_id in cluster.ids:  # the entry is replayed
            await cluster.restart_node(node_id, crash=True)
        leader = await cluster.wait_leader(WAIT)
        assert await leader.proxy("sink").put(Fussy(4)) == 2
        await cluster.wait_applied(leader.host.applied_index, WAIT)
        assert cluster.local_state("sink", lambda o: list(o.got)) == {
            n: [3, 4] for n in cluster.ids
        }
        assert all(node.failure is None for node in cluster.nodes.values())
