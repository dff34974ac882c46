"""Cloud API: templates synced from the account, media uploaded once per sender, and the
raw webhook receipts stored before they are answered (DESIGN §8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, utcnow


class CloudTemplate(Base):
    """A message template as the WhatsApp Business Account holds it, from the last sync."""

    __tablename__ = "cloud_templates"
    __table_args__ = (UniqueConstraint("sender_id", "name", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id", ondelete="CASCADE"))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(15))
    category: Mapped[str] = mapped_column(String(40))  # MARKETING | UTILITY | AUTHENTICATION
    status: Mapped[str] = mapped_column(String(40))  # APPROVED | PENDING | REJECTED | PAUSED …
    quality: Mapped[str | None] = mapped_column(String(40))
    # "positional" ({{1}}) or "named" ({{customer_name}}), as Meta reports it.
    parameter_format: Mapped[str] = mapped_column(String(20), default="positional")
    components: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class CloudMedia(Base):
    """One of our media files uploaded to one sender's account: the id to send it by."""

    __tablename__ = "cloud_media"
    __table_args__ = (UniqueConstraint("sender_id", "media_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id", ondelete="CASCADE"))
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    provider_media_id: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # Meta keeps an upload 30 days; re-uploaded before then


class WebhookReceipt(Base):
    """A webhook POST as received, stored before the answer so a crash loses nothing.

    The worker processes it; `body_sha256` is unique because the provider retries the same
    bytes and a retried delivery must be stored once.
    """

    __tablename__ = "webhook_receipts"
    __table_args__ = (
        # Serves the worker's "next receipts to process": WHERE processed_at IS NULL. Partial,
        # so the processed millions cost nothing to index.
        Index(
            "ix_webhook_receipts_pending",
            "next_attempt_at",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("senders.id", ondelete="SET NULL"))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
