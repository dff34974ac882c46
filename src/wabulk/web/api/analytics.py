"""Analytics over the API: the Analytics page's figures for a period, from maintained
aggregates (message_stats and the campaigns' counters), never by counting messages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field, field_validator

from ...analytics import overview as analytics
from ...words import N_
from ...zones import zone
from .registry import Call, Id, Output, Query, operation


class AnalyticsQuery(Query):
    first: date | None = Field(
        None,
        alias="from",
        description="First day (YYYY-MM-DD), in the token user's timezone; "
        "default: 29 days before `to`.",
    )
    last: date | None = Field(None, alias="to", description="Last day, included; default: today.")
    campaign_id: Id | None = Field(None, description="Only this campaign's messages.")
    sender_id: Id | None = Field(None, description="Only this sender's messages.")

    @field_validator("first", "last")
    @classmethod
    def _plausible(cls, value: date | None) -> date | None:
        # Far-off dates overflow once turned into instants; nobody sent anything then.
        if value is not None and not 2000 <= value.year <= 2999:
            raise ValueError(N_("must be a date between the years 2000 and 2999"))
        return value


class Outcomes(Output):
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int


class DayOut(Outcomes):
    day: date


class HourOut(Outcomes):
    hour: int = Field(description="0 to 23, local time, summed over the period's days.")


class FunnelOut(Output):
    sent: int = Field(description="Sent, delivered or read.")
    delivered: int = Field(description="Delivered or read.")
    read: int
    replied: int


class CampaignFunnelOut(Output):
    campaign_id: int
    name: str
    status: str
    launched_at: datetime | None
    total: int
    failed: int
    funnel: FunnelOut


class FailureOut(Output):
    code: str = Field(description="The error code; '' when none was recorded.")
    label: str = Field(description="Short; Meta's 131049 is 'Limited by Meta'.")
    count: int
    sentence: str | None = Field(
        None, description="What such a failure means, as stored with the messages (Meta's codes)."
    )


class BilledOut(Output):
    category: str = Field(description="Meta's pricing category: marketing, utility, …")
    label: str
    count: int = Field(description="Messages Meta billed in that category in the period.")


class SenderVolumeOut(Output):
    sender_id: int = Field(description="0: messages that never reached a sender.")
    name: str
    sent: int
    failed: int


class OptOutDay(Output):
    day: date
    count: int


class AnalyticsOut(Output):
    first_day: date = Field(serialization_alias="from")
    last_day: date = Field(serialization_alias="to")
    timezone: str
    campaign_id: int | None
    sender_id: int | None
    totals: Outcomes = Field(description="Messages reaching each outcome in the period.")
    days: list[DayOut]
    hours: list[HourOut]
    funnel: FunnelOut = Field(
        description="Over the campaigns active in the period, all their messages."
    )
    campaigns: list[CampaignFunnelOut] = Field(description="The newest 20 of those campaigns.")
    failures: list[FailureOut]
    billed: list[BilledOut] = Field(description="What Meta billed, per pricing category.")
    senders: list[SenderVolumeOut]
    opt_outs: list[OptOutDay]


def _out(o: analytics.Overview) -> dict[str, Any]:
    p = o.filters.period
    return {
        "first_day": p.first_day,
        "last_day": p.last_day,
        "timezone": p.tz.key,
        "campaign_id": o.filters.campaign_id,
        "sender_id": o.filters.sender_id,
        "totals": o.totals.as_dict(),
        "days": [{"day": d.day, **d.outcomes.as_dict()} for d in o.days],
        "hours": [{"hour": h.hour, **h.outcomes.as_dict()} for h in o.hours],
        "funnel": o.funnel.as_dict(),
        "campaigns": [{**vars(c), "funnel": c.funnel.as_dict()} for c in o.campaigns],
        "failures": o.failures,
        "billed": o.billed,
        "senders": o.senders,
        "opt_outs": o.opt_outs,
    }


@operation(
    "GET",
    "/analytics",
    summary="Outcomes, funnels and failure reasons for a period",
    tag="Analytics",
    query=AnalyticsQuery,
    response=AnalyticsOut,
)
def get_analytics(call: Call, query: AnalyticsQuery) -> dict[str, Any]:
    """What the Analytics page shows: totals, each day, each hour of the day, the
    sent → delivered → read → replied funnel, failure reasons, what Meta billed per
    category, senders and opt-outs.

    At most 366 days at a time.
    """
    args = {
        "from": query.first.isoformat() if query.first else "",
        "to": query.last.isoformat() if query.last else "",
        "campaign": str(query.campaign_id or ""),
        "sender": str(query.sender_id or ""),
    }
    filters = analytics.parse_filters(call.session, args, zone(call.user.timezone))
    return _out(analytics.overview(call.session, filters))
