"""The sender lease: one process at a time drives a WhatsApp Web account.

- A WhatsApp Web account must never be driven by two browsers, so whoever opens one (a
  lane, a test send, recovery reading its chats, linking by QR) first takes this lease on
  the sender row; a holder that stops renewing loses it when it expires. Such a sender is
  pinned: one worker at a time sends for it.
- Cloud API and dry-run senders are shared (`exclusive` is False): every worker runs a lane
  for them at once and none takes the lease. Their pace belongs to the account all the
  same, so it is kept in the database for all workers together: the send slots under the
  messages-per-second ceiling (slots.py), the daily cap and the Cloud API tier budget
  counted at claim time under the sender row's lock (dispatch/lane_shared.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from ..channels.registry import EXCLUSIVE
from ..models import Sender

senders = Sender.__table__


def exclusive(channel: object) -> bool:
    """True when this channel's account is pinned to one worker (WhatsApp Web)."""
    return str(getattr(channel, "value", channel)) in EXCLUSIVE


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
