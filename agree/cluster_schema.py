"""The cluster's recorded operation schemas, and the log record that establishes them.

A node that becomes leader proposes a schema record carrying the JSON form of every object it
hosts.  Applying it (on every replica, deterministically) records the schema of each object the
cluster has not seen yet, and refuses the whole record if any object's schema differs from the
one already recorded.  Every node compares its own schemas with the recorded ones whenever they
change; a node whose schema is incompatible with the cluster's stops serving and says why, so
a node running different code can never apply the log with a different meaning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from agree.errors import CorruptionError, IncompatibleVersionError, SchemaMismatchError
from agree.schema import ObjectSchema, schema_fingerprint

SCHEMA_RECORD_MAGIC: Final = b"AGD"
SCHEMA_RECORD_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class SchemaRecord:
    node_id: str  # who proposed it, for messages
    schemas: dict[str, dict[str, Any]]  # object name -> ObjectSchema.json_schema()


def is_schema_record(data: bytes) -> bool:
    return data[:3] == SCHEMA_RECORD_MAGIC


def encode_schema_record(node_id: str, schemas: Mapping[str, ObjectSchema]) -> bytes:
    body = json.dumps(
        {"node": node_id, "schemas": {name: s.json_schema() for name, s in schemas.items()}},
        separators=(",", ":"),
        sort_keys=True,
    )
    return SCHEMA_RECORD_MAGIC + bytes((SCHEMA_RECORD_VERSION,)) + body.encode()


def decode_schema_record(data: bytes) -> SchemaRecord:
    if len(data) < 4 or not is_schema_record(data):
        raise CorruptionError("not a schema record")
    if data[3] != SCHEMA_RECORD_VERSION:
        raise IncompatibleVersionError(
            f"schema record version {data[3]} was written by another agree version;"
            f" this one reads version {SCHEMA_RECORD_VERSION}"
        )
    try:
        obj = json.loads(data[4:])
        return SchemaRecord(node_id=str(obj["node"]), schemas=dict(obj["schemas"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptionError(f"schema record is damaged: {exc}") from None


def merge(
    recorded: Mapping[str, dict[str, Any]], record: SchemaRecord
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The recorded schemas after applying ``record``, and the objects it conflicts on.

    Deterministic: it depends only on the recorded state and the record.  On any conflict the
    record is refused whole and the recorded schemas stay as they were.
    """
    conflicts = sorted(
        name
        for name, schema in record.schemas.items()
        if name in recorded and not _same(recorded[name], schema)
    )
    if conflicts:
        return dict(recorded), conflicts
    merged = dict(recorded)
    for name, schema in record.schemas.items():
        merged.setdefault(name, schema)
    return merged, []


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Compatible in the sense of ObjectSchema.check_compatible (documentation aside)."""
    try:
        return schema_fingerprint(a) == schema_fingerprint(b)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False  # a malformed document is never compatible


def check_local(
    node_id: str, local: Mapping[str, ObjectSchema], recorded: Mapping[str, dict[str, Any]]
) -> None:
    """Raise SchemaMismatchError explaining every object whose local schema differs."""
    problems: list[str] = []
    for name, schema in sorted(local.items()):
        if name not in recorded:
            continue
        try:
            schema.check_compatible(recorded[name])
        except SchemaMismatchError as exc:
            problems.append(f"object {name!r}: {exc}")
    if problems:
        raise SchemaMismatchError(
            f"node {node_id!r} is refused: its code does not match the schema the cluster"
            " recorded, so it would apply the log differently. Deploy the same classes on every"
            " node.\n" + "\n".join(problems)
        )
