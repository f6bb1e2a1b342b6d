"""One contract, every transport: the in-memory network and the aiohttp transport behave alike
at the seam the node sees (agree.transport.base.Transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from peer_harness import Peer, Recorder, eventually, free_socket, snapshot_chunk

from agree.errors import NotLeaderError, OutcomeUnknownError, UnavailableError, ValidationError
from agree.raft.entries import ConfState, Entry, EntryType
from agree.raft.messages import AppendEntries, Heartbeat, RequestVote
from agree.transport.base import Transport
from agree.transport.memory import MemoryNetwork
from agree.wire.calls import Call, CallKind, Outcome
from agree.wire.codec import ErrorInfo


@dataclass
class Net:
    transports: dict[str, Transport]
    recorders: dict[str, Recorder]


async def memory_net() -> tuple[Net, Callable[[], Awaitable[None]]]:
    network = MemoryNetwork()
    net = Net({}, {})
    for node_id in ("a", "b", "c"):
        t = network.transport(node_id)
        net.transports[node_id], net.recorders[node_id] = t, Recorder()
        await t.start(net.recorders[node_id])

    async def stop() -> None:
        for t in net.transports.values():
            await t.close()

    return net, stop


async def aiohttp_net() -> tuple[Net, Callable[[], Awaitable[None]]]:
    peers = [Peer(node_id, free_socket()) for node_id in ("a", "b", "c")]
    book = {p.id: p.url for p in peers}
    for p in peers:
        await p.start(book)

    async def stop() -> None:
        for p in peers:
            await p.stop()

    return Net({p.id: p.transport for p in peers}, {p.id: p.recorder for p in peers}), stop


@pytest.fixture(params=["memory", "aiohttp"])
async def net(request: pytest.FixtureRequest) -> AsyncIterator[Net]:
    make = memory_net if request.param == "memory" else aiohttp_net
    built, stop = await make()
    yield built
    await stop()


async def test_send_delivers_every_message_in_order(net: Net) -> None:
    a = net.transports["a"]
    # Once connected (a network transport may drop a snapshot chunk for a peer it has not
    # reached yet: the core sends chunks again).
    a.send([Heartbeat(src="a", dst=d, term=3, leader_commit=0) for d in "bc"])
    await eventually(
        lambda: all(len(net.recorders[d].received) == 1 for d in "bc"), "first contact"
    )
    for d in "bc":
        net.recorders[d].received.clear()
    snap = snapshot_chunk(
        src="a",
        dst="c",
        term=3,
        last_included_index=4,
        last_included_term=2,
        conf=ConfState(voters=frozenset("abc")),
        offset=0,
        data=b"state",
        done=True,
    )
    to_b = [
        RequestVote(src="a", dst="b", term=3, last_log_index=4, last_log_term=2, pre_vote=True),
        AppendEntries(
            src="a",
            dst="b",
            term=3,
            prev_log_index=4,
            prev_log_term=2,
            entries=(Entry(3, 5, EntryType.NOOP),),
            leader_commit=4,
        ),
        Heartbeat(src="a", dst="b", term=3, leader_commit=5, context=b"r1"),
    ]
    a.send([to_b[0], snap, *to_b[1:]])
    await eventually(lambda: len(net.recorders["b"].received) == 3, "b's messages")
    await eventually(lambda: len(net.recorders["c"].received) == 1, "c's snapshot")
    assert net.recorders["b"].received == to_b
    assert net.recorders["c"].received == [snap]


async def test_send_to_an_unknown_peer_is_dropped_not_raised(net: Net) -> None:
    net.transports["a"].send([Heartbeat(src="a", dst="zed", term=1, leader_commit=0)])
    net.transports["a"].send([])
    await asyncio.sleep(0.05)
    assert all(not r.received for r in net.recorders.values())


async def test_forward_returns_the_peers_outcome(net: Net) -> None:
    outcome = Outcome(result=None, error=ErrorInfo("mod:Boom", "boom", ["boom"]), index=3)
    net.recorders["b"].answer = outcome
    call = Call("kv", "set", CallKind.COMMAND, args=["k", "v"], client_id="x", seq=2, ack=1)
    assert await net.transports["a"].forward("b", call, 5.0) == outcome
    assert net.recorders["b"].calls == [call]


@pytest.mark.parametrize(
    "error",
    [
        NotLeaderError("not me"),
        OutcomeUnknownError("maybe"),
        ValidationError("bad"),
        UnavailableError("stopping"),
    ],
)
async def test_forward_raises_what_the_peer_raised(net: Net, error: Exception) -> None:
    net.recorders["b"].answer = error
    with pytest.raises(type(error), match=str(error)) as info:
        await net.transports["a"].forward("b", Call("o", "m", CallKind.COMMAND), 5.0)
    assert type(info.value) is type(error)


async def test_forward_to_an_unknown_peer_is_unavailable(net: Net) -> None:
    with pytest.raises(UnavailableError):
        await net.transports["a"].forward("zed", Call("o", "m", CallKind.QUERY), 1.0)


async def test_a_closed_transport_neither_receives_nor_raises(net: Net) -> None:
    await net.transports["b"].close()
    net.transports["a"].send([Heartbeat(src="a", dst="b", term=1, leader_commit=0)])
    net.transports["b"].send([Heartbeat(src="b", dst="a", term=1, leader_commit=0)])
    await asyncio.sleep(0.1)
    assert net.recorders["b"].received == [] and net.recorders["a"].received == []


async def test_a_closed_transport_does_not_forward(net: Net) -> None:
    await net.transports["a"].close()
    with pytest.raises(UnavailableError, match="closed"):
        await net.transports["a"].forward("b", Call("o", "m", CallKind.QUERY), 1.0)


async def test_forwarded_errors_keep_their_attributes(net: Net) -> None:
    net.recorders["b"].answer = NotLeaderError(
        "n2 is not the leader", leader_id="n3", leader_url="http://127.0.0.1:7003"
    )
    with pytest.raises(NotLeaderError) as info:
        await net.transports["a"].forward("b", Call("o", "m", CallKind.COMMAND), 5.0)
    assert (info.value.leader_id, info.value.leader_url) == ("n3", "http://127.0.0.1:7003")
