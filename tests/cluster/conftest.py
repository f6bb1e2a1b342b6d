"""Fixtures for tests that run real node processes: ``process_cluster`` makes clusters that are
always killed afterwards, whatever the test did."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    # The nodes import cluster_models by this top-level name; so does the test process, so that
    # a user exception raised in a node comes back as the same class here.
    sys.path.insert(0, str(HERE))

from processes import ProcessCluster  # noqa: E402


@pytest.fixture
def process_cluster(tmp_path: Path) -> Iterator[Callable[..., ProcessCluster]]:
    made: list[ProcessCluster] = []

    def make(size: int, **settings: Any) -> ProcessCluster:
        cluster = ProcessCluster(tmp_path / f"c{len(made)}", size, **settings)
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.close()
