"""The sender lease: one process at a time drives an account.

A WhatsApp Web account must never be driven by two browsers, and pacing belongs to the
account, so whoever sends for a sender (a lane, a test send, recovery opening its chats)
first takes this lease on the sender row; a holder that stops renewing loses it when it
expires.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from ..models import Sender

senders = Sender.__table__


def take(session: Session, sender_id: int, owner: str, now: datetime, hold: timedelta) -> bool:
    """Take or renew the lease; False when someone else holds it."""
    return bool(
        session.execute(
            update(senders)
            .where(
                senders.c.id == sender_id,
                or_(
                    senders.c.lease_owner.is_(None),
                    senders.c.lease_owner == owner,
                    senders.c.lease_until < now,
                ),
            )
            .values(lease_owner=owner, lease_until=now + hold)
        ).rowcount
    )


def release(session: Session, sender_id: int, owner: str) -> None:
    session.execute(
        update(senders)
        .where(senders.c.id == sender_id, senders.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )
