"""The Dashboard's figures, and the small live subset its page polls.

Flat cost at any size (see `queries` for the indexes):
- Messages today and over 30 days: `message_stats` slots since the user's local
  midnights. The live poll reads only today's; the page adds them to the 29 days before
  today, which no longer move.
- Contacts: `wabulk.contacts.tallies.totals` (two rows by primary key).
- Campaigns running, paused and scheduled: at most `SHOWN` rows by
  ix_campaigns_status_scheduled_at; their progress from the maintained counters.
- Senders (a handful of rows): today's sends per sender from `message_stats` by slot,
  counted from each sender's own midnight, as its daily cap is.
- Recent activity: the newest events by primary key, LIMIT 8, with their campaign's name.
- The last finished campaign: completed or cancelled, newest finish first (a sort over the
  finished campaigns, a few hundred rows at most); its funnel as its own page shows it, from
  its counters and its `message_stats` rows by ix_message_stats_campaign_id_slot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..campaigns.funnel import Funnel, funnel
from ..campaigns.service import completion
from ..contacts.tallies import totals as contact_totals
from ..events import EventFilter, activity_events
from ..models import (
    Campaign,
    CampaignStatus,
    Event,
    MessageStat,
    Sender,
    SenderState,
    utcnow,
)
from ..senders.pace import Pace
from .queries import Outcomes, last_days, outcome_totals

SHOWN = 10
RECENT_EVENTS = 8
MAX_FOLLOWED = 100
C = CampaignStatus
# What a page keeps polling for: anything that may still change by itself.
LIVE_STATUSES = frozenset({C.RUNNING, C.PAUSED, C.SCHEDULED})
FINISHED = (C.COMPLETED, C.CANCELLED)


@dataclass
class CampaignProgress:
    id: int
    name: str
    status: str
    reason: str | None
    total: int
    done: int
    percent: float
    sent: int
    failed: int
    scheduled_at: datetime | None

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


def progress_of(campaign: Campaign) -> CampaignProgress:
    done, percent = completion(campaign)
    return CampaignProgress(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status.value,
        reason=campaign.status_reason,
        total=campaign.total,
        done=done,
        percent=percent,
        sent=campaign.n_sent + campaign.n_delivered + campaign.n_read,
        failed=campaign.n_failed,
        scheduled_at=campaign.scheduled_at,
    )


@dataclass
class FinishedCampaign:
    id: int
    name: str
    status: str  # completed or cancelled
    finished_at: datetime
    funnel: Funnel


def last_finished(session: Session) -> FinishedCampaign | None:
    """The campaign that finished last, with its results; None before any has."""
    campaign = session.scalars(
        select(Campaign)
        .where(Campaign.status.in_(FINISHED), Campaign.finished_at.is_not(None))
        .order_by(Campaign.finished_at.desc(), Campaign.id.desc())
        .limit(1)
    ).first()
    if campaign is None or campaign.finished_at is None:
        return None
    return FinishedCampaign(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status.value,
        finished_at=campaign.finished_at,
        funnel=funnel(session, campaign),
    )


@dataclass
class SenderHealth:
    id: int
    name: str
    state: str
    reason: str | None
    sent_today: int
    daily_cap: int | None
    channel: str = ""  # decides the words of its state (web.sender_words)

    @property
    def capped(self) -> bool:
        return bool(self.daily_cap) and self.sent_today >= (self.daily_cap or 0)


@dataclass
class LiveFigures:
    """What changes while the dispatcher works; the poll returns only this."""

    today: Outcomes
    running: list[CampaignProgress]
    scheduled: list[CampaignProgress]
    senders: list[SenderHealth]

    @property
    def live(self) -> bool:
        return bool(self.running or self.scheduled)


@dataclass
class Dashboard:
    figures: LiveFigures
    before_today: Outcomes  # the 29 local days before today
    contacts: int
    opted_out: int
    has_campaigns: bool
    events: list[tuple[Event, str | None, str | None]]  # (event, actor email, campaign name)
    last_finished: FinishedCampaign | None = None

    @property
    def today(self) -> Outcomes:
        return self.figures.today

    @property
    def month(self) -> Outcomes:
        """The last 30 days, today included."""
        t, b = self.figures.today, self.before_today
        return Outcomes(
            t.sent + b.sent,
            t.delivered + b.delivered,
            t.read + b.read,
            t.replied + b.replied,
            t.failed + b.failed,
        )

    @property
    def is_empty(self) -> bool:
        return not (self.contacts or self.has_campaigns or self.figures.senders)


def _campaigns(session: Session, statuses: Iterable[CampaignStatus]) -> list[Campaign]:
    query = select(Campaign).where(Campaign.status.in_(list(statuses))).limit(SHOWN)
    if set(statuses) == {C.SCHEDULED}:
        query = query.order_by(Campaign.scheduled_at, Campaign.id)
    else:
        query = query.order_by(Campaign.id.desc())
    return list(session.scalars(query))


def sender_health(session: Session, now: datetime | None = None) -> list[SenderHealth]:
    """Every sender's state and today's sends against its daily cap."""
    now = now or utcnow()
    senders = list(session.scalars(select(Sender).order_by(Sender.name)))
    if not senders:
        return []
    starts = {s.id: Pace(timezone=s.timezone or "UTC").day_start(now) for s in senders}
    # One query from the earliest midnight; each sender then sums its own slots.
    rows = session.execute(
        select(MessageStat.sender_id, MessageStat.slot, func.sum(MessageStat.n))
        .where(
            MessageStat.kind == "sent",
            MessageStat.slot >= min(starts.values()),
            MessageStat.sender_id.in_(list(starts)),
        )
        .group_by(MessageStat.sender_id, MessageStat.slot)
    )
    today: dict[int, int] = defaultdict(int)
    for sender_id, slot, n in rows:
        if slot >= starts[sender_id]:
            today[sender_id] += int(n or 0)
    return [
        SenderHealth(
            id=s.id,
            name=s.name,
            state=s.state.value,
            reason=s.state_reason if s.state != SenderState.LINKED else None,
            sent_today=today[s.id],
            daily_cap=s.daily_cap,
            channel=s.channel.value,
        )
        for s in senders
    ]


def live_figures(session: Session, tz: ZoneInfo, now: datetime | None = None) -> LiveFigures:
    now = now or utcnow()
    today = last_days(tz, 1, now)
    return LiveFigures(
        today=outcome_totals(session, today.start, today.end),
        running=[progress_of(c) for c in _campaigns(session, (C.RUNNING, C.PAUSED))],
        scheduled=[progress_of(c) for c in _campaigns(session, (C.SCHEDULED,))],
        senders=sender_health(session, now),
    )


def dashboard(session: Session, tz: ZoneInfo, now: datetime | None = None) -> Dashboard:
    now = now or utcnow()
    figures = live_figures(session, tz, now)
    today = last_days(tz, 1, now)
    contacts, opted_out = contact_totals(session)
    return Dashboard(
        figures=figures,
        before_today=outcome_totals(session, last_days(tz, 30, now).start, today.start),
        contacts=contacts,
        opted_out=opted_out,
        has_campaigns=session.scalar(select(Campaign.id).limit(1)) is not None,
        events=[
            (e, email, campaign)
            for e, email, campaign in session.execute(
                activity_events(EventFilter()).limit(RECENT_EVENTS)
            )
        ],
        last_finished=last_finished(session),
    )


def campaigns_progress(session: Session, campaign_ids: list[int]) -> list[CampaignProgress]:
    """The progress of these campaigns (a page following several), by primary key."""
    ids = campaign_ids[:MAX_FOLLOWED]
    if not ids:
        return []
    return [
        progress_of(c)
        for c in session.scalars(select(Campaign).where(Campaign.id.in_(ids)).order_by(Campaign.id))
    ]
