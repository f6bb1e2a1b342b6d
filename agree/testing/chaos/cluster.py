"""Real ``agree-manage runnode`` processes (:class:`agree.testing.processes.NodeProcesses`)
wired through the fault-injecting proxies (:mod:`.proxy`), and the process faults: SIGKILL and
restart, SIGSTOP/SIGCONT, a fast clock, a slow disk, and membership changes with new node ids.

Every process this module starts is killed by its pid in :meth:`ChaosCluster.close`, whatever
happened; nothing is ever killed by name.  Each node logs to ``<dir>/<id>.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import shutil
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from agree.testing.chaos.proxy import Network
from agree.testing.ports import free_ports
from agree.testing.processes import NodeProcesses

SECRET = "chaos-cluster-secret-0123456789"
OBJECTS = {
    "registers": "agree.testing.chaos.models.Registers",
    "log": "agree.testing.chaos.models.AppendLog",
    "bank": "agree.testing.chaos.models.Bank",
}


@dataclass
class NodeOptions:
    """Per-node settings that differ between nodes (process faults chosen at start)."""

    tick_interval: float = 0.05
    commit_delay: float = 0.0


@dataclass
class Database:
    """Where the nodes keep their logs: SQLite files, or one PostgreSQL schema per node."""

    kind: str  # "sqlite" or "postgres"
    directory: Path
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    prefix: str = field(default_factory=lambda: f"agree_chaos_{uuid.uuid4().hex[:8]}")

    def url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{(self.directory / '{node_id}.db').as_posix()}"
        sa = self.postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
        return f"{sa}?options=-csearch_path%3D{self.prefix}_{{node_id}}"

    def create(self, node_id: str) -> None:
        if self.kind == "postgres":
            self._sql(f'CREATE SCHEMA IF NOT EXISTS "{self.prefix}_{node_id}"')

    def wipe(self, node_id: str) -> None:
        """Forget a node's data entirely (a node removed and added back starts empty)."""
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / f"{node_id}.db{suffix}").unlink()
        else:
            self._sql(f'DROP SCHEMA IF EXISTS "{self.prefix}_{node_id}" CASCADE')
            self.create(node_id)

    def drop(self, node_ids: list[str]) -> None:
        if self.kind == "postgres":
            for node_id in node_ids:
                self._sql(f'DROP SCHEMA IF EXISTS "{self.prefix}_{node_id}" CASCADE')

    def _sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.postgres_url, autocommit=True) as conn:
            conn.execute(statement)


class ChaosCluster:
    """The nodes, each behind its :class:`~.proxy.Ingress`, and the harness's handle on both.

    ``ids`` are the members as the harness last changed them (membership churn adds brand-new
    ids ``n{N+1}``, ``n{N+2}``, ... and removes old ones); every id ever used keeps its port,
    its ingress and its log file until :meth:`close`.
    """

    def __init__(
        self,
        directory: Path,
        size: int,
        *,
        database: Database,
        rng: random.Random,
        options: dict[str, NodeOptions] | None = None,
        env: dict[str, str] | None = None,
        election_ticks: int = 10,
        snapshot_entries: int = 2000,
        request_timeout: float = 3.0,
        proxied: bool = True,
    ) -> None:
        """``proxied``: whether the nodes reach each other through the proxies (without them,
        directly: no network fault can be injected)."""
        self.dir = directory
        self.proxied = proxied
        self.ids = [f"n{i}" for i in range(1, size + 1)]
        self.known: list[str] = []  # every id ever used, in order
        self._next = itertools.count(size + 1)
        self.ports: dict[str, int] = {}
        self.database = database
        self.rng = rng
        self.options = {n: (options or {}).get(n, NodeOptions()) for n in self.ids}
        self.election_ticks = election_ticks
        self.network = Network(random.Random(rng.random()))
        values = {
            "DATABASE_URL": database.url(),
            "OBJECTS": OBJECTS,
            "AUTO_MIGRATE": True,
            "CLUSTER_SECRET": SECRET,
            "ELECTION_TICKS": election_ticks,
            "REQUEST_TIMEOUT": request_timeout,
            "SNAPSHOT_ENTRIES": snapshot_entries,
            "LOG_LEVEL": "INFO",
        }
        self.processes = NodeProcesses(directory, values, name="chaos_settings", env=env)
        self.urls = self.processes.urls  # each node's own port, as the harness reaches it
        self.paused: set[str] = set()
        self._bootstrapped = False
        for node_id in self.ids:
            self._allocate(node_id)

    def _allocate(self, node_id: str) -> None:
        (port,) = free_ports(1)
        self.ports[node_id] = port
        self.urls[node_id] = f"http://127.0.0.1:{port}"
        self.known.append(node_id)

    # -- set-up ---------------------------------------------------------------------------------
    @property
    def election_timeout(self) -> float:
        """The slowest node's election timeout, in seconds."""
        return self.election_ticks * max(o.tick_interval for o in self.options.values())

    def peer_url(self, node_id: str) -> str:
        """Where the other nodes reach ``node_id``: its ingress (what membership records)."""
        if not self.proxied:
            return self.urls[node_id]
        return self.network.ingress[node_id].url

    def nodes_for(self, node_id: str) -> dict[str, str]:
        """Node ``node_id``'s NODES: itself at its own port, every member via its ingress."""
        nodes = {other: self.peer_url(other) for other in self.ids if other != node_id}
        nodes[node_id] = self.urls[node_id]
        return nodes

    async def start(self) -> None:
        for node_id in self.ids:
            if self.proxied:
                await self.network.add(node_id, self.ports[node_id])
            self.database.create(node_id)
        for node_id in self.ids:
            self.start_node(node_id)
        await self.wait_ready(self.ids)
        self._bootstrapped = True

    async def new_node(self) -> str:
        """A brand-new id, its port, ingress and empty database (not started, not a member)."""
        node_id = f"n{next(self._next)}"
        self._allocate(node_id)
        base = max(self.options.values(), key=lambda o: o.tick_interval)
        self.options[node_id] = NodeOptions(tick_interval=base.tick_interval)
        if self.proxied:
            await self.network.add(node_id, self.ports[node_id])
        self.database.create(node_id)
        return node_id

    def start_node(self, node_id: str) -> None:
        """Start (or restart) ``node_id``.  Once the cluster has bootstrapped every node starts
        with ``--join``: one whose database is empty (wiped, brand new, or killed before it
        stored anything) waits to be added instead of bootstrapping a cluster of its own."""
        opts = self.options[node_id]
        overrides = {
            "NODES": self.nodes_for(node_id),
            "TICK_INTERVAL": opts.tick_interval,
            "STORAGE_COMMIT_DELAY": opts.commit_delay,
        }
        extra = ["--join"] if self._bootstrapped else []
        self.processes.start(node_id, *extra, overrides=overrides)
        self.paused.discard(node_id)

    def log(self, node_id: str) -> str:
        return self.processes.log(node_id)

    async def wait_ready(self, node_ids: list[str], timeout: float = 60.0) -> None:
        await asyncio.to_thread(self.processes.wait_ready, list(node_ids), timeout)

    # -- process faults ---------------------------------------------------------------------------
    def running(self, node_id: str) -> bool:
        return self.processes.running(node_id)

    def kill(self, node_id: str) -> None:
        """SIGKILL: no clean shutdown, no closing snapshot, whatever was in flight is lost."""
        self.processes.kill(node_id)
        self.paused.discard(node_id)

    def pause(self, node_id: str) -> None:
        self.processes.signal(node_id, signal.SIGSTOP)
        self.paused.add(node_id)

    def resume(self, node_id: str) -> None:
        if node_id in self.paused and self.running(node_id):
            self.processes.signal(node_id, signal.SIGCONT)
        self.paused.discard(node_id)

    # -- observing --------------------------------------------------------------------------------
    async def status(self, session: aiohttp.ClientSession, node_id: str) -> dict[str, Any] | None:
        try:
            async with session.get(
                self.urls[node_id] + "/v1/status", timeout=aiohttp.ClientTimeout(total=1)
            ) as response:
                if response.status != 200:
                    return None
                body: dict[str, Any] = await response.json()
                return body
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return None

    async def leader(self, session: aiohttp.ClientSession) -> str | None:
        for node_id in self.ids:
            if not self.running(node_id) or node_id in self.paused:
                continue
            body = await self.status(session, node_id)
            if body is not None and body.get("role") == "leader":
                return str(body["id"])
        return None

    async def local_read(
        self, session: aiohttp.ClientSession, node_id: str, obj: str, method: str
    ) -> Any:
        """A query answered by ``node_id`` from its own state (consistency ANY)."""
        async with session.post(
            f"{self.urls[node_id]}/v1/objects/{obj}/{method}",
            json={"args": [], "kwargs": {}, "consistency": "any"},
            timeout=aiohttp.ClientTimeout(total=2),
        ) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise RuntimeError(f"{node_id} {obj}.{method}: HTTP {response.status} {body}")
            return body["result"]

    # -- clean-up ---------------------------------------------------------------------------------
    async def close(self) -> None:
        """Kill every node process this cluster started (by pid) and close every ingress."""
        self.processes.close()
        self.paused.clear()
        await self.network.close()
        with contextlib.suppress(Exception):
            self.database.drop(self.known)

    def remove_files(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
