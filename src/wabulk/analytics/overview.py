"""Every figure of the Analytics page for one filter, in one call (page, JSON, API).

- The filter comes from a query string: `from` and `to` (local dates), `campaign`,
  `sender`; each bad value raises a ValidationError naming the field.
- `chart_data` shapes the figures for Chart.js; the page prints the same numbers in
  tables beneath the charts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ValidationError
from ..models import Campaign, MessageStat, Sender
from ..words import N_, said
from . import billing
from . import queries as q

# English (the JSON export and the API); the pages translate them where shown.
KIND_LABELS = {
    "sent": N_("Sent"),
    "delivered": N_("Delivered"),
    "read": N_("Read"),
    "replied": N_("Replied"),
    "failed": N_("Failed"),
}
# What a filter's bad id says, per list.
_NO_SUCH = {
    "campaign": N_("There is no campaign %(value)s; choose one from the list."),
    "sender": N_("There is no sender %(value)s; choose one from the list."),
}
FUNNEL_STEPS = ("sent", "delivered", "read", "replied")


@dataclass(frozen=True)
class Filters:
    period: q.Period
    campaign_id: int | None = None
    sender_id: int | None = None

    @property
    def query_args(self) -> dict[str, str]:
        """The filter as a query string (links, the JSON export)."""
        args = {"from": self.period.first_day.isoformat(), "to": self.period.last_day.isoformat()}
        if self.campaign_id is not None:
            args["campaign"] = str(self.campaign_id)
        if self.sender_id is not None:
            args["sender"] = str(self.sender_id)
        return args


def _id(session: Session, text: str, model: type, field: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    # Ids are 32-bit on every backend: a longer number names nothing (and would overflow);
    # "²" passes isdigit() but not int().
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None
    if number is None or session.get(model, number) is None:
        raise ValidationError(said(_NO_SUCH[field], value=repr(text[:20])), field)
    return number


def parse_filters(
    session: Session, args: Mapping[str, str], tz: ZoneInfo, now: datetime | None = None
) -> Filters:
    return Filters(
        period=q.parse_period(args.get("from"), args.get("to"), tz, now),
        campaign_id=_id(session, args.get("campaign", ""), Campaign, "campaign"),
        sender_id=_id(session, args.get("sender", ""), Sender, "sender"),
    )


def default_filters(tz: ZoneInfo, now: datetime | None = None) -> Filters:
    return Filters(q.last_days(tz, q.DEFAULT_DAYS, now))


@dataclass
class Overview:
    filters: Filters
    totals: q.Outcomes
    days: list[q.DayOutcomes]
    hours: list[q.HourOutcomes]
    funnel: q.Funnel
    campaigns: list[q.CampaignFunnel]
    failures: list[q.FailureReason]
    billed: list[billing.BilledCategory]  # what Meta billed, per pricing category
    senders: list[q.SenderVolume]
    opt_outs: list[q.DayCount]
    ever_sent: bool  # anything at all in message_stats, whatever the filter

    @property
    def opt_out_total(self) -> int:
        return sum(d.count for d in self.opt_outs)

    @property
    def is_empty(self) -> bool:
        return self.totals.total == 0 and self.opt_out_total == 0


def overview(session: Session, filters: Filters) -> Overview:
    p = filters.period
    scope = (filters.campaign_id, filters.sender_id)
    funnel, campaigns = q.funnels(session, p.start, p.end, p.tz, *scope)
    days, hours = q.per_day_and_hour(session, p.start, p.end, p.tz, *scope)
    return Overview(
        filters=filters,
        totals=q.outcome_totals(session, p.start, p.end, p.tz, *scope),
        days=days,
        hours=hours,
        funnel=funnel,
        campaigns=campaigns,
        failures=q.failure_reasons(session, p.start, p.end, p.tz, *scope),
        billed=billing.billed_in_range(session, p.start, p.end, *scope),
        senders=q.sender_volume(session, p.start, p.end, p.tz, *scope),
        # Opt-outs belong to contacts, not to a campaign or sender: never filtered by them.
        opt_outs=q.opt_outs_per_day(session, p.start, p.end, p.tz),
        ever_sent=session.scalar(select(MessageStat.id).limit(1)) is not None,
    )


def _rate(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def chart_data(o: Overview) -> dict[str, Any]:
    """Series for the charts, and the same numbers a JSON export or the API returns."""
    by_kind = {k: [getattr(d.outcomes, k) for d in o.days] for k in KIND_LABELS}
    by_hour = {k: [getattr(h.outcomes, k) for h in o.hours] for k in KIND_LABELS}
    return {
        "period": {
            "from": o.filters.period.first_day.isoformat(),
            "to": o.filters.period.last_day.isoformat(),
            "timezone": o.filters.period.tz.key,
            "campaign": o.filters.campaign_id,
            "sender": o.filters.sender_id,
        },
        # JSON objects may come back with their keys sorted: the order travels as a list.
        "kinds": list(KIND_LABELS),
        "labels": KIND_LABELS,
        "totals": o.totals.as_dict(),
        "days": {"labels": [d.day.isoformat() for d in o.days], **by_kind},
        "hours": {"labels": [f"{h.hour:02d}:00" for h in o.hours], **by_hour},
        "funnel": {
            "labels": [KIND_LABELS[s] for s in FUNNEL_STEPS],
            "values": [getattr(o.funnel, s) for s in FUNNEL_STEPS],
            "rates": [_rate(o.funnel.rate(s)) for s in FUNNEL_STEPS],
        },
        "campaigns": {
            "labels": [c.name for c in o.campaigns],
            "ids": [c.campaign_id for c in o.campaigns],
            **{s: [getattr(c.funnel, s) for c in o.campaigns] for s in FUNNEL_STEPS},
        },
        "failures": {
            "labels": [f.label for f in o.failures],
            "codes": [f.code for f in o.failures],
            "values": [f.count for f in o.failures],
        },
        "billed": {
            "labels": [b.label for b in o.billed],
            "categories": [b.category for b in o.billed],
            "values": [b.count for b in o.billed],
        },
        "senders": {
            "labels": [s.name for s in o.senders],
            "ids": [s.sender_id for s in o.senders],
            "sent": [s.sent for s in o.senders],
            "failed": [s.failed for s in o.senders],
            "failure_rate": [_rate(s.failure_rate) for s in o.senders],
        },
        "opt_outs": {
            "labels": [d.day.isoformat() for d in o.opt_outs],
            "values": [d.count for d in o.opt_outs],
        },
    }


def filter_choices(session: Session, filters: Filters | None) -> tuple[list, list]:
    """(campaigns, senders) for the filter's lists: the newest 200 campaigns, every sender."""
    campaigns = list(
        session.execute(select(Campaign.id, Campaign.name).order_by(Campaign.id.desc()).limit(200))
    )
    chosen = filters.campaign_id if filters else None
    if chosen is not None and all(c.id != chosen for c in campaigns):
        campaigns += list(
            session.execute(select(Campaign.id, Campaign.name).where(Campaign.id == chosen))
        )
    senders = list(session.execute(select(Sender.id, Sender.name).order_by(Sender.name)))
    return campaigns, senders
