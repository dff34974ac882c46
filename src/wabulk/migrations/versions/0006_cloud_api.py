"""Cloud API and hearing back: synced templates, media uploaded per sender, raw webhook
receipts, the `limited` sender state and its health, WhatsApp user ids on contacts and
replies, template values and billing per message, and a campaign's tier-budget hold.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import wabulk.models.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATES = ("linked", "needs_link", "in_use", "browser_failed", "disabled")
NEW_STATES = ("linked", "needs_link", "in_use", "browser_failed", "limited", "disabled")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
UTC = wabulk.models.base.UTCDateTime(timezone=True)


def _state(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(
        *values,
        name="sender_state",
        native_enum=False,
        create_constraint=True,
        length=max(len(v) for v in values),
    )


def upgrade() -> None:
    op.create_table(
        "cloud_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("provider_media_id", sa.String(length=100), nullable=False),
        sa.Column("uploaded_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["media.id"],
            name=op.f("fk_cloud_media_media_id_media"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["senders.id"],
            name=op.f("fk_cloud_media_sender_id_senders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cloud_media")),
        sa.UniqueConstraint(
            "sender_id", "media_id", name=op.f("uq_cloud_media_sender_id_media_id")
        ),
    )
    op.create_table(
        "cloud_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=15), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("quality", sa.String(length=40), nullable=True),
        sa.Column("parameter_format", sa.String(length=20), nullable=False),
        sa.Column("components", JSON, nullable=False),
        sa.Column("synced_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["senders.id"],
            name=op.f("fk_cloud_templates_sender_id_senders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cloud_templates")),
        sa.UniqueConstraint(
            "sender_id",
            "name",
            "language",
            name=op.f("uq_cloud_templates_sender_id_name_language"),
        ),
    )
    op.create_table(
        "webhook_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("processed_at", UTC, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["senders.id"],
            name=op.f("fk_webhook_receipts_sender_id_senders"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_receipts")),
        sa.UniqueConstraint("body_sha256", name=op.f("uq_webhook_receipts_body_sha256")),
    )
    op.create_index(
        "ix_webhook_receipts_pending",
        "webhook_receipts",
        ["next_attempt_at"],
        unique=False,
        sqlite_where=sa.text("processed_at IS NULL"),
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    # Added columns only: SQLite adds them in place, without copying the big tables.
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cloud_template", JSON, nullable=True))
        batch_op.add_column(sa.Column("held_reason", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("held_until", UTC, nullable=True))
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wa_user_id", sa.String(length=100), nullable=True))
    op.create_index(
        "ix_contacts_wa_user_id",
        "contacts",
        ["wa_user_id"],
        unique=True,
        sqlite_where=sa.text("wa_user_id IS NOT NULL"),
        postgresql_where=sa.text("wa_user_id IS NOT NULL"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_params", JSON, nullable=True))
        batch_op.add_column(sa.Column("billed_category", sa.String(length=40), nullable=True))
    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wa_user_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("context_id", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("opted_out", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.alter_column("phone", existing_type=sa.VARCHAR(length=20), nullable=True)
    with op.batch_alter_table("senders", schema=None) as batch_op:
        batch_op.alter_column("state", existing_type=_state(OLD_STATES), type_=_state(NEW_STATES))
        batch_op.add_column(sa.Column("limited_until", UTC, nullable=True))
        batch_op.add_column(
            sa.Column("health", JSON, nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    op.execute("UPDATE senders SET state = 'needs_link' WHERE state = 'limited'")
    with op.batch_alter_table("senders", schema=None) as batch_op:
        batch_op.drop_column("health")
        batch_op.drop_column("limited_until")
        batch_op.alter_column("state", existing_type=_state(NEW_STATES), type_=_state(OLD_STATES))
    op.execute("DELETE FROM inbound WHERE phone IS NULL")
    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.alter_column("phone", existing_type=sa.VARCHAR(length=20), nullable=False)
        batch_op.drop_column("opted_out")
        batch_op.drop_column("context_id")
        batch_op.drop_column("payload")
        batch_op.drop_column("wa_user_id")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("billed_category")
        batch_op.drop_column("template_params")
    op.drop_index("ix_contacts_wa_user_id", table_name="contacts")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("wa_user_id")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("held_until")
        batch_op.drop_column("held_reason")
        batch_op.drop_column("cloud_template")
    op.drop_index("ix_webhook_receipts_pending", table_name="webhook_receipts")
    op.drop_table("webhook_receipts")
    op.drop_table("cloud_templates")
    op.drop_table("cloud_media")
