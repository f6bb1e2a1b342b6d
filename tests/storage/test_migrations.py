"""agree's Alembic migrations: they match the models exactly, go up and down, and ship in the
wheel so that ``agree-manage migrate`` works after a plain ``pip install``."""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from agree.errors import MigrationRequiredError, StorageError
from agree.management import call_command
from agree.raft.entries import ConfState, Entry, HardState, PersistedState, Snapshot, SnapshotMeta
from agree.storage import DEFAULT_GROUP, SqlStorage, SqlStore, blobs, migrate
from agree.storage.engine import create_store_engine, normalize_url
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


def _write_at_0001(url: str) -> tuple[HardState, Snapshot, list[Entry]]:
    """Rows as agree wrote them at revision 0001 (one group, singleton keys), checksums and all."""
    hard = HardState(term=5, vote="n2", commit=7)
    conf = ConfState(voters=frozenset({"n1", "n2", "n3"}))
    data = bytes(range(256)) * 50
    snapshot = Snapshot(meta=SnapshotMeta(index=3, term=4, conf=conf), data=data)
    log = [Entry(term=5, index=i, data=b"entry-%d" % i) for i in range(4, 9)]
    chunks = [data[:5000], data[5000:10000], data[10000:]]
    hasher = blobs.snapshot_hasher(
        index=3,
        term=4,
        conf=conf.encode(),
        size=len(data),
        chunk_count=len(chunks),
        codec=blobs.CODEC_VERSION,
        python_version=blobs.PYTHON_VERSION,
        cloudpickle_version=blobs.CLOUDPICKLE_VERSION,
    )
    for chunk in chunks:
        hasher.update(chunk)
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO agree_hard_state (id, term, vote, commit_index, checksum) "
                    "VALUES (1, 5, 'n2', 7, :checksum)"
                ),
                {"checksum": blobs.hard_state_checksum(5, "n2", 7)},
            )
            for entry in log:
                connection.execute(
                    text(
                        "INSERT INTO agree_log (log_index, term, entry_type, codec, data, "
                        "checksum) VALUES (:i, :t, :k, 1, :d, :c)"
                    ),
                    {
                        "i": entry.index,
                        "t": entry.term,
                        "k": int(entry.type),
                        "d": entry.data,
                        "c": blobs.entry_checksum(
                            entry.index, entry.term, int(entry.type), 1, entry.data
                        ),
                    },
                )
            for seq, chunk in enumerate(chunks):
                connection.execute(
                    text(
                        "INSERT INTO agree_snapshot_chunk (seq, data, checksum) VALUES (:s, :d, :c)"
                    ),
                    {"s": seq, "d": chunk, "c": blobs.chunk_checksum(seq, chunk)},
                )
            connection.execute(
                text(
                    "INSERT INTO agree_snapshot (id, last_index, last_term, conf, size, "
                    "chunk_count, codec, python_version, cloudpickle_version, checksum) VALUES "
                    "(1, 3, 4, :conf, :size, 3, 1, :py, :cp, :checksum)"
                ),
                {
                    "conf": conf.encode(),
                    "size": len(data),
                    "py": blobs.PYTHON_VERSION,
                    "cp": blobs.CLOUDPICKLE_VERSION,
                    "checksum": hasher.hexdigest(),
                },
            )
            connection.execute(text("INSERT INTO agree_meta (key, value) VALUES ('k', 'v')"))
    finally:
        engine.dispose()
    return hard, snapshot, log


def test_migrating_from_0001_keeps_the_data_as_group_default(db_url: str) -> None:
    migrate.upgrade(db_url, "0001")
    hard, snapshot, log = _write_at_0001(db_url)
    with pytest.raises(MigrationRequiredError, match="'0001'"):
        SqlStore(db_url)
    migrate.upgrade(db_url)
    assert migrate.check(db_url)
    with SqlStorage(db_url) as storage:
        assert storage.group_ids() == [DEFAULT_GROUP]
        store = storage.group(DEFAULT_GROUP)
        assert store.load() == PersistedState(
            hard_state=hard, snapshot=snapshot, entries=tuple(log)
        )
        assert store.get_meta("k") == "v"
        # The migrated tables take new groups and new entries.
        store.save(hard_state=None, entries=[Entry(term=5, index=9)])
        storage.group("other").save(hard_state=HardState(term=1), entries=log[:0])
        assert storage.group_ids() == [DEFAULT_GROUP, "other"]
    # Down again: group 'default' is what 0001 can hold; the other groups go.
    migrate.downgrade(db_url, "0001")
    engine = create_store_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, term FROM agree_hard_state")).all()
            assert [tuple(row) for row in rows] == [(1, 5)]
            count = connection.execute(text("SELECT count(*) FROM agree_log")).scalar_one()
            assert count == len(log) + 1
    finally:
        engine.dispose()


# -- databases agree cannot migrate as they are -------------------------------------------------


def _run_the_command_in(message: str) -> str:
    """Run the agree-manage command a message ends with; return what it printed."""
    words = shlex.split(message.rsplit("run: ", 1)[1])
    assert words[:2] == ["agree-manage", "migrate"], words
    out = StringIO()
    call_command(words[1], *words[2:], stdout=out)
    return out.getvalue()


def test_a_zero_byte_file_is_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "n1.db"
    path.touch()
    url = f"sqlite:///{path}"
    with pytest.raises(MigrationRequiredError) as caught:
        SqlStore(url)
    assert str(path) in str(caught.value)
    assert "Applied 0002" in _run_the_command_in(str(caught.value))
    with SqlStore(url) as store:
        assert store.load() == PersistedState()


def test_a_file_that_is_not_a_database_is_named_not_a_raw_sql_error(tmp_path: Path) -> None:
    path = tmp_path / "n1.db"
    path.write_bytes(b"these are not the bytes of a SQLite database" * 100)
    url = f"sqlite:///{path}"
    for attempt in (
        lambda: SqlStore(url),
        lambda: SqlStore(url, auto_migrate=True),
        lambda: migrate.upgrade(url),
        lambda: call_command("migrate", "--database-url", url, stdout=StringIO()),
    ):
        with pytest.raises(StorageError) as caught:
            attempt()
        message = str(caught.value)
        assert f"{path} is not a SQLite database" in message
        assert "[SQL" not in message and "sqlalche.me" not in message
    assert path.read_bytes().startswith(b"these are not")  # left as it was


def _drop_the_record(url: str) -> None:
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("revision", ["0001", "0002"])
def test_tables_without_a_migration_record_name_the_command_to_run(
    db_url: str, revision: str
) -> None:
    migrate.upgrade(db_url, revision)
    if revision == "0001":
        hard, snapshot, log = _write_at_0001(db_url)
    else:
        with SqlStore(db_url) as store:
            store.save(hard_state=HardState(term=2), entries=[Entry(term=2, index=1)])
    _drop_the_record(db_url)
    for auto_migrate in (False, True):
        with pytest.raises(MigrationRequiredError) as caught:
            SqlStore(db_url, auto_migrate=auto_migrate)
        message = str(caught.value)
        assert f"revision {revision!r}" in message and "no record of its migrations" in message
        assert normalize_url(db_url).database in message  # names the database
        assert message.endswith(f"--stamp {revision}")
    with pytest.raises(MigrationRequiredError, match="--stamp"):
        call_command("migrate", "--database-url", db_url, stdout=StringIO())
    printed = _run_the_command_in(message)
    assert f"Recorded {revision}" in printed
    assert migrate.check(db_url)
    with SqlStore(db_url) as store:
        state = store.load()
    if revision == "0001":
        assert state == PersistedState(hard_state=hard, snapshot=snapshot, entries=tuple(log))
    else:
        assert state.entries == (Entry(term=2, index=1),)


def test_some_agree_tables_without_a_record_are_not_guessed_at(db_url: str) -> None:
    migrate.upgrade(db_url)
    _drop_the_record(db_url)
    engine = create_store_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE agree_meta"))
    finally:
        engine.dispose()
    with pytest.raises(MigrationRequiredError, match="match no revision") as caught:
        SqlStore(db_url, auto_migrate=True)
    assert "drop its agree_* tables" in str(caught.value)


def test_stamp_refuses_a_recorded_database_and_an_unknown_revision(db_url: str) -> None:
    migrate.upgrade(db_url)
    with pytest.raises(StorageError, match="already records"):
        migrate.stamp(db_url, "0001")
    _drop_the_record(db_url)
    with pytest.raises(StorageError, match="not a revision"):
        migrate.stamp(db_url, "9999")
