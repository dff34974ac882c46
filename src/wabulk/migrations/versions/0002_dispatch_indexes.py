"""Dispatch: claim index per campaign, daily-cap index per sender, body rendered at claim.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=True)
        batch_op.drop_index("ix_messages_status_next_attempt_at")
        batch_op.drop_index("ix_messages_campaign_id_status")
        batch_op.create_index(
            "ix_messages_campaign_id_status_next_attempt_at",
            ["campaign_id", "status", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_messages_sender_id_sent_at", ["sender_id", "sent_at"], unique=False
        )


def downgrade() -> None:
    op.execute("UPDATE messages SET body = '' WHERE body IS NULL")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_sender_id_sent_at")
        batch_op.drop_index("ix_messages_campaign_id_status_next_attempt_at")
        batch_op.create_index(
            "ix_messages_campaign_id_status", ["campaign_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_messages_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=False)
