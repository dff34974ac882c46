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
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ..models import Channel, Sender, SenderState
from ..senders import warmup
from ..senders.pace import Pace
from ..senders.service import WEB_PACING, sent_today
from ..zones import zone

SAFE_MIN_DELAY = float(WEB_PACING["min_delay_seconds"])
SAFE_MAX_DELAY = float(WEB_PACING["max_delay_seconds"])
SAFE_DAILY_CAP = int(WEB_PACING["daily_cap"])
# "A pause of several minutes every 20-50 messages" (the WhatsApp Web notes).
SAFE_BREAK_EVERY = 50
SAFE_BREAK_SECONDS = 120
# An estimate looks this far ahead at most (a finish-by time a year away promises enough).
HORIZON_DAYS = 400


def pace_faults(pace: Pace) -> list[str]:
    """What makes a WhatsApp Web pace faster than the safe defaults, in plain words."""
    faults = []
    if pace.min_delay_seconds < SAFE_MIN_DELAY:
        faults.append(
            f"it waits as little as {pace.min_delay_seconds:g} s between messages "
            f"(safe: {SAFE_MIN_DELAY:g} to {SAFE_MAX_DELAY:g} s, at random)"
        )
    if pace.daily_cap is None:
        faults.append(f"it has no daily cap (safe: {SAFE_DAILY_CAP} a day at most)")
    elif pace.daily_cap > SAFE_DAILY_CAP:
        faults.append(
            f"it may send {pace.daily_cap:,} a day (safe: {SAFE_DAILY_CAP} a day at most)"
        )
    if not pace.break_every or not pace.break_seconds:
        faults.append("it takes no breaks (safe: a pause of several minutes every 20 to 50)")
    elif pace.break_every > SAFE_BREAK_EVERY or pace.break_seconds < SAFE_BREAK_SECONDS:
        faults.append(
            f"it pauses {pace.break_seconds:g} s every {pace.break_every} messages "
            "(safe: a pause of several minutes every 20 to 50)"
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


def capacity(
    session: Session,
    sender: Sender,
    overrides: dict[str, Any],
    start: datetime,
    end: datetime,
    now: datetime,
) -> int | None:
    """Messages `sender` can send from `start` to `end`; None: nothing limits it."""
    pace = Pace.for_sender(sender, overrides)
    tz = zone(pace.timezone)
    per = seconds_per_message(pace)
    ramps = warmup.ramps(sender)
    if per == 0 and pace.daily_cap is None and pace.tier_limit is None and not ramps:
        return None
    first = warmup.first_day(session, sender) if ramps else None
    today = now.astimezone(tz).date()
    done_today = sent_today(session, sender, now)
    total = 0
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    for _ in range(HORIZON_DAYS):
        if day > last:
            break
        lo = max(start, _midnight(day, tz))
        hi = min(end, _midnight(day + timedelta(days=1), tz))
        seconds = _open_seconds(pace, day, lo, hi, tz)
        n: float = 0.0 if seconds <= 0 else (math.inf if per == 0 else seconds // per)
        cap = pace.daily_cap
        if pace.tier_limit is not None:
            cap = pace.tier_limit if cap is None else min(cap, pace.tier_limit)
        if ramps:
            if first is None and n > 0:
                first = day  # a number that never sent starts its ramp the day it first sends
            warm = warmup.step(warmup.day_number(first, day))
            if warm is not None:
                cap = warm.cap if cap is None else min(cap, warm.cap)
        if cap is not None:
            n = min(n, max(0, cap - (done_today if day == today else 0)))
        if math.isinf(n):
            return None
        total += int(n)
        day += timedelta(days=1)
    return total


def when_text(at: datetime, now: datetime, tz: ZoneInfo) -> str:
    """A finish-by time as people say it: "Friday 18:00" this week, else with the date."""
    local = at.astimezone(tz)
    if timedelta(0) <= at - now < timedelta(days=6):
        return local.strftime("%A %H:%M")
    return local.strftime("%a %d %b %Y %H:%M")


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
                f"{sender.name} would send faster than is safe for a WhatsApp Web number: "
                f"{'; '.join(faults)}. Numbers that send this fast get banned more often."
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
        paces = [Pace.for_sender(s, overrides) for s in planned]
        named = ["pace"]
        if any(p.has_active_hours for p in paces):
            named.append("active hours")
        if any(p.daily_cap or p.tier_limit for p in paces):
            named.append("daily caps")
        if any(warmup.ramps(s) and warmup.status(session, s, start) for s in planned):
            named.append("warm-up")
        limits = ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]
        out.append(
            f"About {can:,} of {recipients:,} messages can go out by "
            f"{when_text(ends_at, now, tz)} at the senders' {limits}. The rest would wait: "
            "the campaign pauses at that time, and you can set a later finish-by time and "
            "resume it."
        )
    return out
