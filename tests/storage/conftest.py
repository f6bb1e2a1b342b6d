"""Fixtures for the storage tests: a fresh database per test on SQLite (a temporary file) and
PostgreSQL (a schema of its own, dropped afterwards — one database per node, so tests may create
and drop tables freely), ``opener``, which runs the contract suite against every LogStore
implementation, and ``db_url``, which runs SQL-only tests on both databases."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from agree.storage import LogStore, MemoryStore, SqlStore


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def pg_schema(base_url: str, schema: str) -> Iterator[str]:
    """Create ``schema``, yield a URL whose connections use it, drop it afterwards."""
    with psycopg.connect(_libpq(base_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(base_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


StoreOpener = Callable[[], LogStore]

_POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
KINDS = ["memory", "sqlite", _POSTGRES]
SQL_KINDS = ["sqlite", _POSTGRES]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/node.db"


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    with pg_schema(postgres_url, f"agree_t_{uuid.uuid4().hex[:12]}") as url:
        yield url


@pytest.fixture
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database (no tables yet) of the parametrized kind."""
    kind: str = request.param
    return str(request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url"))


@pytest.fixture
def opener(request: pytest.FixtureRequest) -> Iterator[StoreOpener]:
    """Opens (and reopens) the same store; every store it opened is closed afterwards."""
    kind: str = request.param
    opened: list[LogStore] = []
    if kind == "memory":
        memory = MemoryStore()
        opened.append(memory)

        def open_memory() -> LogStore:
            return memory

        yield open_memory
    else:
        url = str(request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url"))

        def open_sql() -> LogStore:
            store = SqlStore(url, auto_migrate=True)
            opened.append(store)
            return store

        yield open_sql
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: StoreOpener) -> LogStore:
    return opener()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "opener" in metafunc.fixturenames:
        metafunc.parametrize("opener", KINDS, indirect=True)
    elif "db_url" in metafunc.fixturenames:
        metafunc.parametrize("db_url", SQL_KINDS, indirect=True)
