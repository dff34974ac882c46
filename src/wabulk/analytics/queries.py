"""Figures for the Analytics page, the Dashboard and the API, at flat cost.

No function here counts the messages or contacts tables; each reads a maintained
aggregate or an index, and its cost does not grow with the number of messages:
- Outcome totals, days, hours of the day, failure reasons, per-sender volume:
  `message_stats` rows whose slot lies in [start, end). Served by the upsert key
  uq_message_stats_slot_campaign_id_sender_id_kind_code (slot leads); with a campaign or
  sender filter by ix_message_stats_campaign_id_slot / ix_message_stats_sender_id_slot.
  Rows read: at most the slots in range times the campaigns, senders and kinds active in them.
- Funnels: the campaigns' maintained counters (one row per campaign; sent = n_sent +
  n_delivered + n_read, delivered = n_delivered + n_read, read = n_read, replied =
  n_replied). The campaigns shown are those with an outcome in the range (from
  `message_stats`).
- Failure reasons: a provider's numeric code is named by the sentence stored with one of
  its failed messages, read with LIMIT 1 through the campaign's index (`failures.py`).
- Opt-outs per day: contacts.opted_out_at through the partial index
  ix_contacts_opted_out_at, grouped per 15-minute slot in SQL: O(opt-outs in range).
- Both are read through `settled`: the part of the range older than an hour comes from an
  in-memory cache tied to the data's generation, so a repeated view reads only the last hour.

Slots are 15 minutes of UTC, and every real timezone's offset is a whole number of
quarter hours, so a slot falls inside one local hour and one local day of any zone:
local days and hours are exact sums of slots.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Date, Integer, Select, cast, func, select
from sqlalchemy.orm import Session

from ..errors import ValidationError
from ..models import SLOT_MINUTES, Campaign, Contact, MessageStat, Sender
from ..words import N_, said
from . import failures as meaning
from . import settled
from .stats import slot_sql

# The outcomes a chart counts; `message_stats` also holds other kinds (what Meta billed),
# which are read on their own (billing.py).
KINDS = ("sent", "delivered", "read", "replied", "failed")
MAX_DAYS = 366
DEFAULT_DAYS = 30
CAMPAIGN_FUNNELS_SHOWN = 20

# What each failure code means to a person; unknown codes are shown tidied.
FAILURE_LABELS = {
    "": N_("No reason recorded"),
    "not_on_whatsapp": N_("Number not on WhatsApp"),
    "template_error": N_("The message could not be written (template error)"),
    "text_changed": N_("WhatsApp Web changed the text, so it was not sent"),
    "send_failed": N_("WhatsApp Web did not send it"),
    "chat_not_opened": N_("The chat did not open"),
    "unreachable": N_("WhatsApp Web unreachable"),
    "browser_error": N_("The browser failed"),
    "browser_failed": N_("The browser could not start"),
    "channel_error": N_("Unexpected error in the channel"),
    "permanent": N_("Refused by WhatsApp"),
    "transient": N_("Temporary errors, gave up after the retries"),
    "dry_run_failure": N_("Dry run: simulated failure"),
    "dry_run_transient": N_("Dry run: temporary failures, gave up"),
}


def failure_label(code: str) -> str:
    if code in FAILURE_LABELS:
        return FAILURE_LABELS[code]
    if code.startswith("no_"):
        return said("WhatsApp Web showed no %(thing)s", thing=code[3:].replace("_", " "))
    return code.replace("_", " ").capitalize()


# --- periods -----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole local days, first to last inclusive, as the UTC instants [start, end)."""

    first_day: date
    last_day: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        return local_midnight(self.first_day, self.tz)

    @property
    def end(self) -> datetime:
        return local_midnight(self.last_day + timedelta(days=1), self.tz)

    @property
    def days(self) -> list[date]:
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(n)]


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def last_days(tz: ZoneInfo, n: int, now: datetime | None = None) -> Period:
    """Today and the n - 1 days before it, in `tz`."""
    today = (now or datetime.now(UTC)).astimezone(tz).date()
    return Period(today - timedelta(days=n - 1), today, tz)


def parse_period(
    first: str | None, last: str | None, tz: ZoneInfo, now: datetime | None = None
) -> Period:
    """Dates typed as YYYY-MM-DD (either may be empty: the last 30 days to today)."""
    default = last_days(tz, DEFAULT_DAYS, now)

    def day(text: str | None, name: str, label: str, fallback: date) -> date:
        text = (text or "").strip()
        if not text:
            return fallback
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValidationError(said(label, value=repr(text[:20])), field=name) from None

    last_day = day(
        last,
        "to",
        N_("“To” must be a date like 2026-03-31; %(value)s is not one."),
        default.last_day,
    )
    first_day = day(
        first,
        "from",
        N_("“From” must be a date like 2026-03-31; %(value)s is not one."),
        last_day - timedelta(days=DEFAULT_DAYS - 1),
    )
    if first_day > last_day:
        raise ValidationError(
            said(
                "“From” (%(first)s) is after “To” (%(last)s); swap them.",
                first=first_day,
                last=last_day,
            ),
            field="from",
        )
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise ValidationError(
            said(
                "Choose at most %(most)s days at a time; %(first)s to %(last)s is %(days)s days.",
                most=MAX_DAYS,
                first=first_day,
                last=last_day,
                days=(last_day - first_day).days + 1,
            ),
            field="from",
        )
    return Period(first_day, last_day, tz)


# --- outcomes over time -------------------------------------------------------------


@dataclass
class Outcomes:
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    failed: int = 0

    def add(self, kind: str, n: int) -> None:
        setattr(self, kind, getattr(self, kind) + n)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def total(self) -> int:
        return self.sent + self.delivered + self.read + self.replied + self.failed


@dataclass
class DayOutcomes:
    day: date
    outcomes: Outcomes = field(default_factory=Outcomes)


@dataclass
class HourOutcomes:
    hour: int  # 0 to 23, local
    outcomes: Outcomes = field(default_factory=Outcomes)


def _in_range(
    query: Select, start: datetime, end: datetime, campaign_id: int | None, sender_id: int | None
) -> Select:
    query = query.where(MessageStat.slot >= start, MessageStat.slot < end)
    if campaign_id is not None:
        query = query.where(MessageStat.campaign_id == campaign_id)
    if sender_id is not None:
        query = query.where(MessageStat.sender_id == sender_id)
    return query


def _stat_rows(
    session: Session,
    name: str,
    query: Select,
    start: datetime,
    end: datetime,
    campaign_id: int | None,
    sender_id: int | None,
    *key: Any,
) -> list[tuple[Any, ...]]:
    """A grouped `message_stats` query over [start, end) with the filters; the settled part
    from `settled`'s cache. `name` and `key` tell the query apart from the others."""
    return settled.rows(
        session,
        name,
        start,
        end,
        lambda a, b: _in_range(query, a, b, campaign_id, sender_id),
        campaign_id,
        sender_id,
        *key,
    )


def outcome_totals(
    session: Session,
    start: datetime,
    end: datetime,
    tz: ZoneInfo | None = None,
    campaign_id: int | None = None,
    sender_id: int | None = None,
) -> Outcomes:
    """How many messages reached each outcome in [start, end) (tz is not needed here)."""
    query = select(MessageStat.kind, func.sum(MessageStat.n)).group_by(MessageStat.kind)
    totals = Outcomes()
    for kind, n in _stat_rows(session, "totals", query, start, end, campaign_id, sender_id):
        if kind in KINDS:
            totals.add(kind, int(n or 0))
    return totals


def _offset_spans(
    start: datetime, end: datetime, tz: ZoneInfo
) -> list[tuple[datetime, datetime, int]]:
    """[start, end) cut where the zone's UTC offset changes: (from, to, offset in minutes).

    - Offsets change at most a few times a year and only on 15-minute boundaries, so each day
      is probed once and only a day that changes is walked slot by slot.
    """

    def offset(at: datetime) -> int:
        delta = at.astimezone(tz).utcoffset()
        return int(delta.total_seconds() // 60) if delta else 0

    step = timedelta(minutes=SLOT_MINUTES)
    spans: list[tuple[datetime, datetime, int]] = []
    span_start, current = start, offset(start)
    day = start
    while day < end:
        next_day = min(day + timedelta(days=1), end)
        if offset(next_day - step) != current:
            at = day
            while at < next_day:
                if offset(at) != current:
                    spans.append((span_start, at, current))
                    span_start, current = at, offset(at)
                at += step
        day = next_day
    spans.append((span_start, end, current))
    return spans


def _local_parts(session: Session, offset: int) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """The local date and hour of a slot, at a fixed UTC offset, worked out by the database.

    - Grouping there means Python only sees a row per day or hour, not one per slot.
    """
    if session.get_bind().dialect.name == "postgresql":
        local = func.timezone("UTC", MessageStat.slot) + timedelta(minutes=offset)
        return cast(local, Date), cast(func.extract("hour", local), Integer)
    shift = f"{offset:+d} minutes"
    return func.date(MessageStat.slot, shift), cast(
        func.strftime("%H", MessageStat.slot, shift), Integer
    )


def per_day_and_hour(
    session: Session,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    campaign_id: int | None = None,
    sender_id: int | None = None,
) -> tuple[list[DayOutcomes], list[HourOutcomes]]:
    """`per_day` and `per_hour`: each a GROUP BY in the database per stretch of one offset."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    days = {d: DayOutcomes(d) for d in Period(first, last, tz).days}
    hours = [HourOutcomes(h) for h in range(24)]
    total = func.sum(MessageStat.n)
    for span_start, span_end, offset in _offset_spans(start, end, tz):
        local_day, local_hour = _local_parts(session, offset)
        by_day = select(local_day, MessageStat.kind, total).group_by(local_day, MessageStat.kind)
        for d, kind, n in _stat_rows(
            session, "per_day", by_day, span_start, span_end, campaign_id, sender_id, offset
        ):
            when = d if isinstance(d, date) else date.fromisoformat(d)
            if kind in KINDS and when in days:
                days[when].outcomes.add(kind, int(n or 0))
        by_hour = select(local_hour, MessageStat.kind, total).group_by(local_hour, MessageStat.kind)
        for h, kind, n in _stat_rows(
            session, "per_hour", by_hour, span_start, span_end, campaign_id, sender_id, offset
        ):
            if kind in KINDS:
                hours[int(h)].outcomes.add(kind, int(n or 0))
    return list(days.values()), hours


def per_day(
    session: Session,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    campaign_id: int | None = None,
    sender_id: int | None = None,
) -> list[DayOutcomes]:
    """Every local day touching [start, end), quiet days included (zeros)."""
    return per_day_and_hour(session, start, end, tz, campaign_id, sender_id)[0]


def per_hour(
    session: Session,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    campaign_id: int | None = None,
    sender_id: int | None = None,
) -> list[HourOutcomes]:
    """The 24 local hours of the day, each summed over every day of [start, end)."""
    return per_day_and_hour(session, start, end, tz, campaign_id, sender_id)[1]


# --- funnels ------------------------------------------------------------------------


@dataclass
class Funnel:
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def rate(self, step: str) -> float | None:
        """`step` as a share of sent (None when nothing was sent)."""
        return getattr(self, step) / self.sent if self.sent else None


@dataclass
class CampaignFunnel:
    campaign_id: int
    name: str
    status: str
    launched_at: datetime | None
    total: int
    failed: int
    funnel: Funnel


def funnels(
    session: Session,
    start: datetime,
    end: datetime,
    tz: ZoneInfo | None = None,
    campaign_id: int | None = None,
    sender_id: int | None = None,
    limit: int = CAMPAIGN_FUNNELS_SHOWN,
) -> tuple[Funnel, list[CampaignFunnel]]:
    """(overall, newest campaigns first): sent → delivered → read → replied.

    - The campaigns are those with an outcome in [start, end); each funnel covers all of
      that campaign's messages (its counters), the overall one sums them all.
    """
    active = sorted(
        {
            cid
            for (cid,) in _stat_rows(
                session,
                "active",
                select(MessageStat.campaign_id).distinct(),
                start,
                end,
                campaign_id,
                sender_id,
            )
        }
    )
    sent = Campaign.n_sent + Campaign.n_delivered + Campaign.n_read
    delivered = Campaign.n_delivered + Campaign.n_read
    overall = session.execute(
        select(
            func.coalesce(func.sum(sent), 0),
            func.coalesce(func.sum(delivered), 0),
            func.coalesce(func.sum(Campaign.n_read), 0),
            func.coalesce(func.sum(Campaign.n_replied), 0),
        ).where(Campaign.id.in_(active))
    ).one()
    rows = session.execute(
        select(Campaign, sent, delivered)
        .where(Campaign.id.in_(active))
        .order_by(Campaign.id.desc())
        .limit(limit)
    ).all()
    return Funnel(*(int(v) for v in overall)), [
        CampaignFunnel(
            campaign_id=c.id,
            name=c.name,
            status=c.status.value,
            launched_at=c.launched_at,
            total=c.total,
            failed=c.n_failed,
            funnel=Funnel(s, d, c.n_read, c.n_replied),
        )
        for c, s, d in rows
    ]


def campaign_funnel(campaign: Campaign) -> Funnel:
    """One campaign's funnel from its counters."""
    return Funnel(
        campaign.n_sent + campaign.n_delivered + campaign.n_read,
        campaign.n_delivered + campaign.n_read,
        campaign.n_read,
        campaign.n_replied,
    )


# --- failures and senders -----------------------------------------------------------


@dataclass
class FailureReason:
    code: str
    label: str
    count: int
    # What such a failure said, as stored with the messages (the provider's codes).
    sentence: str | None = None


def failure_reasons(
    session: Session,
    start: datetime,
    end: datetime,
    tz: ZoneInfo | None = None,
    campaign_id: int | None = None,
    sender_id: int | None = None,
) -> list[FailureReason]:
    """Failed messages by error code, most frequent first.

    - A provider's numeric code is named by the sentence its failed messages were stored
      with (131049 is "Limited by Meta"); wabulk's own codes by FAILURE_LABELS.
    """
    query = (
        select(MessageStat.code, func.sum(MessageStat.n))
        .where(MessageStat.kind == "failed")
        .group_by(MessageStat.code)
    )
    counts: dict[str, int] = defaultdict(int)
    for code, n in _stat_rows(session, "failures", query, start, end, campaign_id, sender_id):
        counts[code] += int(n or 0)
    ranked = sorted((item for item in counts.items() if item[1] > 0), key=lambda c: (-c[1], c[0]))
    stored = meaning.sentences(session, [code for code, _ in ranked], campaign_id)
    out = []
    for code, n in ranked:
        if meaning.is_provider_code(code):
            sentence = stored.get(code)
            label = meaning.provider_label(code, sentence)
            out.append(FailureReason(code, label, n, sentence if sentence != label else None))
        else:
            out.append(FailureReason(code, failure_label(code), n))
    return out


@dataclass
class SenderVolume:
    sender_id: int
    name: str
    sent: int
    failed: int

    @property
    def failure_rate(self) -> float | None:
        """Failed as a share of the messages that reached an end (sent or failed)."""
        done = self.sent + self.failed
        return self.failed / done if done else None


def sender_volume(
    session: Session,
    start: datetime,
    end: datetime,
    tz: ZoneInfo | None = None,
    campaign_id: int | None = None,
    sender_id: int | None = None,
) -> list[SenderVolume]:
    """Messages sent and failed per sender in [start, end), busiest first."""
    query = (
        select(MessageStat.sender_id, MessageStat.kind, func.sum(MessageStat.n))
        .where(MessageStat.kind.in_(("sent", "failed")))
        .group_by(MessageStat.sender_id, MessageStat.kind)
    )
    counts: dict[int, dict[str, int]] = defaultdict(lambda: {"sent": 0, "failed": 0})
    for sid, kind, n in _stat_rows(session, "senders", query, start, end, campaign_id, sender_id):
        counts[sid][kind] += int(n or 0)
    names = dict(
        session.execute(select(Sender.id, Sender.name).where(Sender.id.in_(list(counts)))).all()
    )
    out = [
        SenderVolume(
            sid,
            names.get(sid, N_("No sender") if sid == 0 else said("Sender #%(id)s", id=sid)),
            **c,
        )
        for sid, c in counts.items()
        if c["sent"] or c["failed"]
    ]
    return sorted(out, key=lambda v: (-(v.sent + v.failed), v.name))


# --- opt-outs -----------------------------------------------------------------------


@dataclass
class DayCount:
    day: date
    count: int


def _as_utc(value: Any) -> datetime:
    """A slot computed in SQL: SQLite hands back text, PostgreSQL a datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def opt_outs_per_day(
    session: Session, start: datetime, end: datetime, tz: ZoneInfo
) -> list[DayCount]:
    """Contacts who opted out on each local day of [start, end), quiet days included."""
    slot = slot_sql(session, Contact.opted_out_at).label("slot")

    def build(a: datetime, b: datetime) -> Select:
        return (
            select(slot, func.count())
            .where(
                Contact.opted_out_at.is_not(None),  # lets the partial index serve the range
                Contact.opted_out_at >= a,
                Contact.opted_out_at < b,
            )
            .group_by(slot)
        )

    rows = settled.rows(session, "opt_outs", start, end, build)
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    days = {d: DayCount(d, 0) for d in Period(first, last, tz).days}
    for value, n in rows:
        days[_as_utc(value).astimezone(tz).date()].count += int(n)
    return list(days.values())
