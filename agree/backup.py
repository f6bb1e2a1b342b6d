"""Backup and restore of a cluster's replicated state (``agree-manage backup`` / ``restore``).

**Backup.**  :func:`take_backup` runs on the leader: it confirms its leadership and waits until
it has applied up to the confirmed read index (ReadIndex, Raft §6.4), then captures the state
under the state lock, at exactly one applied index.  Every command acknowledged before the
backup was asked for is therefore in it (a linearizable point), and nothing half-applied is.
The log is not compacted and nothing is written: a backup has no effect on the cluster.
A node hosting several Raft groups backs each one up the same way, one after the other: a
ReadIndex round of that group (confirmed by its leader, wherever it is), then its state as
applied here; each group's state is at a linearizable point of that group (the groups are
independent logs, so there is no single point across them).

**Restore.**  :func:`restore_backup` writes a backup into one node's database as its snapshot,
before that node's first start (each group's state as that group's snapshot, in one
transaction): the log is empty, the hard state holds the backup's term, and
the membership is the settings' NODES (every node a voter), not the backed-up cluster's.  A
node started on it serves the backed-up state; nodes that were all restored from the same file
agree on everything up to the backup's index, so they form a new cluster at once.  A database
that already holds a log is refused unless ``force`` is given (the log is then replaced).
The file's checksum is verified, and its schemas are checked against the settings' OBJECTS
before anything is written (:func:`schema_differences`), and so is each object's group
against the settings' GROUPS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agree.errors import NotLeaderError, SchemaMismatchError, StorageError
from agree.objects.schema import extension_problems, schema_of
from agree.raft.entries import ConfState, HardState, Snapshot, SnapshotMeta
from agree.raft.ready import Role
from agree.runtime.status import members_json
from agree.storage.base import DEFAULT_GROUP, GroupWrite
from agree.wire.backup import Backup, GroupState, decode_backup, encode_backup

if TYPE_CHECKING:
    from agree.conf.settings import Settings
    from agree.progress import Progress
    from agree.runtime.group import Group
    from agree.runtime.node import Node


async def take_backup(node: Node, timeout: float) -> bytes:
    """The backup file of ``node``'s state at a linearizable point of each group it hosts;
    NotLeaderError (naming the leader) unless ``node`` leads its primary ("default") group."""
    status = node.status()
    if status.role is not Role.LEADER:
        leader = status.leader_id
        raise NotLeaderError(
            "a backup is taken by the leader",
            leader_id=leader,
            leader_url=status.members.get(leader) if leader is not None else None,
        )
    states = {}
    for group_id, group in node.groups.items():
        # A ReadIndex round of the group (through its leader, wherever it is) and its state
        # applied here up to that index: a linearizable point of that group.
        states[group_id] = await _group_state(group, timeout)
    top = states.pop(status.group)
    return encode_backup(
        index=top.index,
        term=top.term,
        node=node.id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        members=members_json(node.members()),
        objects=top.objects,
        body=top.body,
        group=status.group,
        groups=states,
    )


async def _group_state(group: Group, timeout: float) -> GroupState:
    await asyncio.wait_for(group.driver.read_index(), timeout)
    host = group.host
    async with host.lock.held():
        body = host.snapshot()
        index, term = host.applied_index, host.applied_term
        objects = {name: s.json_schema() for name, s in host.local_schemas().items()}
    return GroupState(index, term, objects, body)


def schema_differences(
    backed_up: Mapping[str, Mapping[str, Any]], local: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Why code publishing ``local`` (object name -> schema) cannot take over state backed up
    under ``backed_up``: empty when every backed-up object is hosted under its name and its
    schema here is the backup's or a compatible extension of it (agree.objects.schema,
    "Upgrades")."""
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
    """What :func:`restore_backup` wrote (``index``/``term``: of the file's top-level group)."""

    index: int
    term: int
    objects: tuple[str, ...]
    replaced: bool  # whether a log was there before (--force)
    #: Every group written, by id: the index of its snapshot.
    groups: dict[str, int] = field(default_factory=dict)


def _emptiness(settings: Settings, stores: Mapping[str, Any]) -> str | None:
    """None when the groups' stores hold nothing; else what one holds, for the refusal."""
    for group_id, store in stores.items():
        persisted = store.load()
        if (
            persisted.snapshot is None
            and not persisted.entries
            and persisted.hard_state == HardState()
        ):
            continue
        last = persisted.entries[-1].index if persisted.entries else 0
        if persisted.snapshot is not None:
            last = max(last, persisted.snapshot.meta.index)
        of = "" if group_id == DEFAULT_GROUP else f" (group {group_id!r})"
        return (
            f"the database of node {settings.NODE_ID!r} already holds a log{of} (up to index "
            f"{last}, term {persisted.hard_state.term})"
        )
    return None


def _placement_differences(
    states: Mapping[str, GroupState], placed: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Why the settings' GROUPS cannot take the groups of a backup: an object restored into
    another group than the one that holds its state."""
    here = {name: group_id for group_id, objects in placed.items() for name in objects}
    return [
        f"object {name!r} is in group {group_id!r} in the backup but in group {here[name]!r} "
        "here (GROUPS)"
        for group_id, state in states.items()
        for name in sorted(state.objects)
        if name in here and here[name] != group_id
    ]


def restore_backup(
    settings: Settings,
    data: bytes,
    *,
    force: bool = False,
    source: str = "the backup",
    progress: Progress | None = None,
) -> Restored:
    """Write the backup ``data`` into the database of ``settings``' node, each group's state
    as that group's snapshot (see the module docstring).  CorruptionError for a damaged file,
    SchemaMismatchError when the settings' objects or groups cannot take the state,
    StorageError for a database that holds a log (without ``force``)."""
    from agree.objects.replicated import create_initial
    from agree.replica.host import Host
    from agree.runtime.compose import assign_groups
    from agree.storage import open_storage

    backup: Backup = decode_backup(data, source=source)
    header = backup.header
    states = backup.states()
    classes = settings.resolve_objects()
    local = {name: schema_of(cls).json_schema() for name, cls in classes.items()}
    backed_up = {name: schema for st in states.values() for name, schema in st.objects.items()}
    placed = assign_groups(
        {name: create_initial(cls) for name, cls in classes.items()},
        {group_id: tuple(names) for group_id, names in settings.GROUPS.items()},
    )
    problems = schema_differences(backed_up, local) + _placement_differences(states, placed)
    if problems:
        raise SchemaMismatchError(
            f"{source} cannot be restored with these settings' OBJECTS: its schemas differ from "
            "this code's ('recorded' below is the backup's, 'here' this code's):\n  - "
            + "\n  - ".join(problems)
        )
    if progress is not None:
        progress.stage("rebuilding the state")
    writes: dict[str, GroupWrite] = {}
    for group_id, state in states.items():
        # Rebuilt by this node's classes (as a start would), then given this cluster's
        # membership: the address book is replicated state, and the new cluster is the one in
        # the settings.
        host = Host(
            dict(placed.get(group_id, {})), node_id=settings.NODE_ID, members=dict(settings.NODES)
        )
        host.restore(state.body)
        host.members = dict(settings.NODES)
        host.node_schemas = {n: s for n, s in host.node_schemas.items() if n in settings.NODES}
        meta = SnapshotMeta(state.index, state.term, ConfState(voters=frozenset(settings.NODES)))
        writes[group_id] = GroupWrite(
            hard_state=HardState(term=state.term, vote=None, commit=state.index),
            entries=(),
            snapshot=Snapshot(meta, host.snapshot()),
        )
    sqlite_file = settings.sqlite_path()
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        size = sum(len(w.snapshot.data) for w in writes.values() if w.snapshot is not None)
        progress.stage(f"writing {size} bytes to the database")
    storage = open_storage(settings.store_url(), auto_migrate=True, owner=settings.NODE_ID)
    try:
        stores = {g: storage.group(g) for g in sorted({*storage.group_ids(), *writes})}
        held = _emptiness(settings, stores)
        if held is not None and not force:
            raise StorageError(
                f"{held}; a restore goes into a fresh database. Point DATABASE_URL at a new "
                "one, or pass --force to replace this node's log and state with the backup"
            )
        storage.save_groups(writes)  # every group's snapshot, in one transaction
    finally:
        storage.close()
    return Restored(
        header.index,
        header.term,
        tuple(sorted(backed_up)),
        held is not None,
        {group_id: state.index for group_id, state in states.items()},
    )


__all__ = ["Restored", "restore_backup", "schema_differences", "take_backup"]
