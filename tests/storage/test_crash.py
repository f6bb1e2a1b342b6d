"""Crash safety: a writer is SIGKILLed at random moments, 50 times per backend.

After every kill the store reopens and must hold exactly the state after the last call the
writer reported durable, or after the one it was in the middle of (which may have committed
before the report was written): every reported batch is present, the log is a clean prefix of
what was written (no torn batch, no half-installed snapshot), and the hard state never goes
back (Raft paper Figure 2: currentTerm and votedFor must survive a crash).
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from agree.storage import MemoryStore, SqlStore

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = 50


def _workload() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agree_crash_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_and_kill(url: str, seed: int, start: int, rng: random.Random) -> int:
    """Start a writer at call ``start``, kill it at a random moment; the last call it reported
    durable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, str(CHILD), url, str(seed), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        assert first == "ready\n", first + process.communicate()[1]
        # The kill moment is what must be random; there is no event to wait for instead.
        time.sleep(rng.uniform(0.0, 0.2))
        process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, err
    reported = [int(line) for line in out.split()]
    return max(reported, default=start)


def _crash_loop(url: str, seed: int) -> None:
    workload = _workload()
    rng = random.Random(seed)
    model = MemoryStore()
    at = 0  # the number of calls the database holds
    previous_term = 0
    for kill in range(KILLS):
        reported = _run_and_kill(url, seed, at, rng)
        workload.advance(model, seed, at, reported)
        store = SqlStore(url)
        try:
            state = store.load()
        finally:
            store.close()
        if state != model.load():
            # The call in flight may have committed before it was reported.
            workload.advance(model, seed, reported, reported + 1)
            reported += 1
            assert state == model.load(), (
                f"kill {kill}: the database holds neither the state after call {reported - 1} "
                f"(the last reported durable) nor after call {reported}"
            )
        assert state.hard_state.term >= previous_term, f"kill {kill}: the term went back"
        previous_term = state.hard_state.term
        at = reported
    assert at > KILLS  # the writer did make progress between kills


@pytest.mark.slow
def test_sqlite_survives_sigkill(tmp_path: Path) -> None:
    _crash_loop(f"sqlite:///{tmp_path}/crash.db", seed=1)


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_survives_sigkill(pg_url: str) -> None:
    _crash_loop(pg_url, seed=2)
