"""A campaign's maintained status counters, moved by SQL, never by read-modify-write.

Lanes settle messages while a person cancels or retries the same campaign: moving the
counters with `n = n + delta` in the database, in the transaction that moves the rows,
keeps them exact however the writes interleave.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..models import Campaign, MessageStatus

campaigns = Campaign.__table__
COUNTER_ATTRS = tuple(f"n_{s.value}" for s in MessageStatus)


def shift_counters(
    session: Session, campaign_id: int | None, deltas: dict[MessageStatus, int]
) -> None:
    """Move a campaign's status counters by `deltas` (one UPDATE, no read).

    `campaign_id` None: an answer written in the Inbox, which no campaign counts.
    """
    if campaign_id is None:
        return
    values: dict[str, Any] = {}
    for status, n in deltas.items():
        if n:
            col = campaigns.c[f"n_{status.value}"]
            values[col.name] = col + n
    if values:
        session.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(**values))


def shift_loaded(session: Session, campaign: Campaign, deltas: dict[MessageStatus, int]) -> None:
    """`shift_counters` for a campaign loaded in this session; its counters are read afresh."""
    session.flush()  # the campaign's own pending changes (its status) go first
    shift_counters(session, campaign.id, deltas)
    session.expire(campaign, list(COUNTER_ATTRS))
