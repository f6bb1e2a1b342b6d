"""Alembic environment for agree's own tables.

Run from code (:mod:`agree.storage.migrate`, which hands over an open connection through
``config.attributes["connection"]``) or with the ``alembic`` command from a source checkout,
taking the database URL from ``-x url=...``, then ``AGREE_DATABASE_URL``, then ``sqlalchemy.url``
in alembic.ini.  SQLite needs ``render_as_batch``: it cannot ALTER most things in place.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from agree.errors import ConfigurationError
from agree.storage.engine import create_store_engine, is_sqlite, normalize_url
from agree.storage.models import metadata

config = context.config
if config.config_file_name is not None:  # the alembic command line, not agree's own calls
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("AGREE_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise ConfigurationError(
            "no database URL: pass -x url=..., set AGREE_DATABASE_URL, or use "
            "agree-manage migrate --database-url URL",
            setting="DATABASE_URL",
        )
    return url


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=is_sqlite(connection.engine.url),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    url = normalize_url(_url())
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=is_sqlite(url),
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = create_store_engine(_url())
    try:
        with engine.connect() as connection:
            _configure_and_run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
