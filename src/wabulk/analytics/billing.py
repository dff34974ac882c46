"""What Meta billed, per pricing category, from `message_stats` rows of kind `billed`.

- A `billed` row's `code` is Meta's pricing category as its status webhooks name it
  (`marketing`, `utility`, `authentication`, `service`, `marketing_lite`, …); the code that
  applies statuses keeps those rows. This module only reads them, whatever the category.
- Per campaign: ix_message_stats_campaign_id_slot. Over a period: the upsert key (slot
  leads), the settled part through `settled`'s cache like every other chart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..models import MessageStat
from ..words import N_
from . import settled

BILLED = "billed"
# Meta's categories in the words of a shop owner; an unknown one is shown tidied.
CATEGORY_LABELS = {
    "marketing": N_("Marketing"),
    "marketing_lite": N_("Marketing (Marketing Messages API)"),
    "utility": N_("Utility"),
    "authentication": N_("Authentication"),
    "authentication-international": N_("Authentication (international)"),
    "authentication_international": N_("Authentication (international)"),
    "service": N_("Service"),
    "referral_conversion": N_("Free entry point (ad or page)"),
}


def category_label(category: str) -> str:
    if category in CATEGORY_LABELS:
        return CATEGORY_LABELS[category]
    tidy = category.replace("_", " ").replace("-", " ").strip()
    return tidy.capitalize() if tidy else N_("Not named by Meta")


@dataclass(frozen=True)
class BilledCategory:
    category: str
    label: str
    count: int


def _ranked(counts: dict[str, int]) -> list[BilledCategory]:
    ranked = sorted((kv for kv in counts.items() if kv[1] > 0), key=lambda kv: (-kv[1], kv[0]))
    return [BilledCategory(code, category_label(code), n) for code, n in ranked]


def campaign_billed(session: Session, campaign_id: int) -> list[BilledCategory]:
    """Messages of this campaign Meta billed, per category, most first."""
    rows = session.execute(
        select(MessageStat.code, func.sum(MessageStat.n))
        .where(MessageStat.campaign_id == campaign_id, MessageStat.kind == BILLED)
        .group_by(MessageStat.code)
    )
    counts: dict[str, int] = defaultdict(int)
    for code, n in rows:
        counts[code or ""] += int(n or 0)
    return _ranked(counts)


def billed_in_range(
    session: Session,
    start: datetime,
    end: datetime,
    campaign_id: int | None = None,
    sender_id: int | None = None,
) -> list[BilledCategory]:
    """Messages billed in [start, end) (by the slot the billing was heard in), per category."""

    def build(a: datetime, b: datetime) -> Select:  # type: ignore[type-arg]
        query = (
            select(MessageStat.code, func.sum(MessageStat.n))
            .where(MessageStat.kind == BILLED, MessageStat.slot >= a, MessageStat.slot < b)
            .group_by(MessageStat.code)
        )
        if campaign_id is not None:
            query = query.where(MessageStat.campaign_id == campaign_id)
        if sender_id is not None:
            query = query.where(MessageStat.sender_id == sender_id)
        return query

    counts: dict[str, int] = defaultdict(int)
    for code, n in settled.rows(session, "billed", start, end, build, campaign_id, sender_id):
        counts[code or ""] += int(n or 0)
    return _ranked(counts)
