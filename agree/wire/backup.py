"""The backup file: one consistent snapshot of a cluster's replicated state, with a header.

Layout (version 1, or 2 when the node hosts several Raft groups)::

    AGREE-BACKUP 1\\n                  magic and format version
    {header JSON}\\n                   one line, UTF-8
    body                               the host state blob (agree.wire.codec), body_bytes long
    group bodies                       version 2: each other group's blob, in the (sorted) order
                                       of the header's "groups"

The header says what the body is and where it came from::

    {"format": 1, "index": ..., "term": ..., "node": leader id, "created": ISO 8601 UTC,
     "members": {id: {"url", "role"}}, "objects": {name: published schema},
     "body_bytes": ..., "body_sha256": hex}

``index``/``term`` are the last log entry the state includes; ``members`` the membership at
the time of the backup (informational: a restore takes the membership from its settings);
``objects`` the schema of every object the state holds, checked against the restoring node's
code before anything is written.  Version 2 adds ``"group"`` (the group the top-level fields
describe, "default") and ``"groups"``: ``{group: {"index", "term", "objects", "body_bytes",
"body_sha256"}}`` for every other group, each taken at a linearizable point of its own group.

:func:`decode_backup` refuses a file whose body does not match its length and SHA-256 (each
group's, in version 2), so a damaged or truncated file is never restored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from agree.errors import CorruptionError, IncompatibleVersionError

BACKUP_MAGIC: Final = b"AGREE-BACKUP"
BACKUP_FORMAT: Final = 1
#: The format of a backup holding several groups.
GROUPS_FORMAT: Final = 2
#: The header is small (schemas and membership); a longer first line is not a backup header.
MAX_HEADER_BYTES: Final = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class GroupState:
    """One group's state in a backup: its blob and the log position it includes."""

    index: int
    term: int
    objects: dict[str, dict[str, Any]]
    body: bytes

    def header(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "term": self.term,
            "objects": self.objects,
            "body_bytes": len(self.body),
            "body_sha256": hashlib.sha256(self.body).hexdigest(),
        }


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
    #: The group the fields above describe; the other groups' headers, by id (version 2).
    group: str = "default"
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def format(self) -> int:
        return GROUPS_FORMAT if self.groups else BACKUP_FORMAT

    def to_json(self) -> dict[str, Any]:
        extra = {"group": self.group, "groups": self.groups} if self.groups else {}
        return {
            **extra,
            "format": self.format,
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
    #: Version 2: every other group's state, by id.
    groups: dict[str, GroupState] = field(default_factory=dict)

    def states(self) -> dict[str, GroupState]:
        """Every group's state in the file, by id (the top-level one first)."""
        header = self.header
        top = GroupState(header.index, header.term, header.objects, self.body)
        return {header.group: top, **self.groups}


def encode_backup(
    *,
    index: int,
    term: int,
    node: str,
    created: str,
    members: dict[str, dict[str, str]],
    objects: dict[str, dict[str, Any]],
    body: bytes,
    group: str = "default",
    groups: Mapping[str, GroupState] | None = None,
) -> bytes:
    """The whole file for a state blob taken at (index, term) of ``group``, and the states of
    the node's other ``groups``."""
    others = dict(sorted((groups or {}).items()))
    header = BackupHeader(
        index=index,
        term=term,
        node=node,
        created=created,
        members=members,
        objects=objects,
        body_bytes=len(body),
        body_sha256=hashlib.sha256(body).hexdigest(),
        group=group,
        groups={group_id: state.header() for group_id, state in others.items()},
    )
    # Sorted keys: "groups" is in the order of ``others``, which the bodies follow.
    line = json.dumps(header.to_json(), sort_keys=True, separators=(",", ":")).encode()
    rest = b"".join(state.body for state in others.values())
    return b"%s %d\n%s\n%s%s" % (BACKUP_MAGIC, header.format, line, body, rest)


def decode_backup(data: bytes, *, source: str = "the backup") -> Backup:
    """The header and body of a backup file, checked: magic, format version, body length and
    SHA-256.  CorruptionError for a damaged file, IncompatibleVersionError for another format."""
    first, sep, rest = data.partition(b"\n")
    magic, _, version = first.partition(b" ")
    if not sep or magic != BACKUP_MAGIC:
        raise CorruptionError(
            f"{source} is not an agree backup file (it does not start with {BACKUP_MAGIC.decode()})"
        )
    if version not in (str(BACKUP_FORMAT).encode(), str(GROUPS_FORMAT).encode()):
        raise IncompatibleVersionError(
            f"{source} is in backup format {version.decode(errors='replace')!r}; this agree "
            f"reads formats {BACKUP_FORMAT} and {GROUPS_FORMAT}"
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
            group=str(raw.get("group", "default")),
            groups=dict(raw.get("groups", {})),
        )
        parts = [
            (header.group, header.body_bytes, header.body_sha256),
            *((g, int(h["body_bytes"]), str(h["body_sha256"])) for g, h in header.groups.items()),
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptionError(f"{source} has a damaged header ({exc!r})") from None
    expected = sum(size for _, size, _ in parts)
    if len(body) != expected:
        raise CorruptionError(
            f"{source} is damaged: its body has {len(body)} bytes where the header says "
            f"{expected} (a truncated or altered file)"
        )
    bodies: dict[str, bytes] = {}
    offset = 0
    for group_id, size, sha256 in parts:
        bodies[group_id] = part = body[offset : offset + size]
        offset += size
        digest = hashlib.sha256(part).hexdigest()
        if digest != sha256:
            of = f" of group {group_id!r}" if header.groups else ""
            raise CorruptionError(
                f"{source} is damaged: checksum mismatch (SHA-256 of the body{of} is {digest}, "
                f"the header says {sha256})"
            )
    try:
        groups = {
            g: GroupState(int(h["index"]), int(h["term"]), dict(h["objects"]), bodies[g])
            for g, h in header.groups.items()
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptionError(f"{source} has a damaged header ({exc!r})") from None
    return Backup(header, bodies[header.group], groups)


__all__ = [
    "BACKUP_FORMAT",
    "BACKUP_MAGIC",
    "GROUPS_FORMAT",
    "Backup",
    "BackupHeader",
    "GroupState",
    "decode_backup",
    "encode_backup",
]
