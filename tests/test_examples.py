"""The examples run as their docstrings say, and define their own replicated classes (a user
copies an example; agree's test models are not part of what they can rely on)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))


def _run(*args: str, cwd: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_an_example_defines_its_own_classes(example: Path) -> None:
    text = example.read_text()
    assert "agree.testing.models" not in text
    assert "(Replicated):" in text


def test_the_embedded_counter_carries_on_where_it_stopped(tmp_path: Path) -> None:
    script = str(REPO / "examples" / "embedded_counter.py")
    first = _run(script, str(tmp_path / "data"), cwd=tmp_path)
    assert "was 0, now 7 (local copy: 7)" in first
    assert "ValueError(n must be >= 0)" in first
    assert "was 7, now 14" in _run(script, str(tmp_path / "data"), cwd=tmp_path)


def test_the_example_test_of_a_memory_cluster_passes(tmp_path: Path) -> None:
    example = str(REPO / "examples" / "test_counter_cluster.py")
    out = _run("-m", "pytest", example, "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO),
               cwd=tmp_path)  # fmt: skip
    assert "1 passed" in out
