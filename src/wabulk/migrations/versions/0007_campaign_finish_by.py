"""A campaign's optional finish-by time: a running campaign that reaches it pauses, saying
so, with nothing skipped (campaigns/lifecycle.py `pause_expired`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import wabulk.models.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = wabulk.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    # An added column only: SQLite adds it in place, without copying the table.
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ends_at", UTC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("ends_at")
