"""Who may call the REST API: tokens, roles, sessions with and without CSRF, CORS."""

from __future__ import annotations

import gc
import io
import itertools
import warnings
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from wabulk.app import create_app
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.models import ApiToken, ContactList, Role, User, utcnow

from ..conftest import PASSWORD, get_csrf, login

_n = itertools.count(1)


def token_for(db: Database, role: Role) -> tuple[User, str]:
    """A new user of this role and a token of theirs."""
    with db.session() as session:
        user = users.create_user(
            session, None, f"{role.value}{next(_n)}@example.com", PASSWORD, role
        )
        secret = tokens.create_token(session, user, "script").secret
    return user, secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def list_names(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(ContactList.name)))


def test_no_token_is_refused_with_the_json_error_shape(client: FlaskClient) -> None:
    response = client.get("/api/v1/contacts")
    assert response.status_code == 401
    assert response.get_json() == {
        "error": {
            "code": "unauthorized",
            "message": "Sign in or send an API token.",
            "details": [],
        }
    }


@pytest.mark.parametrize("header", ["Bearer wab_not-a-real-token", "Bearer ", "bearer junk"])
def test_unknown_token_is_refused(client: FlaskClient, header: str) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] in {"invalid_token", "unauthorized"}


def test_token_acts_as_its_user_with_their_role(client: FlaskClient, db: Database) -> None:
    user, secret = token_for(db, Role.OPERATOR)
    me = client.get("/api/v1/me", headers=bearer(secret))
    assert me.status_code == 200
    assert me.get_json() == {
        "id": user.id,
        "email": user.email,
        "role": "operator",
        "timezone": None,
    }
    created = client.post("/api/v1/lists", json={"name": "VIP"}, headers=bearer(secret))
    assert created.status_code == 201, created.get_json()
    assert list_names(db) == ["VIP"]
    assert "Set-Cookie" not in created.headers  # a token call starts no session


def test_viewer_token_reads_but_cannot_change_anything(client: FlaskClient, db: Database) -> None:
    _, secret = token_for(db, Role.VIEWER)
    assert client.get("/api/v1/lists", headers=bearer(secret)).status_code == 200
    writes = [
        ("POST", "/api/v1/lists", {"name": "VIP"}),
        ("POST", "/api/v1/contacts", {"phone": "+919812345678"}),
        ("POST", "/api/v1/templates", {"name": "T", "body": "Hi"}),
        ("POST", "/api/v1/campaigns", {"name": "C"}),
        ("DELETE", "/api/v1/lists/1", None),
    ]
    for method, url, body in writes:
        response = client.open(url, method=method, json=body, headers=bearer(secret))
        assert response.status_code == 403, (url, response.get_json())
        error = response.get_json()["error"]
        assert error["code"] == "forbidden"
        assert "operator" in error["message"] and "viewer" in error["message"]
    assert list_names(db) == []


def test_revoked_token_is_refused_at_once(client: FlaskClient, db: Database) -> None:
    user, secret = token_for(db, Role.OPERATOR)
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    with db.session() as session:
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.user_id == user.id))
        tokens.revoke_token(session, session.get(User, user.id), token_id)
    response = client.get("/api/v1/me", headers=bearer(secret))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_token"


def test_token_of_a_disabled_user_is_refused(client: FlaskClient, db: Database) -> None:
    admin, _ = token_for(db, Role.ADMIN)
    user, secret = token_for(db, Role.OPERATOR)
    with db.session() as session:
        users.set_active(session, session.get(User, admin.id), user.id, False)
    response = client.get("/api/v1/me", headers=bearer(secret))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_token"


def test_a_bad_token_is_refused_even_beside_a_good_session(
    client: FlaskClient, as_role, db: Database
) -> None:
    as_role(Role.ADMIN)
    assert client.get("/api/v1/me").status_code == 200
    response = client.get("/api/v1/me", headers=bearer("wab_stolen-or-mistyped"))
    assert response.status_code == 401


def test_session_cookie_without_csrf_cannot_change_anything(
    client: FlaskClient, as_role, db: Database
) -> None:
    as_role(Role.OPERATOR)
    response = client.post("/api/v1/lists", json={"name": "VIP"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "csrf_failed"
    assert list_names(db) == []
    # The page's own token, sent as a header, is what a script in the page would send.
    token = get_csrf(client, "/contacts/")
    ok = client.post("/api/v1/lists", json={"name": "VIP"}, headers={"X-CSRFToken": token})
    assert ok.status_code == 201
    assert list_names(db) == ["VIP"]


def test_session_cookie_reads_without_csrf(client: FlaskClient, as_role) -> None:
    as_role(Role.VIEWER)
    assert client.get("/api/v1/contacts").status_code == 200


def test_last_used_is_written_at_most_once_a_minute(client: FlaskClient, db: Database) -> None:
    user, secret = token_for(db, Role.VIEWER)

    def last_used():  # type: ignore[no-untyped-def]
        with db.session() as session:
            return session.scalar(select(ApiToken.last_used_at).where(ApiToken.user_id == user.id))

    assert last_used() is None
    client.get("/api/v1/me", headers=bearer(secret))
    first = last_used()
    assert first is not None
    client.get("/api/v1/me", headers=bearer(secret))
    assert last_used() == first  # a second read within the minute writes nothing
    with db.session() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id)
            .values(last_used_at=utcnow() - timedelta(minutes=2))
        )
    client.get("/api/v1/me", headers=bearer(secret))
    assert last_used() > first


def test_tokens_are_stored_hashed_and_never_logged(
    client: FlaskClient, db: Database, app: Flask
) -> None:
    user, secret = token_for(db, Role.OPERATOR)
    with db.session() as session:
        stored = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
        assert stored.token_hash == tokens.hash_secret(secret) != secret
        assert secret.startswith(stored.prefix) and len(stored.prefix) == 12
    client.get("/api/v1/me", headers=bearer(secret))
    client.post("/api/v1/lists", json={"name": "x" * 500}, headers=bearer(secret))
    import logging

    logging.getLogger("wabulk.test").warning("header was Authorization: Bearer %s", secret)
    for handler in logging.getLogger().handlers:
        handler.flush()
    log = (app.extensions["wabulk.settings"].instance_path / "wabulk.log").read_text()
    assert "created the API token 'script'" in log
    assert "Bearer [redacted]" in log
    assert secret not in log and secret[12:] not in log


# --- CORS -------------------------------------------------------------------------------


@pytest.fixture
def cors_client(settings) -> FlaskClient:  # type: ignore[no-untyped-def]
    app = create_app(settings, cors_origins=("https://shop.example.com",))
    app.config["TESTING"] = True
    from wabulk import migrate

    migrate.upgrade(app.extensions["wabulk.db"].engine)
    return app.test_client()


def test_cors_is_off_by_default(client: FlaskClient, db: Database) -> None:
    _, secret = token_for(db, Role.VIEWER)
    origin = {"Origin": "https://shop.example.com"}
    response = client.get("/api/v1/me", headers={**bearer(secret), **origin})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(
        "/api/v1/me", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_answers_only_the_configured_origin_and_never_with_cookies(
    cors_client: FlaskClient,
) -> None:
    db: Database = cors_client.application.extensions["wabulk.db"]
    _, secret = token_for(db, Role.OPERATOR)
    shop = {"Origin": "https://shop.example.com"}
    preflight = cors_client.options(
        "/api/v1/lists",
        headers={
            **shop,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers

    created = cors_client.post(
        "/api/v1/lists", json={"name": "Web"}, headers={**shop, **bearer(secret)}
    )
    assert created.status_code == 201
    assert created.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Origin" in created.headers["Vary"]
    # Errors are readable by the shop's page too (it must see why it was refused).
    refused = cors_client.get("/api/v1/me", headers=shop)
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"

    other = {"Origin": "https://evil.example.net"}
    answer = cors_client.get("/api/v1/me", headers={**other, **bearer(secret)})
    assert "Access-Control-Allow-Origin" not in answer.headers
    other_preflight = cors_client.options(
        "/api/v1/lists", headers={**other, "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in other_preflight.headers
    # Pages never get CORS headers.
    assert "Access-Control-Allow-Origin" not in cors_client.get("/login", headers=shop).headers


def test_api_errors_keep_the_json_shape(client: FlaskClient, db: Database) -> None:
    _, secret = token_for(db, Role.OPERATOR)
    for method, url in (("GET", "/api/v1/nothing-here"), ("DELETE", "/api/v1/me")):
        response = client.open(url, method=method, headers=bearer(secret))
        body = response.get_json()
        assert response.status_code in (404, 405)
        assert set(body["error"]) == {"code", "message", "details"}
    # A page's error is still a page.
    page = client.delete("/login")
    assert page.status_code == 405 and not page.is_json


def test_login_still_works_after_an_api_call(client: FlaskClient, make_user) -> None:
    user = make_user(Role.VIEWER)
    assert client.get("/api/v1/me").status_code == 401
    assert login(client, user.email).status_code == 302
    assert client.get("/api/v1/me").get_json()["email"] == user.email


def test_an_upload_over_the_limit_is_a_json_413(settings) -> None:  # type: ignore[no-untyped-def]
    from wabulk import migrate

    app = create_app(settings, max_upload_mb=1)
    migrate.upgrade(app.extensions["wabulk.db"].engine)
    _, secret = token_for(app.extensions["wabulk.db"], Role.OPERATOR)
    big = b"phone\n" + b"+919812345678\n" * 100_000
    response = app.test_client().post(
        "/api/v1/imports",
        data={"file": (io.BytesIO(big), "big.csv")},
        content_type="multipart/form-data",
        headers=bearer(secret),
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert "1 MB" in response.get_json()["error"]["message"]
    # Werkzeug abandons its spooled temp file when it aborts a body at the limit; collect it
    # here so its ResourceWarning is not blamed on the next test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del response
        gc.collect()
