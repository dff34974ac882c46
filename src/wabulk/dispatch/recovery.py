"""Messages whose worker died mid-send (DESIGN §3, "lease expired → reconcile").

A message in `sending` whose lease has expired may or may not have reached the
recipient. The channel that was sending it is asked (`reconcile`): proven sent → `sent`,
proven not sent → back to `queued`, and anything it cannot prove → `unknown`, shown to
the operator with a "send again" action and never re-sent silently.

A WhatsApp Web account must not be opened in two browsers: recovery reconciles its
messages only after taking the sender's lease, and a lane holding the sender reconciles
them through its own browser (`reconcile_sender`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, case, null, or_, select, update
from sqlalchemy.orm import Session

from .. import events
from ..analytics import stats
from ..campaigns.counters import shift_counters
from ..channels.base import Channel, ChannelConfig, OutgoingMessage, Reconciled
from ..channels.registry import WEBHOOK_PROVEN, open_channel
from ..models import EventLevel, Message, MessageStatus, Sender, utcnow
from ..outbox import causes as events_out
from ..senders import lease as sender_lease
from ..words import N_, said

log = logging.getLogger(__name__)
messages = Message.__table__
S = MessageStatus
BATCH = 500
# How long recovery holds an exclusive sender while it reads chats: ample for one batch.
RECONCILE_HOLD = timedelta(minutes=10)
# How long taken messages wait before their channel is asked (`_take`); callers pass their
# lease, which bounds how long a lane's one send may take.
DEFAULT_HOLD = timedelta(seconds=120)
# lease_owner of messages recovery took, and of those a lane handed over unsent.
TAKEN = "recovery:"
CUT_SHORT = ":cut-short"

_KEEP_ANSWER_SENDER = case((messages.c.campaign_id.is_(None), messages.c.sender_id), else_=null())

_UNKNOWN_DETAIL = N_(
    "The worker stopped while sending and the channel cannot tell whether this message "
    "reached the recipient."
)


def _expired(now: datetime, not_owner: str) -> Select:
    """`sending` messages whose lease ran out, not held by `not_owner` (a live process)."""
    return select(
        messages.c.id,
        messages.c.campaign_id,
        messages.c.sender_id,
        messages.c.phone,
        messages.c.body,
        messages.c.lease_owner,
    ).where(
        messages.c.status == S.SENDING,
        messages.c.lease_until < now,
        messages.c.lease_owner != not_owner,
    )


def _ask_channel(channel: Channel, rows: list) -> dict[int, Reconciled]:
    answers: dict[int, Reconciled] = {}
    for row in rows:
        if row.body is None:
            continue  # never sent: `_apply` queues it again without asking
        try:
            answers[row.id] = channel.reconcile(
                OutgoingMessage(message_id=row.id, phone=row.phone, text=row.body or "")
            )
        except Exception:
            log.exception("reconcile failed for message %s", row.id)
            answers[row.id] = "unknown"
    return answers


def _ask(
    session: Session,
    sender: Sender | None,
    rows: list,
    instance_path: Path,
    options: dict[str, object],
    owner: str,
    now: datetime,
) -> dict[int, Reconciled]:
    """The channel's answers; none (rows left for later) when the sender is busy."""
    if sender is None:
        return {row.id: "unknown" for row in rows}
    if sender.channel.value in WEBHOOK_PROVEN:
        # Only the provider's status webhook (carrying our id) can prove such a send; when
        # it comes, it settles the `unknown` message as sent (see wabulk.inbound).
        return {row.id: "unknown" for row in rows if row.body is not None}
    exclusive = sender_lease.exclusive(sender.channel)
    if exclusive:
        if not sender_lease.take(session, sender.id, owner, now, RECONCILE_HOLD):
            return {}  # its lane reconciles them, or a later round once the sender is free
        session.commit()
    try:
        channel = open_channel(
            sender.channel.value,
            ChannelConfig(sender.name, dict(sender.settings or {}), instance_path, options),
        )
    except Exception:
        log.exception("cannot open the %s channel to reconcile", sender.name)
        return {row.id: "unknown" for row in rows}
    try:
        return _ask_channel(channel, rows)
    finally:
        channel.close()
        if exclusive:
            sender_lease.release(session, sender.id, owner)


def _ready(row: Any) -> bool:
    """Taken by recovery a hold ago, or handed over by a lane that never gave it to its
    channel: the channel may be asked now."""
    owner = row.lease_owner or ""
    return owner.startswith(TAKEN) or owner.endswith(CUT_SHORT)


def _take(session: Session, rows: list, owner: str, now: datetime, hold: timedelta) -> int:
    """Recovery's first half: take expired messages from the lane that held them, and ask
    their channel only a hold later (the next round that finds them `_ready`).

    A lane reads that it still holds a message just before handing it to its channel
    (lane_sending.py), so once this commits no lane starts it; but one that read a moment
    before may be inside its send. Asking the channel at once could miss that send (its
    proof is not written yet) and queue the message for a second one. The hold covers the
    send under way.
    """
    if not rows:
        return 0
    return session.execute(
        update(messages)
        .where(
            messages.c.id.in_([row.id for row in rows]),
            messages.c.status == S.SENDING,
            messages.c.lease_until < now,
        )
        .values(lease_owner=f"{TAKEN}{owner}"[:100], lease_until=now + hold)
    ).rowcount


def _pinned_elsewhere(session: Session, may_drive: Callable[[Sender], bool] | None) -> list[int]:
    """WhatsApp Web senders this worker may not open (another computer holds their browser
    profile: worker labels, `--senders`); their messages are left to that computer."""
    if may_drive is None:
        return []
    return [
        sender.id
        for sender in session.scalars(select(Sender)).all()
        if sender_lease.exclusive(sender.channel) and not may_drive(sender)
    ]


def expire_stale_leases(
    session: Session,
    instance_path: Path,
    now: datetime | None = None,
    alive_owner: str | None = None,
    options: dict[str, object] | None = None,
    hold: timedelta = DEFAULT_HOLD,
    may_drive: Callable[[Sender], bool] | None = None,
) -> int:
    """Reconcile one batch of expired `sending` messages; returns how many were taken or
    settled.

    - `alive_owner` is the calling process: its own lanes are alive and finish their
      messages, so recovery must not reconcile them behind their back (that would queue a
      message its lane is about to send).
    - In two rounds a `hold` apart (`_take`): the first takes the messages, the second asks
      their channel and settles them.
    - `may_drive`: the calling worker's rule for which senders it may open.
    """
    now = now or utcnow()
    query = _expired(now, alive_owner or "")
    pinned = _pinned_elsewhere(session, may_drive)
    if pinned:
        query = query.where(
            or_(messages.c.sender_id.is_(None), messages.c.sender_id.not_in(pinned))
        )
    rows = session.execute(query.order_by(messages.c.lease_until).limit(BATCH)).all()
    if not rows:
        return 0
    owner = alive_owner or f"recovery:{id(session)}"
    taken = _take(session, [r for r in rows if not _ready(r)], owner, now, hold)
    rows = [r for r in rows if _ready(r)]
    by_sender: dict[int | None, list] = defaultdict(list)
    for row in rows:
        by_sender[row.sender_id].append(row)
    answers: dict[int, Reconciled] = {}
    for sender_id, group in by_sender.items():
        sender = session.get(Sender, sender_id) if sender_id is not None else None
        answers.update(_ask(session, sender, group, instance_path, options or {}, owner, now))
    return taken + _apply(session, sorted(rows, key=lambda r: r.id), answers, now)


def reconcile_sender(
    session: Session,
    sender_id: int,
    channel: Channel,
    owner: str,
    now: datetime,
    hold: timedelta = DEFAULT_HOLD,
) -> int:
    """Reconcile this sender's expired messages through the caller's own channel, in the
    same two rounds as `expire_stale_leases`."""
    rows = session.execute(
        _expired(now, owner).where(messages.c.sender_id == sender_id).limit(BATCH)
    ).all()
    if not rows:
        return 0
    taken = _take(session, [r for r in rows if not _ready(r)], owner, now, hold)
    rows = sorted((r for r in rows if _ready(r)), key=lambda r: r.id)
    _apply(session, rows, _ask_channel(channel, rows), now)
    return taken + len(rows)


def _apply(session: Session, rows: list, answers: dict[int, Reconciled], now: datetime) -> int:
    """Settle the rows answered (and those never written); returns how many."""
    moved: dict[int | None, Counter] = defaultdict(Counter)
    considered = 0
    sent: list[stats.StatRow] = []
    found_sent: list[int] = []  # a `message.status` event for endpoints
    for row in rows:
        if row.body is None:
            # Claimed, then its worker stopped before the text was written: the text is
            # stored before any channel sees a message, so this one was never sent.
            answer: Reconciled = "not_sent"
        elif row.id in answers:
            answer = answers[row.id]
        else:
            continue
        considered += 1
        guard = update(messages).where(
            messages.c.id == row.id,
            messages.c.status == S.SENDING,
            messages.c.lease_until < now,
        )
        common = {"lease_owner": None, "lease_until": None, "updated_at": now}
        if answer == "sent":
            stmt = guard.values(
                status=S.SENT, sent_at=now, attempts=messages.c.attempts + 1, **common
            )
            target = S.SENT
        elif answer == "not_sent":
            # An answer keeps its sender: only the account holding the conversation sends it.
            stmt = guard.values(
                status=S.QUEUED, next_attempt_at=now, sender_id=_KEEP_ANSWER_SENDER, **common
            )
            target = S.QUEUED
        else:
            stmt = guard.values(
                status=S.UNKNOWN, error_code="lease_expired", error_detail=_UNKNOWN_DETAIL, **common
            )
            target = S.UNKNOWN
        if session.execute(stmt).rowcount:
            moved[row.campaign_id][target] += 1
            if target == S.SENT:
                sent.append(("sent", row.campaign_id, row.sender_id, now, None, 1))
                found_sent.append(row.id)
    # Counters before statistics, campaigns in id order: the order a lane's settle and the
    # receipts worker take these rows in, so none of them waits on another in a circle
    # (PostgreSQL would end one with "deadlock detected").
    for campaign_id in sorted(moved, key=lambda cid: cid or 0):
        counts = moved[campaign_id]
        shift_counters(session, campaign_id, {S.SENDING: -sum(counts.values())} | dict(counts))
    stats.bump(session, sent)
    events_out.message_statuses(session, found_sent, now)

    # Answers (campaign None) have no counters to move; their Event names no campaign.
    for campaign_id, counts in moved.items():
        n = sum(counts.values())
        values = {
            "n": n,
            "sent": counts[S.SENT],
            "queued": counts[S.QUEUED],
            "unknown": counts[S.UNKNOWN],
        }
        text = (
            said(
                "Recovered %(n)s message(s) left in flight by a stopped worker: %(sent)s had "
                "been sent, %(queued)s had not and were queued again, %(unknown)s cannot be "
                'known (review them and use "send again" if needed).',
                **values,
            )
            if counts[S.UNKNOWN]
            else said(
                "Recovered %(n)s message(s) left in flight by a stopped worker: %(sent)s had "
                "been sent, %(queued)s had not and were queued again, %(unknown)s cannot be "
                "known.",
                **values,
            )
        )
        events.record(
            session,
            "messages.recovered",
            text,
            level=EventLevel.WARNING if counts[S.UNKNOWN] else EventLevel.INFO,
            campaign_id=campaign_id,
        )
    return considered
