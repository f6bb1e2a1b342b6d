"""Composition: the one place the runtime reads settings.

:func:`node_config` turns a node's :class:`~agree.conf.settings.Settings` into the plain values the
runtime works with; :func:`initial_objects` builds the objects a node starts from, and
:func:`assign_groups` places them in their Raft groups (the GROUPS setting).  Everything else
in :mod:`agree.runtime` -- groups, router, membership, ticker, storage batching -- is given
what it needs, so it can be built from injected parts (a store, a transport, a clock).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agree.conf.settings import Settings
from agree.errors import ConfigurationError
from agree.objects.replicated import Replicated, create_initial, describe_non_replicated
from agree.runtime.group import GroupOptions
from agree.storage.base import DEFAULT_GROUP


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node_id: str
    #: The founding members (NODES): how this node reaches each, and a new group's members.
    founders: Mapping[str, str]
    store_url: str
    auto_migrate: bool
    commit_delay: float
    group: GroupOptions
    #: GROUPS: group id -> the objects it hosts (the others are in "default").
    groups: Mapping[str, tuple[str, ...]]
    tick_interval: float
    election_timeout: float
    request_timeout: float
    max_call_bytes: int
    #: Imports the classes named in OBJECTS (deferred to the node's start).
    object_classes: Callable[[], dict[str, type]]


def node_config(settings: Settings) -> NodeConfig:
    return NodeConfig(
        node_id=settings.NODE_ID,
        founders=dict(settings.NODES),
        store_url=settings.store_url(),
        auto_migrate=settings.AUTO_MIGRATE,
        commit_delay=settings.STORAGE_COMMIT_DELAY,
        group=GroupOptions(
            raft=settings.raft_config(),
            snapshot_entries=settings.SNAPSHOT_ENTRIES,
            snapshot_bytes=settings.SNAPSHOT_BYTES,
        ),
        groups={g: tuple(names) for g, names in settings.GROUPS.items()},
        tick_interval=settings.TICK_INTERVAL,
        election_timeout=settings.ELECTION_TICKS * settings.TICK_INTERVAL,
        request_timeout=settings.REQUEST_TIMEOUT,
        max_call_bytes=settings.MAX_CALL_BYTES,
        object_classes=settings.resolve_objects,
    )


def copy_objects(objects: Mapping[str, Replicated]) -> dict[str, Replicated]:
    """Private copies of the objects given to a node: TypeError for anything not Replicated."""
    copies: dict[str, Replicated] = {}
    for name, obj in objects.items():
        if not isinstance(obj, Replicated):
            raise TypeError(
                f"object {name!r} must be an instance of an agree.Replicated subclass, got"
                f" {describe_non_replicated(obj)}; derive its class from Replicated and pass"
                " an instance"
            )
        try:
            copies[name] = copy.deepcopy(obj)
        except Exception as exc:
            raise TypeError(
                f"object {name!r} ({type(obj).__qualname__}) cannot be copied ({exc}); its state"
                " must be plain data, since it is copied at start and snapshotted"
            ) from exc
    return copies


def initial_objects(config: NodeConfig, given: Mapping[str, Replicated]) -> dict[str, Replicated]:
    """The objects a start begins from: those named in OBJECTS, fresh, then fresh copies of
    those given in code (which win on a name clash)."""
    objects: dict[str, Replicated] = {}
    for name, cls in config.object_classes().items():
        objects[name] = create_initial(cls)
    objects.update(copy.deepcopy(dict(given)))
    if not objects:
        raise ConfigurationError(
            "this node hosts no objects: name them in OBJECTS, e.g."
            " OBJECTS = {'counter': 'myproject.models.Counter'}",
            setting="OBJECTS",
        )
    return objects


def assign_groups(
    objects: Mapping[str, Replicated], groups: Mapping[str, tuple[str, ...]]
) -> dict[str, dict[str, Replicated]]:
    """Group id -> the objects it hosts; an object GROUPS does not name is in "default"."""
    placed: dict[str, str] = {}
    for group_id, names in groups.items():
        for name in names:
            if name not in objects:
                hosted = ", ".join(sorted(objects))
                raise ConfigurationError(
                    f"GROUPS[{group_id!r}] names {name!r}, which this node does not host"
                    f" (objects: {hosted}); name it in OBJECTS too, or remove it from GROUPS",
                    setting="GROUPS",
                )
            placed[name] = group_id
    out: dict[str, dict[str, Replicated]] = {}
    for name, obj in objects.items():
        out.setdefault(placed.get(name, DEFAULT_GROUP), {})[name] = obj
    return dict(sorted(out.items()))
