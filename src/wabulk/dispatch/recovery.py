"""Messages whose worker died mid-send.

A message in `sending` whose lease has expired may or may not have reached the
recipient. Until a channel can prove which (the channel reconciliation of DESIGN §3), it
becomes `unknown`: shown to the operator with a "send again" action, never re-sent silently.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from .. import events
from ..models import Campaign, EventLevel, Message, MessageStatus, utcnow


def expire_stale_leases(session: Session, now: datetime | None = None) -> int:
    """Turn expired `sending` messages into `unknown`; returns how many.

    - One UPDATE … RETURNING, then the campaigns' counters in the same transaction, so
      the counters shown on pages stay exact.
    """
    now = now or utcnow()
    rows = (
        session.execute(
            update(Message)
            .where(Message.status == MessageStatus.SENDING, Message.lease_until < now)
            .values(
                status=MessageStatus.UNKNOWN,
                lease_owner=None,
                lease_until=None,
                error_code="lease_expired",
                error_detail="The worker stopped while sending; it is not known whether this "
                "message reached the recipient.",
                updated_at=now,
            )
            .returning(Message.campaign_id)
        )
        .scalars()
        .all()
    )
    for campaign_id, n in Counter(rows).items():
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(n_sending=Campaign.n_sending - n, n_unknown=Campaign.n_unknown + n)
        )
        events.record(
            session,
            "messages.unknown",
            f"{n} message(s) were being sent when their worker stopped; marked unknown "
            'so they are not sent twice. Review them and use "send again" if needed.',
            level=EventLevel.WARNING,
            campaign_id=campaign_id,
        )
    return len(rows)
