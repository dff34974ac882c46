"""Settings → API tokens: created with a name and shown once, listed, revoked; admins see all."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.errors import Conflict, NotFound, ValidationError
from wabulk.models import ApiToken, Event, Role

from ..conftest import get_csrf, login

SECRET_RE = re.compile(r'value="(wab_[A-Za-z0-9_-]{40,})"')


def create_on_page(client: FlaskClient, name: str) -> tuple[int, str]:
    response = client.post(
        "/settings/tokens", data={"name": name, "csrf_token": get_csrf(client, "/settings/tokens")}
    )
    return response.status_code, response.get_data(as_text=True)


def test_a_new_token_is_shown_once_and_works_with_the_users_role(
    client: FlaskClient, as_role, db: Database
) -> None:
    user = as_role(Role.VIEWER)
    status, html = create_on_page(client, "  shop   site ")
    assert status == 200
    match = SECRET_RE.search(html)
    assert match, "the new token is on the page"
    secret = match.group(1)
    assert "it is shown only once" in html
    assert "data-copy=" in html
    again = client.get("/settings/tokens").get_data(as_text=True)
    assert secret not in again  # never shown again
    assert "shop site" in again and secret[:12] in again and "never" in again
    with db.session() as session:
        stored = session.scalars(select(ApiToken)).one()
        assert (stored.user_id, stored.name, stored.prefix) == (user.id, "shop site", secret[:12])
        event = session.scalars(select(Event).where(Event.kind == "token.created")).one()
        assert secret not in event.text and "shop site" in event.text

    api = client.application.test_client()  # no session cookie: the token alone
    me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.get_json()["role"] == "viewer"
    refused = api.post(
        "/api/v1/lists", json={"name": "x"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert refused.status_code == 403


def test_a_token_needs_a_name(client: FlaskClient, as_role, db: Database) -> None:
    as_role(Role.OPERATOR)
    status, html = create_on_page(client, "   ")
    assert status == 400
    assert "Name the token" in html and not SECRET_RE.search(html)
    status, html = create_on_page(client, "n" * 101)
    assert status == 400 and "at most 100 characters" in html
    with db.session() as session:
        assert session.scalars(select(ApiToken)).all() == []


def test_creating_a_token_needs_the_form_token(client: FlaskClient, as_role, db: Database) -> None:
    as_role(Role.OPERATOR)
    response = client.post("/settings/tokens", data={"name": "forged"})
    assert response.status_code == 400
    with db.session() as session:
        assert session.scalars(select(ApiToken)).all() == []


def test_revoking_a_token_refuses_it_and_is_recorded(
    client: FlaskClient, as_role, db: Database
) -> None:
    as_role(Role.OPERATOR)
    _, html = create_on_page(client, "cron job")
    secret = SECRET_RE.search(html).group(1)  # type: ignore[union-attr]
    with db.session() as session:
        token_id = session.scalar(select(ApiToken.id))
    page = client.get("/settings/tokens").get_data(as_text=True)
    assert f"/settings/tokens/{token_id}/revoke" in page and "data-confirm=" in page
    response = client.post(
        f"/settings/tokens/{token_id}/revoke",
        data={"csrf_token": get_csrf(client, "/settings/tokens")},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "revoked; programs using it are refused" in html
    assert ">revoked<" in html
    api = client.application.test_client()
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    with db.session() as session:
        event = session.scalars(select(Event).where(Event.kind == "token.revoked")).one()
        assert "cron job" in event.text


def test_people_see_only_their_tokens_and_admins_see_everyones(
    client: FlaskClient, db: Database, make_user
) -> None:
    alice, bob, admin = make_user(Role.OPERATOR), make_user(Role.VIEWER), make_user(Role.ADMIN)
    with db.session() as session:
        alices = tokens.create_token(session, alice, "alice's laptop").token.id
        tokens.create_token(session, bob, "bob's script")
    login(client, bob.email)
    page = client.get("/settings/tokens").get_data(as_text=True)
    assert "bob&#39;s script" in page and "alice" not in page
    # Someone else's token looks absent, and stays usable.
    client.post(
        f"/settings/tokens/{alices}/revoke",
        data={"csrf_token": get_csrf(client, "/settings/tokens")},
    )
    with db.session() as session:
        assert session.get(ApiToken, alices).revoked_at is None  # type: ignore[union-attr]

    other = client.application.test_client()
    login(other, admin.email)
    page = other.get("/settings/tokens").get_data(as_text=True)
    assert "All tokens" in page and alice.email in page and bob.email in page
    response = other.post(
        f"/settings/tokens/{alices}/revoke",
        data={"csrf_token": get_csrf(other, "/settings/tokens")},
        follow_redirects=True,
    )
    assert "is revoked" in response.get_data(as_text=True)
    with db.session() as session:
        assert session.get(ApiToken, alices).revoked_at is not None  # type: ignore[union-attr]
        text = session.scalars(select(Event.text).where(Event.kind == "token.revoked")).one()
        assert alice.email in text and admin.email in text


def test_the_service_rules(db: Database, make_user) -> None:
    owner, stranger = make_user(Role.OPERATOR), make_user(Role.OPERATOR)
    with db.session() as session:
        issued = tokens.create_token(session, owner, "one")
        assert tokens.authenticate_token(session, issued.secret).id == owner.id  # type: ignore[union-attr]
        assert tokens.authenticate_token(session, issued.secret + "x") is None
        assert tokens.authenticate_token(session, "not even the prefix") is None
        with pytest.raises(NotFound):
            tokens.revoke_token(session, stranger, issued.token.id)
        tokens.revoke_token(session, owner, issued.token.id)
        with pytest.raises(Conflict, match="already revoked"):
            tokens.revoke_token(session, owner, issued.token.id)
        with pytest.raises(ValidationError):
            tokens.create_token(session, owner, "")
        for i in range(tokens.MAX_ACTIVE_PER_USER):
            tokens.create_token(session, owner, f"t{i}")
        with pytest.raises(Conflict, match="active tokens"):
            tokens.create_token(session, owner, "one too many")
        assert len(session.execute(tokens.visible_tokens(owner)).all()) == 51
        assert session.execute(tokens.visible_tokens(stranger)).all() == []
