"""Shared fixtures.  PostgreSQL tests skip with a reason when the server is unreachable,
except under CI (``CI=true``), where an unreachable server is a failure."""

from __future__ import annotations

import os

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
