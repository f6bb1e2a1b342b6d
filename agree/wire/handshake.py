"""The peer handshake: mutual challenge-response on the cluster secret, before any peer frame.

The node that dials (D) and the node that accepts (A) each prove that they know the cluster
secret, over a fresh random nonce from each side, so that neither proof can be replayed on
another connection or in the other direction::

    D -> A   HELLO      {"hello": 1, "from": D, "to": A, "nonce": nD, "layout": digest}
    A -> D   CHALLENGE  {"nonce": nA}
    D -> A   PROOF      {"proof": HMAC(secret, "dialer" | nD | nA | D | A)}
    A -> D   WELCOME    {"proof": HMAC(secret, "acceptor" | nD | nA | D | A)}

``layout`` is the dialer's :data:`~agree.wire.peer.LAYOUT_DIGEST`; an acceptor with another
refuses it by name (the two run different agree versions).

The dialer proves itself first, so a stranger who connects learns nothing computed from the
secret.  HMAC is HMAC-SHA256; each part of its message is length-prefixed, so no two different
handshakes hash the same bytes.  Proofs are compared with :func:`hmac.compare_digest`.  A side
that refuses closes the connection with one of the close codes below and a reason.  The
handshake messages are small JSON texts; nothing else is decoded before the WELCOME.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import struct
from dataclasses import dataclass
from typing import Any, Final

from agree.errors import ProtocolError
from agree.wire.peer import LAYOUT_DIGEST

HANDSHAKE_VERSION: Final = 1
NONCE_BYTES: Final = 32
#: A handshake message is far smaller; a bigger one is refused unread.
MAX_HANDSHAKE_BYTES: Final = 1024

# WebSocket close codes (the 4000-4999 range is for applications).
CLOSE_AUTHENTICATION: Final = 4001  # wrong secret, unknown or unexpected node id
CLOSE_PROTOCOL: Final = 4002  # a malformed or unexpected frame
# 4003 was sent for a batch of a Raft group the node does not host; such a batch is now dropped
# alone.  The code is not reused.
CLOSE_NOT_READY: Final = 4004  # the node is not started (or stopping): try again later
CLOSE_REPLACED: Final = 4005  # the same peer connected again; the older connection goes

#: A WebSocket close reason is at most 123 bytes of UTF-8.
MAX_CLOSE_REASON: Final = 123


def close_reason(text: str) -> bytes:
    """``text`` cut to fit a close frame, never in the middle of a character."""
    return text.encode()[:MAX_CLOSE_REASON].decode(errors="ignore").encode()


_LABEL: Final = b"agree-peer-handshake-v1"
_LEN: Final = struct.Struct("<H")


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def proof(
    secret: bytes,
    direction: str,
    dialer: str,
    acceptor: str,
    dialer_nonce: bytes,
    acceptor_nonce: bytes,
) -> bytes:
    """What the side ``direction`` ("dialer" or "acceptor") sends to prove it knows ``secret``."""
    parts = (
        _LABEL,
        direction.encode(),
        dialer_nonce,
        acceptor_nonce,
        dialer.encode(),
        acceptor.encode(),
    )
    message = b"".join(_LEN.pack(len(p)) + p for p in parts)
    return hmac.new(secret, message, hashlib.sha256).digest()


def proofs_match(expected: bytes, got: bytes) -> bool:
    return hmac.compare_digest(expected, got)


@dataclass(frozen=True, slots=True)
class Hello:
    src: str
    dst: str
    nonce: bytes
    layout: str = LAYOUT_DIGEST


def _load(text: str | bytes, what: str) -> dict[str, Any]:
    if len(text) > MAX_HANDSHAKE_BYTES:
        raise ProtocolError(f"handshake {what} is over {MAX_HANDSHAKE_BYTES} bytes")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"handshake {what} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"handshake {what} must be a JSON object")
    return obj


def _str(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > 256:
        raise ProtocolError(f"handshake {what} needs a non-empty string {key!r}")
    return value


def _hex(obj: dict[str, Any], key: str, size: int, what: str) -> bytes:
    value = obj.get(key)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise ProtocolError(f"handshake {what} needs {key!r} as {size} bytes in hex")
    return raw


def encode_hello(hello: Hello) -> str:
    return json.dumps(
        {
            "hello": HANDSHAKE_VERSION,
            "from": hello.src,
            "to": hello.dst,
            "nonce": hello.nonce.hex(),
            "layout": hello.layout,
        }
    )


def decode_hello(text: str | bytes) -> Hello:
    obj = _load(text, "hello")
    version = obj.get("hello")
    if version != HANDSHAKE_VERSION:
        raise ProtocolError(
            f"peer handshake version {version!r}; this node speaks version {HANDSHAKE_VERSION}"
        )
    hello = Hello(
        _str(obj, "from", "hello"),
        _str(obj, "to", "hello"),
        _hex(obj, "nonce", NONCE_BYTES, "hello"),
        _str(obj, "layout", "hello"),
    )
    if hello.layout != LAYOUT_DIGEST:
        raise ProtocolError(
            f"node {hello.src!r} speaks peer wire layout {hello.layout}, this node "
            f"{LAYOUT_DIGEST}: every node must run the same agree version"
        )
    return hello


def encode_challenge(nonce: bytes) -> str:
    return json.dumps({"nonce": nonce.hex()})


def decode_challenge(text: str | bytes) -> bytes:
    """The acceptor's nonce."""
    return _hex(_load(text, "challenge"), "nonce", NONCE_BYTES, "challenge")


def encode_proof(dialer_proof: bytes) -> str:
    return json.dumps({"proof": dialer_proof.hex()})


def decode_proof(text: str | bytes) -> bytes:
    return _hex(_load(text, "proof"), "proof", 32, "proof")


def encode_welcome(acceptor_proof: bytes) -> str:
    return json.dumps({"welcome": True, "proof": acceptor_proof.hex()})


def decode_welcome(text: str | bytes) -> bytes:
    """The acceptor's proof."""
    obj = _load(text, "welcome")
    if obj.get("welcome") is not True:
        raise ProtocolError("handshake welcome expected")
    return _hex(obj, "proof", 32, "welcome")
