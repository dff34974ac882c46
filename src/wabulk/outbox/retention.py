"""How long the delivery log keeps its rows: delivered ones for KEEP_DELIVERED, failed ones
(which someone may still be looking into) for KEEP_FAILED. Pending rows are never pruned.

Run from the worker's webhooks loop at most once an hour. The table has no index on time,
so rows are walked from the oldest by id (the primary key) in batches of BATCH, each its
own short transaction, and the walk stops at the first row too young for either rule:
ids grow with time, so everything after it is younger still.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import select

from ..db import Database
from ..models import DeliveryStatus, OutboxEvent, utcnow

KEEP_DELIVERED = timedelta(days=30)
KEEP_FAILED = timedelta(days=90)
BATCH = 1000
MAX_BATCHES = 50  # per run, so one run holds the loop for seconds, not minutes
EVERY = 3600.0  # seconds between runs
outbox = OutboxEvent.__table__
D = DeliveryStatus

_lock = threading.Lock()
_last_run: float | None = None


def prune(db: Database, now: datetime | None = None) -> tuple[int, bool]:
    """Delete what is past keeping; returns (rows deleted, whether the walk finished)."""
    at = now or utcnow()
    delivered_before, failed_before = at - KEEP_DELIVERED, at - KEEP_FAILED
    after, deleted = 0, 0
    for _ in range(MAX_BATCHES):
        with db.session() as session:
            batch = session.execute(
                select(outbox.c.id, outbox.c.status, outbox.c.created_at)
                .where(outbox.c.id > after)
                .order_by(outbox.c.id)
                .limit(BATCH)
            ).all()
            if not batch:
                return deleted, True
            gone = [
                r.id
                for r in batch
                if (r.status == D.DELIVERED and r.created_at < delivered_before)
                or (r.status == D.FAILED and r.created_at < failed_before)
            ]
            if gone:
                session.execute(
                    outbox.delete().where(outbox.c.id.in_(gone), outbox.c.status != D.PENDING)
                )
                session.commit()
                deleted += len(gone)
            young = next((r for r in batch if r.created_at >= delivered_before), None)
            if young is not None or len(batch) < BATCH:
                return deleted, True
            after = batch[-1].id
    return deleted, False


def prune_now_and_then(db: Database, now: datetime | None = None) -> int:
    """`prune`, unless it ran less than EVERY seconds ago and finished; a run cut short
    by MAX_BATCHES goes on at the next call."""
    global _last_run
    if not _lock.acquire(blocking=False):
        return 0
    try:
        clock = time.monotonic()
        if _last_run is not None and clock - _last_run < EVERY:
            return 0
        deleted, finished = prune(db, now)
        _last_run = clock if finished else None
        return deleted
    finally:
        _lock.release()
