"""The claim of answers written in the Inbox (messages with no campaign), for one sender.

- Same lease, states and guards as a campaign message (queue.py): the claim is one
  UPDATE … RETURNING written before any channel is called, and the lane settles an answer
  with the same lease-guarded `queue.settle`.
- Only the sender that holds the conversation claims it (`sender_id` is set when the answer
  is written and kept through every requeue): the customer gets the answer from the number
  they wrote to.
- The body is rendered when the answer is written, so nothing is rendered here.
- The same rules hold as for any send: a contact who opted out since is skipped, active
  hours defer to the recipient's morning, the Cloud API's pair rule defers a customer
  messaged a moment ago, and free-form text whose 24-hour window closed meanwhile is
  skipped (a template answer is not). The opt-out and the window are read once more just
  before the send (`lane_sending.StillRunning`): an answer waits for its slot after this.
- No campaign: no counters move, and a skip counts nowhere in `message_stats`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ..models import Answer, Contact, Message, MessageStatus
from ..senders.pace import Pace
from .queue import OUTSIDE_WINDOW, SKIP_REASONS, Claimed, _open_windows, _recently_messaged

messages = Message.__table__
contacts = Contact.__table__
answers = Answer.__table__
S = MessageStatus


def due_answers(sender_id: int, now: datetime) -> Any:
    """Queued answers of this sender that are due (served by the claim's index, whose
    `campaign_id IS NULL` prefix holds only answers)."""
    return select(messages.c.id).where(
        messages.c.campaign_id.is_(None),
        messages.c.status == S.QUEUED,
        messages.c.next_attempt_at <= now,
        messages.c.sender_id == sender_id,
    )


def waiting(session: Session, sender_id: int, now: datetime) -> bool:
    """Whether an answer of this sender is due: a paced lane lets it take the next slot."""
    return session.scalar(due_answers(sender_id, now).limit(1)) is not None


def claim_answers(
    session: Session,
    *,
    sender_id: int,
    owner: str,
    limit: int,
    now: datetime,
    lease_until: datetime,
    pace: Pace,
) -> list[Claimed]:
    """Claim up to `limit` due answers of this sender; the caller commits.

    `pace`: the sender's own (no campaign overrides); `window_only` there means a Cloud API
    sender, whose free-form answers need the customer's 24-hour window open.
    """
    due = due_answers(sender_id, now).order_by(messages.c.next_attempt_at, messages.c.id)
    due = due.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = (
        session.execute(
            update(messages)
            .where(messages.c.id.in_(due.scalar_subquery()))
            .values(
                status=S.SENDING,
                lease_owner=owner,
                lease_until=lease_until,
                sending_at=now,
                updated_at=now,
            )
            .returning(messages.c.id)
        )
        .scalars()
        .all()
    )
    if not ids:
        return []
    rows = session.execute(
        select(
            messages.c.id,
            messages.c.body,
            messages.c.attempts,
            messages.c.contact_id,
            messages.c.phone,
            messages.c.template_params,
            answers.c.template,
            contacts.c.timezone,
            contacts.c.opted_out_at,
        )
        .join(contacts, contacts.c.id == messages.c.contact_id)
        .outerjoin(answers, answers.c.message_id == messages.c.id)
        .where(messages.c.id.in_(ids))
        .order_by(messages.c.id)
    ).all()
    people = [row.contact_id for row in rows]
    open_window = _open_windows(session, sender_id, people, now) if pace.window_only else None
    recent = _recently_messaged(session, sender_id, people, now, pace) if pace.pair_seconds else ()
    ready: list[Claimed] = []
    skipped: dict[str, list[int]] = {"opted_out": [], OUTSIDE_WINDOW: []}
    deferred: list[dict[str, Any]] = []
    for row in rows:
        if row.opted_out_at is not None:
            skipped["opted_out"].append(row.id)
            continue
        free_form = row.template is None
        if free_form and open_window is not None and row.contact_id not in open_window:
            skipped[OUTSIDE_WINDOW].append(row.id)
            continue
        opens = pace.window_opens(now, row.timezone) if pace.has_active_hours else None
        if opens is None and row.contact_id in recent:
            opens = now + timedelta(seconds=pace.pair_seconds)
        if opens is not None:
            deferred.append({"mid": row.id, "at": opens})
            continue
        ready.append(
            Claimed(
                row.id,
                None,
                row.phone,
                row.body or "",
                row.attempts,
                row.template_params,
                row.template,
            )
        )
    for code, ids_skipped in skipped.items():
        if ids_skipped:
            session.execute(
                update(messages)
                .where(messages.c.id.in_(ids_skipped))
                .values(
                    status=S.SKIPPED,
                    lease_owner=None,
                    lease_until=None,
                    error_code=code,
                    error_detail=SKIP_REASONS[code],
                    updated_at=now,
                )
            )
    if deferred:
        # Back to the queue with its sender kept: only this account can answer.
        session.execute(
            update(messages)
            .where(messages.c.id == bindparam("mid"))
            .values(
                status=S.QUEUED,
                lease_owner=None,
                lease_until=None,
                next_attempt_at=bindparam("at"),
            ),
            deferred,
        )
    return ready
