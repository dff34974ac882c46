"""One campaign's funnel for its page, the API and the report.

- Steps come from the maintained counters, which hold each message's current status: a
  step is its own counter plus those of every later step (sent = sent + delivered + read),
  as the summary and analytics count them; replied is its own counter.
- Failures by code and what Meta billed come from `message_stats` (one grouped read by
  ix_message_stats_campaign_id_slot), never from counting the messages table.
- 131049 ("Limited by Meta") is counted among the failed and also shown on its own: it
  says nothing against the number or the message.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..analytics import failures as meaning
from ..analytics.billing import BILLED, BilledCategory, category_label
from ..analytics.queries import failure_label
from ..models import Campaign, CampaignStatus, Contact, Inbound, MessageStat, utcnow
from ..words import N_

# Receipts and replies keep arriving after the last message is sent (a customer reads it the
# next morning); the page keeps following a finished campaign this long, the window in which
# a reply is still attributed to the campaign's message.
HEARING = timedelta(hours=72)
LATEST_REPLIES = 10
_MOVING = frozenset({CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED})


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    n: int
    percent: float | None  # of `base`; None when the base is 0
    base: str  # "sent" or "recipients"


@dataclass(frozen=True)
class Funnel:
    total: int
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    limited: int  # of the failed: 131049, Meta's per-customer marketing cap
    billed: list[BilledCategory] = field(default_factory=list)

    def steps(self) -> list[Step]:
        def pct(n: int, whole: int) -> float | None:
            return round(100.0 * n / whole, 1) if whole else None

        return [
            Step("sent", N_("Sent"), self.sent, pct(self.sent, self.total), "recipients"),
            Step(
                "delivered", N_("Delivered"), self.delivered, pct(self.delivered, self.sent), "sent"
            ),
            Step("read", N_("Read"), self.read, pct(self.read, self.sent), "sent"),
            Step("replied", N_("Replied"), self.replied, pct(self.replied, self.sent), "sent"),
            Step("failed", N_("Failed"), self.failed, pct(self.failed, self.total), "recipients"),
        ]

    @property
    def billed_total(self) -> int:
        return sum(b.count for b in self.billed)

    def as_dict(self) -> dict[str, Any]:
        """The figures as the API and the page's poll give them."""
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "read": self.read,
            "replied": self.replied,
            "failed": self.failed,
            "limited": self.limited,
            "billed": {b.category: b.count for b in self.billed},
        }


Codes = dict[str, dict[str, int]]  # {kind: {code: n}}


def _empty_codes() -> Codes:
    return {"failed": defaultdict(int), BILLED: defaultdict(int)}


def _stat_codes(session: Session, campaign_ids: list[int]) -> dict[int, Codes]:
    """The failed and billed rows of these campaigns, summed per campaign, kind and code."""
    found: dict[int, Codes] = {cid: _empty_codes() for cid in campaign_ids}
    if not campaign_ids:
        return found
    rows = session.execute(
        select(MessageStat.campaign_id, MessageStat.kind, MessageStat.code, func.sum(MessageStat.n))
        .where(MessageStat.campaign_id.in_(campaign_ids), MessageStat.kind.in_(("failed", BILLED)))
        .group_by(MessageStat.campaign_id, MessageStat.kind, MessageStat.code)
    )
    for campaign_id, kind, code, n in rows:
        found[campaign_id][kind][code or ""] += int(n or 0)
    return found


def _funnel_of(campaign: Campaign, codes: Codes) -> Funnel:
    billed = sorted(
        (BilledCategory(c, category_label(c), n) for c, n in codes[BILLED].items() if n > 0),
        key=lambda b: (-b.count, b.category),
    )
    return Funnel(
        total=campaign.total,
        sent=campaign.n_sent + campaign.n_delivered + campaign.n_read,
        delivered=campaign.n_delivered + campaign.n_read,
        read=campaign.n_read,
        replied=campaign.n_replied,
        failed=campaign.n_failed,
        limited=max(0, codes["failed"].get(meaning.LIMITED_BY_META, 0)),
        billed=billed,
    )


def funnel(session: Session, campaign: Campaign) -> Funnel:
    return _funnel_of(campaign, _stat_codes(session, [campaign.id])[campaign.id])


def funnels(session: Session, campaigns: list[Campaign]) -> dict[int, Funnel]:
    """The funnels of several campaigns (a page of the API's list) in one read."""
    codes = _stat_codes(session, [c.id for c in campaigns])
    return {c.id: _funnel_of(c, codes[c.id]) for c in campaigns}


@dataclass(frozen=True)
class FailureGroup:
    code: str  # "" when the channel gave none
    label: str  # short: "Limited by Meta", "Number not on WhatsApp"…
    sentence: str | None  # what such a failure said, as stored with the messages
    count: int

    @property
    def limited(self) -> bool:
        return meaning.is_limited(self.code)


def failure_groups(session: Session, campaign_id: int) -> list[FailureGroup]:
    """The campaign's failed messages grouped by code, most frequent first, with the sentence
    the failures were stored with."""
    counts = _stat_codes(session, [campaign_id])[campaign_id]["failed"]
    ranked = sorted((kv for kv in counts.items() if kv[1] > 0), key=lambda kv: (-kv[1], kv[0]))
    said = meaning.sentences(session, [code for code, _ in ranked], campaign_id)
    out = []
    for code, n in ranked:
        sentence = said.get(code)
        if meaning.is_provider_code(code):
            label = meaning.provider_label(code, sentence)
        else:
            label = failure_label(code)
        out.append(FailureGroup(code, label, sentence if sentence != label else None, n))
    return out


def campaign_replies(campaign_id: int) -> Select[tuple[Inbound, str | None, str | None]]:
    """The campaign's replies with the contact's name and phone, newest first
    (ix_inbound_campaign_id)."""
    return (
        select(Inbound, Contact.name, Contact.phone)
        .outerjoin(Contact, Contact.id == Inbound.contact_id)
        .where(Inbound.campaign_id == campaign_id)
        .order_by(Inbound.id.desc())
    )


def latest_replies(
    session: Session, campaign_id: int, limit: int = LATEST_REPLIES
) -> list[tuple[Inbound, str | None, str | None]]:
    return [tuple(r) for r in session.execute(campaign_replies(campaign_id).limit(limit))]  # type: ignore[misc]


def replies_of_campaign(campaign_id: int) -> Select[tuple[Inbound]]:
    """The campaign's replies alone, for keyset pages by id."""
    return select(Inbound).where(Inbound.campaign_id == campaign_id)


def replies_of_contact(contact_id: int) -> Select[tuple[Inbound]]:
    """Everything the contact wrote, linked to a campaign or not, for keyset pages by id
    (ix_inbound_contact_id_received_at)."""
    return select(Inbound).where(Inbound.contact_id == contact_id)


def still_hearing(campaign: Campaign, now: datetime | None = None) -> bool:
    """Whether receipts and replies may still move this campaign's figures."""
    if campaign.status in _MOVING:
        return True
    if campaign.status == CampaignStatus.DRAFT or campaign.finished_at is None:
        return False
    return (now or utcnow()) - campaign.finished_at < HEARING
