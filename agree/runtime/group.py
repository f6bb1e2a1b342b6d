"""One Raft group of a node: its core, driver, state machine host, subscriptions and store view.

A node hosts one or more groups, each with its own objects, log, leader and membership; they
share the node's storage (one transaction per loop turn, :mod:`agree.runtime.commit`), its
ticker (:mod:`agree.runtime.ticker`) and its one peer connection per remote node (each batch
carries its group id).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from agree.errors import AgreeError, NotLeaderError, UnavailableError
from agree.objects.replicated import Replicated
from agree.raft.config import Config
from agree.raft.entries import ConfState, HardState, PersistedState
from agree.raft.membership import bootstrap_entries
from agree.raft.messages import Message
from agree.raft.node import RaftNode
from agree.raft.ready import Role
from agree.replica.host import Host
from agree.replica.subscriptions import SubscriptionHub
from agree.runtime.clock import Clock
from agree.runtime.commit import CommitBatcher, GroupStore
from agree.runtime.driver import Driver
from agree.runtime.observer import Observer
from agree.storage.threaded import AsyncLogStore, AsyncStorage
from agree.transport.base import Transport


def bootstrap_state(nodes: Mapping[str, str]) -> PersistedState:
    """The first entries of a brand-new group, identical on every founding node.

    The founding configuration is written into the log itself (as etcd does) rather than kept
    beside it, so a node that joins later learns it by replication like any other entry.
    Each founder is added as a learner then promoted; the URLs travel in the entries' context.
    """
    conf = ConfState(voters=frozenset(nodes))
    entries = bootstrap_entries(conf, {node_id: url.encode() for node_id, url in nodes.items()})
    return PersistedState(hard_state=HardState(term=1), entries=tuple(entries))


@dataclass(frozen=True, slots=True)
class GroupOptions:
    """What a group's runtime needs from the node's settings (read by agree.runtime.compose)."""

    raft: Config
    snapshot_entries: int
    snapshot_bytes: int


class _GroupLink:
    """The node's transport as one group's driver sees it: sends carry the group's id, and a
    change of the group's members' addresses goes to the node's one address book."""

    def __init__(self, transport: Transport, group_id: str, on_addresses: Callable[[], None]):
        self._transport = transport
        self._group_id = group_id
        self._on_addresses = on_addresses

    def send(self, messages: Sequence[Message]) -> None:
        self._transport.send(messages, self._group_id)

    def update_peers(self, addresses: Mapping[str, str]) -> None:
        self._on_addresses()


class Group:
    """One started Raft group.  Open it with :func:`open_group`."""

    def __init__(
        self, group_id: str, driver: Driver, host: Host, hub: SubscriptionHub, view: AsyncLogStore
    ) -> None:
        self.id = group_id
        self._driver = driver
        self.host = host
        self.hub = hub
        #: The group's store, read directly (writes go through the driver).
        self.view = view

    @property
    def objects(self) -> list[str]:
        return sorted(self.host.objects)

    @property
    def driver(self) -> Driver:
        """The driver; the reason instead if the group stopped serving (storage failed...)."""
        failure = self._driver.failure
        if isinstance(failure, AgreeError):
            raise failure
        if failure is not None:
            raise UnavailableError(f"node {self._driver.raft.id!r} failed: {failure}")
        return self._driver

    @property
    def failure(self) -> BaseException | None:
        return self._driver.failure

    def not_leader(self) -> NotLeaderError:
        leader = self.driver.soft_state.leader_id
        url = self.host.members.get(leader) if leader is not None else None
        return NotLeaderError(leader_id=leader, leader_url=url)

    def require_leader(self) -> Driver:
        driver = self.driver
        if driver.soft_state.role is not Role.LEADER:
            raise self.not_leader()
        return driver

    def tick(self) -> None:
        self._driver.tick()

    def receive(self, message: Message) -> None:
        self._driver.receive(message)

    def peer_addresses(self) -> dict[str, str]:
        return self._driver.peer_addresses()

    async def start(self) -> None:
        await self._driver.start()

    async def stop(self, *, snapshot: bool) -> None:
        await self._driver.stop(snapshot=snapshot)
        self.hub.close()


async def open_group(
    group_id: str,
    objects: dict[str, Replicated],
    *,
    node_id: str,
    founders: Mapping[str, str],
    join: bool,
    storage: AsyncStorage,
    batcher: CommitBatcher,
    transport: Transport,
    on_addresses: Callable[[], None],
    options: GroupOptions,
    rng: random.Random,
    clock: Clock,
    observer: Observer | None,
    on_leader: Callable[[], None] | None = None,
) -> tuple[Group, bool]:
    """Load (or, for a founder of a new cluster, bootstrap) one group's state and build its
    runtime, not yet started.  Returns the group and whether its storage was empty."""
    view = await storage.group(group_id)
    store = GroupStore(group_id, view, batcher)
    persisted = await view.load()
    fresh = (
        persisted.snapshot is None and not persisted.entries and persisted.hard_state == HardState()
    )
    if fresh and not join:
        persisted = bootstrap_state(founders)
        await store.save(hard_state=persisted.hard_state, entries=persisted.entries)
    host = Host(objects, node_id=node_id, members=dict(founders))
    # Before the restore, so that the hub knows nothing older can be resumed from.
    hub = SubscriptionHub(host.decode_mutation)
    host.hub = hub
    if persisted.snapshot is not None:
        host.restore(persisted.snapshot.data)
    raft = RaftNode(options.raft, rng=rng, persisted=persisted, applied=host.applied_index)
    driver = Driver(
        raft,
        store,
        _GroupLink(transport, group_id, on_addresses),
        host,
        clock=clock,
        observer=observer,
        snapshot_entries=options.snapshot_entries,
        snapshot_bytes=options.snapshot_bytes,
        on_leader=on_leader,
        addresses=founders,
        group=group_id,
    )
    return Group(group_id, driver, host, hub, view), fresh
