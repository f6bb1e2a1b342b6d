"""Real ``agree-manage runnode`` processes wired through a :class:`~.proxy.LinkProxy` per
directed link, and the process faults: SIGKILL and restart, SIGSTOP/SIGCONT, a fast clock, a
slow disk, and membership changes.

Every process this module starts is killed by its pid in :meth:`ChaosCluster.close`, whatever
happened; nothing is ever killed by name.  Each node logs to ``<dir>/<id>.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

import agree
from agree.testing.chaos.proxy import LinkProxy, Network
from agree.testing.ports import free_ports

REPO = Path(agree.__file__).resolve().parent.parent
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
    """N nodes, N*(N-1) link proxies, and the harness's handle on both."""

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
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ids = [f"n{i}" for i in range(1, size + 1)]
        self.ports = dict(zip(self.ids, free_ports(size), strict=True))
        self.urls = {n: f"http://127.0.0.1:{p}" for n, p in self.ports.items()}
        self.database = database
        self.rng = rng
        self.options = {n: (options or {}).get(n, NodeOptions()) for n in self.ids}
        self.extra_env = dict(env or {})
        self.election_ticks = election_ticks
        self.network = Network()
        for a in self.ids:
            for b in self.ids:
                if a != b:
                    proxy = LinkProxy(a, b, self.ports[b], rng=random.Random(rng.random()))
                    self.network.proxies[(a, b)] = proxy
        self.module = f"chaos_settings_{os.getpid()}_{id(self)}"
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
        text = "\n".join(f"{k} = {v!r}" for k, v in values.items()) + "\n"
        (self.dir / f"{self.module}.py").write_text(text)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.paused: set[str] = set()
        self._logs: dict[str, Any] = {}

    # -- set-up ---------------------------------------------------------------------------------
    @property
    def election_timeout(self) -> float:
        """The slowest node's election timeout, in seconds."""
        return self.election_ticks * max(o.tick_interval for o in self.options.values())

    def nodes_for(self, node_id: str) -> dict[str, str]:
        """Node ``node_id``'s NODES: itself at its own port, every other node via its proxy."""
        return {
            other: (
                self.urls[other] if other == node_id else self.network.proxies[(node_id, other)].url
            )
            for other in self.ids
        }

    async def start(self) -> None:
        for proxy in self.network.proxies.values():
            await proxy.start()
        for node_id in self.ids:
            self.database.create(node_id)
            self.start_node(node_id)
        await self.wait_ready(self.ids)

    def start_node(self, node_id: str, *, join: bool = False) -> None:
        proc = self.procs.get(node_id)
        assert proc is None or proc.poll() is not None, f"{node_id} is running"
        opts = self.options[node_id]
        args = [
            sys.executable,
            "-m",
            "agree.management",
            "--settings",
            self.module,
            "-s",
            "NODES=" + json.dumps(self.nodes_for(node_id)),
            "-s",
            f"TICK_INTERVAL={opts.tick_interval}",
            "-s",
            f"STORAGE_COMMIT_DELAY={opts.commit_delay}",
            "runnode",
            "--node",
            node_id,
        ]
        if join:
            args.append("--join")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), str(self.dir), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        env.pop("AGREE_SETTINGS_MODULE", None)
        env.update(self.extra_env)
        old = self._logs.pop(node_id, None)
        if old is not None:
            old.close()
        log = open(self.dir / f"{node_id}.log", "ab")  # noqa: SIM115 - closed in close()
        self._logs[node_id] = log
        self.procs[node_id] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.dir
        )
        self.paused.discard(node_id)

    def log(self, node_id: str) -> str:
        path = self.dir / f"{node_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def wait_ready(self, node_ids: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            for node_id in node_ids:
                while True:
                    proc = self.procs[node_id]
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"node {node_id} exited with {proc.returncode}:\n"
                            + self.log(node_id)[-3000:]
                        )
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                        async with session.get(
                            self.urls[node_id] + "/readyz", timeout=aiohttp.ClientTimeout(total=1)
                        ) as response:
                            if response.status == 200:
                                break
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"node {node_id} not ready after {timeout}s:\n"
                            + self.log(node_id)[-3000:]
                        )
                    await asyncio.sleep(0.1)

    # -- process faults ---------------------------------------------------------------------------
    def running(self, node_id: str) -> bool:
        proc = self.procs.get(node_id)
        return proc is not None and proc.poll() is None

    def kill(self, node_id: str) -> None:
        """SIGKILL: no clean shutdown, no closing snapshot, whatever was in flight is lost."""
        proc = self.procs[node_id]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.paused.discard(node_id)

    def pause(self, node_id: str) -> None:
        self.procs[node_id].send_signal(signal.SIGSTOP)
        self.paused.add(node_id)

    def resume(self, node_id: str) -> None:
        if node_id in self.paused and self.running(node_id):
            self.procs[node_id].send_signal(signal.SIGCONT)
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
        """Kill every node process this cluster started (by pid) and close every proxy."""
        for node_id, proc in self.procs.items():
            if proc.poll() is None:
                if node_id in self.paused:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for log in self._logs.values():
            log.close()
        for proxy in self.network.proxies.values():
            await proxy.close()
        with contextlib.suppress(Exception):
            self.database.drop(self.ids)

    def remove_files(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
