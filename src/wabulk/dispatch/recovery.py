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
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Select, case, null, select, update
from sqlalchemy.orm import Session

from .. import events
from ..analytics import stats
from ..campaigns.counters import shift_counters
from ..channels.base import Channel, ChannelConfig, OutgoingMessage, Reconciled
from ..channels.registry import WEBHOOK_PROVEN, open_channel
from ..models import EventLevel, Message, MessageStatus, Sender, utcnow
from ..outbox import causes as events_out
from ..senders import lease as sender_lease

log = logging.getLogger(__name__)
messages = Message.__table__
S = MessageStatus
BATCH = 500
# How long recovery holds an exclusive sender while it reads chats: ample for one batch.
RECONCILE_HOLD = timedelta(minutes=10)

_KEEP_ANSWER_SENDER = case((messages.c.campaign_id.is_(None), messages.c.sender_id), else_=null())

_UNKNOWN_DETAIL = (
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


def expire_stale_leases(
    session: Session,
    instance_path: Path,
    now: datetime | None = None,
    alive_owner: str | None = None,
    options: dict[str, object] | None = None,
) -> int:
    """Reconcile one batch of expired `sending` messages; returns how many were settled.

    - `alive_owner` is the calling process: its own lanes are alive and finish their
      messages, so recovery must not reconcile them behind their back (that would queue a
      message its lane is about to send).
    """
    now = now or utcnow()
    rows = session.execute(
        _expired(now, alive_owner or "").order_by(messages.c.lease_until).limit(BATCH)
    ).all()
    if not rows:
        return 0
    by_sender: dict[int | None, list] = defaultdict(list)
    for row in rows:
        by_sender[row.sender_id].append(row)
    answers: dict[int, Reconciled] = {}
    owner = alive_owner or f"recovery:{id(session)}"
    for sender_id, group in by_sender.items():
        sender = session.get(Sender, sender_id) if sender_id is not None else None
        answers.update(_ask(session, sender, group, instance_path, options or {}, owner, now))
    return _apply(session, rows, answers, now)


def reconcile_sender(
    session: Session, sender_id: int, channel: Channel, owner: str, now: datetime
) -> int:
    """Reconcile this sender's expired messages through the caller's own channel."""
    rows = session.execute(
        _expired(now, owner).where(messages.c.sender_id == sender_id).limit(BATCH)
    ).all()
    if not rows:
        return 0
    _apply(session, rows, _ask_channel(channel, rows), now)
    return len(rows)


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
    stats.bump(session, sent)
    events_out.message_statuses(session, found_sent, now)

    # Answers (campaign None) have no counters to move; their Event names no campaign.
    for campaign_id, counts in moved.items():
        n = sum(counts.values())
        shift_counters(session, campaign_id, {S.SENDING: -n} | dict(counts))
        text = (
            f"Recovered {n} message(s) left in flight by a stopped worker: "
            f"{counts[S.SENT]} had been sent, {counts[S.QUEUED]} had not and were queued "
            f"again, {counts[S.UNKNOWN]} cannot be known"
        )
        if counts[S.UNKNOWN]:
            text += ' (review them and use "send again" if needed)'
        events.record(
            session,
            "messages.recovered",
            text + ".",
            level=EventLevel.WARNING if counts[S.UNKNOWN] else EventLevel.INFO,
            campaign_id=campaign_id,
        )
    return considered
