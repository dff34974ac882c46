"""What a WhatsApp Web lane asks its browser to look for, and what it does with the answer.

- A look is built from the database: this sender's newest message per recipient sent within
  its hearing period and not yet read (their ticks), the recipients of that period (only
  their chats may be opened for replies), and, when the lane is idle, its `unknown`
  messages to settle by reading their chat.
- What the channel heard goes through `wabulk.inbound.apply`, the one path the Cloud API's
  webhooks take too: ticks, replies, opt-outs by reply. An `unknown` message the chat shows
  was sent moves there by the status path; one the chat proves never went is queued again
  here. Each settled message gets a `message.settled` Event, which the campaign page counts.
- `hearing_senders` is the worker's one query for linked WhatsApp Web senders still worth
  a lane with no campaign work: sent within their hearing period, or holding `unknown`
  messages that became so within it. `still_hearing` is the lane's own check, the same rule.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from .. import events, inbound
from ..campaigns import lifecycle
from ..campaigns.counters import shift_counters
from ..channels import registry
from ..channels.heard import Heard, Watch, Watched
from ..channels.whatsapp_web.settings import web_settings
from ..models import (
    Campaign,
    CampaignStatus,
    Channel,
    Event,
    EventLevel,
    Media,
    Message,
    MessageStatus,
    Sender,
    SenderState,
)
from ..words import N_, said

S = MessageStatus
messages = Message.__table__
campaigns = Campaign.__table__

# Newest messages per recipient whose ticks one look reads, and rows read to find them.
WATCHED = 300
SCANNED = 5000
# Unknown messages one idle look tries to settle (each may open a chat).
SETTLE = 20
SETTLED = "message.settled"
# What a look needs of a message (`_watched`).
_WATCHED_COLUMNS = (
    messages.c.id,
    messages.c.phone,
    messages.c.body,
    messages.c.provider_message_id,
    messages.c.status,
    messages.c.campaign_id,
)


@dataclass(frozen=True)
class Hearing:
    """A sender's hearing settings as the lane uses them."""

    read_replies: bool
    period: timedelta

    @classmethod
    def of(cls, sender: Sender) -> Hearing:
        settings = web_settings(dict(sender.settings or {}))
        return cls(settings.read_replies, timedelta(days=settings.hear_days))


def build_watch(
    session: Session,
    sender_id: int,
    hearing: Hearing,
    now: datetime,
    until: float,
    settle: bool = False,
) -> Watch:
    """What one look at this sender's chats should read; `until` is a monotonic deadline."""
    since = now - max(hearing.period, timedelta(hours=1))
    rows = session.execute(
        select(*_WATCHED_COLUMNS)
        .where(messages.c.sender_id == sender_id, messages.c.sent_at >= since)
        .order_by(messages.c.sent_at.desc(), messages.c.id.desc())
        .limit(SCANNED)
    ).all()
    names = _file_names(session, {r.campaign_id for r in rows if not r.body})
    watched: list[Watched] = []
    phones: set[str] = set()
    for row in rows:
        if row.phone in phones:
            continue
        phones.add(row.phone)
        if row.status in (S.SENT, S.DELIVERED) and len(watched) < WATCHED:
            watched.append(_watched(row, names))
    unknown: tuple[Watched, ...] = ()
    if settle:
        unknown = tuple(_watched(row, names) for row in unknown_messages(session, sender_id, now))
    return Watch(
        messages=tuple(watched),
        reply_phones=frozenset(phones),
        read_replies=hearing.read_replies,
        until=until,
        settle=unknown,
    )


def _file_names(session: Session, campaign_ids: set[int]) -> dict[int, str]:
    """The attachment's name of campaigns whose messages went without a text."""
    if not campaign_ids:
        return {}
    return dict(
        session.execute(  # type: ignore[arg-type]
            select(Campaign.id, Media.original_name)
            .join(Media, Media.id == Campaign.media_id)
            .where(Campaign.id.in_(campaign_ids))
        ).all()
    )


def _watched(row: Any, names: dict[int, str]) -> Watched:
    return Watched(
        message_id=row.id,
        phone=row.phone,
        text=row.body or names.get(row.campaign_id, ""),
        provider_message_id=row.provider_message_id,
        status=row.status.value if isinstance(row.status, S) else str(row.status),
    )


def _unknown_since(sender_id_column: Any, since: datetime) -> Any:
    # `sent_at IS NULL` keeps the (sender_id, sent_at) index usable: an unknown message
    # was never proven sent. Same rule as `_hearing`'s.
    return and_(
        messages.c.sender_id == sender_id_column,
        messages.c.status == S.UNKNOWN,
        messages.c.sent_at.is_(None),
        messages.c.updated_at >= since,
    )


def unknown_messages(session: Session, sender_id: int, now: datetime) -> list[Any]:
    """This sender's messages left `unknown` recently enough to be worth a chat's look."""
    sender = session.get(Sender, sender_id)
    if sender is None:
        return []
    since = now - Hearing.of(sender).period
    return list(
        session.execute(
            select(*_WATCHED_COLUMNS)
            .where(_unknown_since(sender_id, since))
            .order_by(messages.c.id)
            .limit(SETTLE)
        ).all()
    )


def still_hearing(session: Session, sender: Sender, now: datetime) -> bool:
    """Whether an idle lane of this sender should keep looking (see `hearing_senders`)."""
    return sender.id in _hearing(session, now, sender.id)


def hearing_senders(session: Session, now: datetime) -> set[int]:
    """Linked WhatsApp Web senders an idle lane should keep looking for; one query."""
    return _hearing(session, now, None)


def _hearing(session: Session, now: datetime, only: int | None) -> set[int]:
    if not callable(getattr(registry.FACTORIES.get(Channel.WHATSAPP_WEB.value), "hear", None)):
        return set()  # a lane that cannot look would end at once, and start again
    # Both read through the (sender_id, sent_at) index: the newest send, and the newest
    # message left unknown (never proven sent, so without a sent_at).
    last_sent = (
        select(func.max(messages.c.sent_at))
        .where(messages.c.sender_id == Sender.id)
        .scalar_subquery()
    )
    last_unknown = (
        select(func.max(messages.c.updated_at))
        .where(
            messages.c.sender_id == Sender.id,
            messages.c.sent_at.is_(None),
            messages.c.status == S.UNKNOWN,
        )
        .scalar_subquery()
    )
    query = select(
        Sender.id, Sender.settings, last_sent.label("sent"), last_unknown.label("unknown")
    ).where(Sender.channel == Channel.WHATSAPP_WEB, Sender.state == SenderState.LINKED)
    if only is not None:
        query = query.where(Sender.id == only)
    out: set[int] = set()
    for row in session.execute(query):
        since = now - timedelta(days=web_settings(dict(row.settings or {})).hear_days)
        if any(at is not None and at >= since for at in (row.sent, row.unknown)):
            out.add(row.id)
    return out


@dataclass
class Result:
    """What one look changed, for the lane."""

    applied: inbound.Applied
    settled_sent: int = 0
    settled_not_sent: int = 0


def apply_heard(
    session: Session, sender_id: int, heard: Heard, now: datetime, settle_ids: set[int]
) -> Result:
    """Apply one look in the caller's transaction (it commits)."""
    statuses = [u for u in heard.statuses if u.message_id in settle_ids]
    before = _unknown(session, sorted({u.message_id for u in statuses if u.message_id}))
    applied = inbound.apply(session, sender_id, heard, now)
    result = Result(applied)
    if before:
        after = _unknown(session, sorted(before))
        for mid in sorted(set(before) - set(after)):
            row = before[mid]
            result.settled_sent += 1
            events.record(
                session,
                SETTLED,
                said(
                    "%(phone)s: the chat shows this message was sent; it counts as sent now.",
                    phone=row.phone,
                ),
                campaign_id=row.campaign_id,
                message_id=mid,
            )
    not_sent = sorted(set(heard.not_sent) & settle_ids)
    if not_sent:
        result.settled_not_sent = _queue_again(session, sender_id, not_sent, now)
    return result


def _unknown(session: Session, ids: list[int]) -> dict[int, Any]:
    if not ids:
        return {}
    return {
        row.id: row
        for row in session.execute(
            select(messages.c.id, messages.c.phone, messages.c.campaign_id).where(
                messages.c.id.in_(ids), messages.c.status == S.UNKNOWN
            )
        )
    }


def _queue_again(session: Session, sender_id: int, ids: list[int], now: datetime) -> int:
    """Unknown messages whose chat shows they never went: queued again, no attempt used.

    A finished campaign runs again to send them; a cancelled one skips them, as it skipped
    everything else it had not sent. An answer written in the Inbox (no campaign) is queued
    again for its own sender, the one account holding the conversation.
    """
    query = (
        select(messages.c.id, messages.c.phone, messages.c.campaign_id, campaigns.c.status)
        .outerjoin(campaigns, campaigns.c.id == messages.c.campaign_id)
        .where(
            messages.c.id.in_(ids),
            messages.c.status == S.UNKNOWN,
            messages.c.sender_id == sender_id,
        )
        .order_by(messages.c.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=messages)
    rows = session.execute(query).all()
    by_campaign: dict[int | None, list[Any]] = defaultdict(list)
    for row in rows:
        by_campaign[row.campaign_id].append(row)
    done = 0
    for campaign_id, group in by_campaign.items():
        cancelled = group[0].status == CampaignStatus.CANCELLED
        values: dict[str, Any] = {
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now,
        }
        if cancelled:
            target = S.SKIPPED
            values |= {
                "status": S.SKIPPED,
                "error_code": "cancelled",
                "error_detail": N_("Campaign cancelled"),
            }
        else:
            target = S.QUEUED
            values |= {
                "status": S.QUEUED,
                "next_attempt_at": now,
                "error_code": None,
                "error_detail": None,
            }
            if campaign_id is not None:
                values["sender_id"] = None  # any sender of the campaign may take it
        n = session.execute(
            update(messages)
            .where(messages.c.id.in_([r.id for r in group]), messages.c.status == S.UNKNOWN)
            .values(**values)
        ).rowcount
        if not n:
            continue
        done += n
        shift_counters(session, campaign_id, {S.UNKNOWN: -n, target: n})
        then = (
            "%(phone)s: the chat shows this message never went; the campaign was cancelled, "
            "so it is skipped."
            if cancelled
            else "%(phone)s: the chat shows this message never went; it is queued."
        )
        for row in group:
            events.record(
                session,
                SETTLED,
                said(then, phone=row.phone),
                level=EventLevel.WARNING,
                campaign_id=campaign_id,
                message_id=row.id,
            )
        if campaign_id is not None and group[0].status == CampaignStatus.COMPLETED:
            _run_again(session, campaign_id, n)
    return done


def _run_again(session: Session, campaign_id: int, n: int) -> None:
    campaign = lifecycle.get_campaign(session, campaign_id, lock=True)
    if campaign.status != CampaignStatus.COMPLETED:
        return
    lifecycle.transition(campaign, "retry")
    campaign.finished_at = None
    events.record(
        session,
        "campaign.running_again",
        said(
            "Running again to send %(n)s message(s) whose chat shows they never went.",
            n=f"{n:,}",
        ),
        campaign_id=campaign_id,
    )


def settled_count(session: Session, campaign_id: int) -> int:
    """Unknown messages of this campaign settled by reading their chat."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.campaign_id == campaign_id, Event.kind == SETTLED)
        )
        or 0
    )


def monotonic_deadline(seconds: float) -> float:
    """The channel's `until` for a look that may take at most `seconds` from now."""
    return time.monotonic() + max(0.0, seconds)
