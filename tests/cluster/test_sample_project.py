"""The sample project's walkthrough, on free ports and a temporary data directory: check,
migrate --all, three nodes from ``sample_project/manage.py runnode``, calls through
``manage.py call`` and the bank's invariant total, then the leader killed and the cluster going on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import REPO, free_ports, http

pytest.importorskip("agree.transport.aiohttp", reason="needs the network peer transport")
if importlib.util.find_spec("sample_project.models") is None:
    pytest.skip("sample_project/models.py is not in this tree", allow_module_level=True)

MANAGE = REPO / "sample_project" / "manage.py"


def overrides(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    nodes = {f"n{i}": f"http://127.0.0.1:{p}" for i, p in enumerate(free_ports(3), start=1)}
    words = [
        "-s",
        "NODES=" + json.dumps(nodes),
        "-s",
        f"DATABASE_URL=sqlite:///{tmp_path}/{{node_id}}.db",
    ]
    return words, nodes


def manage(settings: list[str], *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("AGREE_SETTINGS_MODULE", None)
    return subprocess.Popen(
        [sys.executable, str(MANAGE), *settings, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def output(settings: list[str], *args: str) -> tuple[int, str]:
    proc = manage(settings, *args)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode()


def test_the_walkthrough(tmp_path: Path) -> None:
    settings, nodes = overrides(tmp_path)
    code, text = output(settings, "check")
    assert code == 1 and text.count("agree.E022") == 3
    assert f"HINT: create it: python {MANAGE} migrate --node n1\n" in text  # as it was run
    assert output(settings, "migrate", "--all")[0] == 0
    assert output(settings, "check") == (0, "System check identified no issues.\n")
    procs = {node_id: manage(settings, "runnode", "--node", node_id) for node_id in nodes}
    try:
        deadline = time.monotonic() + 60
        for url in nodes.values():
            while True:
                try:
                    if http("GET", url + "/readyz", timeout=1.0)[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"{url} not ready"
                time.sleep(0.05)
        assert output(settings, "call", "counter.add", "5") == (0, "5\n")
        assert output(settings, "call", "bank.open_account", '"alice"', "100")[0] == 0
        assert output(settings, "call", "bank.open_account", '"bob"')[0] == 0
        assert output(settings, "call", "bank.transfer", '"alice"', '"bob"', "30")[0] == 0
        code, text = output(settings, "call", "bank.withdraw", '"bob"', "1000")
        assert code == 1 and "InsufficientFunds: " in text
        assert output(settings, "call", "bank.total") == (0, "100\n")
        status, body = http("POST", nodes["n2"] + "/v1/objects/counter/add", {"args": [1]})
        assert status == 200 and body["result"] == 6

        code, text = output(settings, "status", "--json")
        leader = json.loads(text)["leader_id"]
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(timeout=10)
        assert output(settings, "call", "counter.add", "1") == (0, "7\n")
        code, text = output(settings, "status", "--json")
        report = json.loads(text)
        assert code == 1 and report["members"][leader]["role"] == "unreachable"
        assert report["leader_id"] not in (None, leader)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.communicate(timeout=30)
