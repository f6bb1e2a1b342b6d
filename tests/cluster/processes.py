"""Real ``agree-manage runnode`` processes on free loopback ports, for tests.

:class:`ProcessCluster` is :class:`agree.testing.processes.NodeProcesses` with the tests' own
settings (the ``cluster_models`` objects, a fast tick) and node ids ``n1..nN`` on free ports;
every process it started is killed by pid when it is closed, also when the test failed.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from agree.testing.ports import free_ports
from agree.testing.processes import REPO, NodeProcesses

__all__ = ["REPO", "SECRET", "ProcessCluster", "free_ports", "http"]

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


class ProcessCluster(NodeProcesses):
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
        self.ids = [f"n{i}" for i in range(1, size + 1)]
        pairs = zip(self.ids, free_ports(size), strict=True)
        urls = {node_id: f"{scheme}://127.0.0.1:{port}" for node_id, port in pairs}
        values: dict[str, Any] = {
            "NODES": dict(urls),
            "DATABASE_URL": database_url or f"sqlite:///{(directory / '{node_id}.db').as_posix()}",
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
        super().__init__(directory, values, name=name, path=[HERE], urls=urls, context=context)

    def start_all(self) -> None:
        for node_id in self.ids:
            self.start(node_id)
        self.wait_ready(self.ids)

    def leader(self, timeout: float = 15.0) -> str:
        """The id of the leader that a running node reports."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node_id in list(self.procs):
                if not self.running(node_id):
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

    def __enter__(self) -> ProcessCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
