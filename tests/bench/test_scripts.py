"""The benchmark scripts run end to end with tiny counts and write the figures they promise.

These check the scripts, never a duration: the benchmarks themselves are run by hand.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


def run(script: str, *args: str, timeout: float = 240) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_throughput_writes_the_configuration_figures(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    stdout = run(
        "throughput.py",
        *("--window", "4", "--n", "24", "--runs", "1", "--reads", "16", "--read-window", "4"),
        *("--json", str(out)),
    )
    figures = json.loads(out.read_text())
    for key in ("writes_per_s", "seq_p50_ms", "seq_p99_ms"):
        assert figures[key] > 0, key
    # /proc counts CPU in 10 ms ticks: a run this small may show none.
    assert figures["cpu_us_per_command"] >= 0
    assert {"cpu_us_leader", "cpu_us_follower1", "cpu_us_follower2"} <= set(figures)
    assert figures["reads_per_s_leader"] > 0 and figures["reads_per_s_follower"] > 0
    assert figures["config"]["window"] == 4 and figures["config"]["n"] == 24
    assert "linearizable reads on the follower" in stdout


def test_throughput_compares_with_pysyncobj(tmp_path: Path) -> None:
    pytest.importorskip("pysyncobj", reason="the bench extra is not installed")
    out = tmp_path / "c.json"
    stdout = run(
        "throughput.py",
        *("--window", "4", "--n", "24", "--runs", "1", "--reads", "0", "--compare", "pysyncobj"),
        *("--json", str(out)),
    )
    figures = json.loads(out.read_text())
    assert set(figures["table"]) == {"agree", "pysyncobj-memory", "pysyncobj-file"}
    memory = figures["table"]["pysyncobj-memory"]["4"]
    assert memory["writes_per_s"] > 0 and memory["cpu_us_leader"] >= 0
    assert figures["ratios"]["4"]["writes_per_s_vs_memory"] > 0
    assert "(W=4, run 1: agree " in stdout and "pysyncobj-file " in stdout
    if importlib.util.find_spec("matplotlib") is not None:
        assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")


def test_http_api_runs_one_row(tmp_path: Path) -> None:
    out = tmp_path / "h.json"
    run(
        "http_api.py",
        *("--clients", "2", "--op", "write", "--seconds", "0.5", "--runs", "1"),
        *("--json", str(out)),
    )
    row = json.loads(out.read_text())["table"]["agree"]["write 2"]
    assert row["ops_per_s"] > 0 and row["cpu_us_leader"] >= 0


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd is not installed")
def test_http_api_compares_with_etcd(tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    run(
        "http_api.py",
        *("--clients", "2", "--op", "read", "--seconds", "0.5", "--runs", "1"),
        *("--compare", "etcd", "--json", str(out)),
    )
    figures = json.loads(out.read_text())
    assert figures["table"]["etcd"]["read 2"]["ops_per_s"] > 0
    assert figures["ratios"]["read 2"]["ops_per_s"] > 0


def test_profile_layers_charges_each_sample_to_its_innermost_frame(tmp_path: Path) -> None:
    layers = load("profile_layers")
    raw = tmp_path / "leader.raw"
    loop = "thread (0x1);BaseEventLoop.run_forever (/usr/lib/python3.11/asyncio/base_events.py:607)"
    raw.write_text(
        f"{loop};_step (agree/runtime/driver.py:10);append (agree/raft/log.py:5) 3\n"
        f"{loop};_step (agree/runtime/driver.py:10) 1\n"
        "thread (0x2);_bootstrap (/usr/lib/python3.11/threading.py:995);"
        "save (/x/site-packages/agree/storage/sql.py:42) 4\n"
        "not a stack line\n"
    )
    by_layer, by_thread, by_file, total = layers.summarise(raw)
    assert total == 8
    assert by_layer["Raft core (agree/raft)"] == 3
    assert by_layer["driver: Raft I/O loop (agree/runtime/driver.py)"] == 1
    assert by_layer["storage: agree/storage + sqlite3/psycopg calls"] == 4
    assert by_thread["event loop thread"] == 4
    assert by_thread["thread (unnamed)"] == 4
    assert by_file["agree/storage/sql.py:save"] == 4


def test_throughput_gives_up_on_a_call_that_never_answers() -> None:
    throughput = load("throughput")

    class Proxy:
        async def set(self, key: str, value: str) -> None:
            if key == "k0001":  # stranded: no answer and no error, ever
                await asyncio.Event().wait()

    class Node:
        def proxy(self, name: str) -> Proxy:
            return Proxy()

        def status(self) -> SimpleNamespace:
            return SimpleNamespace(term=1)

    result = asyncio.run(asyncio.wait_for(throughput.issue(Node(), 2, 4, 8, answer_within=0.2), 10))
    assert result["n"] == 3
    assert result["failures"] == {"NoAnswer": 1}
