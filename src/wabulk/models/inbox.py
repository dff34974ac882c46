"""The Inbox: one conversation per contact and sender, the team's notes, saved answers.

An answer an operator writes is a `Message` with no campaign (DESIGN §3: the same queue,
lease, states and crash safety as a campaign message); `Answer` holds what only an answer
has: its conversation, its author and, on the Cloud API outside the 24-hour window, the
approved template it goes as.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, str_enum, utcnow


class ConversationState(enum.StrEnum):
    OPEN = "open"
    DONE = "done"


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("contact_id", "sender_id"),
        # Serves the Inbox list, newest activity first, filtered by state (open / done).
        Index("ix_conversations_state_last_activity_at", "state", "last_activity_at"),
        # Serves the "mine" filter and ON DELETE SET NULL when a user is deleted.
        Index("ix_conversations_assignee_id_last_activity_at", "assignee_id", "last_activity_at"),
        # Serves the unread filter and the navigation's unread count; partial, so the read
        # majority costs nothing to index.
        Index(
            "ix_conversations_unread",
            "last_activity_at",
            sqlite_where=text("unread > 0"),
            postgresql_where=text("unread > 0"),
        ),
        # Serves ON DELETE SET NULL / CASCADE from senders and campaigns.
        Index("ix_conversations_sender_id", "sender_id"),
        Index("ix_conversations_campaign_id", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id", ondelete="CASCADE"))
    # The campaign whose message the first reply answered: "which campaign started it".
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    state: Mapped[ConversationState] = mapped_column(
        str_enum(ConversationState, "conversation_state"), default=ConversationState.OPEN
    )
    # Replies not yet seen by anyone on the team (opening the conversation clears it).
    unread: Mapped[int] = mapped_column(default=0)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The customer's last message: the Cloud API's 24-hour window runs from it.
    last_inbound_at: Mapped[datetime | None]
    # The newest line both ways, for the list (cut to fit).
    preview: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConversationNote(Base):
    """An internal note: seen by the team, never sent to the customer."""

    __tablename__ = "conversation_notes"
    __table_args__ = (
        Index("ix_conversation_notes_conversation_id_at", "conversation_id", "at"),
        Index("ix_conversation_notes_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Answer(Base):
    """What an answer has beyond its `Message` row (whose `campaign_id` is NULL)."""

    __tablename__ = "answers"
    __table_args__ = (
        Index("ix_answers_conversation_id", "conversation_id"),
        Index("ix_answers_author_id", "author_id"),
        Index("ix_answers_quick_reply_id", "quick_reply_id"),
    )

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Cloud API outside the 24-hour window: the approved template's snapshot, as a
    # campaign's `cloud_template` (the values per variable are on the message row).
    template: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    quick_reply_id: Mapped[int | None] = mapped_column(
        ForeignKey("quick_replies.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuickReply(Base):
    """A saved answer, with the same placeholders as templates ({{ name }})."""

    __tablename__ = "quick_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FormClaim(Base):
    """A form's one-time token, claimed by the request that acted on it (web/inbox/once.py):
    in the database, so a form sent twice is acted on once whichever web process (or
    machine) each copy reaches. Claimed in the action's own transaction: a refused action
    leaves no claim behind."""

    __tablename__ = "form_claims"
    __table_args__ = (Index("ix_form_claims_claimed_at", "claimed_at"),)

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
