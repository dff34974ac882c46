"""The campaign log and audit trail, and replies received."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, str_enum, utcnow


class EventLevel(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # Serves the campaign page's recent log: WHERE campaign_id = ? ORDER BY id DESC.
        Index("ix_events_campaign_id_id", "campaign_id", "id"),
        # Serves the Activity page filtered by time (newest first).
        Index("ix_events_at", "at"),
        # Serves the Activity page filtered by user.
        Index("ix_events_user_id_id", "user_id", "id"),
        # Serves the Activity page filtered by level (warnings and errors), newest first.
        Index("ix_events_level_id", "level", "id"),
        # Serves ON DELETE SET NULL when messages are deleted (a campaign or demo data
        # removed): without it every deleted message scans the events table.
        Index("ix_events_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    level: Mapped[EventLevel] = mapped_column(
        str_enum(EventLevel, "event_level"), default=EventLevel.INFO
    )
    kind: Mapped[str] = mapped_column(String(60))  # e.g. "user.created", "campaign.paused"
    text: Mapped[str] = mapped_column(Text)  # the human sentence shown in the log
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Inbound(Base):
    """A message a contact sent us, linked to what it answers (DESIGN §8)."""

    __tablename__ = "inbound"
    __table_args__ = (
        # Serves a contact's conversation, newest first.
        Index("ix_inbound_contact_id_received_at", "contact_id", "received_at"),
        # Serves the replies of one campaign.
        Index("ix_inbound_campaign_id", "campaign_id"),
        # Serves a message's reply (campaign report) and ON DELETE SET NULL from messages.
        Index("ix_inbound_message_id", "message_id"),
        # Serves ON DELETE SET NULL when a sender is deleted.
        Index("ix_inbound_sender_id", "sender_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Digits as WhatsApp gave them (E.164 with +); NULL when the provider sent only the
    # business-scoped user id (Cloud API, since 2026).
    phone: Mapped[str | None] = mapped_column(String(20))
    wa_user_id: Mapped[str | None] = mapped_column(String(100))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("senders.id", ondelete="SET NULL"))
    # Unique: webhooks are retried by the provider, and a reply must be stored once.
    provider_message_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(30), default="text")
    body: Mapped[str | None] = mapped_column(Text)
    # A quick-reply button's payload, and the provider id of the message it quotes.
    payload: Mapped[str | None] = mapped_column(String(500))
    context_id: Mapped[str | None] = mapped_column(String(200))
    # The contact was opted out by this reply (a stop keyword or an opt-out button).
    opted_out: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
