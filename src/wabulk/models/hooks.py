"""Events out: the endpoints an admin entered, and one durable delivery row per event and
endpoint (DESIGN §8 "outbox"), written in the transaction that caused the event and sent
by the worker, so a crash loses none."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, str_enum, utcnow


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    url: Mapped[str] = mapped_column(String(2000))
    # The signing secret, encrypted like a sender's (senders/secrets.py); shown in full
    # once, when made, then only by its last four characters.
    secret: Mapped[str] = mapped_column(Text)
    secret_hint: Mapped[str] = mapped_column(String(8), default="")
    # Event names this endpoint receives, e.g. ["message.status", "message.replied"].
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its first try or its next retry
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # retried for 24 hours without a 2xx; kept in the log


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        # Serves the worker's "next deliveries due": partial, so the delivered millions
        # cost nothing to index.
        Index(
            "ix_outbox_events_due",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # Serves an endpoint's delivery log, newest first, and ON DELETE CASCADE.
        Index("ix_outbox_events_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    # The event's own id (the same for every endpoint it goes to), for receivers to
    # drop a retried delivery they already took.
    event_id: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A worker's claim while it posts, so two workers never post the same row at once.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    # The endpoint's answer code, or NULL when it did not answer (timeout, refused).
    last_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
