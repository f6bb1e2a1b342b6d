"""Fixtures for the agree-manage tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/data/n1.db"


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """A schema of its own on the test PostgreSQL, dropped afterwards."""
    schema = f"agree_m_{uuid.uuid4().hex[:12]}"
    libpq = make_url(postgres_url).set(drivername="postgresql")
    conninfo = libpq.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGREE_SETTINGS_MODULE", raising=False)
