"""Every format that crosses a process or disk boundary lives here, versioned, one decoder each.

* :mod:`agree.wire.peer`: what Raft peers send each other, :class:`PeerBatch` frames (compact
  binary, never pickle) and the frames that carry a forwarded client call and its outcome.
* :mod:`agree.wire.handshake`: the challenge-response that authenticates a peer connection
  before a single peer frame is decoded.

A decoder raises :class:`agree.errors.ProtocolError`, and nothing else, on malformed,
truncated or unknown-version input.  This package imports only the standard library and the
modules of agree that do the same, so a client or a tool can use it without the runtime.
"""

from agree.wire.peer import (
    DEFAULT_GROUP,
    PEER_MAGIC,
    PEER_WIRE_VERSION,
    FrameKind,
    PeerBatch,
    decode_call_request,
    decode_call_response,
    decode_peer_batch,
    encode_call_request,
    encode_call_response,
    encode_peer_batch,
    frame_kind,
)

__all__ = [
    "DEFAULT_GROUP",
    "PEER_MAGIC",
    "PEER_WIRE_VERSION",
    "FrameKind",
    "PeerBatch",
    "decode_call_request",
    "decode_call_response",
    "decode_peer_batch",
    "encode_call_request",
    "encode_call_response",
    "encode_peer_batch",
    "frame_kind",
]
