"""Campaign queues, senders and sends, from maintained counters only.

- Queue depth comes from the campaigns' own counters (n_queued, n_sending, …), kept in the
  transaction that moves each message: never a COUNT over messages.
- Only campaigns that can still send (running, paused, scheduled) get series: a finished
  campaign's counts never change again, and a label per campaign ever made would grow
  without end.
- Sends per sender are the 15-minute aggregates (message_stats) summed, so every web
  process and worker reads the same cluster-wide totals.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Campaign, CampaignStatus, MessageStatus, Sender
from ..models.stats import MessageStat
from .exposition import Family

ACTIVE = (CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED)
OUTCOMES = ("sent", "delivered", "read", "replied", "failed")


def campaign_families(session: Session) -> list[Family]:
    by_status = Family(
        "wabulk_campaigns", "gauge", "Campaigns in each status (draft, running, completed, ...)."
    )
    # Served by ix_campaigns_status_scheduled_at: the index alone answers it.
    for status, n in session.execute(
        select(Campaign.status, func.count()).group_by(Campaign.status)
    ).all():
        by_status.add(n, status=str(status))

    state = Family(
        "wabulk_campaign_state",
        "gauge",
        "1 for each campaign that can still send, labelled with its status "
        "(running, paused or scheduled).",
    )
    depth = Family(
        "wabulk_campaign_messages",
        "gauge",
        "Messages of each running, paused or scheduled campaign in each message status "
        "(queued and sending are the queue).",
    )
    columns = [getattr(Campaign, f"n_{s.value}") for s in MessageStatus]
    rows = session.execute(
        select(Campaign.id, Campaign.name, Campaign.status, *columns)
        .where(Campaign.status.in_(ACTIVE))
        .order_by(Campaign.id)
    ).all()
    for campaign_id, name, status, *counts in rows:
        state.add(1, campaign_id=campaign_id, campaign=name, state=str(status))
        for message_status, n in zip(MessageStatus, counts, strict=True):
            depth.add(n or 0, campaign_id=campaign_id, campaign=name, status=str(message_status))
    return [by_status, state, depth]


def sender_names(session: Session) -> dict[int, tuple[str, str, str]]:
    """{sender id: (name, channel, state)} of every sender (a handful: one per account)."""
    rows = session.execute(select(Sender.id, Sender.name, Sender.channel, Sender.state)).all()
    return {i: (name, str(channel), str(state)) for i, name, channel, state in rows}


def sender_families(session: Session, senders: dict[int, tuple[str, str, str]]) -> list[Family]:
    state = Family(
        "wabulk_sender_state",
        "gauge",
        "1 for each sender, labelled with its state (linked, needs_link, limited, ...).",
    )
    for sender_id, (name, channel, sender_state) in sorted(senders.items()):
        state.add(1, sender_id=sender_id, sender=name, channel=channel, state=sender_state)

    sends = Family(
        "wabulk_sender_messages_total",
        "counter",
        "Messages of all campaigns per sender and outcome (sent, delivered, read, replied, "
        "failed), over all workers. Deleting a campaign takes its messages out.",
    )
    # A scan of the aggregates (a row per 15 minutes, campaign, sender and outcome), never of
    # the messages: a million messages are a few thousand rows here.
    totals = session.execute(
        select(MessageStat.sender_id, MessageStat.kind, func.sum(MessageStat.n))
        .where(MessageStat.kind.in_(OUTCOMES))
        .group_by(MessageStat.sender_id, MessageStat.kind)
        .order_by(MessageStat.sender_id, MessageStat.kind)
    ).all()
    for sender_id, kind, n in totals:
        name = senders.get(sender_id, ("",))[0]
        sends.add(int(n or 0), sender_id=sender_id, sender=name, outcome=kind)
    return [state, sends]
