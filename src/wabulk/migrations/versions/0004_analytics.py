"""Analytics and flat-cost pages: message outcomes per 15-minute slot, instance tallies,
list member counts, demo-data flags, an index for the Activity page's level filter, and
indexes for replies by message and for deletes that set references to NULL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 21:00:00
"""

import secrets
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import wabulk.models.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEMO_TABLES = ("contacts", "contact_lists", "templates", "senders", "campaigns")
# Which timestamp puts a message in a slot for each outcome (failed: only while it is failed).
OUTCOMES = {
    "sent": "sent_at IS NOT NULL",
    "delivered": "delivered_at IS NOT NULL",
    "read": "read_at IS NOT NULL",
    "replied": "replied_at IS NOT NULL",
    "failed": "status = 'failed' AND failed_at IS NOT NULL",
}


def _slot(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands back text here: no column type in raw SQL
        value = datetime.fromisoformat(value)
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(minute=value.minute - value.minute % 15, second=0, microsecond=0)


def upgrade() -> None:
    stats = op.create_table(
        "message_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot", wabulk.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_stats")),
        sa.UniqueConstraint(
            "slot",
            "campaign_id",
            "sender_id",
            "kind",
            "code",
            name=op.f("uq_message_stats_slot_campaign_id_sender_id_kind_code"),
        ),
    )
    op.create_index(
        "ix_message_stats_campaign_id_slot", "message_stats", ["campaign_id", "slot"], unique=False
    )
    op.create_index(
        "ix_message_stats_sender_id_slot", "message_stats", ["sender_id", "slot"], unique=False
    )
    tallies = op.create_table(
        "tallies",
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_tallies")),
    )
    for table in DEMO_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("is_demo", sa.Boolean(), nullable=False, server_default=sa.false())
            )
    with op.batch_alter_table("contact_lists", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("member_count", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index("ix_events_level_id", "events", ["level", "id"], unique=False)
    op.create_index("ix_events_message_id", "events", ["message_id"], unique=False)
    op.create_index("ix_inbound_message_id", "inbound", ["message_id"], unique=False)
    op.create_index("ix_inbound_sender_id", "inbound", ["sender_id"], unique=False)

    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE contact_lists SET member_count = (SELECT count(*) FROM contact_list_members "
            "WHERE contact_list_members.list_id = contact_lists.id)"
        )
    )
    total, opted_out = conn.execute(
        sa.text("SELECT count(*), count(opted_out_at) FROM contacts")
    ).one()
    op.bulk_insert(
        tallies,
        [
            {"key": "contacts", "n": total},
            {"key": "contacts_opted_out", "n": opted_out},
            # Cached analytics of the settled past are tied to it (wabulk.analytics.settled).
            {"key": "stats_generation", "n": secrets.randbits(62)},
        ],
    )
    counts: Counter = Counter()
    for kind, where in OUTCOMES.items():
        column = "failed_at" if kind == "failed" else f"{kind}_at"
        code = "coalesce(error_code, '')" if kind == "failed" else "''"
        rows = conn.execute(
            sa.text(
                f"SELECT {column}, campaign_id, coalesce(sender_id, 0), {code} "  # noqa: S608
                f"FROM messages WHERE {where}"
            )
        )
        for at, campaign_id, sender_id, error_code in rows:
            counts[(_slot(at), campaign_id, sender_id, kind, error_code)] += 1
    if counts:
        op.bulk_insert(
            stats,
            [
                {
                    "slot": k[0],
                    "campaign_id": k[1],
                    "sender_id": k[2],
                    "kind": k[3],
                    "code": k[4],
                    "n": n,
                }
                for k, n in counts.items()
            ],
        )


def downgrade() -> None:
    op.drop_index("ix_inbound_sender_id", table_name="inbound")
    op.drop_index("ix_inbound_message_id", table_name="inbound")
    op.drop_index("ix_events_message_id", table_name="events")
    op.drop_index("ix_events_level_id", table_name="events")
    with op.batch_alter_table("contact_lists", schema=None) as batch_op:
        batch_op.drop_column("member_count")
    for table in DEMO_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("is_demo")
    op.drop_table("tallies")
    op.drop_index("ix_message_stats_sender_id_slot", table_name="message_stats")
    op.drop_index("ix_message_stats_campaign_id_slot", table_name="message_stats")
    op.drop_table("message_stats")
