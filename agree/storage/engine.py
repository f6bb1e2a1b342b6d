"""Database URLs and engines: the durability settings agree insists on, and error translation.

SQLite: every connection runs in WAL mode with ``synchronous=FULL`` — in WAL mode that is what
makes a committed transaction survive power loss, which Raft needs before it answers an RPC.
``?synchronous=NORMAL`` may be added to a SQLite URL to trade that away for speed: a commit then
survives a crash of the process but NOT a power loss or OS crash (the last transactions may be
lost, and with them votes and acknowledged entries).  Use it only for throwaway clusters.

PostgreSQL goes through psycopg 3; ``postgresql://`` and ``postgres://`` URLs are mapped to
``postgresql+psycopg://``.  Its default ``synchronous_commit=on`` is the durable setting.

Database errors never leave the storage layer raw: :func:`translate_errors` turns them into
:class:`~agree.errors.StorageError` with the original chained.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from agree.errors import ConfigurationError, StorageError

_SYNCHRONOUS_MODES = {"FULL", "NORMAL", "EXTRA"}


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and pick agree's drivers (psycopg 3 for PostgreSQL)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"invalid database URL {url!r}: {exc}", setting="DATABASE_URL"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def display_url(url: str | URL) -> str:
    """The URL as it may appear in messages and logs: password masked."""
    return normalize_url(url).render_as_string(hide_password=True)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: URL) -> str | None:
    """The file of a SQLite database URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI filename (``?uri=true``)
        path = database[len("file:") :].split("?", 1)[0]
        return None if not path or path == ":memory:" else path
    return database


def create_store_engine(url: str | URL) -> Engine:
    """An engine configured for durable Raft storage (see the module docstring)."""
    parsed = normalize_url(url)
    if not is_sqlite(parsed):
        return create_engine(parsed, pool_pre_ping=True)

    synchronous = str(parsed.query.get("synchronous", "FULL")).upper()
    if synchronous not in _SYNCHRONOUS_MODES:
        raise ConfigurationError(
            f"unsupported ?synchronous={synchronous} in the SQLite URL; use FULL (the default, "
            f"durable) or NORMAL (faster, loses recent commits on power loss)",
            setting="DATABASE_URL",
        )
    parsed = parsed.difference_update_query(["synchronous"])
    _make_parent_directory(parsed)
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the sqlite3 module (which would BEGIN lazily and
        # only before DML) so that SQLAlchemy's "begin" below decides when a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: the read-check-write in save() can then
        # never fail half-way with SQLITE_BUSY on lock upgrade.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _make_parent_directory(url: URL) -> None:
    """SQLite creates a missing database file but not its directory; a node's default database
    lives in a directory of its own (e.g. ``agree-data/``), so create it."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        detail = f"cannot create the directory of the SQLite database {database}: {exc}"
        raise StorageError(detail) from exc


@contextlib.contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn a database error raised inside the block into a StorageError naming ``action``."""
    try:
        yield
    except StorageError:
        raise
    except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
        raise StorageError(f"{action} failed: {exc}") from exc
