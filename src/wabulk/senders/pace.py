"""Pacing (DESIGN §4): how fast, how much and when one sender may send.

- A `Pace` is the sender's own settings with the campaign's overrides on top. It is a rule
  of senders and campaigns; the dispatcher applies it (DESIGN §8).
- Active hours are in the *recipient's* local time (timezone from their number); the
  daily cap is counted in the *sender's* timezone, the day the account lives in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

from ..errors import ValidationError
from ..words import N_, said
from ..zones import zone


@dataclass(frozen=True)
class Pace:
    min_delay_seconds: float = 0.0
    max_delay_seconds: float = 0.0
    daily_cap: int | None = None
    active_from: dtime | None = None
    active_until: dtime | None = None
    break_every: int | None = None
    break_seconds: int | None = None
    timezone: str = "UTC"  # the sender's: the daily cap resets at its midnight
    # Cloud API: a messages-per-second ceiling; Meta's budget of unique customers reached
    # outside a 24-hour window per rolling day (its messaging-limit tier; None: unlimited);
    # the pair rule (one message to one customer per this many seconds); and free-form
    # text reaching only customers whose 24-hour window is open.
    max_per_second: float | None = None
    tier_limit: int | None = None
    pair_seconds: float = 0.0
    window_only: bool = False

    OVERRIDABLE = (
        "min_delay_seconds",
        "max_delay_seconds",
        "daily_cap",
        "active_from",
        "active_until",
        "break_every",
        "break_seconds",
    )

    @classmethod
    def for_sender(
        cls, sender: Any, overrides: dict[str, Any] | None = None, *, template: bool = False
    ) -> Pace:
        """The pace of `sender` for one campaign; `template`: it sends an approved template
        (Cloud API), so customers outside a 24-hour window may be reached."""
        cloud = getattr(sender, "channel", None) == "cloud_api"
        pace = cls(
            min_delay_seconds=float(sender.min_delay_seconds or 0),
            max_delay_seconds=float(sender.max_delay_seconds or 0),
            daily_cap=sender.daily_cap,
            active_from=sender.active_from,
            active_until=sender.active_until,
            break_every=sender.break_every,
            break_seconds=sender.break_seconds,
            timezone=sender.timezone or "UTC",
            max_per_second=(
                float(sender.max_per_second or CLOUD_RATE) if cloud else sender.max_per_second
            ),
            tier_limit=tier_limit(getattr(sender, "health", None) or {}) if cloud else None,
            pair_seconds=PAIR_SECONDS if cloud else 0.0,
            window_only=cloud and not template,
        )
        return pace.with_overrides(overrides or {})

    def with_overrides(self, overrides: dict[str, Any]) -> Pace:
        clean = validate_overrides(overrides)
        pace = replace(self, **clean) if clean else self
        if pace.min_delay_seconds > pace.max_delay_seconds:
            # An override of one end only must not leave an empty range.
            pace = replace(pace, max_delay_seconds=pace.min_delay_seconds)
        return pace

    def delay(self, rng: random.Random) -> float:
        if self.max_delay_seconds <= 0:
            return 0.0
        return rng.uniform(self.min_delay_seconds, self.max_delay_seconds)

    @property
    def paced(self) -> bool:
        return self.max_delay_seconds > 0

    @property
    def has_active_hours(self) -> bool:
        start, end = self.active_from, self.active_until
        return start is not None and end is not None and start != end

    def day_start(self, now: datetime) -> datetime:
        """Midnight that began the sender's current day, in UTC."""
        local = now.astimezone(zone(self.timezone))
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.astimezone(UTC)

    def next_day_start(self, now: datetime) -> datetime:
        local = now.astimezone(zone(self.timezone))
        tomorrow = (local + timedelta(days=1)).date()
        start = datetime.combine(tomorrow, dtime(0), tzinfo=zone(self.timezone))
        return start.astimezone(UTC)

    def window_opens(self, now: datetime, recipient_tz: str | None) -> datetime | None:
        """None when `now` is inside the recipient's active hours; else when they open.

        - A window may wrap midnight (20:00 to 02:00). Equal bounds mean "all day".
        """
        start, end = self.active_from, self.active_until
        if start is None or end is None or start == end:
            return None
        tz = zone(recipient_tz)
        local = now.astimezone(tz)
        t = local.time().replace(tzinfo=None)
        inside = start <= t < end if start < end else (t >= start or t < end)
        if inside:
            return None
        opens = datetime.combine(local.date(), start, tzinfo=tz)
        if opens <= local:
            opens = datetime.combine(local.date() + timedelta(days=1), start, tzinfo=tz)
        return opens.astimezone(UTC)


# Meta's defaults (cloud-api-spec §5): 80 messages a second per number, and one message to
# one customer every 6 seconds.
CLOUD_RATE = 80.0
PAIR_SECONDS = 6.0
# Meta's messaging-limit tiers: unique customers reached outside a 24-hour window per
# rolling day, per business portfolio. Unknown or unread: the smallest, the safe floor.
TIERS = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1_000,
    "TIER_2K": 2_000,
    "TIER_10K": 10_000,
    "TIER_100K": 100_000,
    "TIER_UNLIMITED": None,
}
SAFE_TIER = 250


def tier_limit(health: dict[str, Any]) -> int | None:
    """Customers a day the account's messaging-limit tier allows; None: unlimited."""
    tier = str(health.get("messaging_tier") or "").upper()
    return TIERS.get(tier, SAFE_TIER) if tier in TIERS else SAFE_TIER


def _as_time(key: str, value: Any) -> dtime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dtime):
        return value
    try:
        return dtime.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(
            said("%(what)s must be a time like 09:00.", what=_LABELS[key]), field=key
        ) from None


def _as_number(key: str, value: Any, whole: bool) -> float | int | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(
            said("%(what)s must be a number.", what=_LABELS[key]), field=key
        ) from None
    if number < 0:
        raise ValidationError(said("%(what)s cannot be negative.", what=_LABELS[key]), field=key)
    if whole:
        if number != int(number) or number < 1:
            raise ValidationError(
                said("%(what)s must be a whole number of 1 or more.", what=_LABELS[key]),
                field=key,
            )
        return int(number)
    return number


_LABELS = {
    "min_delay_seconds": N_("The shortest delay"),
    "max_delay_seconds": N_("The longest delay"),
    "daily_cap": N_("The daily cap"),
    "active_from": N_("Active hours (from)"),
    "active_until": N_("Active hours (until)"),
    "break_every": N_("Break every"),
    "break_seconds": N_("Break length"),
}


def validate_overrides(raw: dict[str, Any]) -> dict[str, Any]:
    """Campaign pacing overrides, cleaned; blank values mean "the sender's own"."""
    unknown = set(raw) - set(Pace.OVERRIDABLE)
    if unknown:
        raise ValidationError(
            said("Unknown pacing setting(s): %(names)s.", names=", ".join(sorted(unknown)))
        )
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("active_from", "active_until"):
            parsed: Any = _as_time(key, value)
        else:
            parsed = _as_number(key, value, whole=key in ("daily_cap", "break_every"))
        if parsed is not None:
            clean[key] = parsed
    lo = clean.get("min_delay_seconds")
    hi = clean.get("max_delay_seconds")
    if lo is not None and hi is not None and lo > hi:
        raise ValidationError(
            N_("The shortest delay cannot be longer than the longest."),
            field="min_delay_seconds",
        )
    if ("active_from" in clean) != ("active_until" in clean):
        raise ValidationError(
            N_("Give both ends of the active hours, or neither."), field="active_from"
        )
    return clean


def overrides_for_storage(clean: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe form of cleaned overrides (times as HH:MM)."""
    return {k: (v.strftime("%H:%M") if isinstance(v, dtime) else v) for k, v in clean.items()}
