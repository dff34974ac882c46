"""Settings → General, Users, API tokens and Webhooks in each of our languages: every page with
real data (users of each state, live and revoked tokens, a webhook with delivered, failed and
retried deliveries) shows no sentence the catalogue translates; the services' English
sentences (refusals, delivery errors, Events, sign-in failures) are read in the reader's
language."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.models import DeliveryStatus, OutboxEvent, Role, User, utcnow
from wabulk.outbox import delivery, endpoints

from ..conftest import csrf_from, get_csrf, login
from .test_i18n_groundwork import LOCALES, english_runs, untranslated

SECRET_KEY = "test-secret-key"
# Words on these pages that read the same in every language: product names, the seeded data.
ALLOWED = ("n8n orders", "https://hooks.example.com/wabulk", "shop website sync")
# Other areas' one-word msgids that are everyday words of Portuguese and Spanish ("no máximo",
# "no me des de baja"): a page in those languages is not English for containing them.
NOISE = frozenset({"no", "me", "is"})


def _left(page: str, locale: str) -> list[str]:
    return [msgid for msgid in untranslated(page, locale) if msgid not in NOISE]


def _speak(db: Database, user: User, language: str | None) -> None:
    with db.session() as session:
        session.get(User, user.id).language = language  # type: ignore[union-attr]
        session.commit()


@pytest.fixture
def admin(db: Database, make_user: Callable[..., User], client: FlaskClient) -> User:
    """An admin signed in, with users of each state, tokens and a webhook with a delivery log."""
    owner = make_user(Role.ADMIN, "owner@example.com")
    make_user(Role.OPERATOR, "clerk@example.com")
    gone = make_user(Role.VIEWER, "former@example.com")
    now = utcnow()
    with db.session() as session:
        actor = session.get(User, owner.id)
        users.set_active(session, actor, gone.id, False)
        tokens.create_token(session, actor, "shop website sync")
        old = tokens.create_token(session, actor, "old script")
        tokens.revoke_token(session, actor, old.token.id)
        endpoint, _secret = endpoints.create(
            session,
            actor,
            SECRET_KEY,
            name="n8n orders",
            url="https://hooks.example.com/wabulk",
            events_wanted=["message.replied", "contact.opted_out"],
        )
        log = [
            (DeliveryStatus.DELIVERED, 1, 200, None),
            (DeliveryStatus.FAILED, 9, 500, delivery.answered(500, "oops")),
            (DeliveryStatus.PENDING, 2, None, "No answer within 10 seconds."),
            (DeliveryStatus.PENDING, 1, 429, delivery.answered(429, "")),
            (DeliveryStatus.PENDING, 0, None, None),
        ]
        for n, (status, attempts, code, error) in enumerate(log):
            session.add(
                OutboxEvent(
                    endpoint_id=endpoint.id,
                    event_id=f"evt_{n:032d}",
                    event="message.replied",
                    payload={},
                    status=status,
                    attempts=attempts,
                    created_at=now - timedelta(minutes=10 - n),
                    next_attempt_at=now + timedelta(minutes=5),
                    last_attempt_at=now - timedelta(minutes=1) if attempts else None,
                    delivered_at=now if status == DeliveryStatus.DELIVERED else None,
                    last_code=code,
                    last_error=error,
                )
            )
        session.commit()
    assert login(client, owner.email).status_code == 302
    return owner


def _endpoint_id(db: Database) -> int:
    from wabulk.models import WebhookEndpoint

    with db.session() as session:
        return session.query(WebhookEndpoint).one().id


def _page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_settings_page_is_in_the_readers_language(
    client: FlaskClient, db: Database, admin: User, locale: str
) -> None:
    _speak(db, admin, locale)
    urls = [
        "/settings/general",
        "/settings/users",
        "/settings/tokens",
        "/settings/webhooks",
        f"/settings/webhooks/{_endpoint_id(db)}",
    ]
    for url in urls:
        page = _page(client, url)
        assert _left(page, locale) == [], (url, locale)
        runs = english_runs(page, allow=ALLOWED)
        print(locale, url, runs)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_empty_webhooks_page_and_a_new_secret_are_in_the_readers_language(
    client: FlaskClient, db: Database, make_user: Callable[..., User], locale: str
) -> None:
    owner = make_user(Role.ADMIN)
    _speak(db, owner, locale)
    assert login(client, owner.email).status_code == 302
    empty = _page(client, "/settings/webhooks")
    assert _left(empty, locale) == [], locale
    answer = client.post(
        "/settings/webhooks",
        data={
            "csrf_token": csrf_from(empty),
            "name": "n8n orders",
            "url": "https://hooks.example.com/wabulk",
            "events": ["message.replied"],
        },
        follow_redirects=True,
    )
    shown = answer.get_data(as_text=True)
    assert 'data-testid="new-secret"' in shown
    assert _left(shown, locale) == [], locale
    again = client.post(
        "/settings/tokens",
        data={"csrf_token": csrf_from(shown), "name": "shop website sync"},
    ).get_data(as_text=True)
    assert 'data-testid="new-token"' in again
    assert _left(again, locale) == [], locale


def test_known_sentences_read_in_hindi_and_portuguese(
    client: FlaskClient, db: Database, admin: User
) -> None:
    _speak(db, admin, "hi")
    assert "टोकन बनाएँ" in _page(client, "/settings/tokens")
    assert "ऑप्ट-आउट कीवर्ड" in _page(client, "/settings/general")
    _speak(db, admin, "pt_BR")
    assert "Criar um token" in _page(client, "/settings/tokens")
    assert "Convidar um usuário" in _page(client, "/settings/users")


def test_a_delivery_error_with_the_receivers_words_is_translated_around_them(
    client: FlaskClient, db: Database, admin: User
) -> None:
    _speak(db, admin, "hi")
    page = html.unescape(_page(client, f"/settings/webhooks/{_endpoint_id(db)}"))
    assert 'आपके सर्वर ने 500 जवाब दिया (उसकी तरफ़ की गड़बड़ी) और कहा "oops"।' in page
    assert "10 सेकंड में कोई जवाब नहीं आया।" in page
    assert "आपके सर्वर ने 429 जवाब दिया (व्यस्त है, बाद में कोशिश करें)।" in page
    _speak(db, admin, None)
    page = html.unescape(_page(client, f"/settings/webhooks/{_endpoint_id(db)}"))
    assert 'Your server answered 500 (an error on its side) and said "oops".' in page


def test_a_services_refusal_is_shown_in_the_readers_language(
    client: FlaskClient, db: Database, admin: User
) -> None:
    _speak(db, admin, "pt_BR")
    page = _page(client, "/settings/tokens")
    refused = client.post("/settings/tokens", data={"csrf_token": csrf_from(page), "name": " "})
    assert refused.status_code == 400
    assert "Dê ao token o nome do que vai usá-lo" in refused.get_data(as_text=True)

    _speak(db, admin, "es")
    page = _page(client, "/settings/webhooks")
    refused = client.post(
        "/settings/webhooks",
        data={
            "csrf_token": csrf_from(page),
            "name": "x",
            "url": "https://example.com/a b",
            "events": ["message.replied"],
        },
    )
    assert refused.status_code == 400
    assert "La dirección no puede tener espacios." in refused.get_data(as_text=True)


def test_a_flashed_refusal_and_a_flashed_success_are_in_the_readers_language(
    client: FlaskClient, db: Database, admin: User
) -> None:
    _speak(db, admin, "id")
    page = _page(client, "/settings/users")
    answer = client.post(
        f"/settings/users/{admin.id}/disable",
        data={"csrf_token": csrf_from(page)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Anda tidak bisa menonaktifkan akun Anda sendiri." in answer
    answer = client.post(
        "/settings/general",
        data={"csrf_token": csrf_from(answer), "default_country": "ID"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Nomor tanpa kode negara kini dibaca sebagai ID secara bawaan." in answer


def test_events_of_the_area_read_in_the_readers_language(
    client: FlaskClient, db: Database, admin: User
) -> None:
    _speak(db, admin, "hi")
    page = html.unescape(_page(client, "/activity"))
    assert "ने वेबहुक n8n orders (https://hooks.example.com) जोड़ा।" in page
    assert "API टोकन 'old script'" in page
    assert "ने former@example.com को बंद किया।" in page


def test_a_sign_in_failure_is_in_the_chosen_language(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user(Role.ADMIN)
    client.get("/login?lang=es")
    answer = client.post(
        "/login",
        data={"email": user.email, "password": "wrong password", "csrf_token": get_csrf(client)},
    )
    assert answer.status_code == 400
    text = answer.get_data(as_text=True)
    assert "Ese correo electrónico y esa contraseña no coinciden con una cuenta activa." in text
