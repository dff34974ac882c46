"""The dashboard's headline numbers.

Message figures come from the campaigns' maintained counters (one row per campaign),
never from counting the messages table; contacts from the maintained tallies.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..contacts.tallies import totals as contact_totals
from ..models import Campaign, CampaignStatus, ContactList, Sender, SenderState


@dataclass(frozen=True)
class DashboardSummary:
    contacts: int
    opted_out: int
    lists: int
    campaigns: int
    running: int
    scheduled: int
    sent: int
    delivered: int
    read: int
    failed: int
    senders: int
    senders_linked: int

    @property
    def is_empty(self) -> bool:
        return self.contacts == 0 and self.campaigns == 0 and self.senders == 0


def dashboard_summary(session: Session) -> DashboardSummary:
    contacts, opted_out = contact_totals(session)
    c = session.execute(
        select(
            func.count(),
            func.count().filter(Campaign.status == CampaignStatus.RUNNING),
            func.count().filter(Campaign.status == CampaignStatus.SCHEDULED),
            func.coalesce(func.sum(Campaign.n_sent + Campaign.n_delivered + Campaign.n_read), 0),
            func.coalesce(func.sum(Campaign.n_delivered + Campaign.n_read), 0),
            func.coalesce(func.sum(Campaign.n_read), 0),
            func.coalesce(func.sum(Campaign.n_failed), 0),
        )
    ).one()
    senders, linked = session.execute(
        select(func.count(), func.count().filter(Sender.state == SenderState.LINKED))
    ).one()
    return DashboardSummary(
        contacts=contacts,
        opted_out=opted_out,
        lists=session.scalar(select(func.count()).select_from(ContactList)) or 0,
        campaigns=c[0],
        running=c[1],
        scheduled=c[2],
        sent=c[3],
        delivered=c[4],
        read=c[5],
        failed=c[6],
        senders=senders,
        senders_linked=linked,
    )
