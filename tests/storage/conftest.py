"""Fixtures for the storage tests: a fresh database per test on SQLite (a temporary file) and
PostgreSQL (a schema of its own, dropped afterwards — one database per node, so tests may create
and drop tables freely), ``opener``, which runs the contract suite against every LogStore
implementation, and ``db_url``, which runs SQL-only tests on both databases.

The ``-group`` kinds of ``opener`` run the contract against one group's view of a storage whose
other group holds a log, hard state, snapshot and metadata of its own; afterwards that group
must be exactly as it was (what one group does never touches another)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from agree.raft.entries import ConfState, Entry, HardState, PersistedState, Snapshot, SnapshotMeta
from agree.storage import LogStore, MemoryStorage, MemoryStore, SqlStorage, SqlStore, Storage


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
_POSTGRES_GROUP = pytest.param("postgres-group", marks=pytest.mark.postgres)
KINDS = ["memory", "sqlite", _POSTGRES, "memory-group", "sqlite-group", _POSTGRES_GROUP]
SQL_KINDS = ["sqlite", _POSTGRES]

NEIGHBOUR = "neighbour"


def fill_neighbour(storage: Storage) -> PersistedState:
    """Give the NEIGHBOUR group some of everything; return what it holds."""
    store = storage.group(NEIGHBOUR)
    store.save(
        hard_state=HardState(term=7, vote="n9", commit=3),
        entries=[Entry(term=7, index=i, data=b"neighbour-%d" % i) for i in range(1, 12)],
    )
    conf = ConfState(voters=frozenset({"n9"}))
    store.compact(Snapshot(meta=SnapshotMeta(index=4, term=7, conf=conf), data=b"n" * 3000))
    store.set_meta("node_id", "n9")
    return store.load()


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
    base, _, grouped = kind.partition("-")
    if base == "memory" and not grouped:
        memory = MemoryStore()
        opened.append(memory)

        def open_memory() -> LogStore:
            return memory

        yield open_memory
    elif base == "memory":
        storage = MemoryStorage()
        neighbour = fill_neighbour(storage)

        def open_memory_group() -> LogStore:
            return storage.group("g1")

        yield open_memory_group
        assert storage.group(NEIGHBOUR).load() == neighbour
        assert storage.group(NEIGHBOUR).get_meta("node_id") == "n9"
        storage.close()
    else:
        url = str(request.getfixturevalue("sqlite_url" if base == "sqlite" else "pg_url"))
        storages: list[SqlStorage] = []

        def open_sql() -> LogStore:
            store = SqlStore(url, auto_migrate=True)
            opened.append(store)
            return store

        def open_sql_group() -> LogStore:
            for previous in storages:  # one storage per database at a time
                previous.close()
            storage = SqlStorage(url, auto_migrate=True)
            storages.append(storage)
            return storage.group("g1")

        if not grouped:
            yield open_sql
        else:
            with SqlStorage(url, auto_migrate=True) as storage:
                neighbour = fill_neighbour(storage)
            yield open_sql_group
            for storage in storages:
                storage.close()
            with SqlStorage(url) as storage:
                assert storage.group(NEIGHBOUR).load() == neighbour
                assert storage.group(NEIGHBOUR).get_meta("node_id") == "n9"
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
