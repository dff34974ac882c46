"""The delivery log is pruned (delivered rows after 30 days, failed after 90, pending never),
in batches, and the log file names a delivery's server, never its whole address; on SQLite
and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.hooks_support import SECRET_KEY, Receiver, add_endpoint, serve
from wabulk.db import Database
from wabulk.models import DeliveryStatus, OutboxEvent, utcnow
from wabulk.outbox import delivery, retention
from wabulk.outbox.emit import emit

D = DeliveryStatus
outbox = OutboxEvent.__table__


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def _row(endpoint_id: int, n: int, status: D, age: timedelta) -> dict[str, object]:
    at = utcnow() - age
    return {
        "endpoint_id": endpoint_id,
        "event_id": f"evt_{n}",
        "event": "message.status",
        "payload": {},
        "status": status,
        "attempts": 1,
        "created_at": at,
        "next_attempt_at": at,
    }


def test_old_deliveries_are_pruned_and_the_rest_kept(
    migrated_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = migrated_db
    endpoint_id, _ = add_endpoint(db, "https://example.com/hook")
    monkeypatch.setattr(retention, "BATCH", 3)  # several batches from a few rows
    plan = [
        (D.DELIVERED, timedelta(days=40), False),
        (D.FAILED, timedelta(days=40), True),  # failed: kept 90 days
        (D.DELIVERED, timedelta(days=35), False),
        (D.PENDING, timedelta(days=100), True),  # never pruned
        (D.FAILED, timedelta(days=95), False),
        (D.DELIVERED, timedelta(days=31), False),
        (D.DELIVERED, timedelta(days=31), False),
        (D.DELIVERED, timedelta(days=2), True),
        (D.FAILED, timedelta(days=1), True),
    ]
    with db.session() as session:
        for n, (status, age, _) in enumerate(plan):
            session.execute(outbox.insert().values(**_row(endpoint_id, n, status, age)))
        session.commit()
    deleted, finished = retention.prune(db)
    assert finished and deleted == sum(1 for *_, kept in plan if not kept)
    with db.session() as session:
        left = set(session.scalars(select(OutboxEvent.event_id)))
    assert left == {f"evt_{n}" for n, (*_, kept) in enumerate(plan) if kept}


def test_pruning_runs_at_most_once_an_hour_unless_cut_short(
    migrated_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = migrated_db
    endpoint_id, _ = add_endpoint(db, "https://example.com/hook")
    monkeypatch.setattr(retention, "_last_run", None)
    monkeypatch.setattr(retention, "BATCH", 2)
    monkeypatch.setattr(retention, "MAX_BATCHES", 1)
    with db.session() as session:
        for n in range(5):
            row = _row(endpoint_id, n, D.DELIVERED, timedelta(days=60))
            session.execute(outbox.insert().values(**row))
        session.commit()
    assert retention.prune_now_and_then(db) == 2  # cut short: goes on at the next call
    assert retention.prune_now_and_then(db) == 2
    assert retention.prune_now_and_then(db) == 1  # finished
    with db.session() as session:
        session.execute(
            outbox.insert().values(**_row(endpoint_id, 9, D.DELIVERED, timedelta(days=60)))
        )
        session.commit()
    assert retention.prune_now_and_then(db) == 0  # within the hour


def test_the_log_names_the_server_never_the_whole_address(
    migrated_db: Database, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    db = migrated_db
    caplog.set_level(logging.DEBUG)
    key = "catch-1234567-a1b2c3d4e5"
    add_endpoint(db, f"{receiver.url}/{key}?token=q9q9q9q9", name="Zap")
    with db.session() as session:
        emit(session, "message.status", {"message_id": 1, "status": "sent"}, utcnow())
        session.commit()
    assert delivery.deliver_due(db, SECRET_KEY, "test:log") == 1
    assert receiver.hits
    assert f"127.0.0.1:{receiver.port}" in caplog.text and "Zap" in caplog.text
    assert key not in caplog.text and "q9q9q9q9" not in caplog.text
