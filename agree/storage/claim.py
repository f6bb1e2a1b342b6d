"""The exclusive claim a node holds on its database for as long as its storage is open.

Two processes (or two handles in one process) writing one Raft log both acknowledge writes and
lose some of them, so a second opener is refused with :class:`~agree.errors.StorageLockedError`
naming the holder (node id, process id, host, since when).  Every claim is a lock that the
operating system or the database server drops when the holder dies, so a crash never leaves a
database locked:

- SQLite: ``flock`` on a sidecar file next to the database (``<database>-agree.lock``, left in
  place).  ``flock`` locks belong to an open file description, so a second handle in the same
  process conflicts too (POSIX ``fcntl`` locks would not: they belong to the process, and
  SQLite's own are released when any descriptor of the file is closed).  A sidecar keeps the lock
  apart from SQLite's own locks on the database and its ``-wal``/``-shm`` files, which would
  otherwise interact where ``flock`` is emulated with ``fcntl`` (NFS, some BSDs).  The holder
  writes who it is into the lock file.
- PostgreSQL: a session-level advisory lock on a key derived from the database and the schema
  agree's tables live in, held by the store's own connection, which also carries every write:
  if that connection is lost the claim is lost with it, and the store refuses to go on rather
  than write without it.  The holder names itself in the ``agree_claim`` row.

A child forked by the holder does not inherit the claim: the lock file is closed and the
PostgreSQL socket replaced by ``/dev/null`` in the child, so the claim still ends with the
holder (a forked child keeping the socket open would keep the session and its lock alive).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from agree.errors import StorageError, StorageLockedError
from agree.storage.engine import display_url, is_sqlite, sqlite_file, translate_errors


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a claim."""

    node_id: str | None
    pid: int
    host: str
    since: str  # ISO 8601, UTC

    @classmethod
    def this_process(cls, node_id: str | None) -> Holder:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return cls(node_id=node_id, pid=os.getpid(), host=socket.gethostname(), since=now)

    def describe(self) -> str:
        who = f"node {self.node_id!r}" if self.node_id else "a process with no node id"
        return f"{who} (pid {self.pid} on host {self.host!r}, since {self.since})"


def locked_error(database: str, holder: Holder | None, detail: str = "") -> StorageLockedError:
    if holder is None:
        who = "another process or handle (it has not recorded who it is yet)"
        fields: dict[str, Any] = {}
    else:
        who = holder.describe()
        fields = asdict(holder)
    return StorageLockedError(
        f"the database at {database} is in use by {who}{detail}: one database belongs to one "
        f"running node; stop that node first, or give this one a database of its own",
        **fields,
    )


# How long an opener waits for a claim by default: a holder that just died may keep it a moment.
DEFAULT_CLAIM_WAIT = 5.0
_RETRY_INTERVAL = 0.05
# Server-side TCP keepalives of the claim's session (seconds, seconds, probes).
_KEEPALIVES = (
    ("tcp_keepalives_idle", 10),
    ("tcp_keepalives_interval", 5),
    ("tcp_keepalives_count", 3),
)

# Claims open in this process, to drop in a forked child (see the module docstring).
_LIVE: weakref.WeakSet[_ForkAware] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


class _ForkAware:
    def _forget_in_child(self) -> None:
        raise NotImplementedError  # pragma: no cover

    def _track(self) -> None:
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _untrack(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)


def _after_fork_in_child() -> None:
    global _LIVE_LOCK
    # Another thread of the parent may have held the lock at the fork: the child's copy would
    # stay locked for good.
    _LIVE_LOCK = threading.Lock()
    for claim in list(_LIVE):
        claim._forget_in_child()
    _LIVE.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _blank_descriptor(fd: int) -> None:
    """Point ``fd`` at /dev/null: the object it belonged to is closed in this process, and
    whatever still writes to the number (a driver's finaliser) writes nowhere."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


# -- SQLite -------------------------------------------------------------------------------------


def sqlite_lock_path(database: str) -> Path:
    """The sidecar lock file of a SQLite database file (through symlinks: one per real file)."""
    real = Path(os.path.realpath(database))
    return real.with_name(real.name + "-agree.lock")


def _read_holder(path: Path) -> Holder | None:
    try:
        raw = path.read_bytes()
        fields = json.loads(raw)
        return Holder(
            node_id=fields["node_id"],
            pid=int(fields["pid"]),
            host=str(fields["host"]),
            since=str(fields["since"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not written yet (the holder has only just taken the lock), or damaged


class SqliteClaim(_ForkAware):
    """``flock`` on the database's sidecar lock file, held until :meth:`release`."""

    def __init__(self, database: str, holder: Holder, *, shown: str, wait: float) -> None:
        path = sqlite_lock_path(database)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open the lock file {path} of {shown}: {exc}") from exc
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise StorageError(f"cannot lock {path} for {shown}: {exc}") from exc
            if time.monotonic() >= deadline:
                os.close(fd)
                raise locked_error(shown, _read_holder(path), f" (lock file {path})")
            time.sleep(_RETRY_INTERVAL)
        self.path = path
        self._fd: int | None = fd
        try:
            record = json.dumps(asdict(holder)).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
        except OSError as exc:
            self.release()
            raise StorageError(f"cannot write the lock file {path} of {shown}: {exc}") from exc
        self._track()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            self._untrack()
            os.close(fd)  # closing the last descriptor of the open file drops the flock

    def _forget_in_child(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


# -- PostgreSQL ---------------------------------------------------------------------------------


def postgres_claim_key(database: str, schema: str) -> int:
    """A signed 64-bit advisory lock key for agree's tables in ``database``.``schema``."""
    digest = hashlib.blake2b(f"agree-claim\0{database}\0{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresClaim(_ForkAware):
    """A session-level advisory lock held by ``connection`` (which the store keeps)."""

    def __init__(self, connection: Connection, holder: Holder, *, shown: str, wait: float) -> None:
        self._connection = connection
        self._holder = holder
        with connection.begin():
            database, schema = connection.execute(
                text("SELECT current_database(), current_schema()")
            ).one()
            if schema is None:
                raise StorageError(
                    f"{shown} has no schema to keep agree's tables in (search_path names no "
                    "existing schema)"
                )
            self.key = postgres_claim_key(database, schema)
            # The server drops a dead client's session (and this lock) only once it notices
            # the connection is gone: over TCP, after its keepalives fail, by default hours
            # after a holder's machine lost power.  Probe after 10 s idle, every 5 s, 3 times.
            for setting, value in _KEEPALIVES:
                connection.execute(text(f"SET {setting} = {value}"))
        deadline = time.monotonic() + wait
        while True:
            with connection.begin():
                got = connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
                ).scalar_one()
            # A holder killed a moment ago may still have a session until the server notices.
            if got or time.monotonic() >= deadline:
                break
            time.sleep(_RETRY_INTERVAL)
        if not got:
            raise locked_error(shown, self._recorded_holder(), self._session_detail())
        # The lock outlives the transaction that took it (session level), so from here on the
        # claim is exactly as alive as this connection.
        self._dbapi = connection.connection.dbapi_connection
        self._held = True
        self._track()
        self.record()

    @property
    def held(self) -> bool:
        """False once the claim's connection was invalidated (lost): never write then."""
        if not self._held or self._connection.invalidated or self._connection.closed:
            return False
        if getattr(self._dbapi, "closed", False):  # psycopg: closed, or the link was lost
            return False
        return self._connection.connection.dbapi_connection is self._dbapi

    def _has_claim_table(self) -> bool:
        found = self._connection.execute(text("SELECT to_regclass('agree_claim')")).scalar()
        return found is not None

    def record(self) -> None:
        """Name the holder in ``agree_claim`` if the table exists yet (after the migration)."""
        with self._connection.begin():
            if not self._has_claim_table():
                return
            self._connection.execute(text("DELETE FROM agree_claim WHERE id = 1"))
            self._connection.execute(
                text(
                    "INSERT INTO agree_claim (id, node_id, pid, host, since) "
                    "VALUES (1, :node_id, :pid, :host, :since)"
                ),
                asdict(self._holder),
            )

    def _recorded_holder(self) -> Holder | None:
        with self._connection.begin():
            if not self._has_claim_table():
                return None
            row = self._connection.execute(
                text("SELECT node_id, pid, host, since FROM agree_claim WHERE id = 1")
            ).one_or_none()
        if row is None:
            return None
        node_id, pid, host, since = row
        return Holder(node_id=node_id, pid=int(pid), host=host, since=since)

    def _session_detail(self) -> str:
        """Which server session holds the lock: true even where the row is stale or absent."""
        high, low = (self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF
        try:
            with self._connection.begin():
                row = self._connection.execute(
                    text(
                        "SELECT a.pid, a.client_addr, a.backend_start FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                        "AND l.classid::bigint = :high AND l.objid::bigint = :low"
                    ),
                    {"high": high, "low": low},
                ).first()
        except Exception:  # the detail is a courtesy; the refusal stands
            return ""
        if row is None:
            return ""
        pid, address, started = row
        where = f" from {address}" if address is not None else ""
        return f"; held by server process {pid}{where}, connected since {started}"

    def release(self) -> None:
        if self._held:
            self._held = False
            self._untrack()
            # Closing the session (the store closes its connection) drops the lock; nothing to
            # unlock explicitly, and a lost connection cannot be unlocked anyway.

    def _forget_in_child(self) -> None:
        self._held = False
        try:
            fd = self._dbapi.fileno()  # type: ignore[union-attr]
        except Exception:  # already closed
            return
        _blank_descriptor(fd)


# -- for the length of one job ------------------------------------------------------------------


@contextlib.contextmanager
def claim_database(
    engine: Engine, *, owner: str | None, wait: float = DEFAULT_CLAIM_WAIT
) -> Iterator[None]:
    """Hold the claim on ``engine``'s database for the block (e.g. while migrating it, so that
    no node runs on tables being changed, and no migration starts under a running node)."""
    shown = display_url(engine.url)
    holder = Holder.this_process(owner)
    if is_sqlite(engine.url):
        path = sqlite_file(engine.url)
        claim = SqliteClaim(path, holder, shown=shown, wait=wait) if path is not None else None
        try:
            yield
        finally:
            if claim is not None:
                claim.release()
        return
    with translate_errors("claiming the database"):
        connection = engine.connect()
    try:
        with translate_errors("claiming the database"):
            postgres = PostgresClaim(connection, holder, shown=shown, wait=wait)
        try:
            yield
        finally:
            postgres.release()
    finally:
        # Really close the session (not back to the pool, where it would keep the lock).
        connection.invalidate()
        connection.close()
