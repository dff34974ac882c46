"""Audiences that think (DESIGN §8): saved segments, follow-up steps and recurring series.

- A `Segment` holds its conditions as terms (JSON), never SQL; `segments/` compiles them.
- A `CampaignStep` is one follow-up of a campaign ("after 2 days, to those who have not
  replied, send template B"). At launch each step gets its own campaign (`run_campaign_id`),
  so its messages, counters, funnel and report are those of any campaign; the worker adds
  a recipient to it once their previous message is old enough.
- A `Recurrence` repeats a model campaign (a draft it owns) on a calendar rule; each run is
  a campaign of its own, linked back by `campaigns.recurrence_id`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, str_enum, utcnow


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str | None] = mapped_column(String(500))
    # {"match": "all" | "any", "conditions": [{"field": ..., "op": ..., "value": ...}, ...]}
    terms: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    is_demo: Mapped[bool] = mapped_column(default=False)


class StepCondition(enum.StrEnum):
    NOT_REPLIED = "not_replied"  # stops for whoever answered any message of the sequence
    NOT_READ = "not_read"  # … or read the previous one
    EVERYONE = "everyone"  # everyone still reachable (never someone who opted out)


class CampaignStep(Base):
    __tablename__ = "campaign_steps"
    __table_args__ = (UniqueConstraint("campaign_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The first campaign of the sequence.
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    position: Mapped[int]  # 1, 2, … after the first campaign
    # Counted from the recipient's own previous message of the sequence (its sent time).
    delay_minutes: Mapped[int]
    condition: Mapped[StepCondition] = mapped_column(
        str_enum(StepCondition, "step_condition"), default=StepCondition.NOT_REPLIED
    )
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text, default="")
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id", ondelete="RESTRICT"))
    # The campaign that holds this step's messages, made when the first campaign launches.
    run_campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RecurrenceState(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"  # ended by a person or by its end date; kept for its history


class RecurrenceFrequency(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class Recurrence(Base):
    __tablename__ = "recurrences"
    # Serves the worker's "series due now": WHERE state = 'active' AND next_run_at <= now.
    __table_args__ = (Index("ix_recurrences_state_next_run_at", "state", "next_run_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The draft every run copies (audience, senders, message, pacing); owned by the series.
    model_campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="RESTRICT"), unique=True
    )
    frequency: Mapped[RecurrenceFrequency] = mapped_column(
        str_enum(RecurrenceFrequency, "recurrence_frequency")
    )
    # Monday = 0 … Sunday = 6, for weekly series.
    weekdays: Mapped[list[int]] = mapped_column(JSONType, default=list)
    # 1 to 31 for monthly series; a month without that day runs on its last day.
    day_of_month: Mapped[int | None]
    time_of_day: Mapped[str] = mapped_column(String(5), default="10:00")  # HH:MM
    # An IANA zone; NULL: each recipient's own local time (timezone from their number).
    timezone: Mapped[str | None] = mapped_column(String(64))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    next_run_at: Mapped[datetime | None]
    state: Mapped[RecurrenceState] = mapped_column(
        str_enum(RecurrenceState, "recurrence_state"), default=RecurrenceState.ACTIVE
    )
    state_reason: Mapped[str | None] = mapped_column(String(500))
    runs: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
