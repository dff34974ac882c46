"""Calendar rules of recurring campaigns: when the next run comes, and the rule in words.

Pure functions of a `Rule`, no database:
- daily; weekly on chosen weekdays (Monday = 0); monthly on day N, where a month without
  that day runs on its last day (the 31st is 30 April, 28 or 29 February);
- at HH:MM wall-clock time in a zone, kept across DST changes: a time that does not exist
  that day (clocks jump forward) runs as much later as the jump, a time that happens twice
  (clocks go back) runs the first time (`fold=0`, PEP 495);
- in customers' own local time (no zone), a day's run is placed at HH:MM in UTC+14, the
  first place that day begins; each recipient's message then waits for HH:MM in their own
  zone (`due_in_zone`), so the run is ready before anyone's time comes.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..zones import zone

FREQUENCIES = ("daily", "weekly", "monthly")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Where each calendar day begins first (the POSIX sign is reversed: this is UTC+14).
FIRST_ZONE = ZoneInfo("Etc/GMT-14")
# A monthly rule finds its day within two months; this bounds the search regardless.
MAX_DAYS_SEARCHED = 800


@dataclass(frozen=True)
class Rule:
    frequency: str  # daily | weekly | monthly
    time_of_day: str = "10:00"  # HH:MM
    weekdays: tuple[int, ...] = ()  # weekly: Monday = 0 … Sunday = 6
    day_of_month: int | None = None  # monthly: 1 … 31
    timezone: str | None = None  # None: each recipient's local time
    starts_at: datetime | None = None  # no run before this instant
    ends_at: datetime | None = None  # no run at or after this instant


def clock(rule: Rule) -> time:
    hours, minutes = rule.time_of_day.split(":")
    return time(int(hours), int(minutes))


def day_zone(rule: Rule) -> ZoneInfo:
    """The zone whose calendar days the rule counts."""
    return zone(rule.timezone) if rule.timezone else FIRST_ZONE


def wall_clock(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of `at` on `day` in `tz`; DST gaps move forward, overlaps take the first."""
    return datetime.combine(day, at, tzinfo=tz).replace(fold=0).astimezone(UTC)


def runs_on(rule: Rule, day: date) -> bool:
    if rule.frequency == "daily":
        return True
    if rule.frequency == "weekly":
        return day.weekday() in rule.weekdays
    wanted = rule.day_of_month or 1
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day == min(wanted, last)


def next_occurrence(rule: Rule, after: datetime) -> datetime | None:
    """The first run strictly after `after` (and not before `starts_at`); None past the end."""
    tz, at = day_zone(rule), clock(rule)
    start = max(after, rule.starts_at) if rule.starts_at else after
    # A day earlier: a DST gap can move the previous day's time past `start`.
    day = start.astimezone(tz).date() - timedelta(days=1)
    for _ in range(MAX_DAYS_SEARCHED):
        if runs_on(rule, day):
            when = wall_clock(day, at, tz)
            if when > after and (rule.starts_at is None or when >= rule.starts_at):
                if rule.ends_at is not None and when >= rule.ends_at:
                    return None
                return when
        day += timedelta(days=1)
    return None


def run_day(rule: Rule, occurrence: datetime) -> date:
    """The calendar day an occurrence belongs to (its date in the rule's day zone)."""
    return occurrence.astimezone(day_zone(rule)).date()


def due_in_zone(rule: Rule, occurrence: datetime, zone_name: str | None) -> datetime:
    """When a recipient in `zone_name` gets the run of `occurrence`: HH:MM there that day."""
    return wall_clock(run_day(rule, occurrence), clock(rule), zone(zone_name))


def start_of(day: date, rule: Rule) -> datetime:
    """Midnight starting `day` in the rule's day zone (a first-run date as an instant)."""
    return wall_clock(day, time(0), day_zone(rule))


def end_of(day: date, rule: Rule) -> datetime:
    """The instant after `day` ends in the rule's day zone (an end date as `ends_at`)."""
    return start_of(day + timedelta(days=1), rule)


def last_day(rule: Rule) -> date | None:
    """The end date as the person chose it (the day before `ends_at` begins)."""
    if rule.ends_at is None:
        return None
    return (rule.ends_at - timedelta(microseconds=1)).astimezone(day_zone(rule)).date()


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def day_words(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def describe(rule: Rule) -> str:
    """The rule as a shop owner says it: "Every month on the 1st at 10:00, each customer's
    local time, until 31 March 2027"."""
    if rule.frequency == "daily":
        when = "Every day"
    elif rule.frequency == "weekly":
        days = sorted(set(rule.weekdays))
        if days == [0, 1, 2, 3, 4]:
            when = "Every weekday (Monday to Friday)"
        elif len(days) == 7:
            when = "Every day"
        else:
            when = "Every " + _joined([WEEKDAY_NAMES[d] for d in days])
    else:
        n = rule.day_of_month or 1
        when = f"Every month on the {ordinal(n)}"
        if n > 28:
            when += " (or the month's last day, when it is shorter)"
    where = rule.timezone + " time" if rule.timezone else "each customer's local time"
    text = f"{when} at {rule.time_of_day}, {where}"
    end = last_day(rule)
    return text + (f", until {day_words(end)}" if end else "")
