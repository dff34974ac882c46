"""Settings → Webhooks and the webhook API: admins only, the secret shown once in full,
addresses checked, the delivery log, the test event reaching a real receiver."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import csrf_from
from tests.hooks_support import SECRET_KEY, Receiver, rows, serve, verify
from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.models import Event, Role, User, WebhookEndpoint
from wabulk.outbox import delivery

EVENTS = ["message.replied", "contact.opted_out"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def _token(db: Database, user: User) -> dict[str, str]:
    with db.session() as session:
        return {"Authorization": f"Bearer {tokens.create_token(session, user, 'x').secret}"}


def _add(client: FlaskClient, url: str, **extra: object) -> tuple[int, str]:
    page = client.get("/settings/webhooks").get_data(as_text=True)
    data = {"csrf_token": csrf_from(page), "name": "n8n replies", "url": url, "events": EVENTS}
    answer = client.post("/settings/webhooks", data={**data, **extra}, follow_redirects=True)
    return answer.status_code, answer.get_data(as_text=True)


def _secret_in(html: str) -> str:
    match = re.search(r'id="new-secret-value" type="text" value="([^"]+)"', html)
    assert match, "no secret shown"
    return match.group(1)


def test_the_page_adds_an_endpoint_and_shows_its_secret_once(
    app: Flask,
    db: Database,
    client: FlaskClient,
    as_role: Callable[[Role], User],
    receiver: Receiver,
) -> None:
    as_role(Role.ADMIN)
    empty = client.get("/settings/webhooks").get_data(as_text=True)
    assert "n8n" in empty and "Zapier" in empty and "Make" in empty
    status, html = _add(client, receiver.url)
    assert status == 200
    secret = _secret_in(html)
    assert secret.startswith("whsec_") and len(secret) > 30
    with db.session() as session:
        [endpoint] = session.query(WebhookEndpoint).all()
        assert secret not in endpoint.secret  # sealed at rest
        audit = " ".join(e.text for e in session.query(Event).all())
    assert secret not in audit
    # Never again in full: the list, the endpoint's page, the API.
    for url in ("/settings/webhooks", f"/settings/webhooks/{endpoint.id}"):
        text = client.get(url).get_data(as_text=True)
        assert secret not in text
    shown = client.get(f"/settings/webhooks/{endpoint.id}").get_data(as_text=True)
    assert f">{endpoint.secret_hint}<" in shown and secret[-4:] in endpoint.secret_hint
    # "Send a test event": queued, delivered by the worker, signed with that secret.
    csrf = csrf_from(shown)
    client.post(f"/settings/webhooks/{endpoint.id}/test", data={"csrf_token": csrf})
    delivery.deliver_due(db, SECRET_KEY, "test:1")
    [hit] = receiver.hits
    assert hit.json["event"] == "webhook.test" and verify(secret, hit)
    log = client.get(f"/settings/webhooks/{endpoint.id}").get_data(as_text=True)
    assert "delivered" in log and "Test event" in log
    # Rotating shows the new one once; the old one no longer signs.
    rotated = client.post(
        f"/settings/webhooks/{endpoint.id}/rotate",
        data={"csrf_token": csrf},
        follow_redirects=True,
    )
    new = _secret_in(rotated.get_data(as_text=True))
    assert new != secret
    assert new not in client.get(f"/settings/webhooks/{endpoint.id}").get_data(as_text=True)
    client.post(f"/settings/webhooks/{endpoint.id}/test", data={"csrf_token": csrf})
    delivery.deliver_due(db, SECRET_KEY, "test:1")
    assert verify(new, receiver.hits[-1]) and not verify(secret, receiver.hits[-1])
    # Delete, with its log.
    client.post(f"/settings/webhooks/{endpoint.id}/delete", data={"csrf_token": csrf})
    assert client.get(f"/settings/webhooks/{endpoint.id}").status_code == 404
    assert rows(db) == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/hook", "https://"),
        ("https://user:pass@example.com/hook", "user name and password"),
        ("https://" + "a" * 2000 + ".com", "longer than"),
        ("not a url", "spaces"),
        ("https:///nohost", "https://"),
        ("https://a..b/hook", "server name"),
    ],
)
def test_bad_addresses_are_refused_with_a_reason(
    db: Database,
    client: FlaskClient,
    as_role: Callable[[Role], User],
    url: str,
    words: str,
) -> None:
    as_role(Role.ADMIN)
    status, html = _add(client, url)
    assert status == 400 and words in html
    with db.session() as session:
        assert session.query(WebhookEndpoint).count() == 0


def test_only_admins_see_webhooks(
    client: FlaskClient, as_role: Callable[[Role], User], db: Database
) -> None:
    operator = as_role(Role.OPERATOR)
    assert client.get("/settings/webhooks").status_code == 403
    assert "Webhooks" not in client.get("/settings/").get_data(as_text=True)
    answer = client.get("/api/v1/webhook-endpoints", headers=_token(db, operator))
    assert answer.status_code == 403


def test_a_form_without_its_csrf_token_is_refused(
    db: Database, client: FlaskClient, as_role: Callable[[Role], User]
) -> None:
    as_role(Role.ADMIN)
    answer = client.post(
        "/settings/webhooks", data={"name": "x", "url": "https://example.com", "events": EVENTS}
    )
    assert answer.status_code == 400
    with db.session() as session:
        assert session.query(WebhookEndpoint).count() == 0


def test_the_api_shows_the_secret_only_when_it_is_made(
    dual: tuple[Flask, Database], make_user: Callable[..., User]
) -> None:
    app, db = dual
    client = app.test_client()
    with db.session() as session:
        admin = User(email="boss@example.com", password_hash="x", role=Role.ADMIN)
        session.add(admin)
        session.flush()
        auth = {"Authorization": f"Bearer {tokens.create_token(session, admin, 'x').secret}"}
    made = client.post(
        "/api/v1/webhook-endpoints",
        json={"name": "Zap", "url": "https://hooks.example.com/a", "events": EVENTS},
        headers=auth,
    )
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    secret, endpoint_id = body["secret"], body["id"]
    assert body["secret_hint"] == "…" + secret[-4:]
    seen = [
        client.get("/api/v1/webhook-endpoints", headers=auth),
        client.get(f"/api/v1/webhook-endpoints/{endpoint_id}", headers=auth),
        client.put(
            f"/api/v1/webhook-endpoints/{endpoint_id}",
            json={"name": "Zap 2", "url": "https://hooks.example.com/b", "events": EVENTS},
            headers=auth,
        ),
        client.post(f"/api/v1/webhook-endpoints/{endpoint_id}/test", headers=auth),
        client.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=auth),
    ]
    for answer in seen:
        assert answer.status_code in (200, 202), answer.get_json()
        assert secret not in answer.get_data(as_text=True)
        assert '"secret"' not in answer.get_data(as_text=True)
    [delivery_row] = seen[-1].get_json()["data"]
    assert delivery_row["event"] == "webhook.test" and delivery_row["status"] == "pending"
    rotated = client.post(
        f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret", json={}, headers=auth
    )
    assert rotated.status_code == 200 and rotated.get_json()["secret"] != secret
    refused = client.post(
        "/api/v1/webhook-endpoints",
        json={"name": "Bad", "url": "https://u:p@example.com", "events": EVENTS},
        headers=auth,
    )
    assert refused.status_code == 422
    assert refused.get_json()["error"]["details"][0]["field"] == "url"
    gone = client.delete(f"/api/v1/webhook-endpoints/{endpoint_id}", headers=auth)
    assert gone.status_code == 204
    assert client.get(f"/api/v1/webhook-endpoints/{endpoint_id}", headers=auth).status_code == 404
