"""WhatsApp Web: sender link requests and QR, two more sender states, numbers not on
WhatsApp, and where a campaign's text goes around a document.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import wabulk.models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATES = ("linked", "needs_link", "disabled")
NEW_STATES = ("linked", "needs_link", "in_use", "browser_failed", "disabled")


def _state(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(
        *values,
        name="sender_state",
        native_enum=False,
        create_constraint=True,
        length=max(len(v) for v in values),
    )


def upgrade() -> None:
    with op.batch_alter_table("senders", schema=None) as batch_op:
        batch_op.alter_column("state", existing_type=_state(OLD_STATES), type_=_state(NEW_STATES))
        batch_op.add_column(
            sa.Column(
                "link_requested_until",
                wabulk.models.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("link_takeover", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("link_qr", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("link_qr_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "not_on_whatsapp_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "text_before_document", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("text_before_document")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("not_on_whatsapp_at")
    op.execute(
        "UPDATE senders SET state = 'needs_link' WHERE state IN ('in_use', 'browser_failed')"
    )
    with op.batch_alter_table("senders", schema=None) as batch_op:
        batch_op.drop_column("link_qr_at")
        batch_op.drop_column("link_qr")
        batch_op.drop_column("link_takeover")
        batch_op.drop_column("link_requested_until")
        batch_op.alter_column("state", existing_type=_state(NEW_STATES), type_=_state(OLD_STATES))
