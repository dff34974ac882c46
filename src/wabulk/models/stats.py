"""Maintained aggregates, so no page counts a million rows on a request.

- `MessageStat`: how many messages reached each outcome in each 15-minute slot, by campaign
  and sender (15 minutes, so every real timezone's days and hours, India's +05:30 and
  Nepal's +05:45 included, are whole numbers of slots). Kept in the transaction that moves
  the messages; `wabulk.analytics.stats.rebuild` recomputes them from the messages table.
- `Tally`: instance-wide counts (contacts, opted-out contacts) kept by the code that
  changes them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

SLOT_MINUTES = 15


def slot_of(at: datetime) -> datetime:
    """The start of the 15-minute UTC slot holding `at` (aware, UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.replace(minute=at.minute - at.minute % SLOT_MINUTES, second=0, microsecond=0)


class MessageStat(Base):
    __tablename__ = "message_stats"
    __table_args__ = (
        # The upsert key; also serves charts over a date range (slot leads).
        UniqueConstraint("slot", "campaign_id", "sender_id", "kind", "code"),
        # Serves charts filtered by campaign: WHERE campaign_id = ? AND slot BETWEEN …
        Index("ix_message_stats_campaign_id_slot", "campaign_id", "slot"),
        # Serves charts filtered by sender.
        Index("ix_message_stats_sender_id_slot", "sender_id", "slot"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slot: Mapped[datetime]  # UTC, on a 15-minute boundary
    # No foreign keys: statistics outlive nothing they describe, and an upsert on the hot
    # path should not pay for referential checks. Deleting a campaign deletes its rows.
    campaign_id: Mapped[int] = mapped_column(Integer)
    sender_id: Mapped[int] = mapped_column(Integer, default=0)  # 0: no sender (never sent)
    kind: Mapped[str] = mapped_column(String(12))  # sent | delivered | read | replied | failed
    code: Mapped[str] = mapped_column(String(50), default="")  # the error code, for failed
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class Tally(Base):
    __tablename__ = "tallies"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
