"""Settings → Webhooks answers "Add" and "Make a new secret" with a redirect: reloading the
page makes no second webhook and no second secret, and the secret is still shown exactly
once, to the admin who made it. Plus the words those pages and the Activity page use; on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.hooks_support import SECRET_KEY
from wabulk.auth import service as users
from wabulk.db import Database
from wabulk.models import Role, WebhookEndpoint
from wabulk.outbox import delivery

from ..conftest import PASSWORD, csrf_from, login

SECRET = re.compile(r'id="new-secret-value"[^>]*value="([^"]+)"')
PATH_KEY = "/catch/1234567/a1b2c3d4e5"


def _signed_in(app: Flask, db: Database, email: str) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, email, PASSWORD, Role.ADMIN)
    assert login(client, email).status_code == 302
    return client


def _count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0


def _hint(db: Database) -> str:
    with db.session() as session:
        return session.scalars(select(WebhookEndpoint.secret_hint)).one()


def _add(client: FlaskClient, url: str) -> tuple[str, str]:
    """(the address the answer redirects to, the page there)."""
    csrf = csrf_from(client.get("/settings/webhooks").get_data(as_text=True))
    data = {"csrf_token": csrf, "name": "Orders flow", "url": url, "events": ["message.status"]}
    answer = client.post("/settings/webhooks", data=data)
    assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]
    where = answer.headers["Location"]
    return where, client.get(where).get_data(as_text=True)


@pytest.fixture
def failing() -> Iterator[str]:
    """A receiver answering 500 with a word of its own."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            size = 0
            while line := self.rfile.readline():
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    size = int(line.split(b":")[1])
            self.rfile.read(size)
            self.wfile.write(
                b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 4\r\n\r\ndown"
            )

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{PATH_KEY}"
    finally:
        server.shutdown()
        server.server_close()


def test_reloading_after_add_or_new_secret_changes_nothing_and_shows_the_secret_once(
    dual: tuple[Flask, Database],
) -> None:
    app, db = dual
    client = _signed_in(app, db, "owner@shop.example")
    where, page = _add(client, "https://hooks.example.com" + PATH_KEY)
    [secret] = SECRET.findall(page)
    assert "/settings/webhooks/" in where and "secret=" in where
    # The reload: the same address again. No second webhook, and the secret is not shown.
    again = client.get(where)
    assert _count(db) == 1
    assert secret not in again.get_data(as_text=True) and not SECRET.search(
        again.get_data(as_text=True)
    )
    assert "showed the new signing secret once already" in again.get_data(as_text=True)
    endpoint_id = int(re.search(r"/settings/webhooks/(\d+)", where).group(1))  # type: ignore[union-attr]
    csrf = csrf_from(again.get_data(as_text=True))
    rotated = client.post(f"/settings/webhooks/{endpoint_id}/rotate", data={"csrf_token": csrf})
    assert rotated.status_code == 302
    hint = _hint(db)
    # Another admin given the address does not get the secret.
    other = _signed_in(app, db, "partner@shop.example")
    assert not SECRET.search(other.get(rotated.headers["Location"]).get_data(as_text=True))
    shown = client.get(rotated.headers["Location"])
    assert shown.headers.get("Cache-Control") == "no-store"
    # The other admin's try took nothing: it waits for its own admin, then is gone.
    [new] = SECRET.findall(shown.get_data(as_text=True))
    assert new != secret and new[-4:] in hint
    assert not SECRET.search(client.get(rotated.headers["Location"]).get_data(as_text=True))
    assert _hint(db) == hint  # the reload rotated nothing


def test_the_same_address_twice_is_warned_about(dual: tuple[Flask, Database]) -> None:
    app, db = dual
    client = _signed_in(app, db, "owner@shop.example")
    _, first = _add(client, "https://hooks.example.com/a")
    assert "already sends to this address" not in first
    _, second = _add(client, "https://hooks.example.com/a")
    assert "The webhook Orders flow already sends to this address" in second
    assert _count(db) == 2


def test_the_words_on_the_log_and_the_activity_page(
    dual: tuple[Flask, Database], failing: str
) -> None:
    app, db = dual
    client = _signed_in(app, db, "owner@shop.example")
    where, page = _add(client, failing)
    endpoint_id = int(re.search(r"/settings/webhooks/(\d+)", where).group(1))  # type: ignore[union-attr]
    csrf = csrf_from(page)
    client.post(f"/settings/webhooks/{endpoint_id}/rotate", data={"csrf_token": csrf})
    sent = client.post(
        f"/settings/webhooks/{endpoint_id}/test", data={"csrf_token": csrf}, follow_redirects=True
    ).get_data(as_text=True)
    assert "reload the page" not in sent and "Refresh" in sent
    assert delivery.deliver_due(db, SECRET_KEY, "test:words") == 1
    log = client.get(f"/settings/webhooks/{endpoint_id}").get_data(as_text=True)
    assert "Your server answered 500 (an error on its side) and said &#34;down&#34;." in log
    assert "wabulk tries again at" in log and "kept in this log for 30 days" in log
    activity = client.get("/activity").get_data(as_text=True)
    host = failing.removesuffix(PATH_KEY)
    assert (
        f"owner@shop.example made a new signing secret for the webhook Orders flow ({host})"
        in activity
    )
    assert "a1b2c3d4e5" not in activity
    listing = client.get("/settings/webhooks").get_data(as_text=True)
    assert ">paused<" not in listing and ">on<" in listing
    assert "endpoint" not in re.sub(r"<[^>]*>", " ", listing).lower()
