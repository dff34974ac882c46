"""Webhook receipts: stored raw before the answer, processed by the worker.

- The web view only verifies, stores (`store_receipt`, unique on the body's hash, so a
  provider's retry of the same bytes is stored once) and nudges this process's worker: it
  answers in milliseconds and a crash after the answer loses nothing.
- `process_receipts` claims stored receipts a few at a time (PostgreSQL `FOR UPDATE SKIP
  LOCKED`, so several workers share them), parses them, routes every part to the sender
  of its phone-number id and applies it through `wabulk.inbound` in the transaction that
  marks the receipts processed. A failure rolls the batch back and applies its receipts
  one by one; one that fails alone is left for a retry with capped backoff and the error
  stored; after MAX_ATTEMPTS it stays, with its error, for the operator, and an Event
  says so.
- Refused deliveries (no or a wrong signature) are counted in the sender's health, with
  an Event at most once a minute per sender so a flood cannot flood the log.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .. import events, inbound
from ..channels.cloud_api import webhook
from ..channels.heard import Heard
from ..db import SQLITE_BUSY_TIMEOUT_MS, Database, driver_marks, driver_time
from ..inbound import keywords as kw
from ..models import Channel, EventLevel, Sender, WebhookReceipt, utcnow
from ..words import said

log = logging.getLogger(__name__)
T = TypeVar("T")
receipts = WebhookReceipt.__table__

MAX_ATTEMPTS = 10
MAX_BACKOFF = timedelta(hours=1)
REFUSAL_EVENT_EVERY = timedelta(minutes=1)
# The worker's pause between deliveries on SQLite while POSTs of its process wait to store.
PAUSE = 0.002
# Receipts applied in one transaction.
BATCH = 8
_waiting = threading.Event()

_nudge = threading.Event()


def nudge() -> None:
    """Wake this process's receipts loop: a receipt was just stored."""
    _nudge.set()


def wait_for_nudge(timeout: float) -> bool:
    """Sleep until nudged or `timeout` passes; True when nudged."""
    nudged = _nudge.wait(timeout)
    _nudge.clear()
    return nudged


_INSERT = (
    "INSERT INTO webhook_receipts (sender_id, body, body_sha256, received_at, "
    "next_attempt_at, attempts) VALUES ({0}, {0}, {0}, {0}, {0}, 0) "
    "ON CONFLICT (body_sha256) DO NOTHING"
)


def store_receipt(session: Session, sender_id: int, body: bytes, now: datetime) -> bool:
    """Store a verified delivery as received; False when these bytes were stored before.

    Written as the driver's own SQL: it runs for every POST of a storm, and building the
    statement through the ORM cost more than the insert itself.
    """
    mark = driver_marks(session, 1)[0]
    at = driver_time(session)(now)
    params = (sender_id, body, hashlib.sha256(body).hexdigest(), at, at)
    sql = _INSERT.format(mark)
    if session.get_bind().dialect.name != "sqlite":
        return bool(session.connection().exec_driver_sql(sql, params).rowcount)
    return _store_polling(session, sql, params)


def _store_polling(session: Session, sql: str, params: tuple[Any, ...]) -> bool:
    """Insert on SQLite, asking for its one write lock every millisecond.

    Writers of this process queue for the lock in turn (`db.WriteGate`); this is for the
    lock held by another process (a `wabulk worker` beside `wabulk serve`). SQLite's own
    busy handler waits 1, 2, 5 … then 100 ms between tries, so a POST waiting behind that
    process's transactions would sleep in 100 ms steps and could miss every gap between
    them. Asking every millisecond finds the gap.
    """
    return write_polling(
        session, lambda: bool(session.connection().exec_driver_sql(sql, params).rowcount)
    )


def write_polling(session: Session, write: Callable[[], T]) -> T:
    """Run `write` (which must take the write lock first, and may commit) on SQLite, asking
    for the lock every millisecond until the busy timeout, as `_store_polling` explains.
    On a starved machine the busy handler's 100 ms steps missed every gap for 10 s."""
    raw = session.connection().connection.driver_connection
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                return write()
            except OperationalError as exc:
                if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                session.rollback()
                raw = session.connection().connection.driver_connection
                raw.execute("PRAGMA busy_timeout = 0")
                _waiting.set()
                time.sleep(0.001)
    finally:
        raw.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def note_refusal(session: Session, sender_id: int, why: str, now: datetime) -> None:
    """Count a refused delivery in the sender's health; an Event at most once a minute."""
    # Locked (PostgreSQL) or behind the write lock (SQLite), and read afresh: a flood of
    # refusals on several threads must add up.
    inbound.hold_writes(session, sender_id)
    sender = session.get(Sender, sender_id, with_for_update=True, populate_existing=True)
    if sender is None:
        return
    health = dict(sender.health or {})
    health["webhooks_refused"] = int(health.get("webhooks_refused") or 0) + 1
    health["webhook_refused_at"] = now.isoformat()
    last = health.get("webhook_refusal_logged_at")
    try:
        due = last is None or now - datetime.fromisoformat(str(last)) >= REFUSAL_EVENT_EVERY
    except ValueError:
        due = True
    if due:
        health["webhook_refusal_logged_at"] = now.isoformat()
        events.record(
            session,
            "webhook.refused",
            said(
                "A webhook for %(name)s was refused: %(why)s (%(n)s refused so far). If this "
                "is not a test, check the app secret in the sender's settings against Meta's "
                "app settings.",
                name=repr(sender.name),
                why=why,
                n=f"{health['webhooks_refused']:,}",
            ),
            level=EventLevel.WARNING,
            data={"sender_id": sender.id},
        )
    sender.health = health


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


def _routes(session: Session) -> dict[str, int]:
    """Cloud API senders by phone-number id."""
    out: dict[str, int] = {}
    rows = session.execute(
        select(Sender.id, Sender.settings).where(Sender.channel == Channel.CLOUD_API)
    )
    for sender_id, settings in rows:
        number = str((settings or {}).get("phone_number_id") or "").strip()
        if number:
            out.setdefault(number, sender_id)
    return out


def _claim(session: Session, receipt_id: int, at: datetime) -> Any:
    """This receipt, marked processed in this transaction; None when it is not due or
    another worker has it (on SQLite the mark is the first write: it takes the lock)."""
    query = _due(at, 1).where(receipts.c.id == receipt_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = session.execute(query).first()
    if row is None:
        return None
    marked = session.execute(
        update(receipts)
        .where(receipts.c.id == row.id, receipts.c.processed_at.is_(None))
        .values(processed_at=at, error=None)
    ).rowcount
    return row if marked else None


def _failed(db: Database, row: Any, error: str, now: datetime, final: bool = False) -> None:
    attempts = MAX_ATTEMPTS if final else row.attempts + 1
    with db.session() as session:
        session.execute(
            update(receipts)
            .where(receipts.c.id == row.id, receipts.c.processed_at.is_(None))
            .values(
                attempts=attempts,
                error=error[:4000],
                # Given up: out of the due index until someone retries it by hand.
                next_attempt_at=None if attempts >= MAX_ATTEMPTS else now + _backoff(attempts),
            )
        )
        if attempts >= MAX_ATTEMPTS:
            # The technical error stays on the receipt and in the log; the Event says what
            # it means for the shop owner.
            happened = (
                said(
                    "A delivery from Meta (receipt %(id)s) could not be read; it is kept with "
                    "its error for review, and what it said (ticks, replies) is not shown yet.",
                    id=row.id,
                )
                if final
                else said(
                    "A delivery from Meta (receipt %(id)s) failed %(n)s times; it is kept with "
                    "its error for review, and what it said (ticks, replies) is not shown yet.",
                    id=row.id,
                    n=attempts,
                )
            )
            events.record(
                session,
                "webhook.failed",
                happened,
                level=EventLevel.ERROR,
                data={"receipt_id": row.id, "sender_id": row.sender_id},
            )


def process_receipts(db: Database, now: datetime | None = None, limit: int = 50) -> int:
    """Apply up to `limit` due receipts; returns how many.

    - Up to BATCH receipts go in one transaction, what they say merged per sender, so a
      storm of small deliveries costs one read of the rows, one counter move and one
      `message_stats` upsert per batch instead of per delivery.
    - On SQLite the bodies are read and parsed before the transaction that takes the one
      write lock, so the lock is held only for the writes; the receipts are marked
      processed first (`processed_at IS NULL`), so a receipt another worker took meanwhile
      is skipped.
    - A batch that fails is rolled back and its receipts applied one at a time, so one bad
      delivery is retried (or given up) alone and never holds the others back.
    """
    done = 0
    words: tuple[str, ...] | None = None
    routes: dict[str, int] | None = None
    sqlite_file = db.engine.dialect.name == "sqlite"
    for _ in range(limit):  # every round takes at least one receipt out of the due ones
        if done >= limit:
            break
        at = now or utcnow()
        if routes is None or words is None:
            with db.session() as session:
                routes, words = _routes(session), kw.keywords(session)
        size = min(BATCH, limit - done)
        applied = (
            _sqlite_batch(db, at, size, routes, words)
            if sqlite_file
            else _locked_batch(db, at, size, routes, words)
        )
        if applied is None:
            break
        done += applied
        if sqlite_file and _waiting.is_set():
            # A POST found the lock held by another process's writer (this process's own
            # take turns, db.WriteGate) and asks every millisecond: leave it free a moment.
            _waiting.clear()
            time.sleep(PAUSE)
    return done


def _due(at: datetime, size: int) -> Any:
    return (
        select(receipts.c.id, receipts.c.sender_id, receipts.c.body, receipts.c.attempts)
        .where(
            receipts.c.processed_at.is_(None),
            receipts.c.next_attempt_at <= at,
            receipts.c.attempts < MAX_ATTEMPTS,
        )
        .order_by(receipts.c.next_attempt_at, receipts.c.id)
        .limit(size)
    )


def _parsed(db: Database, rows: list[Any], at: datetime) -> list[tuple[Any, list[Heard]]]:
    """Each row with what it says; a body that cannot be read is given up at once."""
    parsed, refused = _parsed_in(rows, at)
    for row, why in refused:
        _failed(db, row, why, at, final=True)
    return parsed


def _merged(parsed: list[tuple[Any, list[Heard]]], routes: dict[str, int]) -> dict[int, Heard]:
    """What a batch of deliveries says, one `Heard` per sender, in arrival order."""
    by_sender: dict[int, Heard] = {}
    for row, heards in parsed:
        for heard in heards:
            sender_id = routes.get(heard.account_id) if heard.account_id else row.sender_id
            if sender_id is None:
                log.info("receipt %s: no sender has phone-number id %s", row.id, heard.account_id)
                continue
            into = by_sender.setdefault(sender_id, Heard(account_id=heard.account_id))
            into.statuses.extend(heard.statuses)
            into.replies.extend(heard.replies)
            into.account.extend(heard.account)
            into.opt_outs.extend(heard.opt_outs)
    return by_sender


def _apply_batch(
    session: Session,
    parsed: list[tuple[Any, list[Heard]]],
    routes: dict[str, int],
    words: tuple[str, ...],
    at: datetime,
) -> None:
    for sender_id, heard in sorted(_merged(parsed, routes).items()):
        inbound.apply(session, sender_id, heard, at, keywords=words)


def _sqlite_batch(
    db: Database, at: datetime, size: int, routes: dict[str, int], words: tuple[str, ...]
) -> int | None:
    with db.session() as session:
        rows = session.execute(_due(at, size)).all()
    if not rows:
        return None
    parsed = _parsed(db, rows, at)
    if not parsed:
        return 0
    with db.session() as session:
        # The first write takes SQLite's write lock: what is read after it is current.
        ids = [row.id for row, _ in parsed]
        marked = set(
            session.scalars(
                update(receipts)
                .where(receipts.c.id.in_(ids), receipts.c.processed_at.is_(None))
                .values(processed_at=at, error=None)
                .returning(receipts.c.id)
            )
        )
        ours = [(row, heards) for row, heards in parsed if row.id in marked]
        try:
            _apply_batch(session, ours, routes, words, at)
            session.commit()
        except Exception as exc:
            session.rollback()
            if len(ours) == 1:
                _failed_row(db, ours[0][0], at, exc)
                return 0
            return sum(_one(db, row.id, at, routes, words) for row, _ in ours)
    return len(ours)


def _locked_batch(
    db: Database, at: datetime, size: int, routes: dict[str, int], words: tuple[str, ...]
) -> int | None:
    """PostgreSQL: claim a batch with `FOR UPDATE SKIP LOCKED`, so workers share them."""
    with db.session() as session:
        rows = session.execute(_due(at, size).with_for_update(skip_locked=True)).all()
        if not rows:
            return None
        parsed, refused = _parsed_in(rows, at)
        if parsed:
            session.execute(
                update(receipts)
                .where(receipts.c.id.in_([row.id for row, _ in parsed]))
                .values(processed_at=at, error=None)
            )
        try:
            _apply_batch(session, parsed, routes, words, at)
            session.commit()
        except Exception as exc:
            session.rollback()
            if len(parsed) == 1:
                _failed_row(db, parsed[0][0], at, exc)
                parsed = []
            else:
                parsed = [(row, []) for row, _ in parsed if _one(db, row.id, at, routes, words)]
    for row, why in refused:
        _failed(db, row, why, at, final=True)
    return len(parsed)


def _parsed_in(
    rows: list[Any], at: datetime
) -> tuple[list[tuple[Any, list[Heard]]], list[tuple[Any, str]]]:
    """Parse inside a claim; a refused body is given up once the claim ends."""
    parsed: list[tuple[Any, list[Heard]]] = []
    refused: list[tuple[Any, str]] = []
    for row in rows:
        try:
            parsed.append((row, list(webhook.parse(row.body, at))))
        except webhook.PayloadRefused as exc:
            refused.append((row, str(exc)))
    return parsed, refused


def _one(
    db: Database, receipt_id: int, at: datetime, routes: dict[str, int], words: tuple[str, ...]
) -> int:
    """Apply one receipt in its own transaction; a failure is stored on it for a retry."""
    session = db.sessionmaker()
    row = None
    try:
        row = _claim(session, receipt_id, at)
        if row is None:
            session.rollback()
            return 0
        _apply_batch(session, [(row, list(webhook.parse(row.body, at)))], routes, words, at)
        session.commit()
        return 1
    except webhook.PayloadRefused as exc:
        session.rollback()
        _failed(db, row, str(exc), at, final=True)
        return 0
    except Exception as exc:
        session.rollback()
        if row is None:
            raise
        _failed_row(db, row, at, exc)
        return 0
    finally:
        session.close()


def _failed_row(db: Database, row: Any, at: datetime, exc: Exception) -> None:
    log.warning("receipt %s failed (attempt %s): %s", row.id, row.attempts + 1, exc)
    _failed(db, row, f"{type(exc).__name__}: {exc}", at)
