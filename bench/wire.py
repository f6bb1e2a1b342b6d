"""CPU cost of the peer wire format: encode and decode of PeerBatch frames.

Two frames, the ones that dominate a cluster's peer traffic:

* a small heartbeat frame (one Heartbeat, as a leader sends each follower every few ticks);
* a 64-entry AppendEntries of 64-byte entries (a busy leader's frame per follower per Ready).

For each, the time to encode and to decode one frame, in µs per frame and per message (per entry
for the AppendEntries), with the codec of :mod:`agree.wire.peer` (struct) and, when ``msgpack``
is importable, a msgpack codec producing the same objects, so the two can be compared on the
same machine.  Run by hand: ``.venv/bin/python bench/wire.py [--seconds 1]``.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    """Mean µs per call of ``fn``, over about ``seconds``."""
    n, start = 0, time.perf_counter()
    batch = 1
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / n * 1e6
        batch *= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
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


if __name__ == "__main__":
    main()
