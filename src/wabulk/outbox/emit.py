"""Writing events out: one durable delivery row per event and subscribed endpoint.

- Rows are written in the caller's transaction, so an event exists exactly when the change
  that caused it is committed, and a crash after the commit loses none (the worker sends
  them later, `delivery.py`).
- The status path runs thousands of times a second: the one cost when nobody subscribes
  is a SELECT of the active endpoints (a handful of rows). Payloads are built only after
  that, by a callable, so their queries are skipped too.
- Payloads carry stable, documented fields (docs/webhooks.md) and never a secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ..models import DeliveryStatus, OutboxEvent, WebhookEndpoint

EVENTS = (
    "message.status",
    "message.replied",
    "contact.opted_out",
    "campaign.completed",
    "import.completed",
)
# Sent only by the "Send a test event" button, to the one endpoint it was pressed for.
TEST_EVENT = "webhook.test"

endpoints = WebhookEndpoint.__table__
outbox = OutboxEvent.__table__


def iso(value: datetime | None) -> str | None:
    """UTC, to the millisecond, with a Z: what every payload time looks like."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def envelope(event_id: str, event: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"id": event_id, "event": event, "created_at": iso(now), "data": data}


def subscribers(session: Session, event: str) -> list[int]:
    """Active endpoints that asked for this event (filtered here: there are a few)."""
    rows = session.execute(
        select(endpoints.c.id, endpoints.c.events).where(endpoints.c.active.is_(True))
    )
    return [row.id for row in rows if event in (row.events or ())]


def emit(session: Session, event: str, data: dict[str, Any], now: datetime) -> int:
    """Queue this event for every endpoint subscribed to it; returns rows written."""
    return emit_many(session, event, lambda: [data], now)


def emit_many(
    session: Session,
    event: str,
    build: Callable[[], Iterable[dict[str, Any]]],
    now: datetime,
) -> int:
    """Queue one event per data dict `build()` returns, for every subscribed endpoint.

    `build` runs only when some endpoint wants the event, so callers on hot paths put
    their payload queries inside it.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown event {event}")
    targets = subscribers(session, event)
    if not targets:
        return 0
    rows: list[dict[str, Any]] = []
    for data in build():
        event_id = new_event_id()
        payload = envelope(event_id, event, data, now)
        rows.extend(
            {
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "event": event,
                "payload": payload,
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
            for endpoint_id in targets
        )
    if rows:
        session.execute(insert(outbox), rows)
    return len(rows)
