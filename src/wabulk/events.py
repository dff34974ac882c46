"""Recording Events: the audit trail and campaign log, mirrored as one log line each."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from .models import Event, EventLevel, User

log = logging.getLogger("wabulk.events")

_LOG_LEVEL = {
    EventLevel.INFO: logging.INFO,
    EventLevel.WARNING: logging.WARNING,
    EventLevel.ERROR: logging.ERROR,
}


def actor_name(actor: User | None) -> str:
    """How an Event names who acted: their email, or the command line (no signed-in user)."""
    return actor.email if actor else "The command line"


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


def recent_events(
    limit: int = 50, before_id: int | None = None
) -> Select[tuple[Event, str | None]]:
    """Events newest first with the acting user's email.

    - `before_id` pages backwards by id instead of OFFSET, so deep pages cost the same.
    """
    query = (
        select(Event, User.email)
        .outerjoin(User, User.id == Event.user_id)
        .order_by(Event.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(Event.id < before_id)
    return query


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
