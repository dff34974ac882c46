"""What a draft's pace and finish-by time promise, said before launch.

- Pace: a WhatsApp Web sender set to send faster than the shipped safe defaults
  (senders/service.py `WEB_PACING`: 30 to 60 s at random, a 5-minute break every 30, 200
  a day) is named with what is too fast. The numbers users reported bans after are in the
  WhatsApp Web notes ("Safe pacing reported by users").
- Time: with a finish-by time, how many messages the chosen senders can send until then,
  day by day in each sender's timezone: its pace (the average delay plus its breaks), its
  daily cap less what it already sent today, its warm-up ramp, and its active hours.
- Active hours are the recipients' local time; the estimate reads them in the sender's
  timezone, where most of a shop's customers live. Other campaigns sharing a sender are
  not subtracted: the number is what this campaign could get with the senders to itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.lists import format_list
from babel.numbers import format_decimal
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..models import Campaign, Channel, Contact, Message, Sender, SenderState
from ..senders import warmup
from ..senders.pace import Pace
from ..senders.service import WEB_PACING, sent_today
from ..words import N_
from ..zones import zone

SAFE_MIN_DELAY = float(WEB_PACING["min_delay_seconds"])
SAFE_MAX_DELAY = float(WEB_PACING["max_delay_seconds"])
SAFE_DAILY_CAP = int(WEB_PACING["daily_cap"])
# "A pause of several minutes every 20-50 messages" (the WhatsApp Web notes).
SAFE_BREAK_EVERY = 50
SAFE_BREAK_SECONDS = 120
# "got 'Diwali offer' on Tuesday": by date.weekday().
ON_WEEKDAY = (
    N_("on Monday"),
    N_("on Tuesday"),
    N_("on Wednesday"),
    N_("on Thursday"),
    N_("on Friday"),
    N_("on Saturday"),
    N_("on Sunday"),
)
# An estimate looks this far ahead at most (a finish-by time a year away promises enough).
HORIZON_DAYS = 400


def _number(value: int) -> str:
    """A count in the reader's language (1,200 in English)."""
    return format_decimal(value, locale=get_locale() or "en")


def _local(at: datetime, pattern: str, tz: ZoneInfo) -> str:
    """A time in `tz` with a CLDR `pattern`, in the reader's language (English day names
    outside a request)."""
    return format_datetime(at, pattern, tzinfo=tz, locale=get_locale() or "en")


def pace_faults(pace: Pace) -> list[str]:
    """What makes a WhatsApp Web pace faster than the safe defaults, in plain words."""
    faults = []
    if pace.min_delay_seconds < SAFE_MIN_DELAY:
        faults.append(
            _(
                "it waits as little as %(least)s s between messages "
                "(safe: %(low)s to %(high)s s, at random)",
                least=f"{pace.min_delay_seconds:g}",
                low=f"{SAFE_MIN_DELAY:g}",
                high=f"{SAFE_MAX_DELAY:g}",
            )
        )
    if pace.daily_cap is None:
        faults.append(_("it has no daily cap (safe: %(cap)s a day at most)", cap=SAFE_DAILY_CAP))
    elif pace.daily_cap > SAFE_DAILY_CAP:
        faults.append(
            _(
                "it may send %(n)s a day (safe: %(cap)s a day at most)",
                n=_number(pace.daily_cap),
                cap=SAFE_DAILY_CAP,
            )
        )
    if not pace.break_every or not pace.break_seconds:
        faults.append(_("it takes no breaks (safe: a pause of several minutes every 20 to 50)"))
    elif pace.break_every > SAFE_BREAK_EVERY or pace.break_seconds < SAFE_BREAK_SECONDS:
        faults.append(
            _(
                "it pauses %(seconds)s s every %(every)s messages "
                "(safe: a pause of several minutes every 20 to 50)",
                seconds=f"{pace.break_seconds:g}",
                every=pace.break_every,
            )
        )
    return faults


def seconds_per_message(pace: Pace) -> float:
    """The average time one message takes at this pace; 0: no pace holds it back."""
    if pace.paced:
        per = (pace.min_delay_seconds + pace.max_delay_seconds) / 2
        if pace.break_every and pace.break_seconds:
            per += pace.break_seconds / pace.break_every
        return per
    if pace.max_per_second:
        return 1 / pace.max_per_second
    return 0.0


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _open_seconds(pace: Pace, day: date, lo: datetime, hi: datetime, tz: ZoneInfo) -> float:
    """Seconds of [lo, hi) inside the active hours of `day` (all of it without them)."""
    if hi <= lo:
        return 0.0
    if not pace.has_active_hours:
        return (hi - lo).total_seconds()
    start, end = pace.active_from, pace.active_until
    assert start is not None and end is not None

    def at(t: time) -> datetime:
        return datetime.combine(day, t, tzinfo=tz)

    if start < end:
        spans = [(at(start), at(end))]
    else:  # wrapping midnight: the morning's end and the evening's start
        spans = [(at(time(0)), at(end)), (at(start), _midnight(day + timedelta(days=1), tz))]
    return sum(max(0.0, (min(hi, b) - max(lo, a)).total_seconds()) for a, b in spans)


class _Walk:
    """One sender's sends from `start`, day by day in its timezone, worked out as far as
    asked: its pace in the active hours, its daily cap (less what it sent today, on today),
    and its warm-up ramp. `sent_by(at)` is how many it can have sent by `at`."""

    def __init__(
        self,
        session: Session,
        sender: Sender,
        overrides: dict[str, Any],
        start: datetime,
        now: datetime,
    ) -> None:
        self.pace = pace = Pace.for_sender(sender, overrides)
        self.tz = zone(pace.timezone)
        self.per = seconds_per_message(pace)
        self.ramps = warmup.ramps(sender)
        cap = pace.daily_cap
        if pace.tier_limit is not None:
            cap = pace.tier_limit if cap is None else min(cap, pace.tier_limit)
        self.cap = cap
        # Nothing holds it back: every message goes at once, whatever the time.
        self.unlimited = self.per == 0 and cap is None and not self.ramps
        self.first = warmup.first_day(session, sender) if self.ramps else None
        self.today = now.astimezone(self.tz).date()
        limited = cap is not None or self.ramps
        self.done_today = sent_today(session, sender, now) if limited else 0
        self.start = start
        self.day0 = start.astimezone(self.tz).date()
        self.caps: list[float] = []  # each day's cap (inf: none)
        self.before: list[float] = [0.0]  # sends before each day

    def _lo(self, i: int) -> datetime:
        return max(self.start, _midnight(self.day0 + timedelta(days=i), self.tz))

    def _n(self, day: date, lo: datetime, hi: datetime) -> float:
        seconds = _open_seconds(self.pace, day, lo, hi, self.tz)
        if seconds <= 0:
            return 0.0
        return math.inf if self.per == 0 else seconds // self.per

    def _extend(self, last: int) -> None:
        while len(self.caps) <= last:
            i = len(self.caps)
            day = self.day0 + timedelta(days=i)
            n = self._n(day, self._lo(i), _midnight(day + timedelta(days=1), self.tz))
            cap: float = math.inf if self.cap is None else self.cap
            if self.ramps:
                if self.first is None and n > 0:
                    self.first = day  # a number that never sent starts its ramp that day
                warm = warmup.step(warmup.day_number(self.first, day))
                if warm is not None:
                    cap = min(cap, warm.cap)
            if day == self.today:
                cap = max(0.0, cap - self.done_today)
            self.caps.append(cap)
            self.before.append(self.before[-1] + min(n, cap))

    def sent_by(self, at: datetime) -> float:
        """Messages sent from `start` until `at` (inf: nothing limits them)."""
        if at <= self.start:
            return 0.0
        i = (at.astimezone(self.tz).date() - self.day0).days
        if i >= HORIZON_DAYS:
            self._extend(HORIZON_DAYS - 1)
            return self.before[HORIZON_DAYS]
        self._extend(i)
        day = self.day0 + timedelta(days=i)
        return self.before[i] + min(self._n(day, self._lo(i), at), self.caps[i])


def capacity(
    session: Session,
    sender: Sender,
    overrides: dict[str, Any],
    start: datetime,
    end: datetime,
    now: datetime,
) -> int | None:
    """Messages `sender` can send from `start` to `end`; None: nothing limits it."""
    walk = _Walk(session, sender, overrides, start, now)
    if walk.unlimited:
        return None
    n = walk.sent_by(end)
    return None if math.isinf(n) else int(n)


@dataclass(frozen=True)
class Finish:
    """When the last of a campaign's messages should go out, had it its senders to itself."""

    at: datetime | None  # to the minute, rounded up; None: not within HORIZON_DAYS
    unlimited: bool  # no pace, cap or hours hold the senders back
    takes: timedelta = timedelta(0)  # from the start to the last message, to the second


def finish(
    session: Session,
    senders: Sequence[Sender],
    overrides: dict[str, Any],
    recipients: int,
    start: datetime,
    now: datetime,
) -> Finish | None:
    """The time the senders can have sent `recipients` messages from `start`, to the minute.

    - The same walk as `capacity`, summed over the senders: the first whole day after
      `start` by which enough can go, then halving that day down to a second; said to the
      minute, rounded up.
    - None when there is nothing to send or no sender to send it.
    """
    planned = [s for s in senders if s.state != SenderState.DISABLED]
    if recipients <= 0 or not planned:
        return None
    walks = [_Walk(session, s, overrides, start, now) for s in planned]
    if all(w.unlimited and not w.pace.has_active_hours for w in walks):
        return Finish(start, unlimited=True)

    def sent_by(at: datetime) -> float:
        return sum(w.sent_by(at) for w in walks)

    lo = start
    for k in range(1, HORIZON_DAYS + 1):
        hi = start + timedelta(days=k)
        if sent_by(hi) >= recipients:
            break
        lo = hi
    else:
        return Finish(None, unlimited=False)
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if sent_by(mid) >= recipients:
            hi = mid
        else:
            lo = mid
    at = hi.replace(second=0, microsecond=0)  # up to the minute: never sooner than it can be
    return Finish(at if at == hi else at + timedelta(minutes=1), unlimited=False, takes=hi - start)


def when_text(at: datetime, now: datetime, tz: ZoneInfo) -> str:
    """A finish-by time as people say it: "Friday 18:00" this week, else with the date."""
    local = at.astimezone(tz)
    if timedelta(0) <= at - now < timedelta(days=6):
        return _local(local, "EEEE HH:mm", tz)
    return _local(local, "EEE dd MMM yyyy HH:mm", tz)


def warnings(
    session: Session,
    senders: Sequence[Sender],
    overrides: dict[str, Any],
    recipients: int,
    start: datetime,
    ends_at: datetime | None,
    now: datetime,
    tz: ZoneInfo,
) -> list[str]:
    """What to say before launch: a pace faster than is safe, an audience too big for the
    time given. Empty when the plan is safe and fits."""
    out = []
    for sender in senders:
        if sender.channel != Channel.WHATSAPP_WEB:
            continue
        faults = pace_faults(Pace.for_sender(sender, overrides))
        if faults:
            out.append(
                _(
                    "%(sender)s would send faster than is safe for a WhatsApp Web number: "
                    "%(faults)s. Numbers that send this fast get banned more often.",
                    sender=sender.name,
                    faults="; ".join(faults),
                )
            )
    planned = [s for s in senders if s.state != SenderState.DISABLED]
    if ends_at is None or not recipients or not planned or ends_at <= start:
        return out
    can = 0
    for sender in planned:
        n = capacity(session, sender, overrides, start, ends_at, now)
        if n is None:
            return out
        can += n
    if can < recipients:
        limits = _limits(session, planned, overrides, start)
        out.append(
            _(
                "About %(can)s of %(total)s messages can go out by %(when)s at the senders' "
                "%(limits)s. The rest would wait: the campaign pauses at that time, and you can "
                "set a later finish-by time and resume it.",
                can=_number(can),
                total=_number(recipients),
                when=when_text(ends_at, now, tz),
                limits=limits,
            )
        )
    return out


def _limits(
    session: Session,
    planned: Sequence[Sender],
    overrides: dict[str, Any],
    start: datetime,
    pace: bool = True,
) -> str:
    """What holds the senders back, in words: "pace, active hours and daily caps" ("" for
    nothing but their pace when `pace` is False)."""
    paces = [Pace.for_sender(s, overrides) for s in planned]
    named = [_("pace")] if pace else []
    if any(p.has_active_hours for p in paces):
        named.append(_("active hours"))
    if any(p.daily_cap or p.tier_limit for p in paces):
        named.append(_("daily caps"))
    if any(warmup.ramps(s) and warmup.status(session, s, start) for s in planned):
        named.append(_("warm-up"))
    locale = get_locale()
    if len(named) > 1 and (locale is None or locale.language == "en"):
        return ", ".join(named[:-1]) + " and " + named[-1]
    return format_list(named, locale=locale) if named else ""


def _duration(elapsed: timedelta) -> str:
    """A sending time as people say it: "about 40 minutes", "about 2 days and 5 hours"."""
    minutes = max(1, math.ceil(elapsed.total_seconds() / 60))

    if minutes < 60:
        return ngettext("about a minute", "about %(num)d minutes", minutes)
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        if rest:
            return ngettext(
                "about %(num)d hour %(rest)s min",
                "about %(num)d hours %(rest)s min",
                hours,
                rest=rest,
            )
        return ngettext("about %(num)d hour", "about %(num)d hours", hours)
    days, hours = divmod(round(minutes / 60), 24)
    if hours:
        return _(
            "about %(days)s and %(hours)s",
            days=ngettext("%(num)d day", "%(num)d days", days),
            hours=ngettext("%(num)d hour", "%(num)d hours", hours),
        )
    return ngettext("about %(num)d day", "about %(num)d days", days)


def _day_text(at: datetime, now: datetime, tz: ZoneInfo) -> str:
    """ "today at 14:30", "tomorrow at 09:10", else as `when_text` says it."""
    local, today = at.astimezone(tz), now.astimezone(tz).date()
    if local.date() == today:
        return _("today at %(time)s", time=f"{local:%H:%M}")
    if local.date() == today + timedelta(days=1):
        return _("tomorrow at %(time)s", time=f"{local:%H:%M}")
    return when_text(at, now, tz)


def estimate_text(
    session: Session,
    senders: Sequence[Sender],
    overrides: dict[str, Any],
    recipients: int,
    start: datetime,
    now: datetime,
    tz: ZoneInfo,
) -> str | None:
    """How long the campaign takes at the chosen pace and when it ends, in `tz` (the
    user's); None when there is no audience or no sender yet."""
    found = finish(session, senders, overrides, recipients, start, now)
    if found is None:
        return None
    n = _number(recipients)
    if found.unlimited:
        return ngettext(
            "No pace holds these senders back: the %(n)s message goes out as fast as they can "
            "send them.",
            "No pace holds these senders back: the %(n)s messages go out as fast as they can "
            "send them.",
            recipients,
            n=n,
        )
    day = _day_text(start, now, tz) if start - now > timedelta(minutes=1) else None
    if found.at is None:
        if day:
            return ngettext(
                "Starting %(day)s, the %(n)s message would take more than a year at this pace. "
                "Choose more senders or a faster pace.",
                "Starting %(day)s, the %(n)s messages would take more than a year at this pace. "
                "Choose more senders or a faster pace.",
                recipients,
                n=n,
                day=day,
            )
        return ngettext(
            "The %(n)s message would take more than a year at this pace. Choose more senders "
            "or a faster pace.",
            "The %(n)s messages would take more than a year at this pace. Choose more senders "
            "or a faster pace.",
            recipients,
            n=n,
        )
    planned = [s for s in senders if s.state != SenderState.DISABLED]
    days = (found.at.astimezone(tz).date() - start.astimezone(tz).date()).days + 1
    spread = ""
    if days > 1:
        limits = _limits(session, planned, overrides, start, pace=False)
        spread = (
            _(", spread over %(days)s days by the senders' %(limits)s", days=days, limits=limits)
            if limits
            else _(", spread over %(days)s days", days=days)
        )
    values = {
        "n": n,
        "duration": _duration(found.takes),
        "spread": spread,
        "last": _day_text(found.at, now, tz),
        "zone": tz.key,
    }
    if day:
        return ngettext(
            "Starting %(day)s, the %(n)s message takes %(duration)s at this pace%(spread)s: "
            "the last should go out %(last)s (%(zone)s time).",
            "Starting %(day)s, the %(n)s messages take %(duration)s at this pace%(spread)s: "
            "the last should go out %(last)s (%(zone)s time).",
            recipients,
            day=day,
            **values,
        )
    return ngettext(
        "The %(n)s message takes %(duration)s at this pace%(spread)s: the last should go out "
        "%(last)s (%(zone)s time).",
        "The %(n)s messages take %(duration)s at this pace%(spread)s: the last should go out "
        "%(last)s (%(zone)s time).",
        recipients,
        **values,
    )


# --- the same people, messaged again soon ---------------------------------------------

RECENT = timedelta(days=7)
RECENT_CAMPAIGNS = 20  # the newest campaigns that sent in the last week, looked at
OVERLAPS_SHOWN = 3


@dataclass(frozen=True)
class Overlap:
    campaign_id: int
    name: str
    contacts: int  # of the audience, sent this campaign's message in the last week
    last_sent: datetime


def recent_campaigns(since: datetime, exclude: int | None = None) -> Select[tuple[int]]:
    """The newest RECENT_CAMPAIGNS campaigns launched and not finished before `since` (a
    read of the campaigns table, a few hundred rows at most)."""
    query = (
        select(Campaign.id)
        .where(
            Campaign.launched_at.is_not(None),
            or_(Campaign.finished_at.is_(None), Campaign.finished_at >= since),
        )
        .order_by(Campaign.id.desc())
        .limit(RECENT_CAMPAIGNS)
    )
    return query if exclude is None else query.where(Campaign.id != exclude)


def overlap_query(
    who: ColumnElement[bool], campaign_ids: Sequence[int], since: datetime
) -> Select[tuple[int, str, int, datetime]]:
    """(campaign id, name, contacts, last sent) for these campaigns' messages sent since
    `since` to the audience's reachable contacts, most overlap first.

    - `who`: the audience as a condition on the message's contact (audience.condition):
      its lists' membership or its segment's conditions.
    - The campaigns' messages come by ix_messages_campaign_id_status_next_attempt_at, the
      ids given as values so the planner sees how few campaigns they are (as a subquery it
      scanned every message); each is checked against the lists by the members' primary
      key (list_id, contact_id); a segment's conditions are checked on the contact row
      the same way (its memberships by their keys). The work follows those campaigns'
      messages, not the size of the lists or of the history (EXPLAIN on PostgreSQL at a
      million contacts, lists: a bitmap scan of the 350,000 recent messages and an
      index-only probe each).
    - A contact in two lists counts once (a semi-join); one left out of the audience (opted
      out, not on WhatsApp) not at all.
    """
    n = func.count()
    return (
        select(Campaign.id, Campaign.name, n, func.max(Message.sent_at))
        .join(Message, Message.campaign_id == Campaign.id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(
            Message.campaign_id.in_(campaign_ids),
            Message.sent_at >= since,
            Contact.opted_out_at.is_(None),
            Contact.not_on_whatsapp_at.is_(None),
            who,
        )
        .group_by(Campaign.id, Campaign.name)
        .order_by(n.desc(), Campaign.id.desc())
        .limit(OVERLAPS_SHOWN)
    )


def recent_overlaps(
    session: Session, who: ColumnElement[bool] | None, now: datetime, exclude: int | None = None
) -> list[Overlap]:
    """The campaigns that sent to this audience (`who`: audience.condition; None: none
    chosen) in the last 7 days, most overlap first."""
    since = now - RECENT
    campaign_ids = (
        list(session.scalars(recent_campaigns(since, exclude))) if who is not None else []
    )
    if who is None or not campaign_ids:
        return []
    rows = session.execute(overlap_query(who, campaign_ids, since))
    return [Overlap(cid, name, int(count), last) for cid, name, count, last in rows]


def overlap_texts(
    overlaps: Sequence[Overlap], recipients: int, now: datetime, tz: ZoneInfo
) -> list[str]:
    """ "312 of these 1,200 contacts got 'Diwali offer' on Tuesday." for each campaign."""
    out = []
    for o in overlaps:
        day = o.last_sent.astimezone(tz).date()
        today = now.astimezone(tz).date()
        if day == today:
            when = _("today")
        elif day == today - timedelta(days=1):
            when = _("yesterday")
        else:
            when = _(ON_WEEKDAY[o.last_sent.astimezone(tz).weekday()])
        whole = max(recipients, o.contacts)
        if whole == 1:  # not "1 of these 1 contacts"
            out.append(_("This contact got '%(name)s' %(when)s.", name=o.name, when=when))
        elif o.contacts == whole:
            out.append(
                _(
                    "All %(n)s of these contacts got '%(name)s' %(when)s.",
                    n=_number(whole),
                    name=o.name,
                    when=when,
                )
            )
        else:
            out.append(
                _(
                    "%(n)s of these %(total)s contacts got '%(name)s' %(when)s.",
                    n=_number(o.contacts),
                    total=_number(whole),
                    name=o.name,
                    when=when,
                )
            )
    return out
