"""What only the SQL store does: checksums, version checks, chunked snapshots, schema revision
checks, durability settings and error translation."""

from __future__ import annotations

import random
import sqlite3
import tracemalloc
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from agree.errors import (
    ConfigurationError,
    CorruptionError,
    IncompatibleVersionError,
    MigrationRequiredError,
    StorageError,
)
from agree.raft.entries import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from agree.storage import GroupWrite, MemoryStore, SqlStorage, SqlStore, blobs, open_store
from agree.storage.engine import create_store_engine, normalize_url

CONF = ConfState(voters=frozenset({"n1"}))


def snap(index: int, data: bytes) -> Snapshot:
    return Snapshot(meta=SnapshotMeta(index=index, term=1, conf=CONF), data=data)


def filled(url: str, *, chunk_size: int = 1 << 20) -> SqlStore:
    store = SqlStore(url, auto_migrate=True, chunk_size=chunk_size)
    store.save(
        hard_state=HardState(term=1, vote="n1", commit=2),
        entries=[Entry(term=1, index=i, data=b"payload-%d" % i) for i in range(1, 6)],
    )
    return store


def raw(url: str, sql: str, **params: Any) -> Any:
    """Run raw SQL behind the store's back (the damage a disk or a person does)."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql), params)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


def flip_byte(url: str, table: str, column: str, where: str, at: int = 0) -> None:
    [(value,)] = raw(url, f"SELECT {column} FROM {table} WHERE {where}")
    damaged = bytearray(value)
    damaged[at] ^= 0x01
    raw(url, f"UPDATE {table} SET {column} = :value WHERE {where}", value=bytes(damaged))


# -- checksums ------------------------------------------------------------------------------


def test_a_flipped_byte_in_an_entry_is_caught(db_url: str) -> None:
    store = filled(db_url)
    flip_byte(db_url, "agree_log", "data", "log_index = 3")
    with pytest.raises(CorruptionError, match="agree_log index 3"):
        store.load()
    with pytest.raises(CorruptionError, match="agree_log index 3"):
        store.entries(1, 6)
    assert [e.index for e in store.entries(4, 6)] == [4, 5]  # undamaged rows still read
    store.close()


def test_a_changed_term_is_caught(db_url: str) -> None:
    store = filled(db_url)
    raw(db_url, "UPDATE agree_log SET term = 7 WHERE log_index = 2")
    with pytest.raises(CorruptionError, match="agree_log index 2"):
        store.load()
    store.close()


def test_damaged_hard_state_is_caught(db_url: str) -> None:
    store = filled(db_url)
    raw(db_url, "UPDATE agree_hard_state SET vote = 'n9'")
    with pytest.raises(CorruptionError, match="agree_hard_state"):
        store.load()
    store.close()


def test_a_flipped_byte_in_a_snapshot_chunk_is_caught(db_url: str) -> None:
    store = filled(db_url, chunk_size=1000)
    store.compact(snap(4, random.Random(1).randbytes(5500)))
    flip_byte(db_url, "agree_snapshot_chunk", "data", "seq = 3", at=17)
    with pytest.raises(CorruptionError, match="agree_snapshot_chunk index 4 chunk 3"):
        store.load()
    with pytest.raises(CorruptionError, match="agree_snapshot_chunk index 4 chunk 3"):
        store.snapshot()
    store.close()


def test_a_missing_snapshot_chunk_is_caught(db_url: str) -> None:
    store = filled(db_url, chunk_size=1000)
    store.compact(snap(4, b"s" * 5500))
    raw(db_url, "DELETE FROM agree_snapshot_chunk WHERE seq = 5")
    with pytest.raises(CorruptionError, match="agree_snapshot index 4"):
        store.snapshot()
    store.close()


def test_a_changed_snapshot_header_is_caught(db_url: str) -> None:
    store = filled(db_url)
    store.compact(snap(4, b"state"))
    raw(db_url, "UPDATE agree_snapshot SET last_term = 5")
    with pytest.raises(CorruptionError, match="agree_snapshot index 4"):
        store.snapshot()
    store.close()


# -- versions -------------------------------------------------------------------------------


def test_an_entry_from_a_newer_codec_is_refused_naming_both_versions(db_url: str) -> None:
    store = filled(db_url)
    # As a newer agree would write it: codec 2, with a checksum that matches.
    data = b"payload-2"
    checksum = blobs.entry_checksum(2, 1, 0, 2, data)
    raw(db_url, "UPDATE agree_log SET codec = 2, checksum = :c WHERE log_index = 2", c=checksum)
    with pytest.raises(IncompatibleVersionError, match=r"codec version 2.*supports.*1"):
        store.load()
    store.close()


def test_a_snapshot_from_a_newer_codec_is_refused(db_url: str) -> None:
    store = filled(db_url)
    store.compact(snap(3, b"state"))
    raw(db_url, "UPDATE agree_snapshot SET codec = 9")
    with pytest.raises(IncompatibleVersionError, match="codec version 9"):
        store.snapshot()
    store.close()


def test_the_writer_versions_are_recorded(db_url: str) -> None:
    store = filled(db_url)
    store.compact(snap(3, b"state"))
    query = "SELECT python_version, cloudpickle_version FROM agree_snapshot"
    [(python, pickle)] = raw(db_url, query)
    assert (python, pickle) == (blobs.PYTHON_VERSION, blobs.CLOUDPICKLE_VERSION)
    assert python.count(".") == 2
    store.close()


def test_a_snapshot_from_another_python_minor_is_refused(db_url: str) -> None:
    store = filled(db_url)
    store.compact(snap(3, b"state"))
    raw(db_url, "UPDATE agree_snapshot SET python_version = '3.9.18'")
    with pytest.raises(IncompatibleVersionError) as caught:
        store.load()
    assert "3.9.18" in str(caught.value) and blobs.PYTHON_VERSION in str(caught.value)
    store.close()


def test_a_snapshot_from_another_cloudpickle_major_is_refused(db_url: str) -> None:
    store = filled(db_url)
    store.compact(snap(3, b"state"))
    raw(db_url, "UPDATE agree_snapshot SET cloudpickle_version = '1.6.0'")
    with pytest.raises(IncompatibleVersionError) as caught:
        store.snapshot()
    assert "1.6.0" in str(caught.value) and blobs.CLOUDPICKLE_VERSION in str(caught.value)
    store.close()


@pytest.mark.parametrize(
    ("reader_python", "reader_pickle", "readable"),
    [
        ("same.micro+1", "same", True),
        ("same", "same.minor+1", True),
        ("minor+1", "same", False),
        ("major+1", "same", False),
        ("same", "major+1", False),
    ],
)
def test_the_version_compatibility_rule(
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    reader_python: str,
    reader_pickle: str,
    readable: bool,
) -> None:
    """Same Python major.minor and same cloudpickle major reads; anything else is refused."""
    store = filled(sqlite_url)
    store.compact(snap(3, b"state"))

    def bump(version: str, how: str) -> str:
        major, minor, micro = (int(p) for p in [*version.split("."), "0", "0"][:3])
        return {
            "same": version,
            "same.micro+1": f"{major}.{minor}.{micro + 1}",
            "same.minor+1": f"{major}.{minor + 1}.0",
            "minor+1": f"{major}.{minor + 1}.{micro}",
            "major+1": f"{major + 1}.{minor}.{micro}",
        }[how]

    python, pickle = blobs.PYTHON_VERSION, blobs.CLOUDPICKLE_VERSION
    monkeypatch.setattr(blobs, "PYTHON_VERSION", bump(python, reader_python))
    monkeypatch.setattr(blobs, "CLOUDPICKLE_VERSION", bump(pickle, reader_pickle))
    if readable:
        assert store.snapshot() == snap(3, b"state")
    else:
        with pytest.raises(IncompatibleVersionError):
            store.snapshot()
    store.close()


# -- snapshots in chunks --------------------------------------------------------------------


def test_snapshots_are_stored_in_chunks_and_replaced_whole(db_url: str) -> None:
    store = filled(db_url, chunk_size=1000)
    data = random.Random(3).randbytes(10_500)
    store.compact(snap(2, data))
    assert raw(db_url, "SELECT count(*) FROM agree_snapshot_chunk") == [(11,)]
    assert store.snapshot() == snap(2, data)
    store.compact(snap(4, b"x" * 1500))
    assert raw(db_url, "SELECT count(*) FROM agree_snapshot_chunk") == [(2,)]
    store.save(hard_state=None, entries=[], snapshot=snap(9, b""))
    assert raw(db_url, "SELECT count(*) FROM agree_snapshot_chunk") == [(0,)]
    assert store.snapshot() == snap(9, b"")
    store.close()


def test_a_large_snapshot_is_not_copied_while_saved_or_loaded(sqlite_url: str) -> None:
    size = 24 << 20
    data = random.Random(5).randbytes(size)
    store = filled(sqlite_url)
    tracemalloc.start()
    try:
        store.compact(snap(3, data))
        _, save_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        loaded = store.snapshot()
        _, load_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded is not None and loaded.data == data
    # Saving slices the caller's buffer: a few chunks in flight, never a copy of the whole.
    assert save_peak < size // 4
    # Loading fills one preallocated buffer, then makes bytes of it once: at most two copies.
    assert load_peak < 2 * size + (8 << 20)
    store.close()


# -- schema revision ------------------------------------------------------------------------


def test_an_unmigrated_database_is_refused_with_the_command_to_run(db_url: str) -> None:
    with pytest.raises(MigrationRequiredError) as caught:
        open_store(db_url)
    message = str(caught.value)
    assert "agree-manage migrate --database-url" in message
    assert normalize_url(db_url).database in message
    store = open_store(db_url, auto_migrate=True)
    assert store.load().entries == ()
    store.close()
    open_store(db_url).close()  # now at the head: opens without migrating


def test_a_database_from_a_newer_agree_is_refused(db_url: str) -> None:
    SqlStore(db_url, auto_migrate=True).close()
    raw(db_url, "UPDATE alembic_version SET version_num = 'ffff_future'")
    with pytest.raises(IncompatibleVersionError, match="ffff_future"):
        open_store(db_url, auto_migrate=True)


def test_memory_url_gives_a_memory_store() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


# -- engines and errors ---------------------------------------------------------------------


def _pragmas(url: str) -> tuple[str, int]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar_one()
            return str(journal), int(synchronous)
    finally:
        engine.dispose()


def test_sqlite_is_durable_by_default(sqlite_url: str) -> None:
    assert _pragmas(sqlite_url) == ("wal", 2)  # 2 = FULL


def test_sqlite_normal_sync_only_when_asked(sqlite_url: str) -> None:
    assert _pragmas(sqlite_url + "?synchronous=NORMAL") == ("wal", 1)
    with pytest.raises(ConfigurationError, match="synchronous"):
        create_store_engine(sqlite_url + "?synchronous=OFF")


def test_sqlite_creates_the_database_directory(tmp_path: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path}/agree-data/n1.db", auto_migrate=True)
    store.close()
    assert (tmp_path / "agree-data" / "n1.db").is_file()


@pytest.mark.parametrize(
    "url", ["postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"]
)
def test_postgres_urls_use_psycopg_3(url: str) -> None:
    assert normalize_url(url).drivername == "postgresql+psycopg"


def test_a_bad_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        normalize_url("not a url")


def test_database_errors_become_storage_errors(db_url: str) -> None:
    store = filled(db_url)
    raw(db_url, "DROP TABLE agree_log")
    with pytest.raises(StorageError) as caught:
        store.save(hard_state=None, entries=[Entry(term=1, index=6)])
    # The hot path runs on the driver's connection: its error is the cause there.
    assert isinstance(caught.value.__cause__, (sqlite3.Error, psycopg.Error))
    assert type(caught.value) is StorageError
    with pytest.raises(StorageError) as caught:
        store.load()
    assert isinstance(caught.value.__cause__, SQLAlchemyError)
    assert type(caught.value) is StorageError
    store.close()


def test_an_unreachable_database_is_a_storage_error() -> None:
    with pytest.raises(StorageError):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")


# -- the hot path ---------------------------------------------------------------------------


def test_a_failed_save_leaves_nothing_behind_not_even_in_the_cached_indexes(
    sqlite_url: str,
) -> None:
    """The hot path keeps each group's last index after a commit; a save the database refuses
    half-way must roll back every group and not advance it (else a later batch could leave a
    gap in the log)."""
    storage = SqlStorage(sqlite_url, auto_migrate=True)
    a, b = storage.group("a"), storage.group("b")
    a.save(hard_state=HardState(term=1), entries=[Entry(term=1, index=i) for i in (1, 2, 3)])
    b.save(hard_state=HardState(term=1), entries=[Entry(term=1, index=1)])
    raw(
        sqlite_url,
        "CREATE TRIGGER refuse BEFORE INSERT ON agree_log WHEN NEW.group_id = 'b' "
        "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END",
    )
    with pytest.raises(StorageError, match="refused by a trigger"):
        storage.save_groups(
            {
                "a": GroupWrite(hard_state=HardState(term=2), entries=[Entry(term=2, index=4)]),
                "b": GroupWrite(entries=[Entry(term=1, index=2)]),
            }
        )
    raw(sqlite_url, "DROP TRIGGER refuse")
    assert a.load().entries == tuple(Entry(term=1, index=i) for i in (1, 2, 3))
    assert a.load().hard_state == HardState(term=1)
    with pytest.raises(StorageError, match="gap"):
        a.save(hard_state=None, entries=[Entry(term=2, index=5)])
    a.save(hard_state=None, entries=[Entry(term=2, index=4)])
    assert a.last_index() == 4
    storage.close()
