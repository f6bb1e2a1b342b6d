"""A cluster of real nodes inside one process: real Raft cores, real storage (SQLite files by
default), joined by the in-memory transport.  For tests and benchmarks.

On a :class:`~agree.testing.virtualtime.VirtualTimeLoop` the cluster runs on virtual time: its
nodes stamp commands from the loop's clock and every wait here is a virtual one, so a run is
decided by its seed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from agree.conf.settings import Settings
from agree.errors import AgreeTimeoutError
from agree.objects.replicated import Replicated, create_initial
from agree.raft.ready import Role
from agree.runtime.clock import Clock, LoopClock, SystemClock
from agree.runtime.node import Node
from agree.runtime.observer import Observer
from agree.storage.base import Storage
from agree.testing.virtualtime import VirtualTimeLoop
from agree.transport.memory import MemoryNetwork

CLUSTER_SECRET = "in-process-cluster-secret"

T = TypeVar("T")


class MemoryCluster:
    def __init__(
        self,
        directory: str | Path,
        objects: Mapping[str, type[Replicated]],
        *,
        size: int = 3,
        seed: int = 0,
        node_objects: Mapping[str, Mapping[str, type[Replicated]]] | None = None,
        database_url: str | None = None,
        clock: Clock | None = None,
        observer: Observer | None = None,
        storage: Callable[[str], Storage] | None = None,
        **settings: Any,
    ) -> None:
        """``storage``: node id -> the storage that node uses instead of ``database_url``
        (called for each start of the node; return the same one to keep its state)."""
        self.directory = Path(directory)
        self.objects = dict(objects)
        self.node_objects = {k: dict(v) for k, v in (node_objects or {}).items()}
        self.ids = [f"n{i + 1}" for i in range(size)]
        self.addresses = {
            node_id: f"http://127.0.0.1:{7001 + i}" for i, node_id in enumerate(self.ids)
        }
        self.network = MemoryNetwork()
        self.rng = random.Random(seed)
        self.database_url = database_url or f"sqlite:///{self.directory.as_posix()}/{{node_id}}.db"
        self.settings: dict[str, Any] = {
            "TICK_INTERVAL": 0.01,
            "ELECTION_TICKS": 10,
            "HEARTBEAT_TICKS": 2,
            "AUTO_MIGRATE": True,
            "REQUEST_TIMEOUT": 10.0,
            **settings,
        }
        self._clock = clock
        self.storage = storage
        self.observer = observer  # shared by every node
        self.nodes: dict[str, Node] = {}
        self.joined: set[str] = set()  # nodes added by add_node, not founders

    @property
    def clock(self) -> Clock:
        """The clock given, else one derived from the running loop: virtual on a virtual loop."""
        if self._clock is None:
            virtual = isinstance(asyncio.get_running_loop(), VirtualTimeLoop)
            self._clock = LoopClock() if virtual else SystemClock()
        return self._clock

    def node_settings(self, node_id: str, nodes: Mapping[str, str] | None = None) -> Settings:
        settings = dict(self.settings)
        if isinstance(self.clock, LoopClock):
            # On virtual time a "crash" is a node object stopped in this process, whose writes
            # the OS keeps: an fsync per commit would only cost wall time.
            settings.setdefault("SQLITE_SYNCHRONOUS", "NORMAL")
        return Settings(
            NODE_ID=node_id,
            NODES=dict(nodes or self.addresses),
            DATABASE_URL=self.database_url,
            CLUSTER_SECRET=CLUSTER_SECRET,
            **settings,
        )

    def _new_node(
        self, node_id: str, *, join: bool = False, nodes: Mapping[str, str] | None = None
    ) -> Node:
        classes = self.node_objects.get(node_id, self.objects)
        objects = {name: create_initial(cls) for name, cls in classes.items()}
        return Node(
            self.node_settings(node_id, nodes),
            objects=objects,
            transport=self.network.transport(node_id),
            storage=None if self.storage is None else self.storage(node_id),
            join=join,
            rng=random.Random(self.rng.random()),
            clock=self.clock,
            observer=self.observer,
        )

    async def start(self, only: list[str] | None = None) -> MemoryCluster:
        """Start every node (or ``only`` those; start the others with start_node later)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for node_id in self.ids:
            self.nodes[node_id] = self._new_node(node_id)
        await asyncio.gather(*(self.nodes[node_id].start() for node_id in only or self.ids))
        return self

    async def start_node(self, node_id: str) -> Node:
        node = self.nodes[node_id]
        await node.start()
        return node

    async def stop(self) -> None:
        await asyncio.gather(*(n.stop() for n in self.nodes.values()), return_exceptions=True)

    async def __aenter__(self) -> MemoryCluster:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop_node(self, node_id: str, *, crash: bool = False) -> None:
        """Stop a node; ``crash`` skips the snapshot of a clean stop, so its log is replayed."""
        await self.nodes[node_id].stop(snapshot=not crash)

    async def restart_node(self, node_id: str, *, crash: bool = False) -> Node:
        await self.stop_node(node_id, crash=crash)
        # A node that joined must never bootstrap a cluster of its own, even if it crashed
        # before it stored anything.
        node = self._new_node(node_id, join=node_id in self.joined, nodes=self.addresses)
        self.nodes[node_id] = node
        await node.start()
        return node

    async def add_node(
        self, node_id: str, *, learner: bool = False, timeout: float = 10.0, via: Node | None = None
    ) -> Node:
        """Start a fresh node and add it to the cluster through each group's leader (or with
        one ``add_member`` call on ``via``, which asks every group's leader)."""
        url = f"http://127.0.0.1:{7001 + len(self.addresses)}"
        self.addresses[node_id] = url
        self.ids.append(node_id)
        self.joined.add(node_id)
        node = self._new_node(node_id, join=True, nodes=self.addresses)
        self.nodes[node_id] = node
        await node.start()
        if via is not None:
            await via.add_member(node_id, url, learner=learner, timeout=timeout)
            return node
        for group_id in node.groups:  # through each group's leader
            leader = await self.wait_leader(timeout, group=group_id)
            await leader.add_member(node_id, url, learner=learner, timeout=timeout, group=group_id)
        return node

    def running(self) -> list[Node]:
        return [n for n in self.nodes.values() if n._started and n.failure is None]

    def leader(self, group: str | None = None) -> Node | None:
        """The leader of a group (each node's primary group by default), as the running nodes
        see it: of those that believe they lead, the one with the highest term."""
        leaders = [n for n in self.running() if n.status(group).role is Role.LEADER]
        return max(leaders, key=lambda n: n.status(group).term) if leaders else None

    async def wait_leader(
        self, timeout: float = 10.0, *, among: Iterable[str] | None = None, group: str | None = None
    ) -> Node:
        """The leader of ``group``, once one is elected (one of ``among``, if given)."""
        allowed = None if among is None else set(among)
        clock = self.clock
        deadline = clock.monotonic() + timeout
        while clock.monotonic() < deadline:
            leader = self.leader(group)
            if leader is not None and (allowed is None or leader.id in allowed):
                return leader
            await clock.sleep(0.01)
        within = "" if allowed is None else f" among {sorted(allowed)}"
        raise AgreeTimeoutError(f"no leader elected{within} within {timeout} s")

    async def wait_until(
        self, predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition"
    ) -> None:
        """Poll ``predicate`` every tick until it holds; AgreeTimeoutError naming ``what`` if it
        does not within ``timeout``."""
        clock = self.clock
        deadline = clock.monotonic() + timeout
        while not predicate():
            if clock.monotonic() >= deadline:
                raise AgreeTimeoutError(f"{what}: not reached within {timeout} s")
            await clock.sleep(self.settings["TICK_INTERVAL"])

    def local_state(
        self, name: str, read: Callable[[Any], T], *, among: Iterable[str] | None = None
    ) -> dict[str, T]:
        """``read(object)`` on every running node's (of ``among``) local copy of ``name``."""
        out: dict[str, T] = {}
        for node in self._running_among(among):
            with node.read_lock(name) as obj:
                out[node.id] = read(obj)
        return out

    async def wait_applied(
        self, index: int, timeout: float = 10.0, *, among: Iterable[str] | None = None
    ) -> None:
        """Wait until every running node (of ``among``, if given) applied ``index``."""
        nodes = self._running_among(among)
        await asyncio.wait_for(
            asyncio.gather(*(n.driver.wait_applied(index) for n in nodes)), timeout
        )

    def _running_among(self, among: Iterable[str] | None) -> list[Node]:
        allowed = None if among is None else set(among)
        return [n for n in self.running() if allowed is None or n.id in allowed]
