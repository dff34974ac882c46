"""One-time form tokens claimed in the database (`form_claims`), so an Inbox answer sent
twice goes once whichever web process each copy reaches.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 09:53:55.440032
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import wabulk.models.base

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "form_claims",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_form_claims")),
    )
    with op.batch_alter_table("form_claims", schema=None) as batch_op:
        batch_op.create_index("ix_form_claims_claimed_at", ["claimed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("form_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_form_claims_claimed_at")

    op.drop_table("form_claims")
