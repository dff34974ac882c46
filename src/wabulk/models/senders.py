"""Sending accounts: one WhatsApp number driven through one channel."""

from __future__ import annotations

import enum
from datetime import datetime, time
from typing import Any

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, str_enum, utcnow


class Channel(enum.StrEnum):
    WHATSAPP_WEB = "whatsapp_web"
    CLOUD_API = "cloud_api"
    DRY_RUN = "dry_run"


class SenderState(enum.StrEnum):
    LINKED = "linked"
    NEEDS_LINK = "needs_link"
    # Another browser or phone took over the WhatsApp Web session ("Use here").
    IN_USE = "in_use"
    # The browser could not start or keeps crashing; the reason says what to fix.
    BROWSER_FAILED = "browser_failed"
    # WhatsApp showed a limit banner, or Meta rated the number RED: out of rotation until
    # `limited_until` or until a person resumes it.
    LIMITED = "limited"
    DISABLED = "disabled"


class Sender(Base):
    __tablename__ = "senders"
    __table_args__ = (
        CheckConstraint("min_delay_seconds <= max_delay_seconds", name="delay_range"),
        CheckConstraint("min_delay_seconds >= 0", name="delay_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    # Channel-specific: Chrome profile folder, or phone-number id and a token reference.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[SenderState] = mapped_column(
        str_enum(SenderState, "sender_state"), default=SenderState.NEEDS_LINK
    )
    state_reason: Mapped[str | None] = mapped_column(String(500))
    phone: Mapped[str | None] = mapped_column(String(20))  # the account's own number, once known
    min_delay_seconds: Mapped[float] = mapped_column(default=8.0)
    max_delay_seconds: Mapped[float] = mapped_column(default=20.0)
    max_per_second: Mapped[float | None]  # Cloud API ceiling
    daily_cap: Mapped[int | None]
    active_from: Mapped[time | None]  # recipient's local time
    active_until: Mapped[time | None]
    break_every: Mapped[int | None]  # a longer break after this many messages
    break_seconds: Mapped[int | None]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # counts the daily cap
    # One WhatsApp Web account must be driven by one browser: the worker holding it leases it.
    limited_until: Mapped[datetime | None]
    # What the provider last said about the account (Cloud API: display name, quality
    # rating, throughput level, messaging-limit tier, when checked). Never secrets: those
    # live encrypted in `settings`.
    health: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    # Only workers carrying this label send for it (`wabulk worker --label`): a WhatsApp
    # Web sender's browser profile lives on one machine. None: any worker.
    worker_label: Mapped[str | None] = mapped_column(String(60))
    # The account's next free send slot under its messages-per-second ceiling, shared by
    # every worker sending for it (dispatch reserves slots here; see senders/pace.py).
    pace_next_at: Mapped[datetime | None]
    # Linking by QR (WhatsApp Web): the page asks until this time; the worker holding the
    # sender shows the QR it reads from the browser here (a PNG data URL), so the dashboard
    # and the browser may live in different processes or machines.
    link_requested_until: Mapped[datetime | None]
    link_takeover: Mapped[bool] = mapped_column(default=False)  # press "Use here" when asked
    link_qr: Mapped[str | None] = mapped_column(Text)
    link_qr_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    is_demo: Mapped[bool] = mapped_column(default=False)
