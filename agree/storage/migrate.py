"""agree's own schema migrations (Alembic), runnable from code.

The Alembic environment and versions live in the top-level ``migrations/`` folder of a source
checkout; the wheel ships the same folder as ``agree._migrations`` so that
``agree-manage migrate`` works after a plain ``pip install`` from any directory.

Functions take a database URL (or an engine, to reuse its connections and durability settings):
:func:`upgrade`, :func:`downgrade`, :func:`current`, :func:`head`, :func:`check`, :func:`plan`,
:func:`stamp`, and :func:`require_head`, which a node calls before it touches its tables.

A file that is not a SQLite database, and a database that has agree's tables but no record of
the migrations that made them (``alembic_version``), are refused with a message naming the
database and what to run, never with the raw SQL error migrating them would give.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import DatabaseError

import agree
from agree.errors import IncompatibleVersionError, MigrationRequiredError, StorageError
from agree.storage.claim import DEFAULT_CLAIM_WAIT, claim_database
from agree.storage.engine import create_store_engine, display_url, translate_errors


@dataclass(frozen=True, slots=True)
class PendingRevision:
    """A migration not yet applied to a database."""

    revision: str
    down_revision: str | None
    doc: str


def script_location() -> Path:
    """Where the Alembic environment is: inside the installed package, else the checkout.

    Alembic needs a real directory, so this looks on disk along ``agree.__path__`` (installed
    wheels are unpacked) rather than through a zip-capable resource reader.
    """
    roots = [Path(p) for p in agree.__path__ if Path(p).is_dir()]
    candidates = [root / "_migrations" for root in roots]
    candidates += [root.resolve().parent / "migrations" for root in roots]
    for candidate in candidates:
        if (candidate / "env.py").is_file() and (candidate / "versions").is_dir():
            return candidate
    raise StorageError(
        "agree's migrations are missing from this installation (looked in "
        f"{', '.join(map(str, candidates))}); reinstall agree"
    )


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for agree's migrations; ``connection`` is used by the environment."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script_directory(location: str) -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", location)
    return ScriptDirectory.from_config(config)


def script_directory() -> ScriptDirectory:
    return _script_directory(str(script_location()))


def head() -> str:
    """The newest revision shipped with this version of agree."""
    revision = script_directory().get_current_head()
    if revision is None:  # pragma: no cover - the package always ships at least one version
        raise StorageError("agree ships no migrations")
    return revision


def _engine_for(target: str | Engine) -> tuple[Engine, bool]:
    if isinstance(target, Engine):
        return target, False
    return create_store_engine(target), True


def _current_on(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _shown(target: str | Engine) -> str:
    return display_url(target.url if isinstance(target, Engine) else target)


def not_a_database(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's SQLITE_NOTADB: the file is not a SQLite database."""
    orig = exc.orig if isinstance(exc, DatabaseError) else exc
    return "file is not a database" in str(orig)


def not_a_database_error(target: str | Engine) -> StorageError:
    return StorageError(
        f"the file of {_shown(target)} is not a SQLite database (or its header is damaged): "
        f"point DATABASE_URL at agree's database, or move this file away and run: "
        f"{migrate_command(_url_text(target))} to create a new one"
    )


def current(target: str | Engine) -> str | None:
    """The database's revision, or None for a database agree has never migrated."""
    engine, owned = _engine_for(target)
    try:
        with translate_errors("reading the schema revision"):
            try:
                with engine.connect() as connection:
                    return _current_on(connection)
            except DatabaseError as exc:
                if not_a_database(exc):
                    raise not_a_database_error(target) from exc
                raise
    finally:
        if owned:
            engine.dispose()


def _url_text(target: str | Engine) -> str:
    if isinstance(target, Engine):
        return target.url.render_as_string(hide_password=False)
    return target


# The tables of each revision, newest first: how an unrecorded database's tables are dated.
_TABLES_OF = {
    "0002": {"agree_log", "agree_hard_state", "agree_snapshot", "agree_snapshot_chunk"}
    | {"agree_meta", "agree_claim"},
    "0001": {"agree_log", "agree_hard_state", "agree_snapshot", "agree_snapshot_chunk"}
    | {"agree_meta"},
}


def _unrecorded_revision(engine: Engine) -> str | None:
    """For a database with no migration record: the revision its agree tables match, ``""`` if
    they match none, or None if it has no agree tables."""
    with translate_errors("reading the database's tables"), engine.connect() as connection:
        inspector = inspect(connection)
        names = {n for n in inspector.get_table_names() if n.startswith("agree_")}
        if not names:
            return None
        grouped = "agree_log" in names and any(
            column["name"] == "group_id" for column in inspector.get_columns("agree_log")
        )
    for revision, tables in _TABLES_OF.items():
        # 0002 keyed every table by group: the log's columns tell 0001 from a half-made 0002.
        if names == tables and grouped == (revision != "0001"):
            return revision
    return ""


def _refuse_unrecorded(target: str | Engine) -> None:
    """Refuse a database that has agree's tables but no record of its migrations."""
    engine, owned = _engine_for(target)
    try:
        revision = _unrecorded_revision(engine)
    finally:
        if owned:
            engine.dispose()
    if revision is None:
        return
    shown = _shown(target)
    if revision:
        raise MigrationRequiredError(
            f"the database at {shown} has agree's tables (as made by revision {revision!r}) "
            f"but no record of its migrations (the alembic_version table is missing or empty), "
            f"so agree cannot tell which migrations it needs.  If nothing but agree changed "
            f"these tables, record that revision and migrate from there; run: "
            f"{migrate_command(_url_text(target))} --stamp {revision}"
        )
    raise MigrationRequiredError(
        f"the database at {shown} has some of agree's tables but no record of its migrations "
        f"(the alembic_version table is missing or empty), and its tables match no revision "
        f"agree knows: restore it from a backup, or drop its agree_* tables and run: "
        f"{migrate_command(_url_text(target))}"
    )


def plan(target: str | Engine) -> list[PendingRevision]:
    """The revisions :func:`upgrade` would apply, oldest first."""
    at = current(target)
    _check_known(at, target)
    if at is None:
        _refuse_unrecorded(target)
    revisions = script_directory().iterate_revisions("heads", at or "base")
    return [
        PendingRevision(
            revision=rev.revision,
            down_revision=rev.down_revision if isinstance(rev.down_revision, str) else None,
            doc=rev.doc or "",
        )
        for rev in reversed(list(revisions))
    ]


def check(target: str | Engine) -> bool:
    """True if the database is at the head revision."""
    return current(target) == head()


def _check_known(revision: str | None, target: str | Engine) -> None:
    if revision is None:
        return
    try:
        script_directory().get_revision(revision)
    except Exception as exc:
        url = target.url if isinstance(target, Engine) else target
        raise IncompatibleVersionError(
            f"the database at {display_url(url)} is at schema revision {revision!r}, which this "
            f"version of agree does not know (its newest is {head()!r}); it was migrated by a "
            f"newer agree"
        ) from exc


# Alembic runs a migration through module-level state (alembic.context, env.py's globals), so
# two migrations in one process -- e.g. several in-process nodes opening their databases at
# once -- must take turns.
_ALEMBIC_LOCK = threading.Lock()


@contextlib.contextmanager
def _claimed(target: str | Engine, claim_wait: float) -> Iterator[Engine]:
    """The engine to change the database through.  Given a URL, the database is claimed for
    the job (a node running on it refuses it, and no node starts on it meanwhile); given an
    engine, the caller holds the claim (a storage migrating the database it opens)."""
    engine, owned = _engine_for(target)
    try:
        if owned:
            with claim_database(engine, owner=None, wait=claim_wait):
                yield engine
        else:
            yield engine
    finally:
        if owned:
            engine.dispose()


def _run(engine: Engine, action: str, revision: str, *, down: bool) -> None:
    with _ALEMBIC_LOCK, translate_errors(action), engine.connect() as connection:
        config = alembic_config(connection)
        if down:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)
        connection.commit()


def upgrade(
    target: str | Engine, revision: str = "head", *, claim_wait: float = DEFAULT_CLAIM_WAIT
) -> None:
    """Bring the database up to ``revision`` (default: the head).

    Given a URL, the database is claimed meanwhile (a holder is waited for up to
    ``claim_wait`` seconds); so are :func:`downgrade` and :func:`stamp`."""
    with _claimed(target, claim_wait) as engine:
        at = current(engine)
        _check_known(at, engine)
        if at is None:
            _refuse_unrecorded(engine)
        _run(engine, "migrating the database", revision, down=False)


def stamp(target: str | Engine, revision: str, *, claim_wait: float = DEFAULT_CLAIM_WAIT) -> None:
    """Record that a database with no migration record has the tables of ``revision`` (made
    without ``agree-manage migrate``, or whose record was lost), changing no table."""
    try:
        script_directory().get_revision(revision)
    except Exception as exc:
        raise StorageError(
            f"{revision!r} is not a revision agree knows (its newest is {head()!r})"
        ) from exc
    with _claimed(target, claim_wait) as engine:
        at = current(engine)
        if at is not None:
            raise StorageError(
                f"the database at {_shown(engine)} already records revision {at!r}; only a "
                f"database with no migration record can be stamped"
            )
        with _ALEMBIC_LOCK, translate_errors("stamping the database"), engine.connect() as conn:
            command.stamp(alembic_config(conn), revision)
            conn.commit()


def downgrade(
    target: str | Engine, revision: str = "base", *, claim_wait: float = DEFAULT_CLAIM_WAIT
) -> None:
    """Take the database down to ``revision`` (``"base"`` drops agree's tables)."""
    with _claimed(target, claim_wait) as engine:
        _run(engine, "downgrading the database", revision, down=True)


def migrate_command(url: str) -> str:
    """The exact command a user runs to migrate the database at ``url``."""
    return f"agree-manage migrate --database-url {display_url(url)!r}"


def require_head(engine: Engine, *, auto_migrate: bool = False) -> None:
    """Refuse a database that is not at the head revision, or upgrade it if ``auto_migrate``."""
    at = current(engine)
    newest = head()
    if at == newest:
        return
    _check_known(at, engine)
    if at is None:
        _refuse_unrecorded(engine)  # auto_migrate or not: creating its tables would fail
    if auto_migrate:
        upgrade(engine)
        return
    url = engine.url.render_as_string(hide_password=False)
    state = "has no agree tables yet" if at is None else f"is at revision {at!r}"
    raise MigrationRequiredError(
        f"the database at {display_url(url)} {state}, not at agree's head revision {newest!r}; "
        f"run: {migrate_command(url)}"
    )
