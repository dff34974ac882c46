"""Scale-out: a row per running worker process (`workers`: heartbeat, labels, what it
holds, its counters for /metrics), a sender's worker label (`senders.worker_label`) and the
account's shared send slot under its messages-per-second ceiling (`senders.pace_next_at`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:02:13.271329
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import wabulk.models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=100), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column(
            "labels",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "only_senders",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("embedded", sa.Boolean(), nullable=False),
        sa.Column("lease_seconds", sa.Integer(), nullable=False),
        sa.Column("started_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "holds",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("per_minute", sa.Integer(), nullable=False),
        sa.Column(
            "stats",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
        sa.UniqueConstraint("identity", name=op.f("uq_workers_identity")),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index("ix_workers_name", ["name"], unique=False)

    with op.batch_alter_table("senders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker_label", sa.String(length=60), nullable=True))
        batch_op.add_column(
            sa.Column("pace_next_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("senders", schema=None) as batch_op:
        batch_op.drop_column("pace_next_at")
        batch_op.drop_column("worker_label")

    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index("ix_workers_name")

    op.drop_table("workers")
