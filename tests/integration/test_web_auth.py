"""Setup, sign-in, sign-out and user management through the pages."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from wabulk.auth import setup_code
from wabulk.models import Role

from ..conftest import PASSWORD, get_csrf, login


def _issue_code(db) -> str:
    with db.session() as session:
        return setup_code.issue(session)


def test_first_visit_goes_to_setup_and_needs_the_code(client: FlaskClient, db) -> None:
    code = _issue_code(db)
    assert client.get("/").headers["Location"] == "/setup"
    assert client.get("/login").headers["Location"] == "/setup"
    assert "Please sign in" not in client.get("/setup").get_data(as_text=True)
    token = get_csrf(client, "/setup")
    form = {
        "email": "boss@example.com",
        "password": PASSWORD,
        "confirm": PASSWORD,
        "country": "IN",
        "csrf_token": token,
    }
    wrong = client.post("/setup", data={**form, "setup_code": "ABCD-EFGH-JKLM"})
    assert wrong.status_code == 400
    assert "setup code is not right" in wrong.get_data(as_text=True)
    right = client.post("/setup", data={**form, "setup_code": code}, follow_redirects=True)
    assert right.status_code == 200
    page = right.get_data(as_text=True)
    assert "Your administrator account is ready" in page
    assert "boss@example.com" in page
    # Setup is closed for good now.
    assert client.get("/setup").headers["Location"] == "/login"


def test_setup_form_keeps_what_was_typed_on_error(client: FlaskClient, db) -> None:
    _issue_code(db)
    token = get_csrf(client, "/setup")
    response = client.post(
        "/setup",
        data={
            "email": "boss@example.com",
            "password": PASSWORD,
            "confirm": "different",
            "setup_code": "x",
            "csrf_token": token,
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The two passwords differ." in page
    assert 'value="boss@example.com"' in page


def test_sign_in_and_out(client: FlaskClient, make_user) -> None:
    user = make_user(Role.VIEWER)
    response = login(client, user.email)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Dashboard" in client.get("/").get_data(as_text=True)
    token = get_csrf(client, "/")
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=True)
    assert "You are signed out." in out.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(client, make_user) -> None:
    user = make_user(Role.VIEWER)
    token = get_csrf(client, "/login")
    data = {"email": user.email, "password": PASSWORD, "csrf_token": token}
    response = client.post("/login?next=/campaigns", data=data)
    assert response.headers["Location"] == "/campaigns"
    client.post("/logout", data={"csrf_token": get_csrf(client, "/")})
    token = get_csrf(client, "/login")
    data["csrf_token"] = token
    for evil in ["https://evil.example/", "//evil.example/", "/\\evil.example"]:
        response = client.post(f"/login?next={evil}", data=data)
        assert response.headers["Location"] == "/", evil
        client.post("/logout", data={"csrf_token": get_csrf(client, "/")})
        data["csrf_token"] = get_csrf(client, "/login")


def test_wrong_password_message_and_throttle(client: FlaskClient, make_user) -> None:
    user = make_user(Role.VIEWER)
    for _ in range(5):
        response = login(client, user.email, "wrong password!")
        assert response.status_code == 400
        assert "do not match an active account" in response.get_data(as_text=True)
    response = login(client, user.email)  # right password, but locked for the minute
    assert response.status_code == 429
    assert re.search(
        r"Too many failed sign-in attempts\. Try again in \d+ seconds\.",
        response.get_data(as_text=True),
    )


def test_admin_invites_changes_role_and_disables_a_user(client: FlaskClient, as_role) -> None:
    as_role(Role.ADMIN)
    token = get_csrf(client, "/settings/users")
    response = client.post(
        "/settings/users",
        data={
            "email": "new@example.com",
            "role": "viewer",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "csrf_token": token,
        },
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "new@example.com can now sign in" in page
    new_id = int(
        re.search(
            r'/settings/users/(\d+)/role"[^>]*>\s*<input[^>]*>\s*'
            r'<select[^>]*aria-label="Role of new@example.com"',
            page,
        ).group(1)
    )
    page = client.post(
        f"/settings/users/{new_id}/role",
        data={"role": "operator", "csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "new@example.com is now operator." in page
    page = client.post(
        f"/settings/users/{new_id}/disable", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "new@example.com is disabled." in page
    # The disabled user cannot sign in.
    other = client.application.test_client()
    assert login(other, "new@example.com").status_code == 400


def test_disabling_a_signed_in_user_ends_their_session(app, make_user) -> None:
    admin_client, user_client = app.test_client(), app.test_client()
    admin = make_user(Role.ADMIN)
    user = make_user(Role.OPERATOR)
    login(admin_client, admin.email)
    login(user_client, user.email)
    assert user_client.get("/").status_code == 200
    token = get_csrf(admin_client, "/settings/users")
    admin_client.post(f"/settings/users/{user.id}/disable", data={"csrf_token": token})
    assert user_client.get("/").status_code == 302


def test_invite_with_bad_input_shows_the_reason_and_keeps_the_form(client, as_role) -> None:
    as_role(Role.ADMIN)
    token = get_csrf(client, "/settings/users")
    response = client.post(
        "/settings/users",
        data={
            "email": "not-an-email",
            "role": "viewer",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "csrf_token": token,
        },
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "not-an-email" in page
    assert "is-invalid" in page


def test_admin_cannot_lock_themselves_out(client: FlaskClient, as_role) -> None:
    me = as_role(Role.ADMIN)
    token = get_csrf(client, "/settings/users")
    page = client.post(
        f"/settings/users/{me.id}/role",
        data={"role": "viewer", "csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "only active administrator" in page
    assert client.get("/settings/users").status_code == 200


def test_user_changes_own_password_and_timezone(client: FlaskClient, as_role) -> None:
    me = as_role(Role.VIEWER)
    token = get_csrf(client, "/settings/")
    page = client.post(
        "/settings/password",
        data={
            "current_password": PASSWORD,
            "password": "my new password",
            "confirm": "my new password",
            "csrf_token": token,
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Your password is changed." in page
    bad = client.post("/settings/profile", data={"timezone": "Mars/Base", "csrf_token": token})
    assert bad.status_code == 400 and "not a timezone name" in bad.get_data(as_text=True)
    client.post("/settings/profile", data={"timezone": "Asia/Kolkata", "csrf_token": token})
    client.post("/logout", data={"csrf_token": token})
    assert login(client, me.email, "my new password").status_code == 302
    assert client.get("/api/v1/me").get_json()["timezone"] == "Asia/Kolkata"


def test_a_new_password_ends_other_sessions_but_not_this_one(app, make_user) -> None:
    here, elsewhere, admin_client = app.test_client(), app.test_client(), app.test_client()
    user = make_user(Role.OPERATOR)
    admin = make_user(Role.ADMIN)
    login(here, user.email)
    login(elsewhere, user.email)
    token = get_csrf(here, "/settings/")
    here.post(
        "/settings/password",
        data={
            "current_password": PASSWORD,
            "password": "fresh password 1",
            "confirm": "fresh password 1",
            "csrf_token": token,
        },
    )
    assert here.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302
    # An admin's reset ends the user's sessions too (e.g. a lost phone).
    login(admin_client, admin.email)
    admin_token = get_csrf(admin_client, "/settings/users")
    admin_client.post(
        f"/settings/users/{user.id}/password",
        data={
            "password": "reset password 2",
            "confirm": "reset password 2",
            "csrf_token": admin_token,
        },
    )
    assert here.get("/").status_code == 302
    assert login(elsewhere, user.email, "reset password 2").status_code == 302
