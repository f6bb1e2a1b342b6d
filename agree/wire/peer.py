"""The peer wire format: what one node sends another over a peer connection.

Every frame starts with ``b"AGP"``, the format version and a :class:`FrameKind`::

    frame    = "AGP" version:u8 kind:u8 body
    BATCH    = group:str src:str count:u32 message*count
    message  = tag:u8 fixed-fields variable-fields               (see below)
    FRAGMENT = last:u8 piece:bytes-to-the-end
    CALL     = request-id:u64 JSON {"call": {...}, "timeout": seconds}
    OUTCOME  = request-id:u64 JSON {"outcome": {...}} or {"raised": {error}}

    str      = length:u16 UTF-8          bytes = length:u32 raw
    entries  = count:u32 (term:i64 index:i64 type:u8 data:bytes)*count
    conf     = voters:(count:u16 str*count) learners:(count:u16 str*count)

All integers are little-endian.  A message's layout is derived from its dataclass: the ``int``
and ``bool`` fields, in declaration order, packed in one struct; then the other fields in
declaration order.  ``src`` is not repeated per message: every message of a batch is from the
batch's ``src``.  Message tags are fixed numbers (:data:`MESSAGE_TAGS`), never reused.  Since
a field added to a message changes its layout, peers also compare :data:`LAYOUT_DIGEST` (a
digest of every tag, message and field) in their handshake, and refuse each other, by name,
when their layouts differ.

Struct was chosen over msgpack by measurement (``bench/wire.py``, CPU per encode + decode):
a 64-entry AppendEntries of 64-byte entries costs 62 µs with struct against 81 µs with
msgpack (building the entries dominates both), a one-heartbeat frame 5.2 µs against 4.5 µs;
entries are the bulk of a busy cluster's traffic, and struct needs no dependency.

Forwarded calls travel as JSON inside their frame: they already are JSON-shaped values
(:mod:`agree.wire.calls`), and a JSON decoder never runs code.  Nothing here is ever unpickled.

Each ``decode_*`` raises :class:`~agree.errors.ProtocolError`, and no other exception, on
anything but a well-formed frame of its kind and of this version.
"""

from __future__ import annotations

import enum
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Final

from agree.errors import ProtocolError
from agree.objects.replicated import Consistency
from agree.raft import messages as _messages
from agree.raft.entries import ConfState, Entry, EntryType
from agree.raft.messages import Message
from agree.wire.calls import Call, CallKind, Outcome
from agree.wire.codec import ErrorInfo, decode_error, encode_error

PEER_MAGIC: Final = b"AGP"
PEER_WIRE_VERSION: Final = 1
#: The Raft group every node hosts today; partitioned objects will add more.
DEFAULT_GROUP: Final = "default"

_HEAD: Final = struct.Struct("<3sBB")  # magic, version, kind
_HEAD_LEN: Final = _HEAD.size
_U8: Final = struct.Struct("<B")
_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_ENTRY: Final = struct.Struct("<qqBI")  # term, index, type, data length
_MAX_STR: Final = 0xFFFF
_MAX_BYTES: Final = 0xFFFFFFFF


class FrameKind(enum.IntEnum):
    BATCH = 1  # a PeerBatch of Raft messages
    FRAGMENT = 2  # a piece of a large frame, sent so small frames can pass between pieces
    CALL = 3  # a forwarded client call, with a request id
    OUTCOME = 4  # the answer to a CALL with the same request id


@dataclass(frozen=True, slots=True)
class PeerBatch:
    """Raft messages of one group from one node, sent as one frame (one per peer per Ready)."""

    group_id: str
    src: str
    messages: tuple[Message, ...]


#: Stable wire numbers of the message types; never reuse or renumber one.
MESSAGE_TAGS: Final[dict[type[Message], int]] = {
    _messages.RequestVote: 1,
    _messages.RequestVoteResponse: 2,
    _messages.AppendEntries: 3,
    _messages.AppendEntriesResponse: 4,
    _messages.Heartbeat: 5,
    _messages.HeartbeatResponse: 6,
    _messages.InstallSnapshot: 7,
    _messages.InstallSnapshotResponse: 8,
    _messages.TimeoutNow: 9,
    _messages.ReadIndexRequest: 10,
    _messages.ReadIndexResponse: 11,
}

_ENTRY_TYPES: Final = {t.value: t for t in EntryType}


class _Malformed(Exception):
    """Raised inside the decoder; turned into ProtocolError at its entry point."""


# -- field codecs ---------------------------------------------------------------------------------
# An encoder appends to a list of byte strings; a decoder takes (data, offset) and returns
# (value, new offset).  Decoders check every length against the data so that a truncated or
# lying frame fails here and never allocates what its lengths claim.

_Encoder = Callable[[list[bytes], Any], None]
_Decoder = Callable[[bytes, int], tuple[Any, int]]


def _enc_str(out: list[bytes], value: str) -> None:
    raw = value.encode()
    if len(raw) > _MAX_STR:
        raise ValueError(f"a string on the peer wire is at most {_MAX_STR} bytes: {value[:40]!r}")
    out.append(_U16.pack(len(raw)))
    out.append(raw)


def _dec_str(data: bytes, off: int) -> tuple[str, int]:
    (n,) = _U16.unpack_from(data, off)
    off += 2
    end = off + n
    if end > len(data):
        raise _Malformed("a string runs past the end of the frame")
    return data[off:end].decode(), end


def _enc_bytes(out: list[bytes], value: bytes) -> None:
    out.append(_U32.pack(len(value)))
    out.append(value)


def _dec_bytes(data: bytes, off: int) -> tuple[bytes, int]:
    (n,) = _U32.unpack_from(data, off)
    off += 4
    end = off + n
    if end > len(data):
        raise _Malformed("a byte string runs past the end of the frame")
    return data[off:end], end


def _enc_entries(out: list[bytes], entries: tuple[Entry, ...]) -> None:
    out.append(_U32.pack(len(entries)))
    pack = _ENTRY.pack
    for e in entries:
        out.append(pack(e.term, e.index, e.type, len(e.data)))
        out.append(e.data)


def _dec_entries(data: bytes, off: int) -> tuple[tuple[Entry, ...], int]:
    (count,) = _U32.unpack_from(data, off)
    off += 4
    # Each entry takes at least its fixed part: a count the frame cannot hold is a lie.
    if count * _ENTRY.size > len(data) - off:
        raise _Malformed(f"{count} entries cannot fit in the rest of the frame")
    unpack, size, types, total = _ENTRY.unpack_from, _ENTRY.size, _ENTRY_TYPES, len(data)
    entries = []
    for _ in range(count):
        term, index, kind, n = unpack(data, off)
        off += size
        end = off + n
        if end > total:
            raise _Malformed("an entry's data runs past the end of the frame")
        entry_type = types.get(kind)
        if entry_type is None:
            raise _Malformed(f"unknown entry type {kind}")
        entries.append(Entry(term, index, entry_type, data[off:end]))
        off = end
    return tuple(entries), off


def _enc_names(out: list[bytes], names: frozenset[str]) -> None:
    ordered = sorted(names)
    out.append(_U16.pack(len(ordered)))
    for name in ordered:
        _enc_str(out, name)


def _dec_names(data: bytes, off: int) -> tuple[frozenset[str], int]:
    (count,) = _U16.unpack_from(data, off)
    off += 2
    names = []
    for _ in range(count):
        name, off = _dec_str(data, off)
        names.append(name)
    return frozenset(names), off


def _enc_conf(out: list[bytes], conf: ConfState) -> None:
    _enc_names(out, conf.voters)
    _enc_names(out, conf.learners)


def _dec_conf(data: bytes, off: int) -> tuple[ConfState, int]:
    voters, off = _dec_names(data, off)
    learners, off = _dec_names(data, off)
    return ConfState(voters=voters, learners=learners), off


_FIXED_CODES: Final = {"int": "q", "bool": "?"}
_VARIABLE: Final[dict[str, tuple[_Encoder, _Decoder]]] = {
    "str": (_enc_str, _dec_str),
    "bytes": (_enc_bytes, _dec_bytes),
    "tuple[Entry, ...]": (_enc_entries, _dec_entries),
    "ConfState": (_enc_conf, _dec_conf),
}


@dataclass(frozen=True, slots=True)
class _Layout:
    cls: type[Message]
    tag: bytes
    fixed: struct.Struct
    fixed_names: tuple[str, ...]
    variable: tuple[tuple[str, _Encoder, _Decoder], ...]


def _layout(cls: type[Message], tag: int) -> _Layout:
    fixed_codes: list[str] = []
    fixed_names: list[str] = []
    variable: list[tuple[str, _Encoder, _Decoder]] = []
    for f in fields(cls):
        if f.name == "src":
            continue  # the batch's src
        kind = str(f.type)  # annotations are strings here (PEP 563)
        if kind in _FIXED_CODES:
            fixed_codes.append(_FIXED_CODES[kind])
            fixed_names.append(f.name)
        elif kind in _VARIABLE:
            variable.append((f.name, *_VARIABLE[kind]))
        else:
            raise TypeError(
                f"{cls.__name__}.{f.name}: the peer wire has no codec for {kind!r}; add one to "
                "agree.wire.peer and bump PEER_WIRE_VERSION"
            )
    return _Layout(
        cls,
        bytes((tag,)),
        struct.Struct("<" + "".join(fixed_codes)),
        tuple(fixed_names),
        tuple(variable),
    )


_LAYOUTS: Final = {cls: _layout(cls, tag) for cls, tag in MESSAGE_TAGS.items()}
_BY_TAG: Final = {layout.tag[0]: layout for layout in _LAYOUTS.values()}
_BATCH_HEAD: Final = _HEAD.pack(PEER_MAGIC, PEER_WIRE_VERSION, FrameKind.BATCH)


def _layout_digest() -> str:
    described = [
        (tag, cls.__name__, [(f.name, str(f.type)) for f in fields(cls)])
        for cls, tag in sorted(MESSAGE_TAGS.items(), key=lambda item: item[1])
    ]
    text = repr((PEER_WIRE_VERSION, described, sorted((t.name, t.value) for t in EntryType)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: Changes whenever a message, a field or an entry type changes: peers must agree on it.
LAYOUT_DIGEST: Final = _layout_digest()


# -- frames ---------------------------------------------------------------------------------------


def _head(kind: FrameKind) -> bytes:
    return _HEAD.pack(PEER_MAGIC, PEER_WIRE_VERSION, kind)


def frame_kind(data: bytes) -> FrameKind:
    """The kind of a frame, after checking its magic and version; ProtocolError otherwise."""
    if len(data) < _HEAD_LEN:
        raise ProtocolError(f"a peer frame needs at least {_HEAD_LEN} bytes, got {len(data)}")
    magic, version, kind = _HEAD.unpack_from(data)
    if magic != PEER_MAGIC:
        raise ProtocolError(f"not an agree peer frame: it starts with {bytes(data[:3])!r}")
    if version != PEER_WIRE_VERSION:
        newer = "a newer" if version > PEER_WIRE_VERSION else "an older"
        raise ProtocolError(
            f"peer frame of wire version {version} ({newer} agree); this node speaks version "
            f"{PEER_WIRE_VERSION}"
        )
    try:
        return FrameKind(kind)
    except ValueError:
        raise ProtocolError(f"unknown peer frame kind {kind}") from None


_HEADS: Final = {kind: _head(kind) for kind in FrameKind}


def _body(data: bytes, expected: FrameKind) -> bytes:
    if type(data) is bytes and data[:_HEAD_LEN] == _HEADS[expected]:
        return data  # the common case, without building the enum
    if not isinstance(data, bytes):
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        else:
            raise ProtocolError(f"a peer frame must be bytes, got {type(data).__name__}")
    kind = frame_kind(data)
    if kind is not expected:
        raise ProtocolError(f"expected a {expected.name} frame, got {kind.name}")
    return data


def encode_peer_batch(batch: PeerBatch) -> bytes:
    """One BATCH frame.  ValueError if a message is not from ``batch.src`` or cannot be sent."""
    out = [_BATCH_HEAD]
    _enc_str(out, batch.group_id)
    _enc_str(out, batch.src)
    out.append(_U32.pack(len(batch.messages)))
    for msg in batch.messages:
        if msg.src != batch.src:
            raise ValueError(f"a message from {msg.src!r} in a batch from {batch.src!r}")
        layout = _LAYOUTS.get(type(msg))
        if layout is None:
            raise TypeError(f"the peer wire has no tag for {type(msg).__name__}")
        out.append(layout.tag)
        out.append(layout.fixed.pack(*[getattr(msg, name) for name in layout.fixed_names]))
        for name, enc, _ in layout.variable:
            enc(out, getattr(msg, name))
    return b"".join(out)


def decode_peer_batch(data: bytes) -> PeerBatch:
    """The batch in a BATCH frame; ProtocolError on anything else."""
    data = _body(data, FrameKind.BATCH)
    try:
        off = _HEAD_LEN
        group_id, off = _dec_str(data, off)
        src, off = _dec_str(data, off)
        (count,) = _U32.unpack_from(data, off)
        off += 4
        if count > len(data) - off:  # every message takes at least its tag byte
            raise _Malformed(f"{count} messages cannot fit in the rest of the frame")
        msgs: list[Message] = []
        for _ in range(count):
            layout = _BY_TAG.get(data[off])
            if layout is None:
                raise _Malformed(f"unknown message tag {data[off]}")
            off += 1
            values: dict[str, Any] = dict(
                zip(layout.fixed_names, layout.fixed.unpack_from(data, off), strict=True)
            )
            off += layout.fixed.size
            for name, _, dec in layout.variable:
                values[name], off = dec(data, off)
            msgs.append(layout.cls(src=src, **values))
        if off != len(data):
            raise _Malformed(f"{len(data) - off} bytes left over after the last message")
    except ProtocolError:
        raise
    except (_Malformed, struct.error, IndexError, ValueError) as exc:
        # ValueError covers UnicodeDecodeError.
        raise ProtocolError(f"malformed peer batch: {exc}") from None
    return PeerBatch(group_id, src, tuple(msgs))


def encode_fragments(frame: bytes, size: int) -> list[bytes]:
    """``frame`` cut into FRAGMENT frames of at most ``size`` payload bytes each."""
    if size < 1:
        raise ValueError("fragment size must be at least 1")
    head = _head(FrameKind.FRAGMENT)
    pieces = [frame[i : i + size] for i in range(0, len(frame), size)] or [b""]
    last = len(pieces) - 1
    return [head + _U8.pack(i == last) + piece for i, piece in enumerate(pieces)]


def decode_fragment(data: bytes) -> tuple[bool, bytes]:
    """(is the last piece, the piece) of a FRAGMENT frame."""
    data = _body(data, FrameKind.FRAGMENT)
    if len(data) < _HEAD_LEN + 1 or data[_HEAD_LEN] > 1:
        raise ProtocolError("malformed fragment frame: bad or missing 'last' flag")
    return data[_HEAD_LEN] == 1, data[_HEAD_LEN + 1 :]


# -- forwarded calls ------------------------------------------------------------------------------

_JSON_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_JSON_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def _with_id(kind: FrameKind, request_id: int, body: Any) -> bytes:
    return _head(kind) + _U64.pack(request_id) + _JSON_ENCODER.encode(body).encode()


def _json_body(data: bytes, kind: FrameKind) -> tuple[int, dict[str, Any]]:
    data = _body(data, kind)
    if len(data) < _HEAD_LEN + _U64.size:
        raise ProtocolError(f"{kind.name} frame is truncated before its request id")
    (request_id,) = _U64.unpack_from(data, _HEAD_LEN)
    try:
        body = _JSON_DECODER.decode(data[_HEAD_LEN + _U64.size :].decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"{kind.name} frame is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"{kind.name} frame must hold a JSON object")
    return request_id, body


def _field(obj: dict[str, Any], name: str, kind: Any, what: str) -> Any:
    value = obj.get(name)
    # bool is an int to isinstance; a bool where a number belongs is malformed.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"{what}: field {name!r} must be {kind}, got {value!r}")
    return value


def encode_call_request(request_id: int, call: Call, timeout: float) -> bytes:
    """A CALL frame: ``call`` forwarded to a peer, to be answered within ``timeout`` seconds."""
    return _with_id(
        FrameKind.CALL,
        request_id,
        {
            "call": {
                "object": call.object,
                "method": call.method,
                "kind": call.kind.value,
                "args": call.args,
                "kwargs": call.kwargs,
                "consistency": None if call.consistency is None else call.consistency.value,
                "client_id": call.client_id,
                "seq": call.seq,
                "ack": call.ack,
            },
            "timeout": timeout,
        },
    )


def decode_call_request(data: bytes) -> tuple[int, Call, float]:
    """(request id, call, timeout) of a CALL frame."""
    request_id, body = _json_body(data, FrameKind.CALL)
    raw = _field(body, "call", dict, "CALL frame")
    timeout = _field(body, "timeout", (int, float), "CALL frame")
    if isinstance(timeout, bool) or not timeout >= 0:
        raise ProtocolError(f"CALL frame: timeout must be a number >= 0, got {timeout!r}")
    consistency = raw.get("consistency")
    try:
        call = Call(
            object=_field(raw, "object", str, "call"),
            method=_field(raw, "method", str, "call"),
            kind=CallKind(raw.get("kind")),
            args=_field(raw, "args", list, "call"),
            kwargs=_field(raw, "kwargs", dict, "call"),
            consistency=None if consistency is None else Consistency(consistency),
            client_id=_field(raw, "client_id", str, "call"),
            seq=_field(raw, "seq", int, "call"),
            ack=_field(raw, "ack", int, "call"),
        )
    except ValueError as exc:  # an unknown kind or consistency
        raise ProtocolError(f"malformed call: {exc}") from None
    return request_id, call, float(timeout)


def encode_call_response(request_id: int, result: Outcome | BaseException) -> bytes:
    """An OUTCOME frame: the outcome of the call ``request_id``, or what it raised."""
    if isinstance(result, Outcome):
        body: dict[str, Any] = {
            "outcome": {
                "result": result.result,
                "error": None if result.error is None else result.error.to_json(),
                "index": result.index,
            }
        }
    else:
        body = {"raised": encode_error(result).to_json()}
    return _with_id(FrameKind.OUTCOME, request_id, body)


def decode_call_response(data: bytes) -> tuple[int, Outcome | BaseException]:
    """(request id, the outcome or the exception to raise) of an OUTCOME frame.

    The exception is rebuilt as its own type when this process has it loaded (as
    :func:`agree.wire.codec.decode_error` does), else a RemoteError; nothing is imported.
    """
    request_id, body = _json_body(data, FrameKind.OUTCOME)
    if "raised" in body:
        return request_id, decode_error(ErrorInfo.from_json(body["raised"]))
    raw = _field(body, "outcome", dict, "OUTCOME frame")
    error = raw.get("error")
    outcome = Outcome(
        result=raw.get("result"),
        error=None if error is None else ErrorInfo.from_json(error),
        index=_field(raw, "index", int, "outcome"),
    )
    return request_id, outcome


def message_types() -> list[type[Message]]:
    """Every concrete Message class defined in :mod:`agree.raft.messages`."""
    found = [
        obj
        for obj in vars(_messages).values()
        if isinstance(obj, type) and issubclass(obj, Message) and obj is not Message
    ]
    return sorted(found, key=lambda cls: cls.__name__)
