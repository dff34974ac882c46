"""Templates, campaigns and the per-recipient Message rows that are the queue."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, str_enum, utcnow
from .contacts import ContactList
from .senders import Sender


class Template(Base):
    """A reusable message; campaigns copy its body at launch."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    body: Mapped[str] = mapped_column(Text)
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id", ondelete="SET NULL"))
    # Cloud API: the approved template it maps to, and which fields fill its parameters.
    cloud_template_name: Mapped[str | None] = mapped_column(String(512))
    cloud_language: Mapped[str | None] = mapped_column(String(15))
    # {slot: text} (campaigns.cloud_template); templates saved before it hold [].
    cloud_parameters: Mapped[Any] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    is_demo: Mapped[bool] = mapped_column(default=False)


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class MessageStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"


campaign_lists = Table(
    "campaign_lists",
    Base.metadata,
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("list_id", ForeignKey("contact_lists.id", ondelete="RESTRICT"), primary_key=True),
)

campaign_senders = Table(
    "campaign_senders",
    Base.metadata,
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("sender_id", ForeignKey("senders.id", ondelete="RESTRICT"), primary_key=True),
)


class Campaign(Base):
    __tablename__ = "campaigns"
    # Serves: the scheduler's "due scheduled campaigns" and the campaigns page filtered by status.
    __table_args__ = (Index("ix_campaigns_status_scheduled_at", "status", "scheduled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[CampaignStatus] = mapped_column(
        str_enum(CampaignStatus, "campaign_status"), default=CampaignStatus.DRAFT
    )
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"))
    # Snapshot at launch: editing the template later never changes a running campaign.
    body: Mapped[str] = mapped_column(Text, default="")
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id", ondelete="RESTRICT"))
    scheduled_at: Mapped[datetime | None]
    # Finish by: a running campaign still sending at this time pauses, saying so; nothing
    # is skipped, and moving the time later lets it resume. NULL: no end.
    ends_at: Mapped[datetime | None]
    # Overrides of the senders' pacing, e.g. {"min_delay_seconds": 5, "daily_cap": 200}.
    pacing: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    max_attempts: Mapped[int] = mapped_column(default=3)
    # A document (PDF, sheet…) goes as its own message; the text follows it unless this is set.
    text_before_document: Mapped[bool] = mapped_column(default=False)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    # Cloud API: the approved template at launch (name, language, category, components,
    # the mapping of its variables), so a later sync or edit never changes a running campaign.
    cloud_template: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Why the campaign is held back although running (the senders' 24-hour tier budget is
    # used up), and until when; NULL when nothing holds it.
    held_reason: Mapped[str | None] = mapped_column(String(300))
    held_until: Mapped[datetime | None]
    # Maintained counters, one per message status, so pages never count a million rows.
    total: Mapped[int] = mapped_column(default=0)
    n_queued: Mapped[int] = mapped_column(default=0)
    n_sending: Mapped[int] = mapped_column(default=0)
    n_sent: Mapped[int] = mapped_column(default=0)
    n_delivered: Mapped[int] = mapped_column(default=0)
    n_read: Mapped[int] = mapped_column(default=0)
    n_failed: Mapped[int] = mapped_column(default=0)
    n_skipped: Mapped[int] = mapped_column(default=0)
    n_unknown: Mapped[int] = mapped_column(default=0)
    n_replied: Mapped[int] = mapped_column(default=0)
    # The audience as a saved segment instead of lists (evaluated at launch), and the
    # segment's terms as they were at launch, so the report says who was chosen and how.
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    audience_terms: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # A follow-up step's campaign: the first campaign of its sequence (models/audiences.py).
    parent_campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    # A run of a recurring series.
    recurrence_id: Mapped[int | None] = mapped_column(
        # use_alter: recurrences also refer to campaigns (their model draft).
        ForeignKey("recurrences.id", ondelete="SET NULL", use_alter=True),
        index=True,
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    launched_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    is_demo: Mapped[bool] = mapped_column(default=False)

    lists: Mapped[list[ContactList]] = relationship(secondary=campaign_lists)
    senders: Mapped[list[Sender]] = relationship(secondary=campaign_senders)


class Message(Base):
    """One recipient of one campaign: the unit of work and the queue.

    Status is written before the channel is called; see DESIGN §3.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id"),
        # Serves the dispatcher's claim (WHERE campaign_id = ? AND status = 'queued' AND
        # next_attempt_at <= now ORDER BY next_attempt_at) and the recipients table
        # filtered by status.
        Index(
            "ix_messages_campaign_id_status_next_attempt_at",
            "campaign_id",
            "status",
            "next_attempt_at",
        ),
        # Serves segments by an earlier campaign's outcome (segments/compile.py): WHERE
        # campaign_id = ? AND status … AND replied_at …, its contacts read from the index
        # alone, in contact order (a count of a million-message campaign stops at its cap).
        Index(
            "ix_messages_campaign_id_status_replied_at_contact_id",
            "campaign_id",
            "status",
            "replied_at",
            "contact_id",
        ),
        # Serves a sender's daily cap: WHERE sender_id = ? AND sent_at >= start of its day.
        Index("ix_messages_sender_id_sent_at", "sender_id", "sent_at"),
        # Serves lease recovery: WHERE status = 'sending' AND lease_until < now.
        Index("ix_messages_status_lease_until", "status", "lease_until"),
        # Serves a contact's message history.
        Index("ix_messages_contact_id", "contact_id"),
        # Serves status webhooks and replies matched by the provider's id.
        Index("ix_messages_provider_message_id", "provider_message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL for an answer written in the Inbox (models/inbox.py `Answer`).
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="RESTRICT"))
    phone: Mapped[str] = mapped_column(String(20))  # E.164 at launch
    # Rendered from the campaign's launch snapshot when first claimed (launch stays one
    # INSERT … SELECT), and stored before the channel is called; NULL until then.
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[MessageStatus] = mapped_column(
        str_enum(MessageStatus, "message_status"), default=MessageStatus.QUEUED
    )
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("senders.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    # Cloud API template campaigns: the values of the template's variables for this
    # recipient, rendered with the body and kept so a retry sends the same ones.
    template_params: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # What Meta billed for this message (the `pricing.category` of its status webhooks).
    billed_category: Mapped[str | None] = mapped_column(String(40))
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_detail: Mapped[str | None] = mapped_column(String(1000))
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
