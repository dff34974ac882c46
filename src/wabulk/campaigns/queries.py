"""Read queries for campaign and template pages; callers execute or paginate them."""

from __future__ import annotations

from sqlalchemy import Select, select

from ..models import Campaign, Media, Template


def campaigns_newest_first() -> Select[tuple[Campaign]]:
    return select(Campaign).order_by(Campaign.id.desc())


def templates_by_name() -> Select[tuple[Template]]:
    return select(Template).order_by(Template.name)


def templates_with_attachments() -> Select:
    """(Template, attachment name or None, its MIME type) by name, for the templates list."""
    return (
        select(Template, Media.original_name, Media.mime_type)
        .outerjoin(Media, Media.id == Template.media_id)
        .order_by(Template.name)
    )
