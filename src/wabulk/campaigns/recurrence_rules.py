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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..words import N_, said
from ..zones import zone

FREQUENCIES = ("daily", "weekly", "monthly")
WEEKDAY_NAMES = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)
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


Words = Callable[..., str]  # said (stored English) or a request's gettext

# The rule in words, one sentence each (with and without an end date), so a stored sentence
# reads back in the reader's language (`what` and `detail` are nested sentences; `num` the day).
_EVERY_DAY = (
    N_("Every day at %(time)s, %(what)s"),
    N_("Every day at %(time)s, %(what)s, until %(day)s"),
)
_WEEKDAYS = (
    N_("Every weekday (Monday to Friday) at %(time)s, %(what)s"),
    N_("Every weekday (Monday to Friday) at %(time)s, %(what)s, until %(day)s"),
)
_DAYS = (
    N_("Every %(detail)s at %(time)s, %(what)s"),
    N_("Every %(detail)s at %(time)s, %(what)s, until %(day)s"),
)
_MONTHLY = {
    "st": (
        N_("Every month on the %(num)dst at %(time)s, %(what)s"),
        N_("Every month on the %(num)dst at %(time)s, %(what)s, until %(day)s"),
    ),
    "nd": (
        N_("Every month on the %(num)dnd at %(time)s, %(what)s"),
        N_("Every month on the %(num)dnd at %(time)s, %(what)s, until %(day)s"),
    ),
    "rd": (
        N_("Every month on the %(num)drd at %(time)s, %(what)s"),
        N_("Every month on the %(num)drd at %(time)s, %(what)s, until %(day)s"),
    ),
    "th": (
        N_("Every month on the %(num)dth at %(time)s, %(what)s"),
        N_("Every month on the %(num)dth at %(time)s, %(what)s, until %(day)s"),
    ),
}
# Days 29 to 31 (29th, 30th, 31st), which some months lack.
_MONTHLY_LONG = {
    "st": (
        N_(
            "Every month on the %(num)dst (or the month's last day, when it is shorter) at "
            "%(time)s, %(what)s"
        ),
        N_(
            "Every month on the %(num)dst (or the month's last day, when it is shorter) at "
            "%(time)s, %(what)s, until %(day)s"
        ),
    ),
    "th": (
        N_(
            "Every month on the %(num)dth (or the month's last day, when it is shorter) at "
            "%(time)s, %(what)s"
        ),
        N_(
            "Every month on the %(num)dth (or the month's last day, when it is shorter) at "
            "%(time)s, %(what)s, until %(day)s"
        ),
    ),
}


def _joined(names: list[str], tr: Words) -> str:
    if len(names) == 1:
        return names[0]
    return tr(N_("%(more)s and %(next)s"), more=", ".join(names[:-1]), next=names[-1])


def describe(rule: Rule, tr: Words = said, day_text: Callable[[date], str] = day_words) -> str:
    """The rule as a shop owner says it: "Every month on the 1st at 10:00, each customer's
    local time, until 31 March 2027". In English by default; a page passes its reader's
    gettext and date words."""
    end = last_day(rule)
    values: dict[str, object] = {
        "time": rule.time_of_day,
        "what": tr(N_("%(zone)s time"), zone=rule.timezone)
        if rule.timezone
        else tr(N_("each customer's local time")),
    }
    if end:
        values["day"] = day_text(end)
    which = 1 if end else 0
    days = sorted(set(rule.weekdays))
    if rule.frequency == "daily" or (rule.frequency == "weekly" and len(days) == 7):
        return tr(_EVERY_DAY[which], **values)
    if rule.frequency == "weekly":
        if days == [0, 1, 2, 3, 4]:
            return tr(_WEEKDAYS[which], **values)
        names = _joined([tr(WEEKDAY_NAMES[d]) for d in days], tr)
        return tr(_DAYS[which], detail=names, **values)
    n = rule.day_of_month or 1
    suffix = ordinal(n)[len(str(n)) :]
    table = _MONTHLY_LONG if n > 28 else _MONTHLY
    return tr(table[suffix][which], num=n, **values)
