"""Webhook receipts: stored raw before the answer, processed by the worker.

- The web view only verifies, stores (`store_receipt`, unique on the body's hash, so a
  provider's retry of the same bytes is stored once) and nudges this process's worker: it
  answers in milliseconds and a crash after the answer loses nothing.
- `process_receipts` claims stored receipts one at a time (PostgreSQL `FOR UPDATE SKIP
  LOCKED`, so several workers share them), parses each, routes every part to the sender
  of its phone-number id and applies it through `wabulk.inbound` in the transaction that
  marks the receipt processed. A failure rolls all of it back and leaves the receipt for
  a retry with capped backoff and the error stored; after MAX_ATTEMPTS it stays, with its
  error, for the operator, and an Event says so.
- Refused deliveries (no or a wrong signature) are counted in the sender's health, with
  an Event at most once a minute per sender so a flood cannot flood the log.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .. import events, inbound
from ..channels.cloud_api import webhook
from ..db import SQLITE_BUSY_TIMEOUT_MS, Database
from ..inbound import keywords as kw
from ..models import Channel, EventLevel, Sender, WebhookReceipt, utcnow

log = logging.getLogger(__name__)
receipts = WebhookReceipt.__table__

MAX_ATTEMPTS = 10
MAX_BACKOFF = timedelta(hours=1)
REFUSAL_EVENT_EVERY = timedelta(minutes=1)
# The worker's pause between deliveries on SQLite while POSTs of its process wait to store.
PAUSE = 0.002
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


def store_receipt(session: Session, sender_id: int, body: bytes, now: datetime) -> bool:
    """Store a verified delivery as received; False when these bytes were stored before."""
    values = {
        "sender_id": sender_id,
        "body": body,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "received_at": now,
        "next_attempt_at": now,
        "attempts": 0,
    }
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(receipts).values(**values)
    statement = insert.on_conflict_do_nothing(index_elements=[receipts.c.body_sha256])
    if dialect != "sqlite":
        return bool(session.execute(statement).rowcount)
    return _store_polling(session, statement)


def _store_polling(session: Session, statement: Any) -> bool:
    """Insert on SQLite, asking for its one write lock every millisecond.

    SQLite's own busy handler waits 1, 2, 5 … then 100 ms between tries, so a POST that
    waits behind the worker's transactions sleeps in 100 ms steps and can miss every gap
    between them: answers took up to a second under a storm. Asking every millisecond
    finds the gap the worker leaves after each delivery (see `process_receipts`).
    """
    raw = session.connection().connection.driver_connection
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                return bool(session.execute(statement).rowcount)
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
            f"A webhook for {sender.name!r} was refused: {why} "
            f"({health['webhooks_refused']:,} refused so far). If this is not a test, check "
            "the app secret in the sender's settings against Meta's app settings.",
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


def _claim(session: Session, now: datetime) -> Any:
    """The next due receipt, marked processed in this transaction; None when none is due."""
    query = (
        select(receipts.c.id, receipts.c.sender_id, receipts.c.body, receipts.c.attempts)
        .where(
            receipts.c.processed_at.is_(None),
            receipts.c.next_attempt_at <= now,
            receipts.c.attempts < MAX_ATTEMPTS,
        )
        .order_by(receipts.c.next_attempt_at, receipts.c.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = session.execute(query).first()
    if row is None:
        return None
    # The first write of the transaction: on SQLite it takes the write lock, so what is read
    # next is current; a worker that got here first has already marked it.
    marked = session.execute(
        update(receipts)
        .where(receipts.c.id == row.id, receipts.c.processed_at.is_(None))
        .values(processed_at=now, error=None)
    ).rowcount
    return row if marked else False


def _apply(
    session: Session, row: Any, routes: dict[str, int], words: tuple[str, ...], now: datetime
) -> inbound.Applied:
    done = inbound.Applied()
    for heard in webhook.parse(row.body, now):
        sender_id = routes.get(heard.account_id) if heard.account_id else row.sender_id
        if sender_id is None:
            log.info("receipt %s: no sender has phone-number id %s", row.id, heard.account_id)
            continue
        done.add(inbound.apply(session, sender_id, heard, now, keywords=words))
    return done


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
            happened = "could not be read" if final else f"failed {attempts} times"
            events.record(
                session,
                "webhook.failed",
                f"A delivery from Meta (receipt {row.id}) {happened}; it is kept with its "
                "error for review, and what it said (ticks, replies) is not shown yet.",
                level=EventLevel.ERROR,
                data={"receipt_id": row.id, "sender_id": row.sender_id},
            )


def process_receipts(db: Database, now: datetime | None = None, limit: int = 50) -> int:
    """Apply up to `limit` due receipts, each in its own transaction; returns how many."""
    done = 0
    words: tuple[str, ...] | None = None
    routes: dict[str, int] | None = None
    sqlite_file = db.engine.dialect.name == "sqlite"
    for _ in range(limit):
        at = now or utcnow()
        session = db.sessionmaker()
        row = None
        try:
            if routes is None or words is None:
                routes, words = _routes(session), kw.keywords(session)
                session.commit()
            row = _claim(session, at)
            if row is None:
                session.rollback()
                break
            if row is False:
                session.rollback()
                continue
            _apply(session, row, routes, words, at)
            session.commit()
            done += 1
            if sqlite_file and _waiting.is_set():
                # A POST of this process is waiting to store its delivery (it asks every
                # millisecond, see store_receipt): leave the write lock free a moment.
                _waiting.clear()
                time.sleep(PAUSE)
        except webhook.PayloadRefused as exc:
            session.rollback()
            _failed(db, row, str(exc), at, final=True)
        except Exception as exc:
            session.rollback()
            if row is None or row is False:
                raise
            log.warning("receipt %s failed (attempt %s): %s", row.id, row.attempts + 1, exc)
            _failed(db, row, f"{type(exc).__name__}: {exc}", at)
        finally:
            session.close()
    return done
