"""A newcomer's first minutes, in an empty directory: ``startproject`` -> ``check`` ->
``migrate`` -> three ``runnode`` processes -> ``call`` -> ``status`` -> ``shell -c``; then the
same project under ``devcluster``, stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from processes import REPO, http

from agree.management import CommandError, call_command

pytest.importorskip("agree.transport.aiohttp", reason="needs the network peer transport")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    name = f"site_{uuid.uuid4().hex[:8]}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGREE_SETTINGS_MODULE", raising=False)
    call_command("startproject", name, stdout=StringIO())
    root = tmp_path / name
    monkeypatch.syspath_prepend(str(root))
    try:
        yield name, root
    finally:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def manage(root: Path, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    """``python manage.py ARGS`` in the project, as a user would run it."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("AGREE_SETTINGS_MODULE", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,  # type: ignore[call-overload]
    )


def wait_ready(urls: list[str], procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    for url in urls:
        while True:
            for proc in procs:
                if proc.poll() is not None:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    raise AssertionError(f"a node exited with {proc.returncode}:\n{out}")
            try:
                if http("GET", url + "/readyz", timeout=1.0)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{url} not ready"
            time.sleep(0.05)


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(args[0], *args[1:], "--settings", f"{name}.settings", stdout=out)
    return out.getvalue()


def test_startproject_to_a_running_cluster(project: tuple[str, Path]) -> None:
    name, root = project
    # Passes before any database exists (the nodes would create theirs), and says so.
    assert run(name, "check").count("agree.W022") == 3
    for node_id in ("n1", "n2", "n3"):
        proc = manage(root, "migrate", "--node", node_id)
        assert proc.wait(timeout=60) == 0
    assert run(name, "check") == "System check identified no issues.\n"

    from agree.conf.settings import load_cluster_settings

    urls = list(load_cluster_settings(f"{name}.settings").NODES.values())
    procs = [manage(root, "runnode", "--node", node_id) for node_id in ("n1", "n2", "n3")]
    try:
        wait_ready(urls, procs)
        assert json.loads(run(name, "call", "counter.add", "5")) == 5
        assert json.loads(run(name, "call", "counter.get", "--consistency", "any")) in (0, 5)
        assert json.loads(run(name, "call", "counter.get")) == 5
        with pytest.raises(CommandError, match=r"^ValueError: n must be >= 0$"):
            run(name, "call", "counter.add", "-1")
        report = json.loads(run(name, "status", "--json"))
        assert sorted(report["members"]) == ["n1", "n2", "n3"]
        assert report["leader_id"] in report["members"]
        assert {m["role"] for m in report["members"].values()} == {"leader", "follower"}
        assert run(name, "shell", "-c", "print(counter.add(2), type(client).__name__)") == (
            "7 Client\n"
        )
        text = run(name, "status")
        assert text.startswith(f"leader: {report['leader_id']}, term ")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=30) == 0
            if proc.stdout:
                proc.stdout.close()


def test_devcluster_starts_and_stops_the_whole_cluster(project: tuple[str, Path]) -> None:
    name, root = project
    from agree.conf.settings import load_cluster_settings

    urls = list(load_cluster_settings(f"{name}.settings").NODES.values())
    proc = manage(root, "devcluster")
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for raw in proc.stdout:
            line = raw.decode()
            lines.append(line)
            if "node(s) ready" in line:
                break
        else:
            raise AssertionError("devcluster ended early:\n" + "".join(lines))
        assert any(line.startswith("devcluster: migrated n3's database") for line in lines)
        assert json.loads(run(name, "call", "counter.add", "3")) == 3
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read().decode()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert "devcluster: stopping n1, n2, n3" in rest
    for node_id in ("n1", "n2", "n3"):
        assert f"{node_id} | " in rest and f"node {node_id} stopped" in rest
    assert rest.rstrip().endswith("devcluster: stopped")
    for url in urls:
        with pytest.raises(OSError):
            http("GET", url + "/livez", timeout=1.0)
