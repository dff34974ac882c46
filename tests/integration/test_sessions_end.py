"""Sessions end on the server: a cookie saved before signing out, a new password, disabling
or "sign out everywhere" is refused when replayed, and enabling a user again revives nothing.

Cookies are copied out of one test client and replayed from a fresh one, as someone who
copied them from a shared computer would.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select, update

from wabulk.auth import service as users
from wabulk.auth import sessions, tokens
from wabulk.db import Database
from wabulk.errors import PermissionDenied
from wabulk.models import ApiToken, Event, Role, UserSession, utcnow

from ..conftest import PASSWORD, get_csrf

SESSION = "session"
REMEMBER = "remember_token"


def sign_in(client: FlaskClient, email: str, remember: bool = False) -> None:
    data = {"email": email, "password": PASSWORD, "csrf_token": get_csrf(client, "/login")}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)


def cookie(client: FlaskClient, name: str) -> str:
    found = client.get_cookie(name)
    assert found is not None, f"no {name} cookie"
    return found.value


def replay(app: Flask, **cookies: str) -> FlaskClient:
    """A new browser holding only the given cookies."""
    other = app.test_client()
    for name, value in cookies.items():
        other.set_cookie(name, value)
    return other


def signed_in(client: FlaskClient) -> bool:
    """Asks the API and a page; both must agree."""
    api = client.get("/api/v1/me").status_code
    page = client.get("/contacts/")
    assert (api, page.status_code) in {(200, 200), (401, 302)}, (api, page.status_code)
    if page.status_code == 302:
        assert page.headers["Location"].startswith("/login")
    return api == 200


def post(client: FlaskClient, url: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(url, data={"csrf_token": get_csrf(client, "/settings/"), **data})


def test_a_session_cookie_saved_before_logout_is_refused_after(dual) -> None:
    app, db = dual
    with db.session() as session:
        user = users.create_user(session, None, "v@example.com", PASSWORD, Role.VIEWER)
    browser = app.test_client()
    sign_in(browser, user.email)
    saved = cookie(browser, SESSION)
    assert signed_in(replay(app, session=saved))  # the copy works while signed in
    post(browser, "/logout")
    assert not signed_in(browser)
    assert not signed_in(replay(app, session=saved))
    with db.session() as session:
        assert session.scalars(select(UserSession)).all() == []


def test_a_remember_cookie_alone_is_refused_after_logout(app: Flask, make_user) -> None:
    user = make_user(Role.VIEWER)
    browser = app.test_client()
    sign_in(browser, user.email, remember=True)
    saved = cookie(browser, REMEMBER)
    assert signed_in(replay(app, remember_token=saved))
    post(browser, "/logout")
    assert not signed_in(replay(app, remember_token=saved))


def test_logout_ends_only_that_session(app: Flask, make_user) -> None:
    user = make_user(Role.VIEWER)
    phone, laptop = app.test_client(), app.test_client()
    sign_in(phone, user.email)
    sign_in(laptop, user.email, remember=True)
    post(phone, "/logout")
    assert not signed_in(phone)
    assert signed_in(laptop)
    assert signed_in(replay(app, remember_token=cookie(laptop, REMEMBER)))


def test_a_new_password_ends_other_sessions_and_their_remember_cookies(
    app: Flask, make_user
) -> None:
    user = make_user(Role.OPERATOR)
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here, user.email, remember=True)
    sign_in(elsewhere, user.email, remember=True)
    here_remember, elsewhere_remember = cookie(here, REMEMBER), cookie(elsewhere, REMEMBER)
    response = post(
        here,
        "/settings/password",
        current_password=PASSWORD,
        password="fresh password 1",
        confirm="fresh password 1",
    )
    assert response.status_code == 302
    assert signed_in(here)
    assert signed_in(replay(app, remember_token=here_remember))  # this browser keeps it
    assert not signed_in(elsewhere)
    assert not signed_in(replay(app, remember_token=elsewhere_remember))


def test_an_admin_reset_ends_every_session_of_that_user(app: Flask, make_user) -> None:
    user, admin = make_user(Role.OPERATOR), make_user(Role.ADMIN)
    browser, admin_browser = app.test_client(), app.test_client()
    sign_in(browser, user.email, remember=True)
    saved = cookie(browser, REMEMBER)
    sign_in(admin_browser, admin.email)
    post(
        admin_browser,
        f"/settings/users/{user.id}/password",
        password="reset password 2",
        confirm="reset password 2",
    )
    assert not signed_in(browser)
    assert not signed_in(replay(app, remember_token=saved))
    assert signed_in(admin_browser)


def test_disabling_ends_every_session_and_enabling_revives_none(app: Flask, make_user) -> None:
    user, admin = make_user(Role.OPERATOR), make_user(Role.ADMIN)
    browser, admin_browser = app.test_client(), app.test_client()
    sign_in(browser, user.email, remember=True)
    saved_session, saved_remember = cookie(browser, SESSION), cookie(browser, REMEMBER)
    sign_in(admin_browser, admin.email)
    post(admin_browser, f"/settings/users/{user.id}/disable")
    assert not signed_in(replay(app, session=saved_session))
    post(admin_browser, f"/settings/users/{user.id}/enable")
    assert not signed_in(replay(app, session=saved_session))
    assert not signed_in(replay(app, remember_token=saved_remember))
    assert not signed_in(replay(app, session=saved_session, remember_token=saved_remember))
    sign_in(browser, user.email)  # a fresh sign-in works again
    assert signed_in(browser)


def test_an_admin_signs_a_user_out_everywhere(app: Flask, db: Database, make_user) -> None:
    user, admin = make_user(Role.OPERATOR), make_user(Role.ADMIN)
    phone, laptop, admin_browser = app.test_client(), app.test_client(), app.test_client()
    sign_in(phone, user.email)
    sign_in(laptop, user.email, remember=True)
    saved = cookie(laptop, REMEMBER)
    sign_in(admin_browser, admin.email)
    assert "Sign out everywhere" in admin_browser.get("/settings/users").get_data(as_text=True)
    response = post(admin_browser, f"/settings/users/{user.id}/sign-out")
    assert response.status_code == 302
    page = admin_browser.get("/settings/users").get_data(as_text=True)
    assert f"Signed out {user.email} everywhere (2 sessions ended)." in page
    assert not signed_in(phone) and not signed_in(laptop)
    assert not signed_in(replay(app, remember_token=saved))
    assert signed_in(admin_browser)
    with db.session() as session:
        kinds = session.scalars(select(Event.text).where(Event.kind == "user.signed_out")).all()
    assert kinds == [f"{admin.email} signed out every session of {user.email}."]


def test_only_an_admin_signs_someone_else_out(app: Flask, db: Database, make_user) -> None:
    user, viewer = make_user(Role.OPERATOR), make_user(Role.VIEWER)
    phone, viewer_browser = app.test_client(), app.test_client()
    sign_in(phone, user.email)
    sign_in(viewer_browser, viewer.email)
    assert post(viewer_browser, f"/settings/users/{user.id}/sign-out").status_code == 403
    assert signed_in(phone)
    with db.session() as session, pytest.raises(PermissionDenied):
        users.sign_out_everywhere(session, viewer, user.id)


def test_sign_out_my_other_sessions_keeps_this_one(app: Flask, make_user) -> None:
    user = make_user(Role.VIEWER)
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here, user.email)
    sign_in(elsewhere, user.email, remember=True)
    saved = cookie(elsewhere, REMEMBER)
    page = here.get("/settings/").get_data(as_text=True)
    assert "Where you are signed in" in page and page.count("this browser") == 1
    post(here, "/settings/sessions/end-others")
    page = here.get("/settings/").get_data(as_text=True)
    assert "Signed out 1 other session elsewhere; this browser stays signed in." in page
    assert signed_in(here)
    assert not signed_in(elsewhere)
    assert not signed_in(replay(app, remember_token=saved))


def test_a_token_stops_when_its_user_is_disabled_and_stays_stopped(
    app: Flask, db: Database, make_user
) -> None:
    user, admin = make_user(Role.OPERATOR), make_user(Role.ADMIN)
    with db.session() as session:
        secret = tokens.create_token(session, user, "shop site").secret
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {secret}"}
    assert api.get("/api/v1/me", headers=bearer).status_code == 200
    with db.session() as session:
        users.set_active(session, admin, user.id, False)
    assert api.get("/api/v1/me", headers=bearer).status_code == 401
    with db.session() as session:
        users.set_active(session, admin, user.id, True)
    assert api.get("/api/v1/me", headers=bearer).status_code == 401
    with db.session() as session:
        assert session.scalars(select(ApiToken.revoked_at)).one() is not None
        text = session.scalars(select(Event.text).where(Event.kind == "user.disabled")).one()
    assert text == f"{admin.email} disabled {user.email} and revoked their API token."


def test_a_token_keeps_working_after_a_password_change(app: Flask, db: Database, make_user) -> None:
    """Decided: tokens belong to programs, not browsers, and are revoked on their own page."""
    user, admin = make_user(Role.OPERATOR), make_user(Role.ADMIN)
    with db.session() as session:
        secret = tokens.create_token(session, user, "shop site").secret
        users.change_own_password(session, user, PASSWORD, "fresh password 1")
        users.reset_password(session, admin, user.id, "reset password 2")
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200


def test_the_database_holds_only_a_hash_of_the_cookie_key(
    app: Flask, db: Database, make_user
) -> None:
    user = make_user(Role.VIEWER)
    browser = app.test_client()
    sign_in(browser, user.email)
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    key = serializer.loads(cookie(browser, SESSION))["_user_id"]
    assert str(user.id) not in key.split(".")  # the cookie names a session, not a user
    with db.session() as session:
        row = session.scalars(select(UserSession)).one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in row.key_hash and row.user_id == user.id


def test_last_seen_is_written_at_most_once_a_minute(app: Flask, db: Database, make_user) -> None:
    user = make_user(Role.VIEWER)
    browser = app.test_client()
    sign_in(browser, user.email)
    recent = utcnow() - timedelta(seconds=30)
    stale = utcnow() - timedelta(minutes=2)
    for stamp, rewritten in ((recent, False), (stale, True)):
        with db.session() as session:
            session.execute(update(UserSession).values(last_seen_at=stamp))
        for _ in range(3):
            assert signed_in(browser)
        with db.session() as session:
            seen = session.scalars(select(UserSession.last_seen_at)).one()
        assert (seen != stamp) is rewritten


def test_a_session_unused_for_the_idle_limit_ends(app: Flask, db: Database, make_user) -> None:
    user, other = make_user(Role.VIEWER), make_user(Role.VIEWER)
    browser, elsewhere = app.test_client(), app.test_client()
    sign_in(browser, user.email, remember=True)
    sign_in(elsewhere, other.email)
    with db.session() as session:
        idle = utcnow() - sessions.IDLE_LIMIT - timedelta(minutes=1)
        session.execute(update(UserSession).values(last_seen_at=idle))
    assert not signed_in(browser)
    sign_in(browser, user.email)  # any sign-in clears idle rows away, anyone's
    with db.session() as session:
        assert session.scalars(select(UserSession.user_id)).all() == [user.id]


def test_a_page_answers_when_the_last_seen_stamp_cannot_be_written(
    app: Flask, db: Database, make_user
) -> None:
    """The stamp only informs the sessions list: SQLite refusing the write (busy, or here
    read-only) must not turn a page view into an error page."""
    user = make_user(Role.VIEWER)
    browser = app.test_client()
    sign_in(browser, user.email)
    stale = utcnow() - timedelta(minutes=2)
    with db.session() as session:
        session.execute(update(UserSession).values(last_seen_at=stale))

    def read_only(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA query_only=ON")

    event.listen(db.engine, "checkout", read_only)
    try:
        assert signed_in(browser)
    finally:
        event.remove(db.engine, "checkout", read_only)
    db.engine.dispose()  # pooled connections keep query_only; new ones start writable
    with db.session() as session:
        assert session.scalars(select(UserSession.last_seen_at)).one() == stale
