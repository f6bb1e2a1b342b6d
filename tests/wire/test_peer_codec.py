"""The peer wire format round-trips every Raft message and every field, and refuses anything
else with ProtocolError alone."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from typing import Any

import pytest

from agree.errors import NotLeaderError, ProtocolError, ValidationError
from agree.objects.replicated import Consistency
from agree.raft import entries as raft_entries
from agree.raft.entries import ConfChange, ConfChangeType, ConfState, Entry, EntryType
from agree.raft.messages import AppendEntries, Heartbeat, Message
from agree.wire.calls import Call, CallKind, Outcome
from agree.wire.codec import ErrorInfo
from agree.wire.peer import (
    MESSAGE_TAGS,
    PEER_WIRE_VERSION,
    FrameKind,
    PeerBatch,
    decode_call_request,
    decode_call_response,
    decode_fragment,
    decode_peer_batch,
    encode_call_request,
    encode_call_response,
    encode_fragments,
    encode_peer_batch,
    frame_kind,
    message_types,
)


def every_entry() -> tuple[Entry, ...]:
    """Entries of every EntryType; CONF_CHANGE ones carry every ConfChangeType."""
    out: list[Entry] = []
    index = 7
    for entry_type in EntryType:
        if entry_type is EntryType.CONF_CHANGE:
            for change_type in ConfChangeType:
                data = ConfChange(change_type, "n4", b"http://127.0.0.1:9/\x00").encode()
                out.append(Entry(3, index, entry_type, data))
                index += 1
        else:
            out.append(Entry(3, index, entry_type, bytes(range(256)) if index % 2 else b""))
            index += 1
    return tuple(out)


def sample_value(kind: str, n: int, flip: bool) -> Any:
    """A non-default value of the field type ``kind`` (annotation text); ``n`` makes ints
    distinct per field, ``flip`` chooses the other bool."""
    if kind == "int":
        return 1_000_003 * n + (1 << 40)
    if kind == "bool":
        return flip
    if kind == "str":
        return f"nœud-{n}"
    if kind == "bytes":
        return b"\x00ctx\xff" + bytes([n])
    if kind == "tuple[Entry, ...]":
        return every_entry()
    if kind == "ConfState":
        return ConfState(voters=frozenset({"n1", "n2", "n3"}), learners=frozenset({"n4"}))
    raise AssertionError(f"no sample for field type {kind!r}: teach this test and the codec")


def samples(cls: type[Message]) -> list[Message]:
    """Two instances of ``cls`` with every field set (and every bool both ways)."""
    out = []
    for flip in (True, False):
        values = {}
        for n, f in enumerate(dataclasses.fields(cls)):
            values[f.name] = sample_value(str(f.type), n, flip)
        values["src"] = "n1"
        out.append(cls(**values))
    return out


def test_every_message_type_has_a_tag() -> None:
    types = message_types()
    assert len(types) >= 11
    assert set(types) == set(MESSAGE_TAGS), "a Message type without a wire tag (or a stale tag)"
    assert len(set(MESSAGE_TAGS.values())) == len(MESSAGE_TAGS)


@pytest.mark.parametrize("cls", message_types(), ids=lambda cls: cls.__name__)
def test_every_message_round_trips_with_every_field(cls: type[Message]) -> None:
    for msg in samples(cls):
        # Every field holds a value different from its default, so a field the codec drops
        # or defaults would show up as a difference.
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING and str(f.type) != "bool":
                assert getattr(msg, f.name) != f.default, f.name
        batch = PeerBatch("group-ü", "n1", (msg,))
        assert decode_peer_batch(encode_peer_batch(batch)) == batch


def test_a_batch_of_every_message_round_trips() -> None:
    msgs = tuple(m for cls in message_types() for m in samples(cls))
    batch = PeerBatch("default", "n1", msgs)
    back = decode_peer_batch(encode_peer_batch(batch))
    assert back == batch
    assert [type(m) for m in back.messages] == [type(m) for m in msgs]


def test_entries_of_every_type_and_conf_changes_survive() -> None:
    entries = every_entry()
    assert {e.type for e in entries} == set(EntryType)
    msg = AppendEntries(
        src="n1",
        dst="n2",
        term=3,
        prev_log_index=6,
        prev_log_term=2,
        entries=entries,
        leader_commit=5,
    )
    (back,) = decode_peer_batch(encode_peer_batch(PeerBatch("default", "n1", (msg,)))).messages
    assert isinstance(back, AppendEntries)
    assert back.entries == entries
    changes = [ConfChange.decode(e.data) for e in back.entries if e.type is EntryType.CONF_CHANGE]
    assert {c.type for c in changes} == set(ConfChangeType)


def test_the_sampled_field_types_cover_entries_module() -> None:
    # Every dataclass a message can hold is sampled above; a new one must be taught here.
    carried = {str(f.type) for cls in message_types() for f in dataclasses.fields(cls)}
    assert carried <= {"int", "bool", "str", "bytes", "tuple[Entry, ...]", "ConfState"}
    assert raft_entries.Entry is Entry


def test_empty_batch_and_empty_values() -> None:
    empty = PeerBatch("default", "n1", ())
    assert decode_peer_batch(encode_peer_batch(empty)) == empty
    # Every message with empty strings, bytes, entries and configurations, and zeros.
    zero = {"int": 0, "bool": False, "bytes": b"", "str": "", "tuple[Entry, ...]": ()}
    msgs = []
    for cls in message_types():
        values: dict[str, Any] = {"src": "n1"}
        for f in dataclasses.fields(cls):
            if f.name != "src":
                values[f.name] = zero.get(str(f.type), ConfState())
        msgs.append(cls(**values))
    batch = PeerBatch("", "n1", tuple(msgs))
    assert decode_peer_batch(encode_peer_batch(batch)) == batch


def test_a_message_from_another_src_is_not_encoded() -> None:
    msg = Heartbeat(src="n2", dst="n3", term=1, leader_commit=0)
    with pytest.raises(ValueError, match="batch from 'n1'"):
        encode_peer_batch(PeerBatch("default", "n1", (msg,)))


# -- refusals -------------------------------------------------------------------------------------


def valid_frames() -> list[bytes]:
    msgs = tuple(m for cls in message_types() for m in samples(cls))
    return [
        encode_peer_batch(PeerBatch("default", "n1", msgs)),
        encode_peer_batch(PeerBatch("default", "n1", msgs[:1])),
        encode_peer_batch(PeerBatch("default", "n1", ())),
    ]


def test_unknown_version_is_refused_by_name() -> None:
    frame = bytearray(valid_frames()[1])
    frame[3] = PEER_WIRE_VERSION + 1
    with pytest.raises(ProtocolError, match=r"wire version 2 \(a newer agree\)"):
        decode_peer_batch(bytes(frame))


def test_not_a_peer_frame_is_refused() -> None:
    with pytest.raises(ProtocolError, match="not an agree peer frame"):
        decode_peer_batch(b"\x80\x04\x95 a pickle, say")
    with pytest.raises(ProtocolError, match="at least 5 bytes"):
        decode_peer_batch(b"AG")
    with pytest.raises(ProtocolError, match="must be bytes"):
        decode_peer_batch("AGP\x01\x01")  # type: ignore[arg-type]


def test_a_frame_of_another_kind_is_refused() -> None:
    frame = encode_call_request(1, Call("o", "m", CallKind.COMMAND), 1.0)
    with pytest.raises(ProtocolError, match="expected a BATCH frame, got CALL"):
        decode_peer_batch(frame)


def test_every_truncation_is_refused() -> None:
    for frame in valid_frames():
        for cut in range(len(frame)):
            with pytest.raises(ProtocolError):
                decode_peer_batch(frame[:cut])


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(ProtocolError, match="left over"):
        decode_peer_batch(valid_frames()[1] + b"\x00")


def test_lying_counts_do_not_allocate() -> None:
    head = valid_frames()[2][:-4]  # up to the message count
    with pytest.raises(ProtocolError, match="cannot fit"):
        decode_peer_batch(head + b"\xff\xff\xff\xff")


def decodes_or_refuses(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_peer_batch(data)


def test_fuzz_random_bytes_and_bit_flips() -> None:
    rng = random.Random(1234)
    frames = valid_frames()
    for _ in range(3000):
        decodes_or_refuses(bytes(rng.getrandbits(8) for _ in range(rng.randrange(64))))
        # Random bytes behind a valid head reach the body decoder.
        decodes_or_refuses(frames[2][:5] + rng.randbytes(rng.randrange(200)))
    for frame in frames:
        for _ in range(3000):
            flipped = bytearray(frame)
            for _ in range(rng.randrange(1, 4)):
                i = rng.randrange(len(flipped))
                flipped[i] ^= 1 << rng.randrange(8)
            decodes_or_refuses(bytes(flipped))


# -- fragments ------------------------------------------------------------------------------------


def test_fragments_reassemble() -> None:
    frame = valid_frames()[0]
    pieces = encode_fragments(frame, 100)
    assert len(pieces) == -(-len(frame) // 100)
    assembled = b""
    for i, piece in enumerate(pieces):
        assert frame_kind(piece) is FrameKind.FRAGMENT
        last, data = decode_fragment(piece)
        assert last == (i == len(pieces) - 1)
        assembled += data
    assert assembled == frame


def test_malformed_fragment_is_refused() -> None:
    with pytest.raises(ProtocolError, match="flag"):
        decode_fragment(encode_fragments(b"x", 10)[0][:5])


# -- forwarded calls ------------------------------------------------------------------------------


def test_call_request_round_trips() -> None:
    call = Call(
        object="counter",
        method="add",
        kind=CallKind.QUERY,
        args=[1, "two", [3.5]],
        kwargs={"k": {"v": None}},
        consistency=Consistency.LEADER,
        client_id="c",
        seq=9,
        ack=7,
    )
    assert decode_call_request(encode_call_request(42, call, 2.5)) == (42, call, 2.5)
    bare = Call("counter", "incr", CallKind.COMMAND)
    assert decode_call_request(encode_call_request(1, bare, 0)) == (1, bare, 0.0)


def test_call_response_round_trips_outcomes_and_errors() -> None:
    outcome = Outcome(result={"a": [1, 2]}, error=ErrorInfo("m:E", "boom", ["boom"]), index=12)
    assert decode_call_response(encode_call_response(5, outcome)) == (5, outcome)
    request_id, raised = decode_call_response(encode_call_response(6, NotLeaderError("not me")))
    assert request_id == 6
    assert isinstance(raised, NotLeaderError)
    assert str(raised) == "not me"
    _, raised = decode_call_response(encode_call_response(7, ValidationError("bad arg")))
    assert type(raised) is ValidationError


@pytest.mark.parametrize(
    "body",
    [
        b"[1]",
        b'{"call": 1, "timeout": 1}',
        b'{"call": {"object": "o"}, "timeout": 1}',
        b'{"call": {"object": "o", "method": "m", "kind": "nope", "args": [], "kwargs": {},'
        b' "client_id": "", "seq": 0, "ack": 0}, "timeout": 1}',
        b'{"call": {"object": "o", "method": "m", "kind": "command", "args": [], "kwargs": {},'
        b' "client_id": "", "seq": true, "ack": 0}, "timeout": 1}',
        b'{"call": {"object": "o", "method": "m", "kind": "command", "args": [], "kwargs": {},'
        b' "client_id": "", "seq": 0, "ack": 0}, "timeout": NaN}',
        b"\xff\xfe",
        b"[" * 100_000,
    ],
)
def test_malformed_call_request_is_refused(body: bytes) -> None:
    good = encode_call_request(1, Call("o", "m", CallKind.COMMAND), 1.0)
    with pytest.raises(ProtocolError):
        decode_call_request(good[:13] + body)


def test_truncated_call_frames_are_refused() -> None:
    frames = [
        encode_call_request(1, Call("o", "m", CallKind.COMMAND), 1.0),
        encode_call_response(1, Outcome(result=[1], index=3)),
        encode_call_response(1, NotLeaderError()),
    ]
    for frame in frames:
        decode = (
            decode_call_request if frame_kind(frame) is FrameKind.CALL else decode_call_response
        )
        for cut in range(len(frame)):
            with pytest.raises(ProtocolError):
                decode(frame[:cut])


def test_fuzz_call_frames() -> None:
    rng = random.Random(99)
    frames = [
        encode_call_request(3, Call("o", "m", CallKind.QUERY, args=[1, {"a": None}]), 1.5),
        encode_call_response(3, Outcome(result={"x": [1.5, "y"]}, index=4)),
        encode_call_response(4, NotLeaderError("no")),
    ]
    for frame in frames:
        decode = (
            decode_call_request if frame_kind(frame) is FrameKind.CALL else decode_call_response
        )
        for _ in range(2000):
            flipped = bytearray(frame)
            for _ in range(rng.randrange(1, 4)):
                i = rng.randrange(len(flipped))
                flipped[i] ^= 1 << rng.randrange(8)
            with contextlib.suppress(ProtocolError):
                decode(bytes(flipped))
