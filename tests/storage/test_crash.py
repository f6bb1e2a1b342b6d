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
import sys
import time
import traceback
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


def _run_and_kill(workload: ModuleType, url: str, seed: int, start: int, rng: random.Random) -> int:
    """Fork a writer at call ``start``, SIGKILL it at a random moment; return the last call it
    reported durable.  A fork starts in milliseconds with everything already imported, which
    keeps 50 kills per backend quick; the parent holds no open connection while forking."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the writer
        try:
            os.close(read_end)
            os.dup2(write_end, 1)
            sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
            workload.main(url, seed, start)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    os.close(write_end)
    with open(read_end, "rb", buffering=0) as pipe:
        try:
            first = b""
            while not first.endswith(b"\n"):
                piece = pipe.read(1)
                assert piece, "the writer died before it was ready"
                first += piece
            assert first == b"ready\n", first
            # The kill moment is what must be random; there is no event to wait for instead.
            time.sleep(rng.uniform(0.0, 0.2))
        finally:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        rest = pipe.read()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    reported = [int(line) for line in rest.split()]
    return max(reported, default=start)


def _crash_loop(url: str, seed: int) -> None:
    workload = _workload()
    rng = random.Random(seed)
    model = MemoryStore()
    at = 0  # the number of calls the database holds
    previous_term = 0
    for kill in range(KILLS):
        reported = _run_and_kill(workload, url, seed, at, rng)
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
