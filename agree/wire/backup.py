"""The backup file: one consistent snapshot of a cluster's replicated state, with a header.

Layout (version 1)::

    AGREE-BACKUP 1\\n                  magic and format version
    {header JSON}\\n                   one line, UTF-8
    body                               the host state blob (agree.codec), body_bytes long

The header says what the body is and where it came from::

    {"format": 1, "index": ..., "term": ..., "node": leader id, "created": ISO 8601 UTC,
     "members": {id: {"url", "role"}}, "objects": {name: published schema},
     "body_bytes": ..., "body_sha256": hex}

``index``/``term`` are the last log entry the state includes; ``members`` the membership at
the time of the backup (informational: a restore takes the membership from its settings);
``objects`` the schema of every object the state holds, checked against the restoring node's
code before anything is written.  :func:`decode_backup` refuses a file whose body does not
match its length and SHA-256, so a damaged or truncated file is never restored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

from agree.errors import CorruptionError, IncompatibleVersionError

BACKUP_MAGIC: Final = b"AGREE-BACKUP"
BACKUP_FORMAT: Final = 1
#: The header is small (schemas and membership); a longer first line is not a backup header.
MAX_HEADER_BYTES: Final = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BackupHeader:
    index: int
    term: int
    node: str
    created: str
    members: dict[str, dict[str, str]]
    objects: dict[str, dict[str, Any]]
    body_bytes: int
    body_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BACKUP_FORMAT,
            "index": self.index,
            "term": self.term,
            "node": self.node,
            "created": self.created,
            "members": self.members,
            "objects": self.objects,
            "body_bytes": self.body_bytes,
            "body_sha256": self.body_sha256,
        }


@dataclass(frozen=True, slots=True)
class Backup:
    header: BackupHeader
    body: bytes


def encode_backup(
    *,
    index: int,
    term: int,
    node: str,
    created: str,
    members: dict[str, dict[str, str]],
    objects: dict[str, dict[str, Any]],
    body: bytes,
) -> bytes:
    """The whole file for a state blob taken at (index, term)."""
    header = BackupHeader(
        index=index,
        term=term,
        node=node,
        created=created,
        members=members,
        objects=objects,
        body_bytes=len(body),
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    line = json.dumps(header.to_json(), sort_keys=True, separators=(",", ":")).encode()
    return b"%s %d\n%s\n%s" % (BACKUP_MAGIC, BACKUP_FORMAT, line, body)


def decode_backup(data: bytes, *, source: str = "the backup") -> Backup:
    """The header and body of a backup file, checked: magic, format version, body length and
    SHA-256.  CorruptionError for a damaged file, IncompatibleVersionError for another format."""
    first, sep, rest = data.partition(b"\n")
    magic, _, version = first.partition(b" ")
    if not sep or magic != BACKUP_MAGIC:
        raise CorruptionError(
            f"{source} is not an agree backup file (it does not start with {BACKUP_MAGIC.decode()})"
        )
    if version != str(BACKUP_FORMAT).encode():
        raise IncompatibleVersionError(
            f"{source} is in backup format {version.decode(errors='replace')!r}; this agree "
            f"reads format {BACKUP_FORMAT}"
        )
    line, sep, body = rest.partition(b"\n")
    if not sep or len(line) > MAX_HEADER_BYTES:
        raise CorruptionError(f"{source} is truncated: its header line is incomplete")
    try:
        raw = json.loads(line)
        header = BackupHeader(
            index=int(raw["index"]),
            term=int(raw["term"]),
            node=str(raw["node"]),
            created=str(raw["created"]),
            members=dict(raw["members"]),
            objects=dict(raw["objects"]),
            body_bytes=int(raw["body_bytes"]),
            body_sha256=str(raw["body_sha256"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptionError(f"{source} has a damaged header ({exc!r})") from None
    if len(body) != header.body_bytes:
        raise CorruptionError(
            f"{source} is damaged: its body has {len(body)} bytes where the header says "
            f"{header.body_bytes} (a truncated or altered file)"
        )
    digest = hashlib.sha256(body).hexdigest()
    if digest != header.body_sha256:
        raise CorruptionError(
            f"{source} is damaged: checksum mismatch (SHA-256 of the body is {digest}, the "
            f"header says {header.body_sha256})"
        )
    return Backup(header, body)


__all__ = [
    "BACKUP_FORMAT",
    "BACKUP_MAGIC",
    "Backup",
    "BackupHeader",
    "decode_backup",
    "encode_backup",
]
