"""Audiences that think: saved segments, follow-up steps (each step runs as a campaign of
its own, `campaigns.parent_campaign_id`), recurring series (`recurrences`, runs linked by
`campaigns.recurrence_id`), and a campaign's audience as a segment (`segment_id`, with the
terms it had at launch in `audience_terms`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:48:59.510987
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import wabulk.models.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column(
            "terms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_segments_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_table(
        "campaign_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("delay_minutes", sa.Integer(), nullable=False),
        sa.Column(
            "condition",
            sa.Enum(
                "not_replied",
                "not_read",
                "everyone",
                name="step_condition",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=True),
        sa.Column("run_campaign_id", sa.Integer(), nullable=True),
        sa.Column("created_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_steps_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["media.id"],
            name=op.f("fk_campaign_steps_media_id_media"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["run_campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_steps_run_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_campaign_steps_template_id_templates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_steps")),
        sa.UniqueConstraint(
            "campaign_id", "position", name=op.f("uq_campaign_steps_campaign_id_position")
        ),
    )
    op.create_table(
        "recurrences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("model_campaign_id", sa.Integer(), nullable=False),
        sa.Column(
            "frequency",
            sa.Enum(
                "daily",
                "weekly",
                "monthly",
                name="recurrence_frequency",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "weekdays",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("day_of_month", sa.Integer(), nullable=True),
        sa.Column("time_of_day", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("starts_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "active",
                "paused",
                "stopped",
                name="recurrence_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("state_reason", sa.String(length=500), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_recurrences_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_recurrences_model_campaign_id_campaigns"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recurrences")),
        sa.UniqueConstraint("model_campaign_id", name=op.f("uq_recurrences_model_campaign_id")),
    )
    with op.batch_alter_table("recurrences", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recurrences_state_next_run_at", ["state", "next_run_at"], unique=False
        )

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("segment_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "audience_terms",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("parent_campaign_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("recurrence_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_campaigns_parent_campaign_id"), ["parent_campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_campaigns_recurrence_id"), ["recurrence_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_campaigns_parent_campaign_id_campaigns"),
            "campaigns",
            ["parent_campaign_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_campaigns_recurrence_id_recurrences"),
            "recurrences",
            ["recurrence_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_campaigns_segment_id_segments"),
            "segments",
            ["segment_id"],
            ["id"],
            ondelete="SET NULL",
        )

    # Segments by an earlier campaign's outcome read this index alone (segments/compile.py).
    op.create_index(
        "ix_messages_campaign_id_status_replied_at_contact_id",
        "messages",
        ["campaign_id", "status", "replied_at", "contact_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_messages_campaign_id_status_replied_at_contact_id", table_name="messages")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_campaigns_segment_id_segments"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_campaigns_recurrence_id_recurrences"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_campaigns_parent_campaign_id_campaigns"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_campaigns_recurrence_id"))
        batch_op.drop_index(batch_op.f("ix_campaigns_parent_campaign_id"))
        batch_op.drop_column("recurrence_id")
        batch_op.drop_column("parent_campaign_id")
        batch_op.drop_column("audience_terms")
        batch_op.drop_column("segment_id")

    with op.batch_alter_table("recurrences", schema=None) as batch_op:
        batch_op.drop_index("ix_recurrences_state_next_run_at")

    op.drop_table("recurrences")
    op.drop_table("campaign_steps")
    op.drop_table("segments")
