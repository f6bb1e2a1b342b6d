"""Shared fixtures.  PostgreSQL tests skip with a reason when the server is unreachable,
except under CI (``CI=true``), where an unreachable server is a failure."""

from __future__ import annotations

import os
import time
import types
import uuid
from collections.abc import Iterator

import psycopg
import pytest

POSTGRES_URL = os.environ.get(
    "AGREE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reachable() -> str | None:
    """None if reachable, else the reason it is not."""
    try:
        import psycopg

        url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, connect_timeout=3):
            return None
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} unreachable: {exc}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    reason = _postgres_reachable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI requires it)")
        pytest.skip(reason)
    return POSTGRES_URL


class LeaderClock(types.ModuleType):
    """Stands in for the ``time`` module of ``agree.runtime.clock``, whose system clock gives the
    wall time (``time.time_ns()``) a leader stamps the entries it proposes with: the stamps run
    ``advance``'d seconds ahead of the real clock, so tests move the leader-stamped time
    commands see in ``self.context.timestamp`` without sleeping.  Everything else is the real
    ``time`` module."""

    def __init__(self) -> None:
        super().__init__("time")
        self.offset_ns = 0

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def time_ns(self) -> int:
        return time.time_ns() + self.offset_ns

    def advance(self, seconds: float) -> None:
        self.offset_ns += int(seconds * 1e9)


@pytest.fixture
def leader_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[LeaderClock]:
    import agree.runtime.clock  # here, not at the top: most tests never load the node runtime

    clock = LeaderClock()
    # raising=True (the default): if agree.runtime.clock stops using ``time``, this fails loudly.
    monkeypatch.setattr(agree.runtime.clock, "time", clock)
    yield clock


@pytest.fixture
def per_node_url(postgres_url: str) -> Iterator[str]:
    """A DATABASE_URL whose ``{node_id}`` selects a schema of its own, dropped afterwards."""
    prefix = f"agree_n_{uuid.uuid4().hex[:10]}"
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
