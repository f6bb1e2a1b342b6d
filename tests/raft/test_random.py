"""Randomized safety runs (see raft_random): every run must end safe and live."""

from __future__ import annotations

import pytest
from raft_random import run


@pytest.mark.parametrize("seed", range(12))
def test_random_runs_keep_raft_safe(seed: int) -> None:
    c = run(seed, 600)
    assert max(p.node.commit_index for p in c.peers.values()) > 0


@pytest.mark.parametrize("seed", range(12))
def test_random_membership_runs_keep_raft_safe(seed: int) -> None:
    run(seed, 600, membership=True)
