"""The in-memory network carries bytes through the wire codecs, never live objects."""

from __future__ import annotations

import asyncio

import pytest
from peer_harness import Recorder

from agree.errors import NotLeaderError, UnavailableError
from agree.raft.entries import Entry
from agree.raft.messages import AppendEntries, Heartbeat
from agree.transport.memory import MemoryNetwork
from agree.wire import peer
from agree.wire.calls import Call, CallKind


async def test_messages_cross_as_one_decoded_frame_per_destination(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames: list[bytes] = []
    encode = peer.encode_peer_batch

    def counting(batch: peer.PeerBatch) -> bytes:
        frames.append(encode(batch))
        return frames[-1]

    monkeypatch.setattr("agree.transport.memory.encode_peer_batch", counting)
    net = MemoryNetwork()
    a, b, c = net.transport("a"), net.transport("b"), net.transport("c")
    rb, rc = Recorder(), Recorder()
    await a.start(Recorder())
    await b.start(rb)
    await c.start(rc)
    append = AppendEntries(
        src="a",
        dst="b",
        term=2,
        prev_log_index=0,
        prev_log_term=0,
        entries=(Entry(2, 1, data=b"x"),),
        leader_commit=0,
    )
    beat = Heartbeat(src="a", dst="b", term=2, leader_commit=1, context=b"r")
    to_c = Heartbeat(src="a", dst="c", term=2, leader_commit=1)
    a.send([append, beat, to_c])
    await asyncio.sleep(0)
    assert rb.received == [append, beat]
    assert rc.received == [to_c]
    assert rb.received[0] is not append  # a decoded copy, not the sender's object
    assert len(frames) == 2  # one frame per destination for one send


async def test_each_group_is_delivered_as_itself_and_an_unknown_one_dropped() -> None:
    net = MemoryNetwork()
    a, b = net.transport("a"), net.transport("b")
    rb = Recorder(groups=("default", "other"))
    await a.start(Recorder())
    await b.start(rb)
    beats = [Heartbeat(src="a", dst="b", term=2, leader_commit=i) for i in range(3)]
    a.send([beats[0]])
    a.send([beats[1]], "other")
    a.send([beats[2]], "unknown")
    await asyncio.sleep(0)
    assert rb.by_group == {"default": [beats[0]], "other": [beats[1]]}


async def test_partitions_still_drop() -> None:
    net = MemoryNetwork()
    a, b = net.transport("a"), net.transport("b")
    rb = Recorder()
    await a.start(Recorder())
    await b.start(rb)
    net.cut("a", "b")
    a.send([Heartbeat(src="a", dst="b", term=1, leader_commit=0)])
    await asyncio.sleep(0)
    assert rb.received == []
    with pytest.raises(UnavailableError):
        await a.forward("b", Call("o", "m", CallKind.COMMAND), 1.0)


async def test_forwarded_calls_and_errors_cross_as_frames() -> None:
    net = MemoryNetwork()
    a, b = net.transport("a"), net.transport("b")
    rb = Recorder()
    await a.start(Recorder())
    await b.start(rb)
    call = Call("o", "m", CallKind.COMMAND, args=[1], client_id="c", seq=3)
    outcome = await a.forward("b", call, 1.0)
    assert outcome == rb.answer and outcome is not rb.answer
    assert rb.calls == [call] and rb.calls[0] is not call
    error = NotLeaderError("not me")
    rb.answer = error
    with pytest.raises(NotLeaderError, match="not me") as info:
        await a.forward("b", call, 1.0)
    assert info.value is not error
