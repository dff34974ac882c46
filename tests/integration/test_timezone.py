"""Each user's timezone: from the browser at sign-in, chosen under Settings, used for dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from wabulk.auth import service as users
from wabulk.auth import setup_code
from wabulk.models import Event, Role, User

from ..conftest import PASSWORD, get_csrf


def _sign_in(client: FlaskClient, email: str, timezone: str | None) -> int:
    form = {"email": email, "password": PASSWORD, "csrf_token": get_csrf(client, "/login")}
    if timezone is not None:
        form["timezone"] = timezone
    return client.post("/login", data=form).status_code


def _timezone_of(db, email: str) -> str | None:
    with db.session() as session:
        user = session.query(User).filter_by(email=email).one()
        return user.timezone


def _new_user(db, email: str, role: Role = Role.OPERATOR) -> None:
    with db.session() as session:
        users.create_user(session, None, email, PASSWORD, role)


def test_sign_in_stores_the_browser_timezone_once_and_never_overwrites_it(dual) -> None:
    app, db = dual
    _new_user(db, "asha@example.com")
    client = app.test_client()
    assert _sign_in(client, "asha@example.com", "Asia/Kolkata") == 302
    assert _timezone_of(db, "asha@example.com") == "Asia/Kolkata"

    client.post("/logout", data={"csrf_token": get_csrf(client, "/settings/")})
    # Signing in from a laptop set to another zone keeps the zone already stored.
    assert _sign_in(client, "asha@example.com", "America/New_York") == 302
    assert _timezone_of(db, "asha@example.com") == "Asia/Kolkata"


@pytest.mark.parametrize(
    "reported", ["Mars/Olympus_Mons", "", "localtime", "../../etc/passwd", "x" * 300, None]
)
def test_an_unusable_browser_timezone_is_ignored_and_sign_in_works(app, db, reported) -> None:
    _new_user(db, "ravi@example.com")
    client = app.test_client()
    assert _sign_in(client, "ravi@example.com", reported) == 302
    assert _timezone_of(db, "ravi@example.com") is None
    assert client.get("/").status_code == 200


def test_an_old_browser_name_is_stored_as_todays_name(app, db) -> None:
    # Chromium reports India as Asia/Calcutta (ICU's name); the tz database calls it Asia/Kolkata.
    _new_user(db, "meera@example.com")
    assert _sign_in(app.test_client(), "meera@example.com", "Asia/Calcutta") == 302
    assert _timezone_of(db, "meera@example.com") == "Asia/Kolkata"


def test_first_run_setup_stores_the_browser_timezone(dual) -> None:
    app, db = dual
    with db.session() as session:
        code = setup_code.issue(session)
    client = app.test_client()
    response = client.post(
        "/setup",
        data={
            "setup_code": code,
            "email": "owner@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "timezone": "Europe/Berlin",
            "country": "DE",
            "csrf_token": get_csrf(client, "/setup"),
        },
    )
    assert response.status_code == 302
    assert _timezone_of(db, "owner@example.com") == "Europe/Berlin"


def test_the_sign_in_and_setup_forms_carry_the_hidden_field_and_its_script(app, db) -> None:
    client = app.test_client()
    for url in ("/setup", "/login"):
        if url == "/login":
            _new_user(db, "someone@example.com")
        page = client.get(url).get_data(as_text=True)
        assert '<input type="hidden" name="timezone" value="" data-browser-timezone>' in page
        assert "/static/js/timezone.js" in page
    with client.get("/static/js/timezone.js") as script:
        assert script.status_code == 200
        assert b"resolvedOptions().timeZone" in script.data


def test_account_form_checks_the_zone_and_saves_its_proper_name(client, as_role, db) -> None:
    me = as_role(Role.VIEWER)
    page = client.get("/settings/").get_data(as_text=True)
    assert 'list="timezone-names"' in page
    assert '<option value="Asia/Kolkata">' in page and '<option value="localtime">' not in page
    assert "data-use-browser-timezone" in page
    token = get_csrf(client, "/settings/")

    bad = client.post("/settings/profile", data={"timezone": "Asia/Mumbai", "csrf_token": token})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "&#39;Asia/Mumbai&#39; is not a timezone name such as Asia/Kolkata" in text
    assert 'value="Asia/Mumbai"' in text  # what was typed stays in the box
    assert _timezone_of(db, me.email) is None

    ok = client.post("/settings/profile", data={"timezone": " asia/kolkata ", "csrf_token": token})
    assert ok.status_code == 302
    assert _timezone_of(db, me.email) == "Asia/Kolkata"

    cleared = client.post("/settings/profile", data={"timezone": "", "csrf_token": token})
    assert cleared.status_code == 302
    assert _timezone_of(db, me.email) is None

    no_token = client.post("/settings/profile", data={"timezone": "Europe/London"})
    assert no_token.status_code == 400
    assert _timezone_of(db, me.email) is None


def test_pages_show_times_in_the_users_zone(dual) -> None:
    app, db = dual
    _new_user(db, "admin@example.com", Role.ADMIN)
    with db.session() as session:
        session.add(
            Event(
                kind="test.noon",
                text="Noon in London, half past five in Kolkata",
                at=datetime(2025, 1, 15, 12, 0, tzinfo=UTC),
            )
        )
    client = app.test_client()
    _sign_in(client, "admin@example.com", None)
    assert "2025-01-15 12:00 UTC" in client.get("/activity").get_data(as_text=True)

    token = get_csrf(client, "/settings/")
    client.post("/settings/profile", data={"timezone": "Asia/Kolkata", "csrf_token": token})
    page = client.get("/activity").get_data(as_text=True)
    assert "2025-01-15 17:30 IST" in page
    assert "2025-01-15 12:00 UTC" not in page
