"""The hot path of the SQL store: a Ready's entries and hard state, straight to the driver.

A one-entry durable save through SQLAlchemy Core costs several times the CPU of the same
statements on the DBAPI connection (statement compilation and result processing on every
call).  :class:`DirectWriter` runs the few statements of a save without a snapshot as plain SQL
text on the DBAPI connection the store's engine manages (the one the store holds for its
lifetime, so no other code uses it meanwhile), where the driver caches them as prepared
statements (sqlite3's statement cache; psycopg prepares a query it has seen a few times).
Everything else, and any save that carries a snapshot, goes through SQLAlchemy.

The store holds the database's exclusive claim, so no one else writes its tables: each group's
snapshot index and last log index are kept here after the first read instead of being selected
on every save.  They are updated only once a transaction has committed, and forgotten when
anything fails or when SQLAlchemy code writes the group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agree.raft.entries import Entry, HardState
from agree.storage.base import check_append
from agree.storage.blobs import CODEC_VERSION, entry_checksum, hard_state_checksum

_SQL = {
    "snapshot_index": "SELECT last_index FROM agree_snapshot WHERE group_id = ?",
    "last_index": "SELECT max(log_index) FROM agree_log WHERE group_id = ?",
    "truncate": "DELETE FROM agree_log WHERE group_id = ? AND log_index >= ?",
    "append": "INSERT INTO agree_log (group_id, log_index, term, entry_type, codec, data, "
    "checksum) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "update_hard_state": "UPDATE agree_hard_state SET term = ?, vote = ?, commit_index = ?, "
    "checksum = ? WHERE group_id = ?",
    "insert_hard_state": "INSERT INTO agree_hard_state (term, vote, commit_index, checksum, "
    "group_id) VALUES (?, ?, ?, ?, ?)",
}

GroupSave = tuple[str, HardState | None, Sequence[Entry]]


def _as_bytes(value: Any) -> bytes:
    return value if type(value) is bytes else bytes(value)


class DirectWriter:
    """Saves without a snapshot, on one DBAPI connection (sqlite3 or psycopg 3)."""

    def __init__(self, dbapi_connection: Any, *, sqlite: bool) -> None:
        self._connection = dbapi_connection
        self._sqlite = sqlite
        marker = "?" if sqlite else "%s"
        self._sql = {name: sql.replace("?", marker) for name, sql in _SQL.items()}
        # group id -> (snapshot index, last log index), as committed
        self._indexes: dict[str, tuple[int, int]] = {}

    def forget(self, group_id: str | None = None) -> None:
        """Drop what is known of a group's indexes (of every group if None)."""
        if group_id is None:
            self._indexes.clear()
        else:
            self._indexes.pop(group_id, None)

    def save(self, saves: Sequence[GroupSave]) -> None:
        """Write every group's entries and hard state in one transaction; durable on return."""
        connection = self._connection
        sql = self._sql
        if self._sqlite:
            # IMMEDIATE takes the write lock up front (see engine.py).
            connection.execute("BEGIN IMMEDIATE")
        cursor = connection.cursor()
        known = self._indexes
        committed: list[tuple[str, tuple[int, int]]] = []
        try:
            for group_id, hard_state, entries in saves:
                if entries:
                    indexes = known.get(group_id)
                    if indexes is None:
                        indexes = self._read_indexes(cursor, group_id)
                    snapshot_index, last = indexes
                    check_append(entries, snapshot_index=snapshot_index, last_index=last)
                    first = entries[0].index
                    if first <= last:  # a conflicting suffix is replaced (§5.3)
                        cursor.execute(sql["truncate"], (group_id, first))
                    codec = CODEC_VERSION
                    rows = []
                    for entry in entries:
                        data = _as_bytes(entry.data)
                        kind = int(entry.type)
                        checksum = entry_checksum(entry.index, entry.term, kind, codec, data)
                        rows.append(
                            (group_id, entry.index, entry.term, kind, codec, data, checksum)
                        )
                    if len(rows) == 1:
                        cursor.execute(sql["append"], rows[0])
                    else:
                        cursor.executemany(sql["append"], rows)
                    committed.append((group_id, (snapshot_index, entries[-1].index)))
                if hard_state is not None:
                    term, vote, commit = hard_state.term, hard_state.vote, hard_state.commit
                    values = (term, vote, commit, hard_state_checksum(term, vote, commit), group_id)
                    cursor.execute(sql["update_hard_state"], values)
                    if cursor.rowcount == 0:
                        cursor.execute(sql["insert_hard_state"], values)
            if self._sqlite:
                connection.execute("COMMIT")
            else:
                connection.commit()
        except BaseException:
            self._indexes.clear()
            self._rollback()
            raise
        finally:
            cursor.close()
        for group_id, indexes in committed:
            known[group_id] = indexes

    def _read_indexes(self, cursor: Any, group_id: str) -> tuple[int, int]:
        cursor.execute(self._sql["snapshot_index"], (group_id,))
        row = cursor.fetchone()
        snapshot_index = row[0] if row is not None and row[0] is not None else 0
        cursor.execute(self._sql["last_index"], (group_id,))
        row = cursor.fetchone()
        last = row[0] if row is not None and row[0] is not None else snapshot_index
        return snapshot_index, last

    def _rollback(self) -> None:
        connection = self._connection
        try:
            if self._sqlite:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            else:
                connection.rollback()
        except Exception:  # a broken connection: the transaction is gone with it
            pass
