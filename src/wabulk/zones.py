"""Timezones by name, never failing: a missing or unknown name is UTC."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1024)
def zone(name: str | None) -> ZoneInfo:
    """The named zone, or UTC for a missing or unknown name (never fails a send or a page)."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
