"""Backup and restore of a cluster's replicated state (``agree-manage backup`` / ``restore``).

**Backup.**  :func:`take_backup` runs on the leader: it confirms its leadership and waits until
it has applied up to the confirmed read index (ReadIndex, Raft §6.4), then captures the state
under the state lock, at exactly one applied index.  Every command acknowledged before the
backup was asked for is therefore in it (a linearizable point), and nothing half-applied is.
The log is not compacted and nothing is written: a backup has no effect on the cluster.

**Restore.**  :func:`restore_backup` writes a backup into one node's database as its snapshot,
before that node's first start: the log is empty, the hard state holds the backup's term, and
the membership is the settings' NODES (every node a voter), not the backed-up cluster's.  A
node started on it serves the backed-up state; nodes that were all restored from the same file
agree on everything up to the backup's index, so they form a new cluster at once.  A database
that already holds a log is refused unless ``force`` is given (the log is then replaced).
The file's checksum is verified, and its schemas are checked against the settings' OBJECTS
before anything is written (:func:`schema_differences`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agree.errors import NotLeaderError, SchemaMismatchError, StorageError
from agree.raft.entries import ConfState, HardState, Snapshot, SnapshotMeta
from agree.raft.ready import Role
from agree.runtime.status import members_json
from agree.schema import extension_problems, schema_of
from agree.wire.backup import Backup, decode_backup, encode_backup

if TYPE_CHECKING:
    from agree.node import Node
    from agree.progress import Progress
    from agree.settings import Settings


async def take_backup(node: Node, timeout: float) -> bytes:
    """The backup file of ``node``'s state at a linearizable point; NotLeaderError (naming the
    leader) unless ``node`` leads."""
    status = node.status()
    if status.role is not Role.LEADER:
        leader = status.leader_id
        raise NotLeaderError(
            "a backup is taken by the leader",
            leader_id=leader,
            leader_url=status.members.get(leader) if leader is not None else None,
        )
    await asyncio.wait_for(node.driver.read_index(), timeout)
    host = node.host
    async with host.lock.held():
        body = host.snapshot()
        index, term = host.applied_index, host.applied_term
        objects = {name: s.json_schema() for name, s in host.local_schemas().items()}
    return encode_backup(
        index=index,
        term=term,
        node=node.id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        members=members_json(node.members()),
        objects=objects,
        body=body,
    )


def schema_differences(
    backed_up: Mapping[str, Mapping[str, Any]], local: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Why code publishing ``local`` (object name -> schema) cannot take over state backed up
    under ``backed_up``: empty when every backed-up object is hosted under its name and its
    schema here is the backup's or a compatible extension of it (agree.schema, "Upgrades")."""
    out: list[str] = []
    for name in sorted(backed_up):
        if name not in local:
            cls = backed_up[name].get("class")
            out.append(
                f"object {name!r} (class {cls}) is in the backup but not in OBJECTS here; its "
                "state would be lost"
            )
            continue
        for problem in extension_problems(backed_up[name], local[name]):
            out.append(f"object {name!r}: {problem}")
    return out


@dataclass(frozen=True, slots=True)
class Restored:
    """What :func:`restore_backup` wrote."""

    index: int
    term: int
    objects: tuple[str, ...]
    replaced: bool  # whether a log was there before (--force)


def _emptiness(settings: Settings, store: Any) -> str | None:
    """None when the store holds nothing; else what it holds, for the refusal."""
    persisted = store.load()
    if persisted.snapshot is None and not persisted.entries and persisted.hard_state == HardState():
        return None
    last = persisted.entries[-1].index if persisted.entries else 0
    if persisted.snapshot is not None:
        last = max(last, persisted.snapshot.meta.index)
    return (
        f"the database of node {settings.NODE_ID!r} already holds a log (up to index {last}, "
        f"term {persisted.hard_state.term})"
    )


def restore_backup(
    settings: Settings,
    data: bytes,
    *,
    force: bool = False,
    source: str = "the backup",
    progress: Progress | None = None,
) -> Restored:
    """Write the backup ``data`` into the database of ``settings``' node (see the module
    docstring).  CorruptionError for a damaged file, SchemaMismatchError when the settings'
    objects cannot take the state, StorageError for a database that holds a log (without
    ``force``)."""
    from agree.host import Host
    from agree.replicated import create_initial
    from agree.storage import open_store

    backup: Backup = decode_backup(data, source=source)
    header = backup.header
    classes = settings.resolve_objects()
    local = {name: schema_of(cls).json_schema() for name, cls in classes.items()}
    problems = schema_differences(header.objects, local)
    if problems:
        raise SchemaMismatchError(
            f"{source} cannot be restored with these settings' OBJECTS: its schemas differ from "
            "this code's ('recorded' below is the backup's, 'here' this code's):\n  - "
            + "\n  - ".join(problems)
        )
    if progress is not None:
        progress.stage("rebuilding the state")
    # Rebuilt by this node's classes (as a start would), then given this cluster's membership:
    # the address book is replicated state, and the new cluster is the one in the settings.
    host = Host(
        {name: create_initial(cls) for name, cls in classes.items()},
        node_id=settings.NODE_ID,
        members=dict(settings.NODES),
    )
    host.restore(backup.body)
    host.members = dict(settings.NODES)
    host.node_schemas = {n: s for n, s in host.node_schemas.items() if n in settings.NODES}
    body = host.snapshot()
    snapshot = Snapshot(
        SnapshotMeta(header.index, header.term, ConfState(voters=frozenset(settings.NODES))),
        body,
    )
    sqlite_file = settings.sqlite_path()
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress.stage(f"writing {len(body)} bytes to the database")
    store = open_store(settings.store_url(), auto_migrate=True, owner=settings.NODE_ID)
    try:
        held = _emptiness(settings, store)
        if held is not None and not force:
            raise StorageError(
                f"{held}; a restore goes into a fresh database. Point DATABASE_URL at a new "
                "one, or pass --force to replace this node's log and state with the backup"
            )
        store.save(
            hard_state=HardState(term=header.term, vote=None, commit=header.index),
            entries=(),
            snapshot=snapshot,
        )
    finally:
        store.close()
    return Restored(header.index, header.term, tuple(sorted(header.objects)), held is not None)


__all__ = ["Restored", "restore_backup", "schema_differences", "take_backup"]
