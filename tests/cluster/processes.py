"""Real ``agree-manage runnode`` processes on free loopback ports, for tests.

:class:`ProcessCluster` writes a settings module into a temporary directory, starts one process
per node (``python -m agree.management --settings ... runnode --node ID``), waits until each
answers ``/readyz``, and kills every process it started, by pid, when closed — also when the
test failed.  Each node's output goes to ``<dir>/<id>.log``, shown when a node fails to start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import agree
from agree.testing.ports import free_ports

REPO = Path(agree.__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
SECRET = "test-cluster-secret-0123456789"



def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
    timeout: float = 10.0,
    context: ssl.SSLContext | None = None,
) -> tuple[int, Any]:
    """(status, decoded JSON body) of one request, whatever the status."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload.decode(errors="replace")


class ProcessCluster:
    def __init__(
        self,
        directory: Path,
        size: int,
        *,
        database_url: str | None = None,
        name: str = "cluster_settings",
        scheme: str = "http",
        context: ssl.SSLContext | None = None,
        **settings: Any,
    ) -> None:
        """``context``: how the tests' own requests reach an https cluster."""
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ids = [f"n{i}" for i in range(1, size + 1)]
        ports = free_ports(size)
        pairs = zip(self.ids, ports, strict=True)
        self.urls = {node_id: f"{scheme}://127.0.0.1:{port}" for node_id, port in pairs}
        self.context = context
        self.module = f"{name}_{os.getpid()}_{id(self)}"
        values: dict[str, Any] = {
            "NODES": dict(self.urls),
            "DATABASE_URL": database_url or f"sqlite:///{(self.dir / '{node_id}.db').as_posix()}",
            "OBJECTS": {"ledger": "cluster_models.Ledger"},
            "AUTO_MIGRATE": True,
            "TICK_INTERVAL": 0.02,
            "ELECTION_TICKS": 10,
            "REQUEST_TIMEOUT": 5.0,
            "LOG_LEVEL": "INFO",
        }
        if size > 1:
            values["CLUSTER_SECRET"] = SECRET
        values.update(settings)
        self.settings = values
        self._write_settings()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, Any] = {}

    def _write_settings(self) -> None:
        lines = [f"{key} = {value!r}" for key, value in self.settings.items()]
        (self.dir / f"{self.module}.py").write_text("\n".join(lines) + "\n")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(HERE), str(self.dir)])
        env.pop("AGREE_SETTINGS_MODULE", None)
        return env

    # -- processes ----------------------------------------------------------------------------
    def start(self, node_id: str, *extra: str, nodes: dict[str, str] | None = None) -> None:
        """Start ``node_id``'s process (``nodes``: a NODES for it alone, e.g. a joining node)."""
        assert node_id not in self.procs or self.procs[node_id].poll() is not None
        args = [sys.executable, "-m", "agree.management", "--settings", self.module]
        if nodes is not None:
            args += ["-s", "NODES=" + json.dumps(nodes)]
        args += ["runnode", "--node", node_id, *extra]
        log = open(self.dir / f"{node_id}.log", "ab")  # noqa: SIM115 - closed in close()
        self._logs[node_id] = log
        self.procs[node_id] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=self.env(), cwd=self.dir
        )

    def start_all(self) -> None:
        for node_id in self.ids:
            self.start(node_id)
        self.wait_ready(self.ids)

    def log(self, node_id: str) -> str:
        path = self.dir / f"{node_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, node_ids: list[str], timeout: float = 30.0) -> None:
        """Until every node answers /readyz with 200 (a leader known, applied caught up)."""
        deadline = time.monotonic() + timeout
        pending = list(node_ids)
        while pending:
            node_id = pending[0]
            proc = self.procs[node_id]
            if proc.poll() is not None:
                raise AssertionError(
                    f"node {node_id} exited with {proc.returncode}:\n{self.log(node_id)[-3000:]}"
                )
            try:
                status, _ = http(
                    "GET", self.urls[node_id] + "/readyz", timeout=1.0, context=self.context
                )
            except OSError:
                status = 0
            if status == 200:
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"node {node_id} not ready after {timeout}s:\n{self.log(node_id)[-3000:]}"
                )
            time.sleep(0.05)

    def signal(self, node_id: str, signum: int) -> None:
        self.procs[node_id].send_signal(signum)

    def kill(self, node_id: str) -> None:
        proc = self.procs[node_id]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def leader(self, timeout: float = 15.0) -> str:
        """The id of the leader that a running node reports."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node_id, proc in self.procs.items():
                if proc.poll() is not None:
                    continue
                try:
                    status, body = http(
                        "GET", self.urls[node_id] + "/v1/status", timeout=1.0, context=self.context
                    )
                except OSError:
                    continue
                if status == 200 and body.get("role") == "leader":
                    return str(body["id"])
            time.sleep(0.05)
        raise AssertionError("no leader elected")

    def close(self) -> None:
        """Kill every process this cluster started, by pid, and wait for each."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for log in self._logs.values():
            log.close()

    def __enter__(self) -> ProcessCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
