"""Raft groups: every table keyed by group_id (existing rows become group 'default'); the claim.

The log's primary key becomes (group_id, log_index); the hard state and snapshot header are
keyed by group instead of a singleton id; snapshot chunks and metadata are keyed by group too.
``agree_claim`` names the node process that holds the database (PostgreSQL).

Downgrading keeps only group 'default', the one group an older agree knows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_GROUP = "default"
SINGLETON_ID = 1

# table -> the primary key columns that follow group_id
_KEYED = {
    "agree_log": ["log_index"],
    "agree_snapshot_chunk": ["seq"],
    "agree_meta": ["key"],
}
# tables whose singleton ``id`` key becomes group_id
_SINGLETONS = ["agree_hard_state", "agree_snapshot"]


def _group_column() -> sa.Column[str]:
    # The server default fills the existing rows; it is dropped below, since a row without a
    # group is a bug, not a default.
    return sa.Column(
        "group_id", sa.String(length=255), nullable=False, server_default=DEFAULT_GROUP
    )


def upgrade() -> None:
    for table, rest in _KEYED.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(_group_column())
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["group_id", *rest])
        with op.batch_alter_table(table) as batch:
            batch.alter_column("group_id", existing_type=sa.String(length=255), server_default=None)
    for table in _SINGLETONS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(_group_column())
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("id")
            batch.create_primary_key(f"pk_{table}", ["group_id"])
        with op.batch_alter_table(table) as batch:
            batch.alter_column("group_id", existing_type=sa.String(length=255), server_default=None)
    op.create_table(
        "agree_claim",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.BigInteger(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("since", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agree_claim")),
    )


def downgrade() -> None:
    op.drop_table("agree_claim")
    for table in [*_KEYED, *_SINGLETONS]:
        op.execute(
            sa.text(f"DELETE FROM {table} WHERE group_id <> :group").bindparams(group=DEFAULT_GROUP)
        )
    for table in _SINGLETONS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "id",
                    sa.Integer(),
                    autoincrement=False,
                    nullable=False,
                    server_default=str(SINGLETON_ID),
                )
            )
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("group_id")
            batch.create_primary_key(f"pk_{table}", ["id"])
        with op.batch_alter_table(table) as batch:
            batch.alter_column("id", existing_type=sa.Integer(), server_default=None)
    for table, rest in _KEYED.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("group_id")
            batch.create_primary_key(f"pk_{table}", rest)
