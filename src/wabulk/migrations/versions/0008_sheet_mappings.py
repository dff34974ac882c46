"""The column choices of an import, remembered for sheets with the same header and offered
again (contacts/importer.py `remembered_mapping`): a re-import of the same sheet maps its
columns as before and changes nothing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import wabulk.models.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
UTC = wabulk.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sheet_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "contacts",
                "opt_outs",
                name="sheet_mapping_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("header_sha256", sa.String(length=64), nullable=False),
        sa.Column("mapping", JSON, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sheet_mappings")),
        sa.UniqueConstraint(
            "kind", "header_sha256", name=op.f("uq_sheet_mappings_kind_header_sha256")
        ),
    )


def downgrade() -> None:
    op.drop_table("sheet_mappings")
