"""The SQL tables of one node's log store (SQLAlchemy 2.0 typed declarative models).

One database belongs to one node, which holds an exclusive claim on it while it runs
(:mod:`agree.storage.claim`).  A node may run several Raft groups; every table of Raft state is
keyed by ``group_id`` first.  Tables are prefixed ``agree_`` so they can live beside a
project's own tables, and the metadata carries a naming convention so that constraint names are
stable across databases and Alembic migrations never chase generated names.

Every stored blob carries a ``codec`` version and a checksum; the snapshot row also records the
Python and cloudpickle versions of the process that wrote it (DESIGN.md, Serialization and
trust).  The migrations under ``migrations/versions`` must match these models exactly; a test
runs Alembic's autogenerate comparison against both SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, LargeBinary, MetaData, SmallInteger, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The one claim row lives under this fixed key.
CLAIM_ID = 1
# A group id column: long enough for names like "objects/accounts/17".
GROUP_ID_LENGTH = 255


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LogRow(Base):
    """One Raft log entry.  Invariant: the stored indexes are contiguous and all greater than
    the snapshot's ``last_index`` (the log after the snapshot, §7)."""

    __tablename__ = "agree_log"

    group_id: Mapped[str] = mapped_column(String(GROUP_ID_LENGTH), primary_key=True)
    log_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    term: Mapped[int] = mapped_column(BigInteger)
    entry_type: Mapped[int] = mapped_column(SmallInteger)
    codec: Mapped[int] = mapped_column(SmallInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # crc32 over (index, term, type, codec, data): a flipped byte anywhere in the row is caught.
    checksum: Mapped[int] = mapped_column(BigInteger)


class HardStateRow(Base):
    """currentTerm, votedFor and the commit index (Figure 2); at most one row per group."""

    __tablename__ = "agree_hard_state"

    group_id: Mapped[str] = mapped_column(String(GROUP_ID_LENGTH), primary_key=True)
    term: Mapped[int] = mapped_column(BigInteger)
    vote: Mapped[str | None] = mapped_column(String(255))
    commit_index: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[int] = mapped_column(BigInteger)


class SnapshotRow(Base):
    """The header of the current snapshot (§7); its bytes are in ``agree_snapshot_chunk``.

    At most one row per group: a newer snapshot replaces the older one in the same transaction.
    """

    __tablename__ = "agree_snapshot"

    group_id: Mapped[str] = mapped_column(String(GROUP_ID_LENGTH), primary_key=True)
    last_index: Mapped[int] = mapped_column(BigInteger)
    last_term: Mapped[int] = mapped_column(BigInteger)
    conf: Mapped[bytes] = mapped_column(LargeBinary)  # ConfState.encode()
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_count: Mapped[int] = mapped_column(Integer)
    codec: Mapped[int] = mapped_column(SmallInteger)
    python_version: Mapped[str] = mapped_column(String(32))
    cloudpickle_version: Mapped[str] = mapped_column(String(32))
    # blake2b (hex) over the header fields and every byte of the snapshot, in order.
    checksum: Mapped[str] = mapped_column(String(128))


class SnapshotChunkRow(Base):
    """One slice of the current snapshot's bytes, so that a snapshot of any size is written and
    read a chunk at a time instead of as one huge parameter."""

    __tablename__ = "agree_snapshot_chunk"

    group_id: Mapped[str] = mapped_column(String(GROUP_ID_LENGTH), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    checksum: Mapped[int] = mapped_column(BigInteger)  # crc32 over (seq, data)


class MetaRow(Base):
    """Small key/value facts about a group's store (e.g. which node owns it)."""

    __tablename__ = "agree_meta"

    group_id: Mapped[str] = mapped_column(String(GROUP_ID_LENGTH), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(4096))


class ClaimRow(Base):
    """Who holds the database's exclusive claim (PostgreSQL; SQLite keeps this in its lock
    file).  The claim itself is a session-level advisory lock; this row only names the holder
    for the error a second opener gets, and may outlive a crashed holder."""

    __tablename__ = "agree_claim"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    node_id: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(BigInteger)
    host: Mapped[str] = mapped_column(String(255))
    since: Mapped[str] = mapped_column(String(64))  # ISO 8601, UTC


# Core handles for the hot paths (bulk inserts, range deletes) that bypass the ORM.
metadata = Base.metadata
log_table: Table = metadata.tables["agree_log"]
hard_state_table: Table = metadata.tables["agree_hard_state"]
snapshot_table: Table = metadata.tables["agree_snapshot"]
chunk_table: Table = metadata.tables["agree_snapshot_chunk"]
meta_table: Table = metadata.tables["agree_meta"]
claim_table: Table = metadata.tables["agree_claim"]
