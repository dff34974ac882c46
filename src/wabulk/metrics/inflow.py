"""Work waiting outside the campaigns: webhook receipts, imports, outgoing webhooks.

- Receipts are never counted row by row (millions are kept): the received total is the
  highest receipt id, and only the unprocessed ones, which a partial index holds, are
  counted. On PostgreSQL an id is also used up by a provider's retry of a delivery already
  stored (and by a rolled-back insert), so there the totals include those; rates and the
  backlog, what alerts watch, are exact.
- Imports are one row per uploaded sheet: their counters are summed as they are.
- Outgoing webhooks: only pending deliveries are counted, through their partial index.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..models import Import, ImportStatus, OutboxEvent, WebhookReceipt
from ..models.hooks import DeliveryStatus
from .exposition import Family


def receipt_families(session: Session, now: datetime) -> list[Family]:
    received = session.scalar(select(func.max(WebhookReceipt.id))) or 0
    r = WebhookReceipt
    waiting = session.execute(
        select(
            func.count(),
            func.min(r.received_at),
        ).where(r.processed_at.is_(None), r.next_attempt_at.is_not(None))
    ).one()
    given_up = (
        session.scalar(
            select(func.count()).where(r.processed_at.is_(None), r.next_attempt_at.is_(None))
        )
        or 0
    )
    pending, oldest = waiting[0] or 0, waiting[1]
    families = [
        Family(
            "wabulk_webhook_receipts_received_total",
            "counter",
            "Webhook deliveries from the Cloud API stored (see docs/monitoring.md on retries).",
        ),
        Family(
            "wabulk_webhook_receipts_processed_total",
            "counter",
            "Webhook deliveries stored and processed (applied to messages and the inbox).",
        ),
        Family(
            "wabulk_webhook_receipts_pending",
            "gauge",
            "Webhook deliveries stored and waiting to be processed (retries included).",
        ),
        Family(
            "wabulk_webhook_receipts_given_up",
            "gauge",
            "Webhook deliveries that failed every attempt and are kept with their error.",
        ),
        Family(
            "wabulk_webhook_receipts_lag_seconds",
            "gauge",
            "Age of the oldest webhook delivery waiting to be processed (0 when none waits).",
        ),
    ]
    lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    for family, value in zip(
        families, (received, received - pending - given_up, pending, given_up, lag), strict=True
    ):
        family.add(value)
    return families


def import_families(session: Session) -> list[Family]:
    i = Import
    row = session.execute(
        select(
            func.sum(i.rows_read),
            func.sum(i.created_count + i.updated_count + i.unchanged_count),
            func.sum(i.invalid_count),
            func.sum(i.duplicate_count),
            func.sum(case((i.status == ImportStatus.QUEUED, 1), else_=0)),
            func.sum(case((i.status == ImportStatus.RUNNING, 1), else_=0)),
        )
    ).one()
    read, imported, rejected, duplicates, n_queued, n_running = (int(v or 0) for v in row)
    read_f = Family(
        "wabulk_import_rows_read_total", "counter", "Rows read from uploaded sheets by imports."
    )
    imported_f = Family(
        "wabulk_import_rows_imported_total",
        "counter",
        "Rows imported (contacts created, updated or already up to date).",
    )
    rejected_f = Family(
        "wabulk_import_rows_rejected_total",
        "counter",
        "Rows rejected as invalid (no usable phone number, ...); listed in each import's report.",
    )
    duplicate_f = Family(
        "wabulk_import_rows_duplicate_total",
        "counter",
        "Rows repeating a phone number seen earlier in the same sheet.",
    )
    running_f = Family(
        "wabulk_imports", "gauge", "Imports waiting for a worker (queued) or under way (running)."
    )
    read_f.add(read)
    imported_f.add(imported)
    rejected_f.add(rejected)
    duplicate_f.add(duplicates)
    running_f.add(n_queued, status="queued")
    running_f.add(n_running, status="running")
    return [read_f, imported_f, rejected_f, duplicate_f, running_f]


def outbox_families(session: Session, now: datetime) -> list[Family]:
    o = OutboxEvent
    # Served by the partial index ix_outbox_events_due (status = 'pending').
    row = session.execute(
        select(
            func.count(),
            func.sum(case((o.next_attempt_at <= now, 1), else_=0)),
            func.sum(case((o.attempts > 0, 1), else_=0)),
        ).where(o.status == DeliveryStatus.PENDING)
    ).one()
    pending, due, retrying = (int(v or 0) for v in row)
    families = [
        Family(
            "wabulk_outgoing_webhooks_pending",
            "gauge",
            "Deliveries to your webhook endpoints not yet answered with a 2xx.",
        ),
        Family(
            "wabulk_outgoing_webhooks_due",
            "gauge",
            "Pending deliveries whose time to be sent (or retried) has come.",
        ),
        Family(
            "wabulk_outgoing_webhooks_retrying",
            "gauge",
            "Pending deliveries that failed at least once (the endpoint is down or refusing).",
        ),
    ]
    for family, value in zip(families, (pending, due, retrying), strict=True):
        family.add(value)
    return families
