"""CPU cost of the peer wire format: encode and decode of PeerBatch frames.

Two frames, the ones that dominate a cluster's peer traffic:

* a small heartbeat frame (one Heartbeat, as a leader sends each follower every few ticks);
* a 64-entry AppendEntries of 64-byte entries (a busy leader's frame per follower per Ready).

For each, the time to encode and to decode one frame, in µs per frame and per message (per entry
for the AppendEntries), with the codec of :mod:`agree.wire.peer` (struct) and, when ``msgpack``
is importable, a msgpack codec producing the same objects, so the two can be compared on the
same machine.

``--transport`` also sends each frame through the aiohttp peer transport, node to node over a
loopback WebSocket in this process (authenticated, one frame per send), and prints the process
CPU time per frame, both sides together.

Run by hand: ``.venv/bin/python bench/wire.py [--seconds 1] [--transport]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import socket
import time
from collections.abc import Callable
from typing import Any

from agree.raft.entries import ConfState, Entry, EntryType
from agree.raft.messages import AppendEntries, Heartbeat, Message
from agree.wire.peer import MESSAGE_TAGS, PeerBatch, decode_peer_batch, encode_peer_batch


def heartbeat_batch() -> PeerBatch:
    return PeerBatch("default", "n1", (Heartbeat(src="n1", dst="n2", term=7, leader_commit=123),))


def append_batch(n: int = 64, size: int = 64) -> PeerBatch:
    entries = tuple(Entry(7, 1000 + i, EntryType.NORMAL, bytes([i % 256]) * size) for i in range(n))
    msg = AppendEntries(
        src="n1",
        dst="n2",
        term=7,
        prev_log_index=999,
        prev_log_term=7,
        entries=entries,
        leader_commit=990,
    )
    return PeerBatch("default", "n1", (msg,))


def msgpack_codec() -> tuple[Callable[[PeerBatch], bytes], Callable[[bytes], PeerBatch]] | None:
    """A msgpack codec of the same messages: [group, src, [[tag, field...], ...]]."""
    try:
        import msgpack  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    by_tag = {tag: cls for cls, tag in MESSAGE_TAGS.items()}
    names = {
        cls: tuple(f.name for f in dataclasses.fields(cls) if f.name != "src")
        for cls in MESSAGE_TAGS
    }

    def field(value: Any) -> Any:
        if isinstance(value, tuple):  # entries
            return [(e.term, e.index, int(e.type), e.data) for e in value]
        if isinstance(value, ConfState):
            return [sorted(value.voters), sorted(value.learners)]
        return value

    def encode(batch: PeerBatch) -> bytes:
        msgs = [
            [MESSAGE_TAGS[type(m)], *(field(getattr(m, n)) for n in names[type(m)])]
            for m in batch.messages
        ]
        return b"\x01" + msgpack.packb([batch.group_id, batch.src, msgs], use_bin_type=True)

    def decode(data: bytes) -> PeerBatch:
        group, src, msgs = msgpack.unpackb(data[1:], raw=False, use_list=True)
        out: list[Message] = []
        for tag, *values in msgs:
            cls = by_tag[tag]
            kw = dict(zip(names[cls], values, strict=True))
            if "entries" in kw:
                kw["entries"] = tuple(Entry(t, i, EntryType(k), d) for t, i, k, d in kw["entries"])
            if "conf" in kw:
                kw["conf"] = ConfState(frozenset(kw["conf"][0]), frozenset(kw["conf"][1]))
            out.append(cls(src=src, **kw))
        return PeerBatch(group, src, tuple(out))

    return encode, decode


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Mean CPU µs per call of ``fn``, over about ``seconds`` of CPU time."""
    n, start = 0, time.process_time()
    batch = 1
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return elapsed / n * 1e6
        batch *= 2


class _Sink:
    def __init__(self) -> None:
        self.count = 0

    def receive(self, message: Message) -> None:
        self.count += 1

    async def handle_call(self, call: Any, timeout: float) -> Any:
        raise NotImplementedError


async def transport_cpu(batch: PeerBatch, frames: int) -> float:
    """Process CPU µs per frame sent from one AiohttpTransport to another over loopback."""
    from aiohttp import web

    from agree.server.peer import add_peer_routes
    from agree.transport.aiohttp import AiohttpTransport

    secret = "bench-secret-of-some-length"
    socks = {nid: socket.socket() for nid in ("n1", "n2")}
    for sock in socks.values():
        sock.bind(("127.0.0.1", 0))
    book = {nid: f"http://127.0.0.1:{s.getsockname()[1]}" for nid, s in socks.items()}
    sinks = {nid: _Sink() for nid in socks}
    transports, runners = {}, []
    for nid, sock in socks.items():
        t = AiohttpTransport(nid, secret, queue_frames=1 << 20)
        app = web.Application()
        add_peer_routes(app, t)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        runners.append(runner)
        t.update_peers(book)
        await t.start(sinks[nid])
        transports[nid] = t
    per_frame = len(batch.messages)
    sink = sinks["n2"]

    async def wait_for(count: int) -> None:
        while sink.count < count:
            await asyncio.sleep(0.001)

    try:
        transports["n1"].send(batch.messages)  # connect and warm up
        await asyncio.wait_for(wait_for(per_frame), 10)
        start, sent = time.process_time(), 0
        while sent < frames:
            for _ in range(100):  # a hundred Readys' worth, then let the receiver catch up
                transports["n1"].send(batch.messages)
            sent += 100
            await wait_for((sent + 1) * per_frame)
        return (time.process_time() - start) / sent * 1e6
    finally:
        for t in transports.values():
            await t.close()
        for runner in runners:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument(
        "--transport", action="store_true", help="also measure CPU per frame over the transport"
    )
    parser.add_argument("--frames", type=int, default=20000, help="frames sent with --transport")
    args = parser.parse_args()
    codecs: dict[str, tuple[Callable[[PeerBatch], bytes], Callable[[bytes], PeerBatch]]] = {
        "struct": (encode_peer_batch, decode_peer_batch)
    }
    mp = msgpack_codec()
    if mp is not None:
        codecs["msgpack"] = mp
    frames = {
        "heartbeat (1 msg)": (heartbeat_batch(), 1),
        "64 x 64 B entries": (append_batch(), 64),
    }
    print(
        f"{'codec':8} {'frame':18} {'bytes':>6} {'enc µs/frame':>13} {'dec µs/frame':>13}"
        f" {'enc+dec µs/item':>16}"
    )
    for name, (encode, decode) in codecs.items():
        for label, (batch, items) in frames.items():
            data = encode(batch)
            assert decode(data) == batch
            enc = per_call(lambda b=batch, e=encode: e(b), args.seconds)  # type: ignore[misc]
            dec = per_call(lambda d=data, f=decode: f(d), args.seconds)  # type: ignore[misc]
            print(
                f"{name:8} {label:18} {len(data):6d} {enc:13.2f} {dec:13.2f}"
                f" {(enc + dec) / items:16.3f}"
            )
    if mp is None:
        print("(msgpack is not installed: only the struct codec was measured)")
    if args.transport:
        print("\nthrough the aiohttp peer transport, loopback, both sides in this process:")
        for label, (batch, items) in frames.items():
            cpu = asyncio.run(transport_cpu(batch, args.frames))
            print(f"{label:18} {cpu:8.1f} µs CPU/frame {cpu / items:8.2f} µs CPU/item")


if __name__ == "__main__":
    main()
