"""agree's Alembic migrations: they match the models exactly, go up and down, and ship in the
wheel so that ``agree-manage migrate`` works after a plain ``pip install``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from agree.storage import migrate
from agree.storage.engine import create_store_engine
from agree.storage.models import metadata

REPO = Path(__file__).resolve().parents[2]
AGREE_TABLES = {
    "agree_claim",
    "agree_hard_state",
    "agree_log",
    "agree_meta",
    "agree_snapshot",
    "agree_snapshot_chunk",
}


def tables(url: str) -> set[str]:
    engine = create_store_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_migrations_match_the_models(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = create_store_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert migrate.current(db_url) is None
    assert not migrate.check(db_url)
    assert [p.revision for p in migrate.plan(db_url)] == ["0001", "0002"]
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head() == "0002"
    assert migrate.check(db_url)
    assert migrate.plan(db_url) == []
    assert tables(db_url) >= AGREE_TABLES
    migrate.downgrade(db_url, "base")
    assert migrate.current(db_url) is None
    assert not tables(db_url) & AGREE_TABLES
    migrate.upgrade(db_url)
    assert migrate.check(db_url)
    assert tables(db_url) >= AGREE_TABLES


def test_the_checkout_and_the_package_hold_the_same_migrations() -> None:
    location = migrate.script_location()
    assert location.resolve() == (REPO / "migrations").resolve()
    assert (location / "versions" / "v0001_initial.py").is_file()


def test_alembic_ini_points_at_the_top_level_migrations() -> None:
    text = (REPO / "alembic.ini").read_text()
    assert "script_location = migrations" in text


@pytest.mark.slow
def test_the_wheel_carries_the_migrations(tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh venv, migrate from an unrelated directory."""
    # Neither pip nor the installed program may see a checkout on PYTHONPATH: pip would take
    # its egg-info for an installed agree and install nothing.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AGREE_SETTINGS_MODULE")}
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        env=env,
    )
    [wheel] = dist.glob("agree-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        env=env,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = tmp_path / "data" / "x.db"
    manage = str(venv / "bin" / "agree-manage")
    url = f"sqlite:///{database}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [manage, *args], cwd=elsewhere, env=env, capture_output=True, text=True, check=False
        )

    before = run("migrate", "--database-url", url, "--check")
    assert before.returncode == 1, before.stderr
    done = run("migrate", "--database-url", url)
    assert done.returncode == 0, done.stderr
    assert "Applied 0001" in done.stdout
    assert run("migrate", "--database-url", url, "--check").returncode == 0
    with sqlite3.connect(database) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert names >= AGREE_TABLES
    # The installed copy was used, not this checkout.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import agree; print(agree.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(venv) in where.stdout
