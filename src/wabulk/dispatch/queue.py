"""The message queue: claim due messages, settle their outcomes, keep counters exact.

- Claim is one UPDATE … RETURNING over a LIMITed sub-select: `sending`, lease owner and
  expiry, written before any channel is called. On PostgreSQL the sub-select takes
  `FOR UPDATE SKIP LOCKED`, so workers on many machines never claim the same row; SQLite
  serialises writers, so the same statement is safe there.
- In the claim's transaction each message is checked against what may have changed since
  launch: an opted-out contact is `skipped`, a recipient outside active hours goes back to
  wait for their morning. A message not yet rendered is then rendered from the campaign's
  launch snapshot after that transaction commits, so no lock is held while a body runs,
  and its text is stored (guarded by the lease) before it is sent.
- Every settle is guarded by `status = 'sending' AND lease_owner = me AND sender_id = my
  sender`: a worker whose lease was taken away (it stalled, recovery moved on) cannot
  overwrite the outcome.
- Campaign counters and `message_stats` move in the same transaction as the rows, by the
  rows actually changed, so pages read exact numbers without counting.
- An answer written in the Inbox is a message with no campaign, bound to the sender that
  messaged the contact (`claim_answers`): it is settled by the same statements, and a
  requeue keeps its sender (any sender of a campaign may take a campaign message back,
  but only the one account that holds the conversation can answer in it).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, literal, select, update
from sqlalchemy.orm import Session

from ..analytics import stats
from ..campaigns import cloud_template
from ..campaigns.counters import shift_counters
from ..campaigns.render_budget import TEXT_LIMIT
from ..campaigns.rendering import (
    CONTACT_FIELDS,
    CompiledBody,
    TemplateError,
    compile_body,
    context_for,
)
from ..channels.base import NOT_ON_WHATSAPP
from ..contacts import service as contacts_service
from ..db import driver_marks, driver_time
from ..models import Campaign, Contact, Inbound, Message, MessageStatus
from ..outbox import causes as events_out
from ..senders.pace import Pace
from ..words import N_, said

messages = Message.__table__
contacts = Contact.__table__
campaigns = Campaign.__table__

S = MessageStatus
OUTSIDE_WINDOW = "outside_window"
REPLIED = "replied"  # a follow-up's recipient who answered an earlier message of it
SKIP_REASONS = {
    "opted_out": N_("Opted out"),
    REPLIED: N_("Stopped: they replied to an earlier message of this campaign"),
    NOT_ON_WHATSAPP: N_("Not on WhatsApp"),
    OUTSIDE_WINDOW: N_(
        "Outside the 24-hour window: only an approved template can reach this "
        "customer, as they have not written to this number in the last 24 hours."
    ),
}
WINDOW = timedelta(hours=24)


@dataclass(slots=True)
class Claimed:
    id: int
    campaign_id: int | None  # None: an answer written in the Inbox
    phone: str
    text: str
    attempts: int
    # A Cloud API template campaign's values for this recipient (see campaigns.cloud_template).
    params: dict[str, Any] | None = None
    # An answer's own template snapshot (a campaign's is on the campaign).
    template: dict[str, Any] | None = None


@dataclass(slots=True)
class Outcome:
    """What became of one claimed message; `kind` picks the settle statement."""

    message_id: int
    campaign_id: int | None
    kind: str  # sent | failed | retry | requeue | unknown | skipped
    provider_message_id: str | None = None
    error_code: str | None = None
    error_detail: str | None = None
    next_attempt_at: datetime | None = None


def claim(
    session: Session,
    *,
    campaign_id: int,
    body: str,
    sender_id: int,
    owner: str,
    limit: int,
    now: datetime,
    lease_until: datetime,
    pace: Pace,
    text_limit: int = TEXT_LIMIT,
    template: dict[str, Any] | None = None,
    sequence: tuple[int, ...] = (),
) -> list[Claimed]:
    """Claim up to `limit` due messages of one campaign for one sender.

    - Commits twice: the claim itself, before anything is rendered, so that no database
      lock (SQLite's is the whole file's) is held while a body runs; then the rendered
      texts with whatever rendering failed. The caller commits what follows.
    - `text_limit`: WhatsApp's length for this campaign's text (`CAPTION_LIMIT` when it
      goes as the caption of a photo or video).
    - `template`: the campaign's Cloud API template snapshot; each recipient's values are
      rendered with the text and kept on the row.
    - The pace's Cloud API rules apply here: free-form text skips customers whose 24-hour
      window is closed, and the pair rule holds back a customer this sender messaged a
      moment ago (another campaign) until the rule allows another.
    - `sequence`: a follow-up's campaigns (campaigns/followups.py); whoever replied to any
      of them is skipped, as are those who opted out.
    """
    due = (
        select(messages.c.id)
        .where(
            messages.c.campaign_id == campaign_id,
            messages.c.status == S.QUEUED,
            messages.c.next_attempt_at <= now,
        )
        .order_by(messages.c.next_attempt_at, messages.c.id)
        .limit(limit)
    )
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
                sender_id=sender_id,
                updated_at=now,
            )
            .returning(messages.c.id)
        )
        .scalars()
        .all()
    )
    if not ids:
        return []
    compiled: CompiledBody | TemplateError
    try:
        compiled = compile_body(body)
    except TemplateError as exc:  # launch checks the body, so only a bug lands here
        compiled = exc
    # Decoding every contact's attributes costs more than rendering; skip it when the
    # message uses none of them.
    needs_attributes = template is not None or (
        isinstance(compiled, CompiledBody) and bool(compiled.placeholders - CONTACT_FIELDS)
    )
    rows = session.execute(
        select(
            messages.c.id,
            messages.c.body,
            messages.c.attempts,
            messages.c.contact_id,
            messages.c.template_params,
            contacts.c.phone,
            contacts.c.name,
            contacts.c.country,
            contacts.c.attributes if needs_attributes else literal(None).label("attributes"),
            contacts.c.timezone,
            contacts.c.opted_out_at,
            contacts.c.not_on_whatsapp_at,
        )
        .join(contacts, contacts.c.id == messages.c.contact_id)
        .where(messages.c.id.in_(ids))
        .order_by(messages.c.id)
    ).all()

    ready: list[Claimed] = []
    unwritten: list[Any] = []
    skipped: dict[str, list[int]] = {
        "opted_out": [],
        NOT_ON_WHATSAPP: [],
        OUTSIDE_WINDOW: [],
        REPLIED: [],
    }
    deferred: list[dict[str, Any]] = []
    windowed = pace.has_active_hours
    people = [row.contact_id for row in rows]
    open_window = _open_windows(session, sender_id, people, now) if pace.window_only else None
    recent = _recently_messaged(session, sender_id, people, now, pace) if pace.pair_seconds else ()
    replied = _replied(session, people, sequence) if sequence else ()
    for row in rows:
        if row.opted_out_at is not None:
            skipped["opted_out"].append(row.id)
            continue
        if row.contact_id in replied:
            skipped[REPLIED].append(row.id)
            continue
        if row.not_on_whatsapp_at is not None:
            skipped[NOT_ON_WHATSAPP].append(row.id)
            continue
        if open_window is not None and row.contact_id not in open_window:
            skipped[OUTSIDE_WINDOW].append(row.id)
            continue
        opens = pace.window_opens(now, row.timezone) if windowed else None
        if opens is None and row.contact_id in recent:
            opens = now + timedelta(seconds=pace.pair_seconds)
        if opens is not None:
            deferred.append({"mid": row.id, "at": opens})
            continue
        if row.body is None:
            unwritten.append(row)
        else:
            ready.append(
                Claimed(row.id, campaign_id, row.phone, row.body, row.attempts, row.template_params)
            )

    by_id = messages.c.id == bindparam("mid")
    for code, ids_skipped in skipped.items():
        if not ids_skipped:
            continue
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
        session.execute(
            update(messages)
            .where(by_id)
            .values(
                status=S.QUEUED,
                lease_owner=None,
                lease_until=None,
                sender_id=None,
                next_attempt_at=bindparam("at"),
            ),
            deferred,
        )
    held = len(ready) + len(unwritten)
    shift_counters(
        session,
        campaign_id,
        {
            S.QUEUED: -(len(ids) - len(deferred)),
            S.SENDING: held,
            S.SKIPPED: sum(len(v) for v in skipped.values()),
        },
    )
    if not unwritten:
        return ready
    # The claim is durable before any body runs: a render holds no lock, and a worker that
    # dies now leaves `sending` rows without a text, which recovery knows were never sent.
    session.commit()
    written = _render(compiled, unwritten, text_limit, lease_until - now, template)
    return ready + _store(session, campaign_id, written, sender_id, owner, now)


def _open_windows(
    session: Session, sender_id: int, contact_ids: list[int], now: datetime
) -> set[int]:
    """Those of these contacts who wrote to this sender in the last 24 hours."""
    inbound = Inbound.__table__
    return set(
        session.scalars(
            select(inbound.c.contact_id)
            .where(
                inbound.c.contact_id.in_(contact_ids),
                inbound.c.sender_id == sender_id,
                inbound.c.received_at >= now - WINDOW,
            )
            .distinct()
        )
    )


def _replied(session: Session, contact_ids: list[int], sequence: tuple[int, ...]) -> set[int]:
    """Those of these contacts who replied to a message of these campaigns."""
    return set(
        session.scalars(
            select(messages.c.contact_id)
            .where(
                messages.c.contact_id.in_(contact_ids),
                messages.c.campaign_id.in_(sequence),
                messages.c.replied_at.is_not(None),
            )
            .distinct()
        )
    )


def _recently_messaged(
    session: Session, sender_id: int, contact_ids: list[int], now: datetime, pace: Pace
) -> set[int]:
    """Those of these contacts this sender messaged within the pair rule's interval."""
    return set(
        session.scalars(
            select(messages.c.contact_id)
            .where(
                messages.c.sender_id == sender_id,
                messages.c.sent_at >= now - timedelta(seconds=pace.pair_seconds),
                messages.c.contact_id.in_(contact_ids),
            )
            .distinct()
        )
    )


@dataclass(slots=True)
class _Written:
    row: Any
    text: str | None = None  # the message, or None when it could not be written
    error: str | None = None  # why it could not be (None with no text: out of time)
    params: dict[str, Any] | None = None


def _render(
    compiled: CompiledBody | TemplateError,
    rows: list[Any],
    text_limit: int,
    lease: timedelta,
    template: dict[str, Any] | None = None,
) -> list[_Written]:
    """Each row's text, outside any transaction.

    - A body that fails for one contact fails that message with the author's sentence.
    - Rendering stops once a quarter of the lease is spent (each render has its own budget,
      but a batch of slow ones must not outlive the claim): the rest go back to the queue.
    """
    stop_at = time.monotonic() + lease.total_seconds() / 4
    out: list[_Written] = []
    for row in rows:
        if time.monotonic() > stop_at:
            out.append(_Written(row))
            continue
        try:
            ctx = context_for(row.phone, row.name, row.country, row.attributes or {})
            if template is not None:
                text, params = cloud_template.render_params(template, ctx, seed=row.id)
                out.append(_Written(row, text=text, params=params))
                continue
            if isinstance(compiled, TemplateError):
                raise compiled
            out.append(_Written(row, text=compiled.render(ctx, seed=row.id, limit=text_limit)))
        except TemplateError as exc:
            out.append(
                _Written(
                    row, error=said("The message could not be written: %(problem)s", problem=exc)
                )
            )
    return out


def _store(
    session: Session,
    campaign_id: int,
    written: list[_Written],
    sender_id: int,
    owner: str,
    now: datetime,
) -> list[Claimed]:
    """Store rendered texts and failures on the rows this claim still holds.

    Guarded like a settle: a row recovery took back while it was rendered is left alone.
    """
    mark = driver_marks(session, 1)[0]
    held = f"AND status = 'sending' AND lease_owner = {mark} AND sender_id = {mark}"
    conn = session.connection()
    texts = [w for w in written if w.text is not None]
    if texts and texts[0].params is not None:
        stored = conn.exec_driver_sql(
            f"UPDATE messages SET body = {mark}, template_params = {mark} "  # noqa: S608
            f"WHERE id = {mark} {held}",
            [(w.text, json.dumps(w.params), w.row.id, owner, sender_id) for w in texts],
        ).rowcount
    elif texts:
        # Straight to the driver: the claim above already set updated_at, and SQLAlchemy
        # would otherwise stamp it again, row by row.
        stored = conn.exec_driver_sql(
            f"UPDATE messages SET body = {mark} WHERE id = {mark} {held}",  # noqa: S608
            [(w.text, w.row.id, owner, sender_id) for w in texts],
        ).rowcount
    to_time = driver_time(session)
    stamp = to_time(now)
    broken = [w for w in written if w.error is not None]
    failed = 0
    if broken:
        failed = conn.exec_driver_sql(
            "UPDATE messages SET status = 'failed', lease_owner = NULL, "  # noqa: S608
            f"lease_until = NULL, failed_at = {mark}, error_code = 'template_error', "
            f"error_detail = {mark}, updated_at = {mark} WHERE id = {mark} {held}",
            [(stamp, w.error[:1000], stamp, w.row.id, owner, sender_id) for w in broken],  # type: ignore[index]
        ).rowcount
        if failed:
            stats.bump(session, [("failed", campaign_id, sender_id, now, "template_error", failed)])
    late = [w for w in written if w.text is None and w.error is None]
    requeued = 0
    if late:
        # Never handed to a channel: no attempt is used.
        requeued = conn.exec_driver_sql(
            "UPDATE messages SET status = 'queued', lease_owner = NULL, "  # noqa: S608
            f"lease_until = NULL, sender_id = NULL, next_attempt_at = {mark}, "
            f"updated_at = {mark} WHERE id = {mark} {held}",
            [(stamp, stamp, w.row.id, owner, sender_id) for w in late],
        ).rowcount
    if failed or requeued:
        shift_counters(
            session,
            campaign_id,
            {S.SENDING: -(failed + requeued), S.FAILED: failed, S.QUEUED: requeued},
        )
    if not texts:
        return []
    if stored == len(texts):  # the usual case: nothing was taken back while rendering
        return [_claimed(w, campaign_id) for w in texts]
    still = set(
        session.execute(
            select(messages.c.id).where(
                messages.c.id.in_([w.row.id for w in texts]),
                messages.c.status == S.SENDING,
                messages.c.lease_owner == owner,
                messages.c.sender_id == sender_id,
            )
        ).scalars()
    )
    return [_claimed(w, campaign_id) for w in texts if w.row.id in still]


def _claimed(w: _Written, campaign_id: int) -> Claimed:
    return Claimed(w.row.id, campaign_id, w.row.phone, w.text or "", w.row.attempts, w.params)


# SQL for a message's sender once it goes back to the queue: a campaign's may be taken by
# any of its senders, an answer's only by its own.
KEEP_ANSWER_SENDER = "CASE WHEN campaign_id IS NULL THEN sender_id ELSE NULL END"

_TARGET = {
    "sent": S.SENT,
    "failed": S.FAILED,
    "retry": S.QUEUED,
    "requeue": S.QUEUED,
    "unknown": S.UNKNOWN,
    "skipped": S.SKIPPED,
}

# One statement per outcome kind, sent straight to the driver's executemany: values shared
# by the whole batch (times, owner) are formatted once, not once per row (see
# `wabulk.db.driver_time`). Each is guarded so a worker that lost its lease changes nothing.
_SETTLE_SQL = {
    "sent": "status = 'sent', sent_at = {t}, provider_message_id = {p}, "
    "attempts = attempts + 1, error_code = NULL, error_detail = NULL",
    "failed": "status = 'failed', failed_at = {t}, attempts = attempts + 1, "
    "error_code = {p}, error_detail = {p}",
    "retry": "status = 'queued', attempts = attempts + 1, next_attempt_at = {p}, "
    "error_code = {p}, error_detail = {p}",
    # The message never reached a channel that could send it: no attempt is used. An
    # answer keeps its sender (see the module's docstring).
    "requeue": "status = 'queued', next_attempt_at = {t}, sender_id = " + KEEP_ANSWER_SENDER,
    # The channel cannot tell whether it went: the operator decides ("send again").
    "unknown": "status = 'unknown', attempts = attempts + 1, error_code = {p}, error_detail = {p}",
    # Read again just before its send: the contact opted out, or the window closed,
    # since the claim. Never handed to the channel: no attempt is used.
    "skipped": "status = 'skipped', error_code = {p}, error_detail = {p}",
}


def _settle_row(kind: str, o: Outcome, to_time: Any) -> tuple[Any, ...]:
    detail = (o.error_detail or "")[:1000] or None
    if kind == "sent":
        return (o.provider_message_id,)
    if kind in ("failed", "unknown", "skipped"):
        return (o.error_code, detail)
    if kind == "retry":
        return (to_time(o.next_attempt_at), o.error_code, detail)
    return ()


def settle(
    session: Session, owner: str, outcomes: Iterable[Outcome], now: datetime, *, sender_id: int
) -> Counter:
    """Write outcomes in one executemany per (kind, campaign); returns rows changed by kind.

    - Failures go one executemany per error code too, so `message_stats` learns exactly how
      many rows each code changed (a row whose lease was lost changes nothing).
    - Guarded by the sender as well as the owner: the lanes of one worker share its owner
      name, and a message that went back to the queue may since be another lane's.
    """
    to_time = driver_time(session)
    mark = driver_marks(session, 1)[0]
    stamp = to_time(now)
    groups: dict[tuple[str, int | None, str | None], list[Outcome]] = defaultdict(list)
    # Rows in id order, as status webhooks lock them, so a lane's settle and the webhook
    # worker never wait on each other in a circle (PostgreSQL would abort one).
    for o in sorted(outcomes, key=lambda o: o.message_id):
        groups[(o.kind, o.campaign_id, o.error_code if o.kind == "failed" else None)].append(o)
    changed: Counter = Counter()
    counted: list[stats.StatRow] = []
    settled: list[int] = []  # sent or failed: a `message.status` event for endpoints
    conn = session.connection()
    for (kind, campaign_id, code), group in groups.items():
        sets = _SETTLE_SQL[kind].format(t=mark, p=mark)
        sql = (
            f"UPDATE messages SET {sets}, lease_owner = NULL, lease_until = NULL, "  # noqa: S608
            f"updated_at = {mark} WHERE id = {mark} AND status = 'sending' "
            f"AND lease_owner = {mark} AND sender_id = {mark}"
        )
        leading = (stamp,) if "{t}" in _SETTLE_SQL[kind] else ()
        params = [
            (*leading, *_settle_row(kind, o, to_time), stamp, o.message_id, owner, sender_id)
            for o in group
        ]
        n = conn.exec_driver_sql(sql, params).rowcount
        if n:
            changed[kind] += n
            shift_counters(session, campaign_id, {S.SENDING: -n, _TARGET[kind]: n})
            if kind in ("sent", "failed"):
                counted.append((kind, campaign_id, sender_id, now, code, n))
                settled.extend(o.message_id for o in group)
    stats.bump(session, counted)
    events_out.message_statuses(session, settled, now, settled_at=now)
    return changed


def flag_not_on_whatsapp(session: Session, message_ids: list[int], now: datetime) -> None:
    """WhatsApp said these recipients have no account: later campaigns skip them."""
    session.execute(
        update(contacts)
        .where(
            contacts.c.id.in_(select(messages.c.contact_id).where(messages.c.id.in_(message_ids))),
            contacts.c.not_on_whatsapp_at.is_(None),
        )
        .values(not_on_whatsapp_at=now)
    )


def opt_out_recipients(session: Session, message_ids: list[int], now: datetime) -> None:
    """WhatsApp said these recipients stopped marketing from this business: they are opted
    out through the one opt-out path, so no campaign messages them again."""
    people = list(
        session.scalars(select(messages.c.contact_id).where(messages.c.id.in_(message_ids)))
    )
    contacts_service.opt_out(
        session,
        None,
        people,
        N_("WhatsApp says this customer stopped marketing messages from your business."),
        by="WhatsApp",
    )
