"""A database belongs to one running storage: a second opener (another handle in this process,
or another process) is refused with an error naming the holder, and the claim ends with the
holder, even when it is SIGKILLed (agree.storage.claim)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

import agree
from agree.errors import StorageError, StorageLockedError
from agree.management import call_command
from agree.raft.entries import Entry, HardState
from agree.storage import SqlStorage, SqlStore, migrate, open_storage, open_store
from agree.testing.models import Counter

CHILD = Path(__file__).with_name("claim_child.py")
REPO = Path(__file__).resolve().parents[2]


def test_a_second_handle_in_this_process_is_refused_naming_the_holder(db_url: str) -> None:
    first = SqlStore(db_url, auto_migrate=True, owner="n1")
    try:
        with pytest.raises(StorageLockedError) as caught:
            SqlStore(db_url, owner="n2", claim_wait=0)
        error = caught.value
        assert isinstance(error, StorageError)
        assert (error.node_id, error.pid, error.host) == ("n1", os.getpid(), socket.gethostname())
        assert error.since is not None
        message = str(error)
        assert "'n1'" in message and f"pid {os.getpid()}" in message
        assert make_url(db_url).database in message  # names the database
        # The holder is untouched and keeps working.
        first.save(hard_state=HardState(term=1), entries=[Entry(term=1, index=1)])
        assert first.last_index() == 1
    finally:
        first.close()
    second = SqlStore(db_url, owner="n2", claim_wait=0)  # released by close()
    assert second.last_index() == 1
    second.close()


def test_storages_and_stores_exclude_each_other(db_url: str) -> None:
    storage = open_storage(db_url, auto_migrate=True, owner="n1")
    try:
        with pytest.raises(StorageLockedError):
            SqlStorage(db_url, claim_wait=0)
        with pytest.raises(StorageLockedError):
            SqlStore(db_url, claim_wait=0, group_id="other")
    finally:
        storage.close()
    open_store(db_url).close()


def test_a_refused_opener_waits_a_moment_first(db_url: str) -> None:
    holder = SqlStore(db_url, auto_migrate=True)
    try:
        with pytest.raises(StorageLockedError):
            SqlStore(db_url, claim_wait=0.3)
    finally:
        holder.close()


@contextlib.contextmanager
def holder_process(url: str, owner: str, *, fork: bool = False) -> Iterator[tuple[int, int]]:
    """A child process holding the claim: yields (its pid, the pid of its own forked child)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, str(CHILD), url, owner, *(["fork"] if fork else [])]
    child = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("ready "), line
        yield child.pid, int(line.split()[1])
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_another_process_is_refused_and_the_claim_ends_with_a_sigkill(db_url: str) -> None:
    with holder_process(db_url, "n7") as (pid, _):
        with pytest.raises(StorageLockedError) as caught:
            SqlStore(db_url, owner="n1", claim_wait=0)
        assert (caught.value.node_id, caught.value.pid) == ("n7", pid)
        assert f"pid {pid}" in str(caught.value)
        os.kill(pid, signal.SIGKILL)
    # The holder is dead: its lock went with it (PostgreSQL may take a moment to notice,
    # which the default claim_wait covers).
    store = SqlStore(db_url, owner="n1")
    store.save(hard_state=HardState(term=1), entries=[])
    store.close()


def test_a_forked_child_does_not_keep_the_claim(db_url: str) -> None:
    with holder_process(db_url, "n7", fork=True) as (pid, forked):
        assert forked > 0
        try:
            os.kill(pid, signal.SIGKILL)
            # The holder's child is still running, yet the claim ended with the holder.
            store = SqlStore(db_url, owner="n1")
            store.close()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(forked, signal.SIGKILL)


def test_a_second_embedded_handle_on_one_path_is_refused(tmp_path: Path) -> None:
    first = agree.wrap(Counter(), tmp_path / "data")
    try:
        with pytest.raises(StorageLockedError, match="in use by node"):
            agree.wrap(Counter(), tmp_path / "data", timeout=5)
        assert first.add(1) == 1  # the holder was not disturbed
    finally:
        first.close()
    again = agree.wrap(Counter(), tmp_path / "data")
    try:
        assert again.get() == 1
    finally:
        again.close()


@pytest.mark.postgres
def test_a_lost_claim_connection_stops_the_store(pg_url: str) -> None:
    """If the session holding the advisory lock ends, the claim is gone: the store must not
    reconnect and write on without it."""
    store = SqlStore(pg_url, auto_migrate=True, owner="n1")
    try:
        store.save(hard_state=HardState(term=1), entries=[Entry(term=1, index=1)])
        claim = store.storage._postgres_claim
        assert claim is not None
        backend = claim._dbapi.info.backend_pid  # type: ignore[union-attr]
        libpq = make_url(pg_url).set(drivername="postgresql")
        with psycopg.connect(libpq.render_as_string(hide_password=False)) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        for _ in range(2):  # the first call meets the dead connection, the next the lost claim
            with pytest.raises(StorageError):
                store.save(hard_state=HardState(term=2), entries=[Entry(term=2, index=2)])
        with pytest.raises(StorageError, match="claim"):
            store.load()
        # Someone else can have the database now, and nothing was written without the claim.
        other = SqlStore(pg_url, owner="n2")
        assert other.load().entries == (Entry(term=1, index=1),)
        other.close()
    finally:
        store.close()


def test_migrations_are_refused_while_a_node_holds_the_database(db_url: str) -> None:
    holder = SqlStore(db_url, auto_migrate=True, owner="n1")
    try:
        for change in (
            lambda: migrate.downgrade(db_url, "0001", claim_wait=0),
            lambda: migrate.upgrade(db_url, claim_wait=0),
            lambda: migrate.stamp(db_url, "0002", claim_wait=0),
        ):
            with pytest.raises(StorageLockedError, match="'n1'"):
                change()
        # Reading the revision needs no claim.
        out = StringIO()
        call_command("migrate", "--check", "--database-url", db_url, stdout=out)
        assert "is at the newest revision" in out.getvalue()
        holder.save(hard_state=HardState(term=1), entries=[Entry(term=1, index=1)])
    finally:
        holder.close()
    migrate.downgrade(db_url, "0001")  # released: allowed now
    assert migrate.current(db_url) == "0001"
