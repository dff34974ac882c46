"""Warm-up: a new WhatsApp Web number's daily cap grows day by day before full pace.

- Fresh accounts that send many messages at once are the ones WhatsApp bans most (see
  "Safe pacing reported by users" in the WhatsApp Web notes), so a Web sender starts at 20
  a day and reaches its own cap on day 7.
- Day 1 is the day, in the sender's timezone, of its first sent message; a sender that
  never sent is on day 1. Counting from the messages themselves means a number that has
  been sending for a week is past the ramp without anything being stored for it.
- A person may skip the ramp (`warmup_skipped` in the sender's settings) and turn it back
  on; the day count goes on from the first message either way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Channel, Message, Sender
from ..zones import zone
from .pace import Pace

# The daily cap on days 1 to 6; from day 7 on, the sender's own cap.
RAMP = (20, 40, 60, 100, 140, 180)
SKIPPED = "warmup_skipped"


@dataclass(frozen=True)
class Warmup:
    """Where a sender stands in the ramp on one day."""

    day: int  # 1-based
    cap: int  # the ramp's cap that day, before the sender's or campaign's own cap

    @property
    def days(self) -> int:
        return len(RAMP)


def ramps(sender: Sender) -> bool:
    """Whether the ramp applies: WhatsApp Web senders, unless a person skipped it."""
    return sender.channel == Channel.WHATSAPP_WEB and not skipped(sender)


def skipped(sender: Sender) -> bool:
    return bool((sender.settings or {}).get(SKIPPED))


def first_day(session: Session, sender: Sender) -> date | None:
    """The day (in the sender's timezone) of its first sent message; None: never sent.

    - One MIN over the (sender_id, sent_at) index: cheap enough for once a day per lane.
    """
    first = session.scalar(
        select(func.min(Message.sent_at)).where(
            Message.sender_id == sender.id, Message.sent_at.is_not(None)
        )
    )
    if first is None:
        return None
    return _local_day(first, sender.timezone)


def _local_day(at: datetime, timezone: str | None) -> date:
    return at.astimezone(zone(timezone or "UTC")).date()


def day_number(first: date | None, on: date) -> int:
    """The ramp day `on` falls on, for a sender whose first message went on `first`."""
    if first is None:
        return 1
    return max(1, (on - first).days + 1)


def on_day(sender: Sender, first: date | None, at: datetime) -> Warmup | None:
    """The ramp at `at`, or None when it does not hold the sender back (past it, skipped,
    not a Web sender)."""
    if not ramps(sender):
        return None
    return step(day_number(first, _local_day(at, sender.timezone)))


def step(day: int) -> Warmup | None:
    if day > len(RAMP):
        return None
    return Warmup(day=day, cap=RAMP[day - 1])


def capped(pace: Pace, warm: Warmup | None) -> Pace:
    """`pace` with the ramp's cap when it is lower than the sender's or campaign's own."""
    if warm is None:
        return pace
    own = pace.daily_cap
    return replace(pace, daily_cap=warm.cap if own is None else min(own, warm.cap))


def status(session: Session, sender: Sender, now: datetime) -> Warmup | None:
    """Where the sender stands today (the Senders page)."""
    if sender.channel != Channel.WHATSAPP_WEB:
        return None
    return step(day_number(first_day(session, sender), _local_day(now, sender.timezone)))
