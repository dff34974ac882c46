"""Keeps `message_stats` exact: message outcomes counted per 15-minute UTC slot.

The rule, true after every transaction that moves messages (the code that moves them
calls `bump` in the same transaction, by the rows it actually changed):
- `sent` counts each message in the slot of its `sent_at`; `delivered`, `read` and
  `replied` likewise by their own times; `failed` by `failed_at`, only while the message
  is `failed`, with its error code; `billed` once per message whose `billed_category` is
  set (what the provider charged), in the slot of its `sent_at`, with the category as code.
- Rows are keyed by (slot, campaign, sender, kind, code); a message without a sender
  counts under sender 0, and an answer written in the Inbox (no campaign) under campaign 0,
  so a sender's charts include its answers and no campaign's do.
- `rebuild` recomputes the rows from the messages table, so the rule can always be
  checked (the tests compare both) and restored (`wabulk analytics rebuild`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    cast,
    column,
    delete,
    extract,
    func,
    insert,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from ..db import driver_time
from ..models import SLOT_MINUTES, Message, MessageStat, MessageStatus
from ..models.stats import slot_of
from . import settled

stats = MessageStat.__table__
messages = Message.__table__
KINDS = ("sent", "delivered", "read", "replied", "failed", "billed")
# Kinds whose rows are split by a code: the error code, the billed category.
CODED = ("failed", "billed")
# (kind, campaign id, sender id or None, when, error code or None, how many)
StatRow = tuple[str, int | None, int | None, datetime, str | None, int]
NO_CAMPAIGN = 0
_KEY = ("slot", "campaign_id", "sender_id", "kind", "code")
_SQLITE_UPSERT = (
    "INSERT INTO message_stats (slot, campaign_id, sender_id, kind, code, n) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (slot, campaign_id, sender_id, kind, code) "
    "DO UPDATE SET n = message_stats.n + excluded.n"
)


def bump(session: Session, rows: Iterable[StatRow]) -> None:
    """Add `n` to each row's counter in one grouped upsert (n may be negative).

    - Rows with the same key are summed first: PostgreSQL refuses an upsert that touches
      one row twice, and fewer rows are cheaper.
    - Keys go in sorted order, so two lanes upserting the same slots cannot deadlock.
    """
    totals: Counter[tuple[datetime, int, int, str, str]] = Counter()
    oldest: datetime | None = None
    for kind, campaign_id, sender_id, at, code, n in rows:
        if n:
            oldest = at if oldest is None or at < oldest else oldest
            key_code = (code or "")[:50] if kind in CODED else ""
            key = (slot_of(at), campaign_id or NO_CAMPAIGN, sender_id or 0, kind, key_code)
            totals[key] += n
    moved = [(key, n) for key, n in sorted(totals.items()) if n]
    if not moved:
        return
    if oldest is not None and settled.changes_the_past(oldest):
        settled.touch(session)  # a late count: cached answers about that slot are out of date
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # The driver's own executemany: SQLAlchemy compiled a multi-row VALUES afresh for
        # every row count, which cost the receipts worker more than the upsert itself.
        to_time = driver_time(session)
        session.connection().exec_driver_sql(
            _SQLITE_UPSERT,
            [(to_time(key[0]), *key[1:], n) for key, n in moved],
        )
        return
    values = [dict(zip(_KEY, key, strict=True), n=n) for key, n in moved]
    upsert = postgresql.insert(stats).values(values)
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=[stats.c[k] for k in _KEY],
            set_={"n": stats.c.n + upsert.excluded.n},
        )
    )


def forget_failed(session: Session, campaign_id: int) -> None:
    """Drop a campaign's failed counts: retrying it requeues every failed message.

    Served by ix_message_stats_campaign_id_slot.
    """
    settled.touch(session)
    session.execute(
        delete(stats).where(stats.c.campaign_id == campaign_id, stats.c.kind == "failed")
    )


def slot_sql(session: Session, at: Any) -> ColumnElement[Any]:
    """`slot_of` in SQL, written exactly as the column stores it on each backend."""
    if session.get_bind().dialect.name == "postgresql":
        seconds: ColumnElement[Any] = literal_column(str(SLOT_MINUTES * 60))
        return func.to_timestamp(func.floor(extract("epoch", at) / seconds) * seconds)
    # SQLite keeps UTCDateTime as text, 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC.
    width: ColumnElement[Any] = literal_column(str(SLOT_MINUTES))
    minute = cast(func.strftime("%M", at), Integer) // width * width
    return func.strftime("%Y-%m-%d %H:", at).concat(func.printf("%02d:00.000000", minute))


def rebuild(session: Session, campaign_ids: list[int] | None = None) -> int:
    """Recompute the rows of these campaigns (all when None) from the messages table.

    - Delete then insert, in the caller's transaction; returns the rows written.
    - One grouped INSERT … SELECT per kind: a million messages never pass through Python.
    """
    wipe = delete(stats)
    if campaign_ids is not None:
        if not campaign_ids:
            return 0
        wipe = wipe.where(stats.c.campaign_id.in_(campaign_ids))
    settled.touch(session)
    session.execute(wipe)
    # The slot is an expression SQLAlchemy cannot type as UTCDateTime; insert through a
    # lightweight table so the computed value goes in as the database wrote it.
    raw = table("message_stats", *(column(c) for c in (*_KEY, "n")))
    written = 0
    for kind in KINDS:
        billed = kind == "billed"
        at = messages.c["sent_at" if billed else f"{kind}_at"]
        slot = slot_sql(session, at).label("slot")
        coded = kind in CODED
        # Constants as SQL text: PostgreSQL refuses parameters it cannot match in GROUP BY.
        code = func.coalesce(
            messages.c.billed_category if billed else messages.c.error_code, literal_column("''")
        )
        sender = func.coalesce(messages.c.sender_id, literal_column("0"))
        campaign = func.coalesce(messages.c.campaign_id, literal_column(str(NO_CAMPAIGN)))
        query = select(
            slot,
            campaign,
            sender,
            literal_column(f"'{kind}'"),
            code if coded else literal_column("''"),
            func.count(),
        ).where(at.is_not(None))
        if kind == "failed":
            query = query.where(messages.c.status == MessageStatus.FAILED)
        if billed:
            query = query.where(messages.c.billed_category.is_not(None))
        if campaign_ids is not None:
            which: ColumnElement[bool] = messages.c.campaign_id.in_(campaign_ids)
            if NO_CAMPAIGN in campaign_ids:
                which = which | messages.c.campaign_id.is_(None)
            query = query.where(which)
        query = query.group_by(slot, campaign, sender, *([code] if coded else []))
        written += session.execute(insert(raw).from_select([*_KEY, "n"], query)).rowcount
    return written
