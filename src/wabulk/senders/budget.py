"""The Cloud API tier budget: unique customers reached outside a 24-hour window per
rolling day, shared by the numbers of one business account (cloud-api-spec §5, §0).

- Meta sets the limit per business portfolio; wabulk knows each sender's WhatsApp Business
  Account, so senders with the same account id share one budget (numbers of one portfolio
  under different accounts each count their own: the count may then be too generous by
  their overlap, never wrong about one account).
- Only template messages count, and not those to customers who wrote in the 24 hours
  before (inside an open window Meta does not count them); free-form text only ever
  reaches open windows. An Inbox answer sent as a template counts like a campaign's (Meta
  counts it); it is never held back by the budget, being one message a person chose to send.
- A campaign held back by the budget says so on its page with the time it resumes.
- A sender shared by several workers (senders/lease.py) cannot count on its lane's own
  tally: `upper_bound` counts what every worker sent since the lane's count, and what they
  hold in flight, each as a new customer, under the sender rows' lock at claim time, so
  all workers together never pass the limit (a close call counts exactly, `count`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import events
from ..models import Campaign, Channel, EventLevel, Inbound, Message, MessageStatus, Sender
from ..words import said

DAY = timedelta(hours=24)
# How long a count stays good before the lane counts again (it also counts its own sends).
RECOUNT = timedelta(seconds=60)


@dataclass
class Budget:
    used: int
    # When the oldest counted message leaves the rolling day, freeing a place.
    frees_at: datetime | None
    counted_at: datetime

    def left(self, limit: int) -> int:
        return limit - self.used

    def spend(self, n: int) -> None:
        self.used += n

    def stale(self, now: datetime) -> bool:
        return now - self.counted_at >= RECOUNT


def sharing(session: Session, sender: Sender) -> list[int]:
    """The senders sharing this one's budget: the Cloud API senders of its account."""
    account = (sender.settings or {}).get("waba_id")
    if not account:
        return [sender.id]
    others = session.execute(
        select(Sender.id, Sender.settings).where(Sender.channel == Channel.CLOUD_API)
    ).all()
    return [sid for sid, settings in others if (settings or {}).get("waba_id") == account] or [
        sender.id
    ]


def count(session: Session, sender: Sender, now: datetime) -> Budget:
    """Customers reached outside a 24-hour window in the rolling day, by these senders.

    - Read as rows and judged here: "did this customer write in the 24 hours before this
      message" compares two columns with an interval, which SQLite cannot do portably; the
      rows are at most the tier's size, and the lane counts again once a minute at most.
    """
    group = sharing(session, sender)
    since = now - DAY
    m, i = Message.__table__, Inbound.__table__
    sent = session.execute(
        select(m.c.contact_id, m.c.sent_at).where(
            m.c.sender_id.in_(group),
            # Strictly after: a message sent exactly a day ago has left the rolling day at
            # `frees_at`, else a lane woken then counts it again and holds until that instant.
            m.c.sent_at > since,
            m.c.template_params.is_not(None),
        )
    ).all()
    wrote: dict[int, list[datetime]] = defaultdict(list)
    for contact_id, at in session.execute(
        select(i.c.contact_id, i.c.received_at).where(
            i.c.sender_id.in_(group),
            i.c.received_at >= since - DAY,
            i.c.contact_id.is_not(None),
        )
    ):
        wrote[contact_id].append(at)
    counted: set[int] = set()
    oldest: datetime | None = None
    for contact_id, at in sent:
        if any(at - DAY <= t <= at for t in wrote.get(contact_id, ())):
            continue  # inside an open window: Meta does not count it
        counted.add(contact_id)
        oldest = at if oldest is None or at < oldest else oldest
    return Budget(len(counted), oldest + DAY if oldest else None, now)


def upper_bound(
    session: Session, group: list[int], counted: Budget, now: datetime
) -> tuple[int, bool]:
    """Customers the group may have reached by now, at most, from a count made earlier:
    that count, plus template messages sent since and those in flight (`sending`), each as
    a customer of its own. Also whether any are in flight (a count may then free up soon).
    """
    m = Message.__table__
    templates = (m.c.sender_id.in_(group), m.c.template_params.is_not(None))
    # At or after: one sent at the very instant of the count may or may not be in it.
    since = session.scalar(
        select(func.count()).where(*templates, m.c.sent_at >= counted.counted_at)
    )
    flying = session.scalar(
        select(func.count()).where(*templates, m.c.status == MessageStatus.SENDING)
    )
    return counted.used + (since or 0) + (flying or 0), bool(flying)


def hold(session: Session, campaign_id: int, limit: int, until: datetime | None) -> bool:
    """Say on the campaign that the budget holds it back; True when newly held."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        return False
    newly = campaign.held_reason is None
    campaign.held_reason = said(
        "Meta's daily limit for this WhatsApp account is reached (%(limit)s customers in "
        "24 hours). Sending resumes by itself when the oldest of those 24 hours pass.",
        limit=f"{limit:,}",
    )
    campaign.held_until = until
    if newly:
        events.record(
            session,
            "campaign.held",
            said(
                "Campaign %(name)s waits: Meta's daily limit of %(limit)s customers for this "
                "WhatsApp account is reached.",
                name=campaign.name,
                limit=f"{limit:,}",
            ),
            level=EventLevel.WARNING,
            campaign_id=campaign.id,
        )
    return newly


def release(session: Session, campaign_id: int) -> None:
    """The budget lets the campaign send again: clear what the page says."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.held_reason is None:
        return
    campaign.held_reason = None
    campaign.held_until = None
    events.record(
        session,
        "campaign.resumed",
        said(
            "Campaign %(name)s is sending again: Meta's daily limit allows more customers.",
            name=campaign.name,
        ),
        campaign_id=campaign.id,
    )
