"""Recording Events: the audit trail and campaign log, mirrored as one log line each."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from .errors import ValidationError
from .models import Campaign, Event, EventLevel, User
from .words import N_, said
from .zones import zone

log = logging.getLogger("wabulk.events")

_LOG_LEVEL = {
    EventLevel.INFO: logging.INFO,
    EventLevel.WARNING: logging.WARNING,
    EventLevel.ERROR: logging.ERROR,
}


def actor_name(actor: User | None) -> str:
    """How an Event names who acted: their email, or the command line (no signed-in user)."""
    return actor.email if actor else N_("The command line")


def record(
    session: Session,
    kind: str,
    text: str,
    *,
    user: User | None = None,
    level: EventLevel = EventLevel.INFO,
    campaign_id: int | None = None,
    message_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Add an Event to the session (committed with the caller's change) and log it.

    - `text` is shown to people as is: never put a secret in it.
    """
    event = Event(
        kind=kind,
        text=text,
        level=level,
        user_id=user.id if user else None,
        campaign_id=campaign_id,
        message_id=message_id,
        data=data or {},
    )
    session.add(event)
    log.log(
        _LOG_LEVEL[level],
        "%s: %s",
        kind,
        text,
        extra={"campaign_id": campaign_id, "message_id": message_id},
    )
    return event


def campaign_events(
    campaign_id: int, after_id: int | None = None, limit: int = 20
) -> Select[tuple[Event]]:
    """A campaign's log, newest first; `after_id` gives only what is newer (live refresh).

    - Served by ix_events_campaign_id_id, so a poll every second reads a few index entries.
    """
    query = (
        select(Event).where(Event.campaign_id == campaign_id).order_by(Event.id.desc()).limit(limit)
    )
    if after_id is not None:
        query = query.where(Event.id > after_id)
    return query


# --- the Activity page: filters and keyset pages -------------------------------------------

CHOICES_LIMIT = 200


@dataclass(frozen=True)
class EventFilter:
    """What the Activity page shows; every part optional and combinable."""

    campaign_id: int | None = None
    user_id: int | None = None
    level: EventLevel | None = None
    since: datetime | None = None  # aware, inclusive
    until: datetime | None = None  # aware, exclusive

    @classmethod
    def parse(cls, args: Mapping[str, str], timezone: str | None) -> EventFilter:
        """From a query string: `campaign`, `user`, `level`, and `from`/`to` dates (YYYY-MM-DD,
        whole days in `timezone`). Raises ValidationError naming the bad value."""
        tz = zone(timezone)
        since_day = _day(args.get("from", ""), "from", "start")
        until_day = _day(args.get("to", ""), "to", "end")
        if since_day and until_day and since_day > until_day:
            raise ValidationError(
                said(
                    "The start date %(first)s is after the end date %(last)s.",
                    first=f"{since_day:%Y-%m-%d}",
                    last=f"{until_day:%Y-%m-%d}",
                ),
                field="from",
            )
        level = args.get("level", "").strip()
        if level and level not in {lv.value for lv in EventLevel}:
            raise ValidationError(
                said(
                    "There is no level %(value)s; choose info, warning or error.", value=repr(level)
                ),
                field="level",
            )
        return cls(
            campaign_id=_id(args.get("campaign", ""), "campaign"),
            user_id=_id(args.get("user", ""), "user"),
            level=EventLevel(level) if level else None,
            since=datetime.combine(since_day, time(), tz) if since_day else None,
            until=datetime.combine(until_day + timedelta(days=1), time(), tz)
            if until_day
            else None,
        )


# What a filter's bad id says, per list.
_NOT_A_NUMBER = {
    "campaign": N_("%(value)s is not a campaign number."),
    "user": N_("%(value)s is not a user number."),
}


def _id(value: str, what: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    # Ids are 32-bit on every backend: a longer number cannot name anything.
    if not (value.isascii() and value.isdigit()) or len(value) > 9:  # "²" is a digit too
        raise ValidationError(said(_NOT_A_NUMBER[what], value=repr(value[:40])), field=what)
    return int(value)


_NOT_A_DAY = {
    "start": N_("%(value)s is not a date; give the start day as YYYY-MM-DD."),
    "end": N_("%(value)s is not a date; give the end day as YYYY-MM-DD."),
}


def _day(value: str, field: str, end: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(said(_NOT_A_DAY[end], value=repr(value[:40])), field=field) from None


def activity_events(
    f: EventFilter, id_above: int | None = None, id_below: int | None = None
) -> Select[tuple[Event, str | None, str | None]]:
    """Events matching `f` with the actor's email and the campaign's name, newest first.

    - Campaign: ix_events_campaign_id_id; user: ix_events_user_id_id; level:
      ix_events_level_id. Each is in id order, so a page reads only its own rows.
    - Days: ix_events_at gives the range's rows, or the planner walks ids back from the
      cursor when the range is recent. Ids are not turned into times: demo data and
      imported history carry timestamps older than their ids.
    """
    query = (
        select(Event, User.email, Campaign.name)
        .outerjoin(User, User.id == Event.user_id)
        .outerjoin(Campaign, Campaign.id == Event.campaign_id)
        .order_by(Event.id.desc())
    )
    if f.campaign_id is not None:
        query = query.where(Event.campaign_id == f.campaign_id)
    if f.user_id is not None:
        query = query.where(Event.user_id == f.user_id)
    if f.level is not None:
        query = query.where(Event.level == f.level)
    if f.since is not None:
        query = query.where(Event.at >= f.since)
    if f.until is not None:
        query = query.where(Event.at < f.until)
    if id_above is not None:
        query = query.where(Event.id > id_above)
    if id_below is not None:
        query = query.where(Event.id < id_below)
    return query


@dataclass(frozen=True)
class ActivityPage:
    rows: list[tuple[Event, str | None, str | None]]  # (event, actor email, campaign name)
    older: int | None  # pass as `before` for the next older page
    newer: int | None  # pass as `after` for the next newer page


def activity_page(
    session: Session,
    f: EventFilter,
    before: int | None = None,
    after: int | None = None,
    size: int = 50,
) -> ActivityPage:
    """One page of the Activity log, keyset by id: `before` walks older, `after` newer.

    - Each page costs the same however deep: no OFFSET, and one LIMIT 1 query tells
      whether a page exists the other way.
    """
    if after is not None:
        query = activity_events(f, id_above=after).order_by(None).order_by(Event.id)
        rows = [tuple(r) for r in session.execute(query.limit(size + 1))]
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        more_older = _exists(session, activity_events(f, id_below=after + 1))
    else:
        rows = [
            tuple(r) for r in session.execute(activity_events(f, id_below=before).limit(size + 1))
        ]
        more_older = len(rows) > size
        rows = rows[:size]
        more_newer = before is not None and _exists(
            session, activity_events(f, id_above=before - 1)
        )
    return ActivityPage(
        rows=rows,  # type: ignore[arg-type]
        older=rows[-1][0].id if rows and more_older else None,
        newer=rows[0][0].id if rows and more_newer else None,
    )


def _exists(session: Session, query: Select[Any]) -> bool:
    return (
        session.execute(query.order_by(None).with_only_columns(Event.id).limit(1)).first()
        is not None
    )


def activity_choices(
    session: Session, f: EventFilter, limit: int = CHOICES_LIMIT
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(campaigns newest first, users by email) as (id, name) for the Activity filters.

    - Limited, so a long history keeps the page small; a chosen campaign or user older
      than the limit is added, so the filter always shows what is applied.
    """
    campaigns = [
        (i, n)
        for i, n in session.execute(
            select(Campaign.id, Campaign.name).order_by(Campaign.id.desc()).limit(limit)
        )
    ]
    users = [
        (i, e)
        for i, e in session.execute(select(User.id, User.email).order_by(User.email).limit(limit))
    ]
    if f.campaign_id is not None and f.campaign_id not in {i for i, _ in campaigns}:
        name = session.scalar(select(Campaign.name).where(Campaign.id == f.campaign_id))
        campaigns.append(
            (f.campaign_id, name or said("Campaign #%(id)s (deleted)", id=f.campaign_id))
        )
    if f.user_id is not None and f.user_id not in {i for i, _ in users}:
        email = session.scalar(select(User.email).where(User.id == f.user_id))
        users.append((f.user_id, email or said("User #%(id)s (deleted)", id=f.user_id)))
    return campaigns, users
