"""agree's tables: the Raft log, hard state, snapshot header and chunks, store metadata.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agree_log",
        sa.Column("log_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("term", sa.BigInteger(), nullable=False),
        sa.Column("entry_type", sa.SmallInteger(), nullable=False),
        sa.Column("codec", sa.SmallInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("checksum", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("log_index", name=op.f("pk_agree_log")),
    )
    op.create_table(
        "agree_hard_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("term", sa.BigInteger(), nullable=False),
        sa.Column("vote", sa.String(length=255), nullable=True),
        sa.Column("commit_index", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agree_hard_state")),
    )
    op.create_table(
        "agree_snapshot",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_index", sa.BigInteger(), nullable=False),
        sa.Column("last_term", sa.BigInteger(), nullable=False),
        sa.Column("conf", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("codec", sa.SmallInteger(), nullable=False),
        sa.Column("python_version", sa.String(length=32), nullable=False),
        sa.Column("cloudpickle_version", sa.String(length=32), nullable=False),
        sa.Column("checksum", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agree_snapshot")),
    )
    op.create_table(
        "agree_snapshot_chunk",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("checksum", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_agree_snapshot_chunk")),
    )
    op.create_table(
        "agree_meta",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=4096), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_agree_meta")),
    )


def downgrade() -> None:
    op.drop_table("agree_meta")
    op.drop_table("agree_snapshot_chunk")
    op.drop_table("agree_snapshot")
    op.drop_table("agree_hard_state")
    op.drop_table("agree_log")
