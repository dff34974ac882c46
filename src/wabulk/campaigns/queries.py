"""Read queries for campaign and template pages; callers execute or paginate them."""

from __future__ import annotations

from sqlalchemy import Select, select

from ..models import Campaign, Template


def campaigns_newest_first() -> Select[tuple[Campaign]]:
    return select(Campaign).order_by(Campaign.id.desc())


def templates_by_name() -> Select[tuple[Template]]:
    return select(Template).order_by(Template.name)
