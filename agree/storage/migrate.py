"""agree's own schema migrations (Alembic), runnable from code.

The Alembic environment and versions live in the top-level ``migrations/`` folder of a source
checkout; the wheel ships the same folder as ``agree._migrations`` so that
``agree-manage migrate`` works after a plain ``pip install`` from any directory.

Functions take a database URL (or an engine, to reuse its connections and durability settings):
:func:`upgrade`, :func:`downgrade`, :func:`current`, :func:`head`, :func:`check`, :func:`plan`,
and :func:`require_head`, which a node calls before it touches its tables.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

import agree
from agree.errors import IncompatibleVersionError, MigrationRequiredError, StorageError
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


def current(target: str | Engine) -> str | None:
    """The database's revision, or None for a database agree has never migrated."""
    engine, owned = _engine_for(target)
    try:
        with translate_errors("reading the schema revision"), engine.connect() as connection:
            return _current_on(connection)
    finally:
        if owned:
            engine.dispose()


def plan(target: str | Engine) -> list[PendingRevision]:
    """The revisions :func:`upgrade` would apply, oldest first."""
    at = current(target)
    _check_known(at, target)
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


def _run(target: str | Engine, action: str, revision: str, *, down: bool) -> None:
    engine, owned = _engine_for(target)
    try:
        with _ALEMBIC_LOCK, translate_errors(action), engine.connect() as connection:
            config = alembic_config(connection)
            if down:
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)
            connection.commit()
    finally:
        if owned:
            engine.dispose()


def upgrade(target: str | Engine, revision: str = "head") -> None:
    """Bring the database up to ``revision`` (default: the head)."""
    _check_known(current(target), target)
    _run(target, "migrating the database", revision, down=False)


def downgrade(target: str | Engine, revision: str = "base") -> None:
    """Take the database down to ``revision`` (``"base"`` drops agree's tables)."""
    _run(target, "downgrading the database", revision, down=True)


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
    if auto_migrate:
        upgrade(engine)
        return
    url = engine.url.render_as_string(hide_password=False)
    state = "has no agree tables yet" if at is None else f"is at revision {at!r}"
    raise MigrationRequiredError(
        f"the database at {display_url(url)} {state}, not at agree's head revision {newest!r}; "
        f"run: {migrate_command(url)}"
    )
