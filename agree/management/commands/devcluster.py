"""``agree-manage devcluster``: run every node of NODES on this machine, with one command.

Each node is an ``agree-manage runnode --node ID`` child process in this command's process group
(Ctrl-C in the terminal reaches every node at once), its output prefixed with its id.  Before
starting them it brings each node's database to the newest migration (``--no-migrate`` skips
that), then waits until every node is ready and prints the leader and the dashboard's address.

Ctrl-C (SIGINT) or SIGTERM stops the cluster cleanly: each node gets SIGTERM and shuts down in
its own order (in-flight calls answered, storage flushed); a node still running after
``--stop-timeout`` seconds is killed.  A node that exits on its own is reported and the others
keep running, so that killing one by hand to watch a failover works.

For development only: every node runs here, so the machine is a single point of failure.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from agree.conf.settings import SETTINGS_MODULE_ENV, Settings
from agree.management.base import BaseCommand, CommandError, CommandParser

#: Seconds to wait for every node to answer /readyz.
READY_TIMEOUT = 60.0


def _module_root(module: str) -> Path | None:
    """The directory to put on sys.path for ``module`` to import (its top package's parent)."""
    spec = importlib.util.find_spec(module.partition(".")[0])
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin).resolve()
    return origin.parent.parent if spec.submodule_search_locations else origin.parent


class Command(BaseCommand):
    help = "Start every node of the settings on this machine; Ctrl-C stops them all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-migrate", action="store_true", help="do not migrate the databases first"
        )
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=15.0,
            help="seconds each node has to stop cleanly before it is killed (15)",
        )

    def handle(self, **options: Any) -> int | None:
        settings = self.load_cluster_settings(options)
        module = options.get("settings") or os.environ.get(SETTINGS_MODULE_ENV, "").strip()
        if not module:
            raise CommandError(
                "devcluster needs a settings module: --settings MODULE or AGREE_SETTINGS_MODULE "
                "(python manage.py devcluster sets it)"
            )
        if not options["no_migrate"]:
            self._migrate(settings)
        env = dict(os.environ)
        env[SETTINGS_MODULE_ENV] = module
        root = _module_root(module)
        if root is not None:
            # The children must import the settings (and the models) as this process does.
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(root), env.get("PYTHONPATH", "")) if p
            )
        overrides = [word for o in options.get("overrides") or () for word in ("-s", o)]
        procs: dict[str, subprocess.Popen[bytes]] = {}
        lock = threading.Lock()
        stopping = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stopping.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        readers: list[threading.Thread] = []
        try:
            for node_id in settings.NODES:
                args = [sys.executable, "-m", "agree.management", *overrides]
                args += ["runnode", "--node", node_id]
                proc = subprocess.Popen(
                    args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
                )
                procs[node_id] = proc
                assert proc.stdout is not None
                reader = threading.Thread(
                    target=self._relay, args=(node_id, proc.stdout, lock), daemon=True
                )
                reader.start()
                readers.append(reader)
            self._wait_ready(settings, procs, stopping, lock)
            reported: set[str] = set()
            while not stopping.is_set():
                for node_id, proc in procs.items():
                    if proc.poll() is not None and node_id not in reported:
                        reported.add(node_id)
                        with lock:
                            self.stdout.write(
                                f"devcluster: node {node_id} exited with status {proc.returncode}"
                            )
                if len(reported) == len(procs):
                    raise CommandError("every node has exited")
                stopping.wait(0.2)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._stop(procs, options["stop_timeout"], lock)
            for reader in readers:
                reader.join(timeout=5)
        return None

    def _migrate(self, settings: Settings) -> None:
        from agree.storage import MEMORY_URL
        from agree.storage import migrate as migrations

        for node_id in settings.NODES:
            node = settings.replace(NODE_ID=node_id)
            url = node.database_url_for_node()
            if url.startswith(MEMORY_URL):
                continue
            sqlite_file = node.sqlite_path()
            if sqlite_file is not None:
                sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            pending = migrations.plan(url)
            if pending:
                migrations.upgrade(url)
                self.stdout.write(f"devcluster: migrated {node_id}'s database ({len(pending)})")

    def _relay(self, node_id: str, stream: IO[bytes], lock: threading.Lock) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            with lock:
                self.stdout.write(f"{node_id} | {line}")
                self.stdout.flush()

    def _wait_ready(
        self,
        settings: Settings,
        procs: dict[str, subprocess.Popen[bytes]],
        stopping: threading.Event,
        lock: threading.Lock,
    ) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(procs)
        while pending and not stopping.is_set():
            node_id = pending[0]
            if procs[node_id].poll() is not None:
                raise CommandError(
                    f"node {node_id} exited with status {procs[node_id].returncode} while "
                    "starting (its output is above)"
                )
            if _ready(settings.NODES[node_id]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise CommandError(f"node {node_id} is not ready after {READY_TIMEOUT:.0f}s")
            stopping.wait(0.1)
        if stopping.is_set():
            return
        first = next(iter(settings.NODES.values()))
        with lock:
            self.stdout.write(
                f"devcluster: {len(procs)} node(s) ready; dashboard {first}/ ; "
                "Ctrl-C stops the cluster"
            )
            self.stdout.flush()

    def _stop(
        self, procs: dict[str, subprocess.Popen[bytes]], timeout: float, lock: threading.Lock
    ) -> None:
        running = {i: p for i, p in procs.items() if p.poll() is None}
        if running:
            with lock:
                self.stdout.write(f"devcluster: stopping {', '.join(running)}")
        for proc in running.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node_id, proc in running.items():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with lock:
                    self.stdout.write(f"devcluster: node {node_id} did not stop; killing it")
                proc.kill()
                proc.wait()
        with lock:
            self.stdout.write("devcluster: stopped")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
