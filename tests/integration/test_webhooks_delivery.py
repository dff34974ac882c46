"""Outgoing webhooks to a real receiver on loopback: signed, retried, never redirected,
and not lost when the worker dies mid-delivery (SQLite and PostgreSQL)."""

from __future__ import annotations

import ast
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.hooks_support import SECRET_KEY, Receiver, add_endpoint, rows, serve, verify, wait_for
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.dispatch.worker import Dispatcher
from wabulk.models import DeliveryStatus, WebhookEndpoint, utcnow
from wabulk.outbox import delivery, emit, endpoints

D = DeliveryStatus
OWNER = "test:1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def _emit(db: Database, n: int = 1, event: str = "message.status") -> list[str]:
    with db.session() as session:
        for i in range(n):
            emit(session, event, {"message_id": i + 1, "status": "sent"}, utcnow())
    return sorted({r.event_id for r in rows(db)})


def test_a_delivery_is_signed_as_documented(migrated_db: Database, receiver: Receiver) -> None:
    db = migrated_db
    _, secret = add_endpoint(db, receiver.url)
    [event_id] = _emit(db)
    assert delivery.deliver_due(db, SECRET_KEY, OWNER) == 1
    [hit] = receiver.hits
    assert verify(secret, hit)
    assert not verify(secret + "x", hit)
    assert not verify(secret, hit, now=int(hit.headers["x-wabulk-timestamp"]) + 301)
    assert hit.headers["x-wabulk-event"] == "message.status"
    assert hit.headers["x-wabulk-event-id"] == event_id
    assert hit.headers["content-type"] == "application/json"
    body = hit.json
    assert body["id"] == event_id and body["event"] == "message.status"
    assert body["data"] == {"message_id": 1, "status": "sent"}
    assert body["created_at"].endswith("Z")
    [row] = rows(db)
    assert row.status == D.DELIVERED and row.attempts == 1 and row.last_code == 200
    assert row.delivered_at is not None and row.lease_owner is None
    # Delivered rows are never posted again.
    assert delivery.deliver_due(db, SECRET_KEY, OWNER, now=utcnow() + timedelta(days=1)) == 0


def test_the_worker_loop_delivers(
    migrated_db: Database, settings: Settings, receiver: Receiver
) -> None:
    add_endpoint(migrated_db, receiver.url)
    [event_id] = _emit(migrated_db)
    dispatcher = Dispatcher(migrated_db, settings)
    assert "webhooks" in [loop.name for loop in dispatcher.loops]
    assert dispatcher.webhook_step() is True
    assert receiver.taken == {event_id: 1}
    assert dispatcher.webhook_step() is False


def test_500s_are_retried_with_backoff_then_delivered(
    migrated_db: Database, receiver: Receiver
) -> None:
    db = migrated_db
    add_endpoint(db, receiver.url)
    [event_id] = _emit(db)
    receiver.mode = "500"
    start = utcnow()
    delivery.deliver_due(db, SECRET_KEY, OWNER, now=start)
    [row] = rows(db)
    assert row.status == D.PENDING and row.attempts == 1 and row.last_code == 500
    assert "500" in (row.last_error or "") and row.lease_owner is None
    first_wait = row.next_attempt_at - start
    assert timedelta(seconds=5) <= first_wait <= timedelta(seconds=15)
    # Not due before its time.
    assert delivery.deliver_due(db, SECRET_KEY, OWNER, now=start + timedelta(seconds=1)) == 0
    delivery.deliver_due(db, SECRET_KEY, OWNER, now=row.next_attempt_at)
    [row] = rows(db)
    assert row.attempts == 2 and row.status == D.PENDING
    assert row.next_attempt_at - start > first_wait + timedelta(seconds=10)  # it grows
    receiver.mode = "ok"
    delivery.deliver_due(db, SECRET_KEY, OWNER, now=row.next_attempt_at)
    [row] = rows(db)
    assert row.status == D.DELIVERED and row.attempts == 3 and row.last_code == 200
    assert row.last_error is None
    assert receiver.taken == {event_id: 3}


def test_a_timeout_is_retried(migrated_db: Database, receiver: Receiver) -> None:
    db = migrated_db
    add_endpoint(db, receiver.url)
    _emit(db)
    receiver.mode = "hang"
    with httpx.Client(timeout=0.5, follow_redirects=False, trust_env=False) as quick:
        delivery.deliver_due(db, SECRET_KEY, OWNER, client=quick)
        [row] = rows(db)
        assert row.status == D.PENDING and row.attempts == 1
        assert row.last_code is None and "No answer within" in (row.last_error or "")
        receiver.mode = "ok"
        delivery.deliver_due(db, SECRET_KEY, OWNER, now=row.next_attempt_at, client=quick)
    assert rows(db)[0].status == D.DELIVERED


def test_failed_for_good_24_hours_after_the_event(
    migrated_db: Database, receiver: Receiver
) -> None:
    db = migrated_db
    add_endpoint(db, receiver.url)
    _emit(db)
    receiver.mode = "500"
    [row] = rows(db)
    late = row.created_at + delivery.GIVE_UP_AFTER - timedelta(seconds=1)
    delivery.deliver_due(db, SECRET_KEY, OWNER, now=late)
    [row] = rows(db)
    assert row.status == D.FAILED and row.last_code == 500 and row.attempts == 1
    assert delivery.deliver_due(db, SECRET_KEY, OWNER, now=late + timedelta(days=2)) == 0


def test_a_redirect_is_never_followed(migrated_db: Database, receiver: Receiver) -> None:
    db = migrated_db
    add_endpoint(db, receiver.url)
    _emit(db)
    receiver.mode = "redirect"
    delivery.deliver_due(db, SECRET_KEY, OWNER)
    [row] = rows(db)
    assert receiver.trap_hits == []
    assert len(receiver.hits) == 1
    assert row.status == D.PENDING and row.last_code == 302
    assert "redirect" in (row.last_error or "")


def test_410_gone_turns_the_endpoint_off(migrated_db: Database, receiver: Receiver) -> None:
    db = migrated_db
    endpoint_id, _ = add_endpoint(db, receiver.url)
    _emit(db, 2)
    receiver.mode = "410"
    delivery.deliver_due(db, SECRET_KEY, OWNER, size=1)
    with db.session() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and not endpoint.active
    # The other delivery is not posted to an endpoint that is off.
    delivery.deliver_due(db, SECRET_KEY, OWNER)
    assert len(receiver.hits) == 1
    assert {r.status for r in rows(db)} == {D.FAILED}


def test_many_deliveries_go_out_at_once(migrated_db: Database, receiver: Receiver) -> None:
    db = migrated_db
    add_endpoint(db, receiver.url)
    ids = _emit(db, 70)
    while delivery.deliver_due(db, SECRET_KEY, OWNER):
        pass
    assert sorted(receiver.taken) == ids
    assert {r.status for r in rows(db)} == {D.DELIVERED}


_WORKER = textwrap.dedent(
    """
    import sys
    from wabulk.db import Database
    from wabulk.outbox import delivery
    db = Database(sys.argv[1])
    while True:
        delivery.deliver_due(db, sys.argv[2], "doomed:1")
    """
)


def test_no_loss_when_the_worker_is_killed_mid_delivery(
    migrated_db: Database, database_url: str, receiver: Receiver
) -> None:
    db = migrated_db
    add_endpoint(db, receiver.url)
    ids = _emit(db, 3)
    receiver.mode = "hold"  # the receiver takes the requests and answers only when released
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, database_url, SECRET_KEY],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: len(receiver.hits) == 3 or proc.poll() is not None, "the posts")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        if proc.stderr:
            proc.stderr.close()
    # The receiver got them; the dead worker never recorded it.
    assert all(r.status == D.PENDING and r.lease_owner == "doomed:1" for r in rows(db))
    receiver.mode = "ok"
    # Not posted again while the dead worker's lease lasts…
    assert delivery.deliver_due(db, SECRET_KEY, OWNER) == 0
    # … and posted again once it ends; the receiver drops the repeats by event id.
    later = utcnow() + delivery.LEASE + timedelta(seconds=1)
    while delivery.deliver_due(db, SECRET_KEY, OWNER, now=later):
        pass
    assert {r.status for r in rows(db)} == {D.DELIVERED}
    assert sorted(receiver.taken) == ids
    assert set(receiver.taken.values()) == {2}


def _docs_receiver(secret: str, port: int) -> str:
    """The Python receiver of docs/webhooks.md, as a shop would copy it."""
    text = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    code = text.split("### Python (standard library only)", 1)[1].split("```python\n", 1)[1]
    code = code.split("```", 1)[0]
    assert 'SECRET = b"whsec_…"' in code and '("0.0.0.0", 8080)' in code
    return code.replace('b"whsec_…"', repr(secret.encode())).replace(
        '("0.0.0.0", 8080)', f'("127.0.0.1", {port})'
    )


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_the_documented_python_receiver_takes_a_delivery(migrated_db: Database) -> None:
    db = migrated_db
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    endpoint_id, secret = add_endpoint(db, url)
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", _docs_receiver(secret, port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for(lambda: _listening(port), "the documented receiver to listen")
        _emit(db)
        delivery.deliver_due(db, SECRET_KEY, OWNER)
        assert rows(db)[0].status == D.DELIVERED
        assert rows(db)[0].last_code == 204
        # A wrong secret is refused by it (401), so the delivery is tried again later.
        with db.session() as session:
            endpoints.rotate_secret(session, None, SECRET_KEY, endpoint_id, "another-secret-12345")
        _emit(db)
        delivery.deliver_due(db, SECRET_KEY, OWNER)
        assert rows(db)[1].last_code == 401 and rows(db)[1].status == D.PENDING
    finally:
        proc.kill()
        out, _ = proc.communicate(timeout=30)
    [line] = out.splitlines()
    name, data = line.split(" ", 1)
    assert name == "message.status"
    assert ast.literal_eval(data) == {"message_id": 1, "status": "sent"}


def test_an_address_the_client_refuses_fails_alone(
    migrated_db: Database, receiver: Receiver
) -> None:
    """A row that cannot even be posted is recorded as a failed try; the batch goes on."""
    db = migrated_db
    add_endpoint(db, receiver.url)
    bad, _ = add_endpoint(db, "https://good.example/hook", name="Bad")
    with db.session() as session:
        session.get(WebhookEndpoint, bad).url = "http://[::1/hook"  # type: ignore[union-attr]
    _emit(db)
    assert delivery.deliver_due(db, SECRET_KEY, OWNER) == 2
    by_endpoint = {r.endpoint_id: r for r in rows(db)}
    assert by_endpoint[bad].status == D.PENDING and by_endpoint[bad].attempts == 1
    assert "could not be made" in (by_endpoint[bad].last_error or "")
    assert len(receiver.hits) == 1
