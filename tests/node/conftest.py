"""Node-level tests run on virtual time (agree.testing.virtualtime): no test here waits on the
wall clock, and a run is decided by its seed.  A test that needs other threads to make progress
while the loop waits (the embedded handles block a thread on the loop) is marked
``wall_clock`` and runs on an ordinary loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator, Mapping

import psycopg
import pytest

from agree.testing.virtualtime import VirtualTimeLoop


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "wall_clock: run on an ordinary event loop, in real time")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.get_closest_marker("wall_clock") is not None:
        return {"wall": asyncio.new_event_loop}
    return {"virtual": VirtualTimeLoop}


@pytest.fixture
def per_node_url(postgres_url: str) -> Iterator[str]:
    """A DATABASE_URL whose ``{node_id}`` selects a schema of its own, dropped afterwards."""
    prefix = f"agree_c_{uuid.uuid4().hex[:10]}"
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    schemas = [f"{prefix}_n{i}" for i in (1, 2, 3)]
    with psycopg.connect(plain, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{prefix}_{{node_id}}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
