"""Real node processes on loopback, for tests, the fault-injection suite and the benchmarks.

:class:`NodeProcesses` writes a settings module into a directory, starts one process per node
(``python -m agree.management --settings MODULE [-s KEY=VALUE ...] runnode --node ID``, or any
command line given), sends each node's output to ``<dir>/<id>.log``, waits until nodes answer
``/readyz``, signals them, and kills every process it started, by its pid, when closed --
whatever happened before.  Nothing is ever killed by name.
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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import agree

REPO = Path(agree.__file__).resolve().parent.parent


class NodeProcesses:
    """The processes of one cluster's nodes, by node id."""

    def __init__(
        self,
        directory: Path,
        settings: Mapping[str, Any],
        *,
        name: str = "node_settings",
        path: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        urls: Mapping[str, str] | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        """``settings``: the settings module's values; ``path``: directories the nodes import
        from besides the repository and ``directory`` (e.g. where their objects live);
        ``env``: variables set in every node's environment; ``urls``: each node's base URL, as
        the harness reaches it (``context``: for https)."""
        self.dir = directory
        self.urls = dict(urls or {})
        self.context = context
        self.dir.mkdir(parents=True, exist_ok=True)
        self.module = f"{name}_{os.getpid()}_{id(self)}"
        self.settings = dict(settings)
        self.path = list(path)
        self.extra_env = dict(env or {})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.write_settings()

    def write_settings(self) -> None:
        """(Re)write the settings module from :attr:`settings` (for nodes started after)."""
        lines = [f"{key} = {value!r}" for key, value in self.settings.items()]
        (self.dir / f"{self.module}.py").write_text("\n".join(lines) + "\n")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *map(str, self.path), str(self.dir), *inherited]
        )
        env.pop("AGREE_SETTINGS_MODULE", None)
        env.update(self.extra_env)
        return env

    # -- starting ---------------------------------------------------------------------------------
    def runnode_args(
        self, node_id: str, *extra: str, overrides: Mapping[str, Any] | None = None
    ) -> list[str]:
        """``agree-manage runnode`` for ``node_id`` with this module and ``-s`` overrides."""
        args = [sys.executable, "-m", "agree.management", "--settings", self.module]
        for key, value in (overrides or {}).items():
            args += ["-s", f"{key}={json.dumps(value)}"]
        return [*args, "runnode", "--node", node_id, *extra]

    def start(
        self, node_id: str, *extra: str, overrides: Mapping[str, Any] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``node_id``'s ``runnode`` (``extra``: its options, e.g. ``--join``)."""
        return self.spawn(node_id, self.runnode_args(node_id, *extra, overrides=overrides))

    def spawn(
        self, node_id: str, args: Sequence[str], *, log: bool = True
    ) -> subprocess.Popen[bytes]:
        """Start ``args`` as ``node_id``'s process (output to its log unless ``log`` is false)."""
        assert not self.running(node_id), f"{node_id} is running"
        old = self._logs.pop(node_id, None)
        if old is not None:
            old.close()
        out: IO[bytes] | None = None
        if log:
            out = open(self.dir / f"{node_id}.log", "ab")  # noqa: SIM115 - closed in close()
            self._logs[node_id] = out
        self.procs[node_id] = subprocess.Popen(
            list(args),
            stdout=out,
            stderr=subprocess.STDOUT if log else None,
            env=self.env(),
            cwd=self.dir,
        )
        return self.procs[node_id]

    # -- observing --------------------------------------------------------------------------------
    def running(self, node_id: str) -> bool:
        proc = self.procs.get(node_id)
        return proc is not None and proc.poll() is None

    def log(self, node_id: str) -> str:
        path = self.dir / f"{node_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, node_ids: Iterable[str], timeout: float = 30.0) -> None:
        """Until every node of ``node_ids`` answers ``/readyz`` with 200 (a leader known,
        applied caught up); RuntimeError naming the node, with its log's tail, if one exits or
        is not ready in time."""
        deadline = time.monotonic() + timeout
        for node_id in node_ids:
            url = self.urls[node_id]
            while True:
                proc = self.procs[node_id]
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"node {node_id} exited with {proc.returncode}:\n"
                        + self.log(node_id)[-3000:]
                    )
                if _ready(url, self.context):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"node {node_id} not ready after {timeout}s:\n" + self.log(node_id)[-3000:]
                    )
                time.sleep(0.05)

    def rss(self, node_id: str) -> int:
        """The node process's resident memory in bytes (Linux ``/proc``); 0 once it is gone."""
        proc = self.procs[node_id]
        try:
            text = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    # -- signals ----------------------------------------------------------------------------------
    def signal(self, node_id: str, signum: int) -> None:
        self.procs[node_id].send_signal(signum)

    def kill(self, node_id: str) -> None:
        """SIGKILL (no clean shutdown), then wait for the process."""
        proc = self.procs[node_id]
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a stopped process dies as surely; be explicit
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self) -> None:
        """Kill every process started here, by pid, wait for each, close the logs."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
                    proc.send_signal(signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for log in self._logs.values():
            log.close()
        self._logs.clear()


def _ready(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1.0, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
