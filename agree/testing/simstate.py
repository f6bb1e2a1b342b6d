"""The simulated hosts' state machine snapshot format: bytes that differ, state that does not.

Owns: turning a node's key-value state into snapshot bytes and back.  Real hosts do not
produce identical bytes for identical state (cloudpickle output depends on the process:
a set iterates in another order under another hash seed).  So, when asked, each node
serialises with its own salt and its own key order, drawn from its own random stream:
two nodes' snapshots at the same (index, term) then hold the same state in different
bytes, and a snapshot glued together from two of them is detected, as a real host
detects it, by the checksum in its header.

Format: ``b"%08x\\n" % crc32(payload) + payload``, the payload being JSON
``{"kv": {...}, "salt": "..."}`` with the keys in the node's order.
"""

from __future__ import annotations

import json
import random
import zlib


class CorruptSnapshot(Exception):
    """Snapshot bytes that no node wrote: a bad checksum or an unreadable payload."""


def encode_state(kv: dict[str, int], salt: random.Random | None = None) -> bytes:
    """``kv``'s snapshot bytes; with ``salt``, a node-specific key order and salt."""
    items = sorted(kv.items())
    tail = ""
    if salt is not None:
        salt.shuffle(items)
        # A salt of varying length shifts every byte after it, so that two nodes' chunk
        # boundaries never line up with the same content.
        tail = salt.randbytes(salt.randint(1, 12)).hex()
    payload = json.dumps({"kv": dict(items), "salt": tail}, separators=(",", ":")).encode()
    return b"%08x\n" % zlib.crc32(payload) + payload


def decode_state(data: bytes) -> dict[str, int]:
    """The state in ``data``; :class:`CorruptSnapshot` if the checksum or format is wrong."""
    header, sep, payload = data.partition(b"\n")
    if not sep or len(header) != 8:
        raise CorruptSnapshot(f"no checksum header in {len(data)} bytes")
    try:
        crc = int(header, 16)
    except ValueError:
        raise CorruptSnapshot(f"bad checksum header {header!r}") from None
    if zlib.crc32(payload) != crc:
        raise CorruptSnapshot(
            f"checksum mismatch: header {crc:08x}, payload {zlib.crc32(payload):08x}"
        )
    try:
        kv = json.loads(payload)["kv"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptSnapshot(f"unreadable payload: {exc}") from None
    if not isinstance(kv, dict):
        raise CorruptSnapshot("payload holds no state")
    return {str(k): int(v) for k, v in kv.items()}
