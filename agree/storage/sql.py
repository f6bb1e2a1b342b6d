"""The SQL storage: the Raft groups of one node in one SQLite or PostgreSQL database.

:class:`SqlStorage` is a process's one handle on a database: one engine, one connection that
carries every transaction, and the database's exclusive claim (:mod:`agree.storage.claim`).
:meth:`SqlStorage.group` hands out a :class:`SqlStore` per Raft group; every table is keyed by
``group_id``.  ``SqlStore(url)`` alone opens a storage of its own and is its ``"default"`` group.

Every public call is one short transaction.  ``save``, ``compact`` and
:meth:`SqlStorage.save_groups` write everything they are given in ONE transaction, so a crash
leaves either all of a Ready on disk or none of it; with SQLite in WAL mode and
``synchronous=FULL`` (or PostgreSQL's default ``synchronous_commit``) the commit is durable when
the call returns (Raft paper Figure 2: persist before replying).

Hot paths use SQLAlchemy Core (one bulk insert per batch of entries, range deletes).  Snapshots
of any size are written as chunk rows cut from a ``memoryview`` of the caller's bytes, and read
back chunk by chunk into one growing buffer that becomes the snapshot's bytes without a copy:
no step holds much more than the snapshot and one chunk.  Every row is checksummed and checked
on the way out (:mod:`agree.storage.blobs`).
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import DatabaseError

from agree.errors import StorageError
from agree.raft.entries import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    PersistedState,
    Snapshot,
    SnapshotMeta,
)
from agree.storage.base import (
    DEFAULT_GROUP,
    GroupWrite,
    check_append,
    check_group_id,
    check_loaded_log,
)
from agree.storage.blobs import (
    CLOUDPICKLE_VERSION,
    CODEC_VERSION,
    PYTHON_VERSION,
    check_codec,
    check_snapshot_writer,
    chunk_checksum,
    corruption,
    entry_checksum,
    hard_state_checksum,
    snapshot_hasher,
)
from agree.storage.claim import DEFAULT_CLAIM_WAIT, Holder, PostgresClaim, SqliteClaim
from agree.storage.engine import (
    create_store_engine,
    display_url,
    is_sqlite,
    sqlite_file,
    translate_errors,
)
from agree.storage.hotpath import DirectWriter, GroupSave
from agree.storage.migrate import not_a_database, not_a_database_error, require_head
from agree.storage.models import (
    chunk_table,
    hard_state_table,
    log_table,
    meta_table,
    snapshot_table,
)

DEFAULT_CHUNK_SIZE = 1 << 20  # 1 MiB: large enough to amortise a round trip, small as a parameter

_LOG_COLUMNS = (
    log_table.c.log_index,
    log_table.c.term,
    log_table.c.entry_type,
    log_table.c.codec,
    log_table.c.data,
    log_table.c.checksum,
)


# The column order of agree_log, which the compiled bulk insert follows.
_LOG_INSERT_ORDER = tuple(column.name for column in log_table.columns)


def _as_bytes(value: Any) -> bytes:
    return value if type(value) is bytes else bytes(value)


def _entry_from_row(row: Sequence[Any]) -> Entry:
    index, term, entry_type, codec, data, checksum = row
    data = _as_bytes(data)
    # The codec first: a row from a newer agree may also checksum differently, and "upgrade
    # agree" is the useful message then.
    check_codec(codec, what=f"agree_log index {index}")
    if entry_checksum(index, term, entry_type, codec, data) != checksum:
        raise corruption("agree_log", f"index {index}", "checksum mismatch")
    try:
        kind = EntryType(entry_type)
    except ValueError:
        detail = f"unknown entry type {entry_type}"
        raise corruption("agree_log", f"index {index}", detail) from None
    return Entry(term=term, index=index, type=kind, data=data)


class SqlStorage:
    """A :class:`~agree.storage.base.Storage` on SQLAlchemy.

    Opening it takes the database's exclusive claim (``owner`` names this node in the error a
    second opener gets; a claim held by another is waited for up to ``claim_wait`` seconds,
    since a holder that has just died may keep it a moment), then refuses a database not at
    agree's head schema revision, or upgrades it if ``auto_migrate``.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        auto_migrate: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        owner: str | None = None,
        claim_wait: float = DEFAULT_CLAIM_WAIT,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self._chunk_size = chunk_size
        self._closed = False
        self._groups: dict[str, SqlStore] = {}
        # Serialises use of the one connection: the contract allows any one thread at a time,
        # and group stores of one storage may be called from different threads.
        self._lock = threading.RLock()
        with translate_errors("opening the database"):
            self._engine = create_store_engine(url)
        shown = display_url(self._engine.url)
        holder = Holder.this_process(owner)
        self._sqlite_claim: SqliteClaim | None = None
        self._postgres_claim: PostgresClaim | None = None
        self._connection: Connection | None = None
        try:
            if is_sqlite(self._engine.url):
                path = sqlite_file(self._engine.url)
                if path is not None:  # an in-memory database is private to its connection
                    self._sqlite_claim = SqliteClaim(path, holder, shown=shown, wait=claim_wait)
            with translate_errors("connecting to the database"):
                try:
                    self._connection = self._engine.connect()
                except DatabaseError as exc:
                    if not_a_database(exc):
                        raise not_a_database_error(self._engine) from exc
                    raise
                if not is_sqlite(self._engine.url):
                    self._postgres_claim = PostgresClaim(
                        self._connection, holder, shown=shown, wait=claim_wait
                    )
            require_head(self._engine, auto_migrate=auto_migrate)
            if self._postgres_claim is not None:
                with translate_errors("recording the database's claim"):
                    self._postgres_claim.record()  # the migration may just have made its table
            compiled = insert(log_table).compile(dialect=self._engine.dialect)
            if compiled.positional and list(compiled.positiontup or ()) != list(_LOG_INSERT_ORDER):
                raise StorageError(f"unexpected parameter order for {compiled}")  # pragma: no cover
            self._insert_sql = str(compiled)
            self._insert_positional = compiled.positional
            self._direct = DirectWriter(
                self._connection.connection.dbapi_connection, sqlite=is_sqlite(self._engine.url)
            )
            self._dbapi_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        except BaseException:
            self._release()
            raise

    @property
    def url(self) -> URL:
        return self._engine.url

    def __enter__(self) -> SqlStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def group(self, group_id: str) -> SqlStore:
        check_group_id(group_id)
        with self._lock:
            self._check_open()
            store = self._groups.get(group_id)
            if store is None:
                store = self._groups[group_id] = SqlStore._view(self, group_id)
            return store

    def group_ids(self) -> list[str]:
        with self._transaction("listing the groups") as connection:
            found: set[str] = set()
            for table in (log_table, hard_state_table, snapshot_table, meta_table):
                found.update(connection.execute(select(table.c.group_id).distinct()).scalars())
            return sorted(found)

    def save_groups(self, writes: Mapping[str, GroupWrite]) -> None:
        for group_id in writes:
            check_group_id(group_id)
        if all(write.snapshot is None for write in writes.values()):
            saves = [(gid, write.hard_state, write.entries) for gid, write in writes.items()]
            self._save_direct(saves)
            return
        with self._transaction("saving to the log", writes=True) as connection:
            for group_id, write in writes.items():
                self._save(connection, group_id, write.hard_state, write.entries, write.snapshot)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for store in self._groups.values():
                store._closed = True
            self._release()

    def _release(self) -> None:
        """Close the connection and engine, then drop the claim (in this order: nobody else
        may open the database while this process still has it open)."""
        if self._postgres_claim is not None:
            self._postgres_claim.release()
        try:
            if self._connection is not None:
                self._connection.close()
            self._engine.dispose()  # closes the pooled connections: the PostgreSQL session ends
        finally:
            if self._sqlite_claim is not None:
                self._sqlite_claim.release()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed")

    def _check_claim(self, action: str) -> None:
        if self._postgres_claim is not None and not self._postgres_claim.held:
            raise StorageError(
                f"{action} refused: the connection that held the claim on "
                f"{display_url(self._engine.url)} was lost, and with it the claim; another "
                f"node may have the database now.  Reopen the storage"
            )

    @contextlib.contextmanager
    def _transaction(self, action: str, *, writes: bool = False) -> Iterator[Connection]:
        """One SQLAlchemy transaction on the store's connection; ``writes`` if it may change
        a group's log or snapshot (the hot path's cached indexes are then dropped)."""
        with self._lock:
            self._check_open()
            connection = self._connection
            assert connection is not None
            self._check_claim(action)
            if writes:
                self._direct.forget()
            with translate_errors(action), connection.begin():
                yield connection

    def _save_direct(self, saves: Sequence[GroupSave]) -> None:
        """A save without a snapshot, on the hot path (:mod:`agree.storage.hotpath`)."""
        action = "saving to the log"
        with self._lock:
            self._check_open()
            self._check_claim(action)
            try:
                with translate_errors(action):
                    self._direct.save(saves)
            except self._dbapi_error as exc:
                raise StorageError(f"{action} failed: {exc}") from exc

    # -- one group's work, inside a transaction --------------------------------------------

    def _load(self, connection: Connection, group_id: str) -> PersistedState:
        hard_state = self._read_hard_state(connection, group_id)
        snapshot = self._read_snapshot(connection, group_id)
        rows = connection.execute(
            select(*_LOG_COLUMNS)
            .where(log_table.c.group_id == group_id)
            .order_by(log_table.c.log_index)
        )
        entries = tuple(_entry_from_row(row) for row in rows)
        snapshot_index = snapshot.meta.index if snapshot is not None else 0
        check_loaded_log(entries, snapshot_index=snapshot_index, where="agree_log")
        return PersistedState(hard_state=hard_state, snapshot=snapshot, entries=entries)

    def _save(
        self,
        connection: Connection,
        group_id: str,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None,
    ) -> None:
        in_group = log_table.c.group_id == group_id
        if snapshot is not None:
            # A snapshot from the leader replaces the whole log (§7, InstallSnapshot rule 7).
            self._write_snapshot(connection, group_id, snapshot)
            connection.execute(delete(log_table).where(in_group))
            snapshot_index = last = snapshot.meta.index
        elif entries:
            snapshot_index = self._snapshot_index(connection, group_id)
            last = self._last_index(connection, group_id, snapshot_index)
        if entries:
            check_append(entries, snapshot_index=snapshot_index, last_index=last)
            first = entries[0].index
            if first <= last:  # a conflicting suffix is replaced (§5.3)
                connection.execute(
                    delete(log_table).where(in_group, log_table.c.log_index >= first)
                )
            self._insert_entries(connection, group_id, entries)
        if hard_state is not None:
            self._write_hard_state(connection, group_id, hard_state)

    def _compact(self, connection: Connection, group_id: str, snapshot: Snapshot) -> None:
        if snapshot.meta.index <= self._snapshot_index(connection, group_id):
            return  # an older (or the same) snapshot: nothing to gain
        self._write_snapshot(connection, group_id, snapshot)
        connection.execute(
            delete(log_table).where(
                log_table.c.group_id == group_id, log_table.c.log_index <= snapshot.meta.index
            )
        )

    def _insert_entries(
        self, connection: Connection, group_id: str, entries: Sequence[Entry]
    ) -> None:
        """One bulk insert (a single ``executemany``) for the whole batch.

        The statement is compiled once per store and the rows go to the driver as plain tuples
        or dicts: for a 1000-entry batch, SQLAlchemy's per-row parameter processing would cost
        more than the insert itself (see bench/storage.py --profile).
        """
        codec = CODEC_VERSION
        rows = []
        for entry in entries:
            data = _as_bytes(entry.data)
            kind = int(entry.type)
            checksum = entry_checksum(entry.index, entry.term, kind, codec, data)
            rows.append((group_id, entry.index, entry.term, kind, codec, data, checksum))
        if self._insert_positional:
            connection.exec_driver_sql(self._insert_sql, rows)
        else:
            named = [dict(zip(_LOG_INSERT_ORDER, row, strict=True)) for row in rows]
            connection.exec_driver_sql(self._insert_sql, named)

    @staticmethod
    def _snapshot_index(connection: Connection, group_id: str) -> int:
        index: int | None = connection.execute(
            select(snapshot_table.c.last_index).where(snapshot_table.c.group_id == group_id)
        ).scalar_one_or_none()
        return index or 0

    @staticmethod
    def _last_index(connection: Connection, group_id: str, snapshot_index: int) -> int:
        last: int | None = connection.execute(
            select(func.max(log_table.c.log_index)).where(log_table.c.group_id == group_id)
        ).scalar()
        return last if last is not None else snapshot_index

    @staticmethod
    def _read_hard_state(connection: Connection, group_id: str) -> HardState:
        row = connection.execute(
            select(
                hard_state_table.c.term,
                hard_state_table.c.vote,
                hard_state_table.c.commit_index,
                hard_state_table.c.checksum,
            ).where(hard_state_table.c.group_id == group_id)
        ).one_or_none()
        if row is None:
            return HardState()
        term, vote, commit, checksum = row
        if hard_state_checksum(term, vote, commit) != checksum:
            raise corruption("agree_hard_state", f"group {group_id!r}", "checksum mismatch")
        return HardState(term=term, vote=vote, commit=commit)

    @staticmethod
    def _write_hard_state(connection: Connection, group_id: str, hard_state: HardState) -> None:
        values = {
            "term": hard_state.term,
            "vote": hard_state.vote,
            "commit_index": hard_state.commit,
            "checksum": hard_state_checksum(hard_state.term, hard_state.vote, hard_state.commit),
        }
        updated = connection.execute(
            update(hard_state_table).where(hard_state_table.c.group_id == group_id).values(values)
        )
        if updated.rowcount == 0:
            connection.execute(insert(hard_state_table).values(group_id=group_id, **values))

    def _write_snapshot(self, connection: Connection, group_id: str, snapshot: Snapshot) -> None:
        meta = snapshot.meta
        view = memoryview(snapshot.data).cast("B")  # slices below share the caller's buffer
        size = len(view)
        step = self._chunk_size
        chunk_count = -(-size // step)
        conf = meta.conf.encode()
        hasher = snapshot_hasher(
            index=meta.index,
            term=meta.term,
            conf=conf,
            size=size,
            chunk_count=chunk_count,
            codec=CODEC_VERSION,
            python_version=PYTHON_VERSION,
            cloudpickle_version=CLOUDPICKLE_VERSION,
        )
        connection.execute(delete(chunk_table).where(chunk_table.c.group_id == group_id))
        connection.execute(delete(snapshot_table).where(snapshot_table.c.group_id == group_id))
        statement = insert(chunk_table)
        for seq in range(chunk_count):
            piece = view[seq * step : (seq + 1) * step]
            hasher.update(piece)
            # One row per statement: a 200 MB snapshot never becomes one 200 MB parameter list.
            connection.execute(
                statement,
                {
                    "group_id": group_id,
                    "seq": seq,
                    "data": piece,
                    "checksum": chunk_checksum(seq, piece),
                },
            )
        connection.execute(
            insert(snapshot_table).values(
                group_id=group_id,
                last_index=meta.index,
                last_term=meta.term,
                conf=conf,
                size=size,
                chunk_count=chunk_count,
                codec=CODEC_VERSION,
                python_version=PYTHON_VERSION,
                cloudpickle_version=CLOUDPICKLE_VERSION,
                checksum=hasher.hexdigest(),
            )
        )

    @staticmethod
    def _read_snapshot(connection: Connection, group_id: str) -> Snapshot | None:
        header = connection.execute(
            select(snapshot_table).where(snapshot_table.c.group_id == group_id)
        ).one_or_none()
        if header is None:
            return None
        h = header._mapping
        where = f"agree_snapshot index {h['last_index']}"
        check_codec(h["codec"], what=f"the snapshot at index {h['last_index']}")
        check_snapshot_writer(
            h["python_version"],
            h["cloudpickle_version"],
            what=f"the snapshot at index {h['last_index']}",
        )
        size: int = h["size"]
        conf_raw = _as_bytes(h["conf"])
        hasher = snapshot_hasher(
            index=h["last_index"],
            term=h["last_term"],
            conf=conf_raw,
            size=size,
            chunk_count=h["chunk_count"],
            codec=h["codec"],
            python_version=h["python_version"],
            cloudpickle_version=h["cloudpickle_version"],
        )
        if size < 0 or h["chunk_count"] < 0:
            raise corruption("agree_snapshot", f"index {h['last_index']}", "negative size")
        # BytesIO grows in place and getvalue() hands over its own bytes object when nothing
        # else refers to the buffer, so the peak stays near one copy of the snapshot (a
        # bytearray would need a second copy for the final bytes(...)).
        buffer = io.BytesIO()
        position = 0
        expected_seq = 0
        # Stream the chunks (a server-side cursor on PostgreSQL): never all of them at once.
        # Options on the statement, not the connection: Connection.execution_options() changes
        # the store's one connection for good.
        rows = connection.execute(
            select(chunk_table.c.seq, chunk_table.c.data, chunk_table.c.checksum)
            .where(chunk_table.c.group_id == group_id)
            .order_by(chunk_table.c.seq),
            execution_options={"stream_results": True, "yield_per": 4},
        )
        for seq, data, checksum in rows:
            key = f"index {h['last_index']} chunk {seq}"
            if seq != expected_seq:
                raise corruption("agree_snapshot_chunk", key, f"expected chunk {expected_seq}")
            if chunk_checksum(seq, data) != checksum:
                raise corruption("agree_snapshot_chunk", key, "checksum mismatch")
            end = position + len(data)
            if end > size:
                raise corruption("agree_snapshot_chunk", key, "more bytes than the header says")
            buffer.write(data)
            hasher.update(data)
            position = end
            expected_seq += 1
        if expected_seq != h["chunk_count"] or position != size:
            raise corruption(
                "agree_snapshot",
                f"index {h['last_index']}",
                f"{expected_seq} chunk(s) with {position} bytes stored, header says "
                f"{h['chunk_count']} with {size}",
            )
        if hasher.hexdigest() != h["checksum"]:
            raise corruption("agree_snapshot", f"index {h['last_index']}", "checksum mismatch")
        try:
            conf = ConfState.decode(conf_raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise corruption("agree_snapshot", where, f"unreadable configuration: {exc}") from exc
        meta = SnapshotMeta(index=h["last_index"], term=h["last_term"], conf=conf)
        data = buffer.getvalue()
        del buffer
        return Snapshot(meta=meta, data=data)


class SqlStore:
    """A :class:`~agree.storage.base.LogStore`: one Raft group of a :class:`SqlStorage`.

    ``SqlStore(url, ...)`` opens a storage of its own (see :class:`SqlStorage` for the
    arguments) and is its ``group_id`` group; closing it closes that storage.  Open it with
    :func:`agree.storage.open_store`, or get one from :meth:`SqlStorage.group`.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        auto_migrate: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        owner: str | None = None,
        claim_wait: float = DEFAULT_CLAIM_WAIT,
        group_id: str = DEFAULT_GROUP,
    ) -> None:
        check_group_id(group_id)
        storage = SqlStorage(
            url,
            auto_migrate=auto_migrate,
            chunk_size=chunk_size,
            owner=owner,
            claim_wait=claim_wait,
        )
        self._init_view(storage, group_id, owns_storage=True)

    @classmethod
    def _view(cls, storage: SqlStorage, group_id: str) -> SqlStore:
        view = cls.__new__(cls)
        view._init_view(storage, group_id, owns_storage=False)
        return view

    def _init_view(self, storage: SqlStorage, group_id: str, *, owns_storage: bool) -> None:
        self._storage = storage
        self.group_id = group_id
        self._owns_storage = owns_storage
        self._closed = False

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> URL:
        return self._storage.url

    @property
    def storage(self) -> SqlStorage:
        return self._storage

    @contextlib.contextmanager
    def _transaction(self, action: str, *, writes: bool = False) -> Iterator[Connection]:
        if self._closed:
            raise StorageError("the store is closed")
        with self._storage._transaction(action, writes=writes) as connection:
            yield connection

    # -- reads -------------------------------------------------------------------------------

    def load(self) -> PersistedState:
        with self._transaction("loading the persisted state") as connection:
            return self._storage._load(connection, self.group_id)

    def entries(self, lo: int, hi: int) -> list[Entry]:
        with self._transaction("reading log entries") as connection:
            rows = connection.execute(
                select(*_LOG_COLUMNS)
                .where(
                    log_table.c.group_id == self.group_id,
                    log_table.c.log_index >= lo,
                    log_table.c.log_index < hi,
                )
                .order_by(log_table.c.log_index)
            )
            return [_entry_from_row(row) for row in rows]

    def last_index(self) -> int:
        storage = self._storage
        with self._transaction("reading the last log index") as connection:
            snapshot_index = storage._snapshot_index(connection, self.group_id)
            return storage._last_index(connection, self.group_id, snapshot_index)

    def snapshot(self) -> Snapshot | None:
        with self._transaction("reading the snapshot") as connection:
            return self._storage._read_snapshot(connection, self.group_id)

    def get_meta(self, key: str) -> str | None:
        with self._transaction("reading store metadata") as connection:
            value: str | None = connection.execute(
                select(meta_table.c.value).where(
                    meta_table.c.group_id == self.group_id, meta_table.c.key == key
                )
            ).scalar_one_or_none()
            return value

    # -- writes ------------------------------------------------------------------------------

    def save(
        self,
        *,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None = None,
    ) -> None:
        if hard_state is None and not entries and snapshot is None:
            if self._closed or self._storage._closed:
                raise StorageError("the store is closed")
            return
        if snapshot is None:
            if self._closed:
                raise StorageError("the store is closed")
            self._storage._save_direct([(self.group_id, hard_state, entries)])
            return
        with self._transaction("saving to the log", writes=True) as connection:
            self._storage._save(connection, self.group_id, hard_state, entries, snapshot)

    def compact(self, snapshot: Snapshot) -> None:
        with self._transaction("compacting the log", writes=True) as connection:
            self._storage._compact(connection, self.group_id, snapshot)

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction("writing store metadata") as connection:
            in_group = meta_table.c.group_id == self.group_id
            updated = connection.execute(
                update(meta_table).where(in_group, meta_table.c.key == key).values(value=value)
            )
            if updated.rowcount == 0:
                connection.execute(
                    insert(meta_table).values(group_id=self.group_id, key=key, value=value)
                )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_storage:
            self._storage.close()
