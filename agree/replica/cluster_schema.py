"""The cluster's recorded operation schemas, and the log records that change them.

Every node *announces* the schemas its code has in a schema record in the log: a leader as
soon as it is elected, any other node once it knows a leader after it starts (through the
leader, as a forwarded call).  Applying a record (on every replica, deterministically)
refuses it whole if any of its schemas is not a compatible extension of the one the cluster
recorded (agree.objects.schema, "Upgrades"), else keeps it as that node's announcement and *adopts*
every schema that all the members (voters and learners, the replicated address book) announced
code for.  The recorded schemas are thus the ones every member can apply.

Two checks make a committed entry always applicable by the replica that applies it:

* each node checks its own code against the recorded schemas whenever they change; a node
  whose code is not a compatible extension stops serving and says what differs, before it
  applies anything under them;
* a call of an operation, or with a parameter, that the cluster has not adopted yet (some
  member still runs code without it) is refused before it is proposed (:func:`check_adopted`).

So a rolling upgrade that adds operations works: upgrade the nodes one by one, in any order;
the new operations become callable at one log index, once the last member announced them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from agree.errors import (
    CorruptionError,
    IncompatibleVersionError,
    ProtocolError,
    SchemaMismatchError,
    UnknownMethodError,
)
from agree.objects.schema import ObjectSchema, extension_problems, schema_fingerprint

SCHEMA_RECORD_MAGIC: Final = b"AGD"
SCHEMA_RECORD_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class SchemaRecord:
    node_id: str  # who proposed it, for messages
    schemas: dict[str, dict[str, Any]]  # object name -> ObjectSchema.json_schema()


def is_schema_record(data: bytes) -> bool:
    return data[:3] == SCHEMA_RECORD_MAGIC


def encode_schema_record(node_id: str, schemas: Mapping[str, ObjectSchema]) -> bytes:
    return _encode(node_id, {name: s.json_schema() for name, s in schemas.items()})


def _encode(node_id: str, documents: Mapping[str, Any]) -> bytes:
    body = json.dumps(
        {"node": node_id, "schemas": documents}, separators=(",", ":"), sort_keys=True
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


def announce(
    recorded: Mapping[str, dict[str, Any]],
    announced: Mapping[str, Mapping[str, dict[str, Any]]],
    record: SchemaRecord,
    members: Collection[str],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]], list[str]]:
    """Apply ``record`` (node ``record.node_id`` announcing the schemas its code has).

    Returns the recorded (adopted) schemas, the announcements by node, and the objects the
    record conflicts on.  A record whose schema of some object is not a compatible extension
    of the recorded one is refused whole (that node is refused by its own check); otherwise it
    becomes that node's announcement, and every schema that all of ``members`` (voters and
    learners) announced code for is adopted (:func:`adopt`).  Deterministic: it depends only on
    replicated state and the record.
    """
    conflicts = sorted(
        name
        for name, schema in record.schemas.items()
        if name in recorded and not extends(recorded[name], schema)
    )
    by_node = {node: dict(schemas) for node, schemas in announced.items()}
    if conflicts:
        return dict(recorded), by_node, conflicts
    by_node[record.node_id] = dict(record.schemas)
    return adopt(recorded, by_node, members), by_node, []


def adopt(
    recorded: Mapping[str, dict[str, Any]],
    announced: Mapping[str, Mapping[str, dict[str, Any]]],
    members: Collection[str],
) -> dict[str, dict[str, Any]]:
    """The recorded schemas with every extension the members all support adopted.

    A schema some member announced for an object is adopted when it extends the recorded one
    (or the object has none yet) and every member that announced anything has code that
    extends it: from then on no replica can be asked to apply a call it does not know.  A
    member that never announced (a new cluster's nodes before their first announcement) does
    not hold adoption back; should it start with code lacking something adopted, its own check
    refuses it before it applies anything under it.  Members are the cluster's address book;
    without one (a lone host), every announcement counts.
    """
    nodes = sorted(n for n in announced if not members or n in members)
    merged = dict(recorded)
    names = sorted({name for n in nodes for name in announced[n]})
    for name in names:
        for node in nodes:
            candidate = announced[node].get(name)
            if candidate is None:
                continue
            current = merged.get(name)
            if current is not None and (
                _fingerprint(current) == _fingerprint(candidate)
                or not extends(current, candidate)
            ):
                continue
            if all(
                name in announced[n] and extends(candidate, announced[n][name]) for n in nodes
            ):
                merged[name] = candidate
    return merged


def _fingerprint(document: Mapping[str, Any]) -> str | None:
    try:
        return schema_fingerprint(document)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def extends(recorded: Mapping[str, Any], local: Mapping[str, Any]) -> bool:
    """Whether ``local`` is a compatible extension of ``recorded`` (equal included)."""
    try:
        return not extension_problems(recorded, local)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False  # a malformed document is never compatible


def check_local(
    node_id: str, local: Mapping[str, ObjectSchema], recorded: Mapping[str, dict[str, Any]]
) -> None:
    """Raise SchemaMismatchError explaining every object whose local schema does not extend
    the recorded one."""
    problems: list[str] = []
    for name, schema in sorted(local.items()):
        if name not in recorded:
            continue
        try:
            found = extension_problems(recorded[name], schema.json_schema())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            found = [f"the recorded schema is malformed ({exc!r})"]
        problems += [f"object {name!r} (class {schema.qualname}): {p}" for p in found]
    if problems:
        raise SchemaMismatchError(
            f"node {node_id!r} is refused: its code is not a compatible extension of the schema"
            " the cluster recorded, so it would apply the log differently.\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nRun code that keeps every recorded operation and parameter as it is (add"
            " operations, or parameters with a default, after them); to change or remove an"
            " operation, add one under a new name and stop calling the old one (docs/upgrades.md)."
        )


def check_adopted(
    obj: str,
    method: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    recorded: Mapping[str, dict[str, Any]],
    announced: Mapping[str, Mapping[str, dict[str, Any]]],
    members: Collection[str],
    *,
    applying: bool = False,
) -> None:
    """UnknownMethodError unless the cluster adopted ``obj.method`` and every parameter the
    call passes: checked before anything is proposed, so that no replica is ever asked to
    apply a call its code does not have.  A cluster that recorded nothing yet (its first
    leader's announcement is not applied here yet) refuses nothing.  ``applying``: the check
    of a committed entry, which every replica makes alike."""
    if not recorded:
        return
    shape = adopted_shape(recorded, obj, method)
    if shape is not None and passes(shape, args, kwargs):  # the usual case
        return
    schema = recorded.get(obj)
    operation = None if schema is None else schema["operations"].get(method)
    done = "it was refused as it applied, by every replica alike" if applying else (
        "nothing was proposed"
    )
    nodes = sorted(n for n in announced if not members or n in members)
    if schema is None:
        lacking = [n for n in nodes if obj not in announced[n]]
        raise UnknownMethodError(
            f"{obj}.{method}: the cluster has not adopted the object {obj!r} yet"
            + _lacking(lacking, f"hosts {obj!r}", done)
        )
    if operation is None:
        lacking = [
            n for n in nodes if method not in announced[n].get(obj, {}).get("operations", {})
        ]
        raise UnknownMethodError(
            f"{obj}.{method}: the cluster has not adopted {method!r} yet"
            + _lacking(lacking, f"has {obj}.{method}", done)
        )
    params = operation["params"]
    positional = [p["name"] for p in params if p["kind"] == "positional_or_keyword"]
    unknown = sorted(set(kwargs) - {p["name"] for p in params})
    passed = None if len(args) > len(positional) else positional[: len(args)]
    new = unknown or [f"#{len(positional) + 1} (positional)"]
    lacking = []
    for n in nodes:
        theirs = announced[n].get(obj, {}).get("operations", {}).get(method, {})
        names = {p["name"] for p in theirs.get("params", [])}
        if not set(unknown) <= names or (
            passed is None
            and len(args)
            > sum(1 for p in theirs.get("params", []) if p["kind"] == "positional_or_keyword")
        ):
            lacking.append(n)
    raise UnknownMethodError(
        f"{obj}.{method}: the cluster has not adopted the parameter(s) {', '.join(new)} yet"
        + _lacking(lacking, "accepts them", done)
    )


#: What the cluster adopted of an operation: how many positional parameters it has, and the
#: names of all its parameters.
Shape = tuple[int, frozenset[str]]


def adopted_shape(recorded: Mapping[str, dict[str, Any]], obj: str, method: str) -> Shape | None:
    """The :data:`Shape` of ``obj.method`` in the recorded schemas; None if not recorded."""
    schema = recorded.get(obj)
    operation = None if schema is None else schema["operations"].get(method)
    if operation is None:
        return None
    params = operation["params"]
    positional = sum(1 for p in params if p["kind"] == "positional_or_keyword")
    return positional, frozenset(p["name"] for p in params)


def passes(shape: Shape, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
    """Whether a call with these arguments passes only what ``shape`` adopted."""
    return len(args) <= shape[0] and (not kwargs or kwargs.keys() <= shape[1])


def _lacking(nodes: list[str], what: str, done: str) -> str:
    if not nodes:  # every member has it: the adoption is committed, not yet applied here
        return f"; every member announced it, so its adoption is on its way: retry shortly ({done})"
    return (
        f": nodes {', '.join(repr(n) for n in nodes)} have not announced code that {what}."
        f" It becomes callable, through the log, once every member runs such code ({done})"
    )


#: A forwarded call with this object name carries a node's announcement to the leader (no
#: hosted object is named so: names are non-empty).
ANNOUNCE_OBJECT: Final = ""
ANNOUNCE_METHOD: Final = "announce-schema"


def announcement_args(node_id: str, schemas: Mapping[str, ObjectSchema]) -> list[Any]:
    """The arguments of the forwarded announcement call: [node id, published schemas]."""
    return [node_id, {name: s.json_schema() for name, s in schemas.items()}]


def record_from_args(args: Sequence[Any]) -> bytes:
    """The schema record a leader proposes for a forwarded announcement; ProtocolError if the
    arguments are not [node id, {object name: published schema}]."""
    if (
        len(args) != 2
        or not isinstance(args[0], str)
        or not isinstance(args[1], dict)
        or not all(isinstance(k, str) and isinstance(v, dict) for k, v in args[1].items())
    ):
        raise ProtocolError("a schema announcement is [node id, {object name: schema}]")
    return _encode(args[0], args[1])
