"""Read-only lookups the campaign pages show and no service offers (presentational only)."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..models import Event, Media, Template


def campaign_events(campaign_id: int, after_id: int | None = None, limit: int = 20) -> Select:
    """The campaign log, newest first; `after_id` gives only what is newer (live refresh).

    - Served by ix_events_campaign_id_id, so a poll every second reads a few index entries.
    """
    query = (
        select(Event).where(Event.campaign_id == campaign_id).order_by(Event.id.desc()).limit(limit)
    )
    if after_id is not None:
        query = query.where(Event.id > after_id)
    return query


def get_media(session: Session, media_id: int) -> Media:
    found = session.get(Media, media_id)
    if found is None:
        raise NotFound(f"There is no attachment #{media_id}.")
    return found


def find_media(session: Session, media_id: int | None) -> Media | None:
    """The attachment to show beside an upload box; None when not set or gone."""
    return session.get(Media, media_id) if media_id else None


def templates_with_attachments() -> Select:
    """(Template, attachment name or None, its MIME type) by name, for the templates list."""
    return (
        select(Template, Media.original_name, Media.mime_type)
        .outerjoin(Media, Media.id == Template.media_id)
        .order_by(Template.name)
    )
