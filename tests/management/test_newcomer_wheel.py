"""A newcomer's first session, from the built wheel: build it, install it into a fresh virtualenv
(its dependencies from the package index or pip's cache, nothing from this checkout), and in an
empty directory run ``startproject`` -> ``check`` -> ``migrate`` -> three ``runnode`` processes
-> ``call`` -> ``status`` -> ``backup`` -> ``restore`` into a new node, which then serves the
backed-up state.  Every process started here is killed by pid at the end.

It needs the package index (or pip's cache) for the dependencies: without them it skips, except
under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agree.testing.ports import free_ports

REPO = Path(__file__).resolve().parents[2]
NODES = ("n1", "n2", "n3")


def _env() -> dict[str, str]:
    # Neither pip nor the installed program may see this checkout (PYTHONPATH): pip would take
    # its egg-info for an installed agree, and the program would import it instead of the wheel.
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AGREE_SETTINGS_MODULE")}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel built from this checkout installed in it."""
    root = tmp_path_factory.mktemp("newcomer-venv")
    env = _env()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
         str(REPO)],
        check=True, capture_output=True, env=env, timeout=300,
    )  # fmt: skip
    [wheel] = (root / "dist").glob("agree-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    python = root / "venv" / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    if installed.returncode != 0:
        reason = f"cannot install the wheel's dependencies: {installed.stderr[-2000:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI requires it)")
        pytest.skip(reason)
    return root / "venv"


class Session:
    """Commands typed in the project directory with the virtualenv's python."""

    def __init__(self, venv: Path, cwd: Path) -> None:
        self.python = str(venv / "bin" / "python")
        self.cwd = cwd
        self.procs: list[subprocess.Popen[bytes]] = []

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.python, "manage.py", *args],
            cwd=self.cwd, env=_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if ok:
            assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done

    def start(self, *args: str, log: Path) -> None:
        out = open(log, "wb")  # noqa: SIM115 - the child holds it; closed below
        try:
            proc = subprocess.Popen(
                [self.python, "manage.py", *args],
                cwd=self.cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        finally:
            out.close()
        self.procs.append(proc)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=30)


def wait_ready(url: str, session: Session, logs: list[Path], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for proc, log in zip(session.procs, logs, strict=False):
            assert proc.poll() is None, f"a node exited with {proc.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1.0) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} not ready:\n" + "\n".join(
            log.read_text()[-2000:] for log in logs
        )
        time.sleep(0.1)


@pytest.fixture
def session(venv: Path, tmp_path: Path) -> Iterator[Session]:
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [str(venv / "bin" / "agree-manage"), "startproject", "mysite"],
        cwd=work, env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Created project mysite" in done.stdout
    session = Session(venv, work / "mysite")
    try:
        yield session
    finally:
        session.kill_all()


@pytest.mark.slow
def test_from_the_wheel_to_a_restored_node(session: Session, tmp_path: Path) -> None:
    where = subprocess.run(
        [session.python, "-c", "import agree; print(agree.__file__)"],
        cwd=session.cwd, env=_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "site-packages" in where.stdout and str(REPO) not in where.stdout

    check = session.run("check")  # passes: the nodes would create their databases
    assert "agree.W022" in check.stdout
    assert "or create it now: python manage.py migrate --node n1" in check.stdout
    session.run("migrate", "--all")
    assert session.run("check").stdout.strip() == "System check identified no issues."

    nodes = subprocess.run(
        [session.python, "-c", "import json, mysite.settings as s; print(json.dumps(s.NODES))"],
        cwd=session.cwd, env=_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    urls = list(json.loads(nodes.stdout).values())
    logs = [tmp_path / f"{node_id}.log" for node_id in NODES]
    for node_id, log in zip(NODES, logs, strict=True):
        session.start("runnode", "--node", node_id, log=log)
    for url in urls:
        wait_ready(url, session, logs)

    assert json.loads(session.run("call", "counter.add", "5").stdout) == 5
    assert json.loads(session.run("call", "counter.add", "2").stdout) == 7
    status = session.run("status").stdout
    assert status.startswith("leader: n") and status.count("http://127.0.0.1:") == 3

    backup = tmp_path / "mysite.agree-backup"
    saved = session.run("backup", str(backup))
    assert saved.stdout.startswith("Backup at index ") and saved.stderr == ""  # not a terminal
    session.kill_all()

    # A new one-node cluster elsewhere, restored from the backup before its first start.
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    new_node = [
        "-s", "NODE_ID=r1",
        "-s", "NODES=" + json.dumps({"r1": url}),
        "-s", f"DATABASE_URL=sqlite:///{tmp_path / 'restored' / 'r1.db'}",
    ]  # fmt: skip
    restored = session.run(*new_node, "restore", str(backup))
    assert "into node r1's database" in restored.stdout
    log = tmp_path / "r1.log"
    session.procs.clear()
    session.start(*new_node, "runnode", log=log)
    wait_ready(url, session, [log])
    assert json.loads(session.run("call", "counter.get", "--url", url).stdout) == 7
    assert json.loads(session.run("call", "counter.add", "1", "--url", url).stdout) == 8
