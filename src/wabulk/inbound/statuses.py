"""Statuses heard back, applied to messages: forward-only, idempotent, set-based.

- Matched by our own message id (the channel echoes it, e.g. Cloud API callback data),
  else by the provider's id among this sender's messages.
- Forward-only: queued/sending/unknown < sent < delivered < read. Read implies delivered;
  a late `delivered` never downgrades `read`; a duplicate changes nothing. `failed` sits
  beside them: it wins over `sent`, is ignored after `delivered`/`read` or a reply to the
  message, and nothing moves a failed message forward again.
- A status for a message still `sending` (the webhook beat the dispatcher's own settle),
  `unknown` (its worker died) or `queued` after a retry (it did go out before) settles it.
  The dispatcher's later settle is guarded by `status = 'sending' AND lease_owner`, so it
  then changes nothing.
- One receipt's statuses go through one bulk read of the rows (locked on PostgreSQL) and
  one executemany, with the campaign counters and `message_stats` moved by what actually
  changed, in the caller's transaction.
- A message Meta failed after `sent` loses its `sent_at` and what was billed: it did not
  reach the customer and is not charged, and a later "send again" counts its send afresh.
"""

from __future__ import annotations

from collections import Counter, defaultdict, namedtuple
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..analytics import stats
from ..campaigns.counters import shift_counters
from ..channels.heard import HeardError, StatusUpdate
from ..db import driver_marks, driver_time
from ..models import Contact, Message, MessageStatus
from ..outbox import causes as events_out

S = MessageStatus
messages = Message.__table__
contacts = Contact.__table__

RANK = {S.QUEUED: 0, S.SENDING: 0, S.UNKNOWN: 0, S.SENT: 1, S.DELIVERED: 2, S.READ: 3}
STATUS_OF = {"sent": S.SENT, "delivered": S.DELIVERED, "read": S.READ}
# Order of statuses with the same timestamp: the furthest last, a failure after them all.
_ORDER = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
# A big receipt is read in chunks of ids so no statement passes the drivers' parameter limits.
CHUNK = 900


class StaleRead(Exception):
    """A row changed between the read and the write (SQLite without a prior write lock):
    the caller rolls back and applies the whole delivery again."""


@dataclass
class StatusEffects:
    """What applying a batch of statuses did, for the caller's counts and side effects."""

    changed: Counter = field(default_factory=Counter)  # new status → messages moved there
    unmatched: int = 0
    opt_out: list[tuple[int, HeardError]] = field(default_factory=list)  # (contact, why)
    not_on_whatsapp: list[int] = field(default_factory=list)  # contact ids
    sender_errors: list[HeardError] = field(default_factory=list)


_COLUMNS = (
    messages.c.id,
    messages.c.campaign_id,
    messages.c.contact_id,
    messages.c.sender_id,
    messages.c.status,
    messages.c.attempts,
    messages.c.provider_message_id,
    messages.c.sent_at,
    messages.c.delivered_at,
    messages.c.read_at,
    messages.c.failed_at,
    messages.c.replied_at,
    messages.c.billed_category,
    messages.c.error_code,
    messages.c.error_detail,
    messages.c.lease_owner,
    messages.c.lease_until,
)
_WRITTEN = (
    "status",
    "attempts",
    "provider_message_id",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "billed_category",
    "error_code",
    "error_detail",
    "lease_owner",
    "lease_until",
)
_TIMES = ("sent_at", "delivered_at", "read_at", "failed_at", "lease_until")


_NAMES: tuple[str, ...] = tuple(column.name for column in _COLUMNS)
_ROW = namedtuple("_ROW", _NAMES)  # type: ignore[misc]
_SQLITE_SELECT = f"SELECT {', '.join(_NAMES)} FROM messages WHERE "  # noqa: S608
_STATUS_AT = _NAMES.index("status")
_TIMES_AT = tuple(
    i for i, name in enumerate(_NAMES) if name.endswith("_at") or name == "lease_until"
)


def _sqlite_rows(session: Session, ours: list[int], theirs: list[str]) -> Iterator[Any]:
    """The same rows as the select below, read with the driver's own SQL on SQLite.

    SQLAlchemy's expanding IN lists and its per-value result processing cost more than the
    read itself, for every batch of a storm. Times come back as SQLAlchemy returns them
    (aware, UTC), each distinct text parsed once; the status as its enum.
    """
    conditions = []
    if ours:
        conditions.append(f"id IN ({', '.join('?' * len(ours))})")
    if theirs:
        conditions.append(f"provider_message_id IN ({', '.join('?' * len(theirs))})")
    sql = _SQLITE_SELECT + " OR ".join(conditions) + " ORDER BY id"
    parsed: dict[str, datetime] = {}
    for raw in session.connection().exec_driver_sql(sql, (*ours, *theirs)):
        values = list(raw)
        values[_STATUS_AT] = S(values[_STATUS_AT])
        for i in _TIMES_AT:
            text = values[i]
            if text is not None:
                when = parsed.get(text)
                if when is None:
                    when = datetime.fromisoformat(text)
                    when = parsed[text] = (
                        when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
                    )
                values[i] = when
        yield _ROW(*values)


def _read_rows(session: Session, sender_id: int, updates: list[StatusUpdate]) -> list[Any]:
    ours = sorted({u.message_id for u in updates if u.message_id is not None})
    theirs = sorted({u.provider_message_id for u in updates if u.provider_message_id})
    locking = session.get_bind().dialect.name == "postgresql"
    wanted = set(ours)
    found: dict[int, Any] = {}
    for start in range(0, max(len(ours), len(theirs)), CHUNK):
        a, b = ours[start : start + CHUNK], theirs[start : start + CHUNK]
        if session.get_bind().dialect.name == "sqlite":
            for row in _sqlite_rows(session, a, b):
                if row.id in wanted or row.sender_id == sender_id:
                    found[row.id] = row
            continue
        conditions: list[Any] = []
        if a:
            conditions.append(messages.c.id.in_(a))
        if b:
            # The sender is checked below, not in SQL: with `AND sender_id = ?` SQLite walks
            # the (sender_id, sent_at) index, every message the sender ever sent, instead of
            # the provider-id index.
            conditions.append(messages.c.provider_message_id.in_(b))
        query = select(*_COLUMNS).where(or_(*conditions)).order_by(messages.c.id)
        if locking:
            # In id order, so two workers applying overlapping receipts queue, never deadlock.
            query = query.with_for_update()
        for row in session.execute(query):
            if row.id in wanted or row.sender_id == sender_id:
                found[row.id] = row
    return [found[k] for k in sorted(found)]


def _may_settle(row: dict[str, Any]) -> bool:
    """Whether a status may move this message at all."""
    status = row["status"]
    if status in (S.SKIPPED, S.FAILED):
        return False
    # Queued and never tried: nothing of ours went out, so a status cannot be about it.
    return not (status == S.QUEUED and row["attempts"] == 0)


def _advance(row: dict[str, Any], u: StatusUpdate, answered: bool = False) -> None:
    """Apply one status to the row's values in memory; `answered`: the customer replied to
    this message, so it reached them."""
    if not _may_settle(row):
        return
    status = row["status"]
    was_open = RANK[status] == 0
    if u.status == "failed":
        if status in (S.DELIVERED, S.READ) or answered:
            # It reached the customer: a late failure is not the truth (and a "send
            # again" of it would message them twice).
            return
        error = u.errors[0] if u.errors else HeardError(code="failed")
        row["status"] = S.FAILED
        row["failed_at"] = u.at
        row["sent_at"] = None
        row["billed_category"] = None
        row["error_code"] = error.code[:50]
        row["error_detail"] = (error.sentence or error.title or error.details or error.code)[:1000]
        row["_error"] = error
    else:
        target = STATUS_OF[u.status]
        if RANK[target] > RANK[status]:
            row["status"] = target
        rank = RANK[row["status"]]
        row["sent_at"] = row["sent_at"] or u.at
        if rank >= 2:
            row["delivered_at"] = row["delivered_at"] or u.at
        if rank >= 3:
            row["read_at"] = row["read_at"] or u.at
        if u.billed_category and not row["billed_category"]:
            row["billed_category"] = u.billed_category[:40]
        if was_open:
            row["error_code"] = row["error_detail"] = None
    if was_open:
        if status == S.SENDING:
            row["attempts"] += 1  # what the dispatcher's own settle would have counted
        row["lease_owner"] = row["lease_until"] = None
    if u.provider_message_id and not row["provider_message_id"]:
        row["provider_message_id"] = u.provider_message_id[:200]


def _stat_rows(old: Any, new: dict[str, Any]) -> list[stats.StatRow]:
    cid, sid = old.campaign_id, old.sender_id
    out: list[stats.StatRow] = []
    for kind in ("sent", "delivered", "read"):
        before, after = getattr(old, f"{kind}_at"), new[f"{kind}_at"]
        if before != after:
            if before is not None:
                out.append((kind, cid, sid, before, None, -1))
            if after is not None:
                out.append((kind, cid, sid, after, None, 1))
    if new["status"] == S.FAILED and old.status != S.FAILED:
        out.append(("failed", cid, sid, new["failed_at"], new["error_code"], 1))
    billed_before = (old.billed_category, old.sent_at) if old.billed_category else None
    billed_after = (new["billed_category"], new["sent_at"]) if new["billed_category"] else None
    if billed_before != billed_after:
        if billed_before is not None and billed_before[1] is not None:
            out.append(("billed", cid, sid, billed_before[1], billed_before[0], -1))
        if billed_after is not None and billed_after[1] is not None:
            out.append(("billed", cid, sid, billed_after[1], billed_after[0], 1))
    return out


def apply_statuses(
    session: Session, sender_id: int, updates: list[StatusUpdate], now: datetime
) -> StatusEffects:
    """Apply these statuses heard by one sender; the caller commits."""
    effects = StatusEffects()
    if not updates:
        return effects
    rows = _read_rows(session, sender_id, updates)
    by_ours = {r.id: r for r in rows}
    by_theirs = {r.provider_message_id: r for r in rows if r.provider_message_id}
    heard: dict[int, list[StatusUpdate]] = defaultdict(list)
    for u in updates:
        row = by_ours.get(u.message_id) if u.message_id is not None else None
        if row is None and u.provider_message_id:
            candidate = by_theirs.get(u.provider_message_id)
            row = candidate if candidate is not None and candidate.sender_id == sender_id else None
        if row is None:
            effects.unmatched += 1
            continue
        heard[row.id].append(u)

    writes: list[tuple[Any, dict[str, Any]]] = []
    for mid, said in heard.items():
        old = by_ours[mid]
        was = old._asdict()
        before = {name: was[name] for name in _WRITTEN}
        new = dict(before)
        answered = was["replied_at"] is not None
        for u in sorted(said, key=lambda u: (u.at, _ORDER[u.status])):
            _advance(new, u, answered)
        error = new.pop("_error", None)
        if new == before:
            continue
        writes.append((old, new))
        if new["status"] == S.FAILED and old.status != S.FAILED and error is not None:
            if error.effect == "opt_out":
                effects.opt_out.append((old.contact_id, error))
            elif error.effect == "not_on_whatsapp":
                effects.not_on_whatsapp.append(old.contact_id)
            if error.kind == "sender":
                effects.sender_errors.append(error)
    if not writes:
        return effects
    _write(session, writes, now)

    # An answer written in the Inbox (campaign None) moves like any message; no campaign
    # counts it, and `message_stats` keeps it under campaign 0.
    moves: dict[int | None, Counter] = defaultdict(Counter)
    counted: list[stats.StatRow] = []
    for old, new in writes:
        if new["status"] != old.status:
            moves[old.campaign_id][old.status] -= 1
            moves[old.campaign_id][new["status"]] += 1
            effects.changed[new["status"].value] += 1
        counted.extend(_stat_rows(old, new))
    for campaign_id, deltas in sorted(moves.items(), key=lambda kv: kv[0] or 0):
        shift_counters(session, campaign_id, dict(deltas))
    stats.bump(session, counted)
    events_out.message_statuses(
        session, [old.id for old, new in writes if new["status"] != old.status], now
    )
    if effects.not_on_whatsapp:
        flag_not_on_whatsapp(session, effects.not_on_whatsapp, now)
    return effects


# PostgreSQL types of the written columns, for the arrays of its one-statement update.
_PG_TYPES = {
    "status": "varchar",
    "attempts": "integer",
    "provider_message_id": "varchar",
    "billed_category": "varchar",
    "error_code": "varchar",
    "error_detail": "varchar",
    "lease_owner": "varchar",
    **{name: "timestamptz" for name in _TIMES},
}
PG_ROWS = 5000  # rows per UPDATE … FROM unnest(…)


def _row_values(new: dict[str, Any], to_time: Any) -> list[Any]:
    return [
        to_time(new[name]) if name in _TIMES else new[name].value if name == "status" else new[name]
        for name in _WRITTEN
    ]


def _write(session: Session, writes: list[tuple[Any, dict[str, Any]]], now: datetime) -> None:
    """Write the rows, guarded by the status read: a row that moved meanwhile is a stale read.

    - PostgreSQL: one UPDATE … FROM unnest(arrays); an executemany there costs a round
      trip per row. SQLite: one executemany, which runs in-process.
    """
    to_time = driver_time(session)
    stamp = to_time(now)
    conn = session.connection()
    done = 0
    if session.get_bind().dialect.name == "postgresql":
        names = ("id", "old_status", *_WRITTEN)
        types = ("integer", "varchar", *(_PG_TYPES[name] for name in _WRITTEN))
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        sets = ", ".join(f"{name} = v.{name}" for name in _WRITTEN)
        # One array a column, so the statement's text never changes with the row count
        # (the driver parses and prepares it once).
        sql = (
            f"UPDATE messages AS m SET {sets}, updated_at = %s "  # noqa: S608
            f"FROM unnest({arrays}) AS v({', '.join(names)}) "
            "WHERE m.id = v.id AND m.status = v.old_status"
        )
        for start in range(0, len(writes), PG_ROWS):
            chunk = writes[start : start + PG_ROWS]
            table = [[old.id, old.status.value, *_row_values(new, to_time)] for old, new in chunk]
            columns = [list(column) for column in zip(*table, strict=True)]
            done += conn.exec_driver_sql(sql, (stamp, *columns)).rowcount
    else:
        # A storm's statuses share their whole-second times: each is formatted once.
        formatted: dict[datetime, Any] = {}

        def cached(value: datetime | None) -> Any:
            if value is None:
                return None
            text = formatted.get(value)
            if text is None:
                text = formatted[value] = to_time(value)
            return text

        mark = driver_marks(session, 1)[0]
        sets = ", ".join(f"{name} = {mark}" for name in _WRITTEN)
        sql = (
            f"UPDATE messages SET {sets}, updated_at = {mark} "  # noqa: S608
            f"WHERE id = {mark} AND status = {mark}"
        )
        rows: list[Any] = [
            (*_row_values(new, cached), stamp, old.id, old.status.value) for old, new in writes
        ]
        done = conn.exec_driver_sql(sql, rows).rowcount
    if done != len(writes):
        raise StaleRead(f"{len(writes) - done} message(s) changed while statuses were applied")


def flag_not_on_whatsapp(session: Session, contact_ids: list[int], now: datetime) -> None:
    """WhatsApp said these customers have no account: later campaigns skip them."""
    session.execute(
        update(contacts)
        .where(contacts.c.id.in_(sorted(set(contact_ids))), contacts.c.not_on_whatsapp_at.is_(None))
        .values(not_on_whatsapp_at=now)
    )
