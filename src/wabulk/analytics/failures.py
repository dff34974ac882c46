"""What a failure code means to a shop owner, for summaries that group failures by code.

- Channel-specific codes (Meta's numbers) carry their sentence in the failed messages
  themselves (`Message.error_detail`, written by the code that failed them), so the sentence
  is read back from one stored row: pages never import a channel to explain a code.
- 131049 is its own outcome, "Limited by Meta": the customer reached WhatsApp's daily cap
  of marketing messages from businesses. Nothing is wrong with the number or the message.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Message, MessageStat, MessageStatus
from ..words import N_, said
from .stats import NO_CAMPAIGN

LIMITED_BY_META = "131049"
LIMITED_LABEL = N_("Limited by Meta")


def is_limited(code: str | None) -> bool:
    return (code or "") == LIMITED_BY_META


def is_provider_code(code: str) -> bool:
    """A number given by the provider (Meta), whose meaning the stored rows carry."""
    return code.isascii() and code.isdigit()


def _detail_of(session: Session, code: str, campaign_id: int | None) -> str | None:
    """One stored sentence for `code`: from this campaign, or from the campaign whose
    failures with that code are the newest.

    - With a campaign: ix_messages_campaign_id_status_next_attempt_at (campaign, 'failed'),
      LIMIT 1. Without one, `message_stats` names that campaign first (slot-ordered, one
      row), so the messages read are one campaign's failed ones, never the whole table.
    """
    if campaign_id is None:
        campaign_id = session.scalar(
            select(MessageStat.campaign_id)
            .where(MessageStat.kind == "failed", MessageStat.code == code, MessageStat.n > 0)
            .order_by(MessageStat.slot.desc())
            .limit(1)
        )
        if campaign_id is None:
            return None
    # Campaign 0 in `message_stats` is the Inbox's answers: messages with no campaign.
    which = (
        Message.campaign_id.is_(None)
        if campaign_id == NO_CAMPAIGN
        else Message.campaign_id == campaign_id
    )
    return session.scalar(
        select(Message.error_detail)
        .where(
            which,
            Message.status == MessageStatus.FAILED,
            Message.error_code == code,
            func.length(Message.error_detail) > 0,
        )
        .limit(1)
    )


def sentences(
    session: Session, codes: Iterable[str], campaign_id: int | None = None
) -> dict[str, str]:
    """The stored sentence of each provider code in `codes` that has one."""
    found: dict[str, str] = {}
    for code in dict.fromkeys(codes):
        if code and is_provider_code(code):
            detail = _detail_of(session, code, campaign_id)
            if detail:
                found[code] = detail
    return found


def provider_label(code: str, sentence: str | None) -> str:
    """The short name of a provider's failure code, in a table of reasons."""
    if is_limited(code):
        return LIMITED_LABEL
    return sentence or said("Refused by WhatsApp (error %(code)s)", code=code)
