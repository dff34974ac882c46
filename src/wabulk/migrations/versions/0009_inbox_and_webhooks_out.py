"""The Inbox (conversations, notes, answers, quick replies) and events out (webhook
endpoints and their durable deliveries). An answer is a message with no campaign, so
`messages.campaign_id` becomes nullable; a downgrade deletes the answers first.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 02:31:46.042474
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import wabulk.models.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quick_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_quick_replies_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quick_replies")),
        sa.UniqueConstraint("name", name=op.f("uq_quick_replies_name")),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("secret_hint", sa.String(length=8), nullable=False),
        sa.Column(
            "events",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_webhook_endpoints_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "delivered",
                "failed",
                name="delivery_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", wabulk.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("delivered_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_outbox_events_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_events_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(
            "ix_outbox_events_endpoint_id_id", ["endpoint_id", "id"], unique=False
        )

    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "open", "done", name="conversation_state", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("unread", sa.Integer(), nullable=False),
        sa.Column(
            "last_activity_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("last_inbound_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("preview", sa.String(length=200), nullable=False),
        sa.Column("created_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["users.id"],
            name=op.f("fk_conversations_assignee_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_conversations_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_conversations_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["senders.id"],
            name=op.f("fk_conversations_sender_id_senders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint(
            "contact_id", "sender_id", name=op.f("uq_conversations_contact_id_sender_id")
        ),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversations_assignee_id_last_activity_at",
            ["assignee_id", "last_activity_at"],
            unique=False,
        )
        batch_op.create_index("ix_conversations_campaign_id", ["campaign_id"], unique=False)
        batch_op.create_index("ix_conversations_sender_id", ["sender_id"], unique=False)
        batch_op.create_index(
            "ix_conversations_state_last_activity_at", ["state", "last_activity_at"], unique=False
        )
        batch_op.create_index(
            "ix_conversations_unread",
            ["last_activity_at"],
            unique=False,
            sqlite_where=sa.text("unread > 0"),
            postgresql_where=sa.text("unread > 0"),
        )

    op.create_table(
        "answers",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column(
            "template",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("quick_reply_id", sa.Integer(), nullable=True),
        sa.Column("created_at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_answers_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_answers_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_answers_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["quick_reply_id"],
            ["quick_replies.id"],
            name=op.f("fk_answers_quick_reply_id_quick_replies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_answers")),
    )
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.create_index("ix_answers_author_id", ["author_id"], unique=False)
        batch_op.create_index("ix_answers_conversation_id", ["conversation_id"], unique=False)
        batch_op.create_index("ix_answers_quick_reply_id", ["quick_reply_id"], unique=False)

    op.create_table(
        "conversation_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("at", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_notes_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_conversation_notes_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_notes")),
    )
    with op.batch_alter_table("conversation_notes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_notes_conversation_id_at", ["conversation_id", "at"], unique=False
        )
        batch_op.create_index("ix_conversation_notes_user_id", ["user_id"], unique=False)

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("campaign_id", existing_type=sa.INTEGER(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM messages WHERE campaign_id IS NULL")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("campaign_id", existing_type=sa.INTEGER(), nullable=False)

    with op.batch_alter_table("conversation_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_notes_user_id")
        batch_op.drop_index("ix_conversation_notes_conversation_id_at")

    op.drop_table("conversation_notes")
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_index("ix_answers_quick_reply_id")
        batch_op.drop_index("ix_answers_conversation_id")
        batch_op.drop_index("ix_answers_author_id")

    op.drop_table("answers")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_conversations_unread",
            sqlite_where=sa.text("unread > 0"),
            postgresql_where=sa.text("unread > 0"),
        )
        batch_op.drop_index("ix_conversations_state_last_activity_at")
        batch_op.drop_index("ix_conversations_sender_id")
        batch_op.drop_index("ix_conversations_campaign_id")
        batch_op.drop_index("ix_conversations_assignee_id_last_activity_at")

    op.drop_table("conversations")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_endpoint_id_id")
        batch_op.drop_index(
            "ix_outbox_events_due",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )

    op.drop_table("outbox_events")
    op.drop_table("webhook_endpoints")
    op.drop_table("quick_replies")
