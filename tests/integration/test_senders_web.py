"""The Senders page over HTTP: admins add, edit, link, disable and enable; others read."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import time, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk import migrate
from wabulk.app import create_app
from wabulk.auth import service as users
from wabulk.channels.whatsapp_web.channel import screenshots_folder
from wabulk.db import Database
from wabulk.models import Channel, Event, Role, Sender, SenderState, utcnow
from wabulk.models import Message as MessageRow
from wabulk.senders.linking import IN_USE_REASON
from wabulk.senders.service import SenderInput, create_sender

from ..conftest import PASSWORD, get_csrf, login


def _form(**fields: str) -> dict[str, str]:
    form = {
        "name": "Rehearsal",
        "timezone": "Asia/Kolkata",
        "min_delay_seconds": "2",
        "max_delay_seconds": "5",
        "daily_cap": "300",
        "active_from": "09:00",
        "active_until": "20:00",
        "break_every": "50",
        "break_seconds": "120",
        "latency_seconds": "0.05",
        "failure_rate": "0.1",
        "transient_rate": "",
    }
    form.update(fields)
    return form


def _post(client, url: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(url, data={**data, "csrf_token": get_csrf(client, "/senders")})


def test_an_admin_adds_a_dry_run_sender_and_sees_it_in_the_table(client, as_role, db) -> None:
    as_role(Role.ADMIN)
    page = client.get("/senders").get_data(as_text=True)
    assert "No senders yet" in page and 'href="/senders/new"' in page
    assert "official WhatsApp Cloud API" in page
    form = client.get("/senders/new").get_data(as_text=True)
    assert '<option value="Asia/Kolkata"' in form and 'name="latency_seconds"' in form

    response = _post(client, "/senders/new", **_form())
    assert response.status_code == 302 and response.headers["Location"] == "/senders"
    with db.session() as session:
        sender = session.scalars(select(Sender)).one()
        assert (sender.channel, sender.state, sender.timezone) == (
            Channel.DRY_RUN,
            SenderState.LINKED,
            "Asia/Kolkata",
        )
        assert (sender.min_delay_seconds, sender.max_delay_seconds, sender.daily_cap) == (2, 5, 300)
        assert (sender.active_from, sender.active_until) == (time(9), time(20))
        assert (sender.break_every, sender.break_seconds) == (50, 120)
        assert sender.settings == {"latency_seconds": 0.05, "failure_rate": 0.1}
    table = client.get("/senders").get_data(as_text=True)
    row = re.search(r'data-testid="senders">(.*?)</table>', table, re.S).group(1)
    for text in (
        "Rehearsal",
        "dry run",
        "linked",
        "2\N{EN DASH}5 s between messages",
        "At most 300 a day",
        "Active 09:00\N{EN DASH}20:00",
        "A 120 s break every 50 messages",
        "Asia/Kolkata",
        "0.05 s per message",
        "10.0% fail",
    ):
        assert text in row, text
    assert re.search(r'data-testid="sent-today">0 <span[^>]*>/ 300</span>', row)


def test_sent_today_counts_this_senders_messages(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    lst = make_contacts(db, phones(3), "Customers")
    sender = make_sender(db, daily_cap=10)
    campaign_id = make_campaign(db, [lst], [sender])
    with db.session() as session:
        for message in session.scalars(
            select(MessageRow).where(MessageRow.campaign_id == campaign_id).limit(2)
        ):
            message.sender_id = sender
            message.sent_at = utcnow()
    page = client.get("/senders").get_data(as_text=True)
    assert re.search(r'data-testid="sent-today">2 <span[^>]*>/ 10</span>', page)


def test_sender_errors_are_shown_next_to_their_box_and_keep_the_input(client, as_role) -> None:
    as_role(Role.ADMIN)
    _post(client, "/senders/new", **_form())
    cases = [
        ({"name": " "}, "name", "Give the sender a name."),
        ({"name": "rehearsal"}, "name", "There is already a sender called"),
        ({"name": "B", "min_delay_seconds": "9"}, "min_delay_seconds", "cannot be longer"),
        ({"name": "B", "active_until": ""}, "active_from", "both ends"),
        ({"name": "B", "daily_cap": "1.5"}, "daily_cap", "whole number"),
        ({"name": "B", "failure_rate": "2"}, "failure_rate", "between 0 and 1"),
        ({"name": "B", "latency_seconds": "soon"}, "latency_seconds", "must be a number"),
        ({"name": "B", "timezone": "Mars/Olympus"}, "timezone", "Unknown timezone"),
    ]
    for fields, box, words in cases:
        response = _post(client, "/senders/new", **_form(**fields))
        assert response.status_code == 400, fields
        page = response.get_data(as_text=True)
        error = re.search(rf'data-error-for="{box}">([^<]*)<', page)
        assert error and words in error.group(1), (fields, error)
        assert 'value="120"' in page  # the rest of the input is kept


def test_an_admin_edits_disables_and_enables_a_sender(client, as_role, db) -> None:
    as_role(Role.ADMIN)
    sender_id = make_sender(db, "Rehearsal", settings={"latency_seconds": 1})
    page = client.get(f"/senders/{sender_id}/edit").get_data(as_text=True)
    assert 'value="Rehearsal"' in page and re.search(r'name="latency_seconds"[^>]*value="1"', page)
    response = _post(
        client, f"/senders/{sender_id}/edit", **_form(name="Rehearsal 2", latency_seconds="0")
    )
    assert response.status_code == 302
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert (sender.name, sender.daily_cap, sender.settings["latency_seconds"]) == (
            "Rehearsal 2",
            300,
            0.0,
        )

    listing = client.get("/senders").get_data(as_text=True)
    assert re.search(r'action="/senders/\d+/disable" data-confirm="Disable Rehearsal 2\?', listing)
    page = client.post(
        f"/senders/{sender_id}/disable",
        data={"csrf_token": get_csrf(client, "/senders")},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Sender disabled" in page and "Disabled by an admin" in page
    assert re.search(r'action="/senders/\d+/enable" data-confirm="Enable Rehearsal 2\?', page)
    again = client.post(
        f"/senders/{sender_id}/disable",
        data={"csrf_token": get_csrf(client, "/senders")},
        follow_redirects=True,
    )
    assert again.status_code == 200 and "already disabled" in again.get_data(as_text=True)
    _post(client, f"/senders/{sender_id}/enable")
    with db.session() as session:
        assert session.get(Sender, sender_id).state == SenderState.LINKED
    assert client.get("/senders/999/edit").status_code == 404


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_non_admins_read_the_table_but_cannot_change_senders(client, as_role, db, role) -> None:
    sender_id = make_sender(db, "Rehearsal")
    as_role(role)
    page = client.get("/senders").get_data(as_text=True)
    assert "Rehearsal" in page
    assert "/senders/new" not in page and "/disable" not in page and "/edit" not in page
    assert client.get("/senders/new").status_code == 403
    assert client.get(f"/senders/{sender_id}/edit").status_code == 403
    token = get_csrf(client, "/senders")
    for url, data in (
        ("/senders/new", _form(name="Mine")),
        (f"/senders/{sender_id}/edit", _form(name="Renamed")),
        (f"/senders/{sender_id}/disable", {}),
        (f"/senders/{sender_id}/enable", {}),
    ):
        assert client.post(url, data={**data, "csrf_token": token}).status_code == 403, url
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert (sender.name, sender.state) == ("Rehearsal", SenderState.LINKED)
        assert len(session.scalars(select(Sender)).all()) == 1


def test_the_empty_page_tells_a_non_admin_whom_to_ask(client, as_role) -> None:
    as_role(Role.OPERATOR)
    page = client.get("/senders").get_data(as_text=True)
    assert "No senders yet" in page and "An administrator adds senders here" in page
    assert "/senders/new" not in page


# --- WhatsApp Web senders: adding, linking by QR, screenshots --------------------------------


def _signed_in(app: Flask, db: Database, role: Role = Role.ADMIN) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, f"{role.value}@example.com", PASSWORD, role)
    assert login(client, f"{role.value}@example.com").status_code == 302
    return client


def _web_form(**fields: str) -> dict[str, str]:
    form = {
        "channel": "whatsapp_web",
        "name": "Shop phone",
        "timezone": "Asia/Kolkata",
        "min_delay_seconds": "30",
        "max_delay_seconds": "60",
        "daily_cap": "200",
        "active_from": "",
        "active_until": "",
        "break_every": "30",
        "break_seconds": "300",
        "user_data_dir": "",
        "profile_directory": "",
        "read_replies": "1",
        "hear_days": "3",
    }
    form.update(fields)
    return form


def _web_sender(db: Database, name: str = "Shop phone", **columns: object) -> int:
    """A WhatsApp Web sender as the service adds it (link asked for), then `columns` set."""
    with db.session() as session:
        sender = create_sender(session, None, SenderInput(name=name, channel="whatsapp_web"))
        for key, value in columns.items():
            setattr(sender, key, value)
        session.flush()
        return sender.id


def _shown(html: str, marker: str) -> bool:
    """Whether the element carrying `marker` in its tag is rendered without `hidden`."""
    tag = re.search(rf"<[^>]*{re.escape(marker)}[^>]*>", html)
    assert tag, marker
    return not re.search(r"\shidden[\s>]", tag.group(0))


def test_an_admin_adds_a_whatsapp_web_sender_and_is_taken_to_its_qr(dual) -> None:
    app, db = dual
    client = _signed_in(app, db)
    form = client.get("/senders/new").get_data(as_text=True)
    kinds = re.findall(r'name="channel" id="[^"]+" value="(\w+)"[^>]*?(checked)?>', form)
    assert kinds == [("whatsapp_web", "checked"), ("cloud_api", ""), ("dry_run", "")]
    for key, value in (("min_delay_seconds", "30"), ("daily_cap", "200"), ("break_every", "30")):
        assert re.search(rf'name="{key}"[^>]*value="{value}"', form), key
    assert 'name="visible"' in form and 'name="user_data_dir"' in form
    assert "chrome://version" in form
    rehearsal = client.get("/senders/new?channel=dry_run").get_data(as_text=True)
    assert re.search(r'value="dry_run"[^>]*checked', rehearsal)
    assert re.search(r'name="min_delay_seconds"[^>]*value=""', rehearsal)

    response = client.post(
        "/senders/new", data={**_web_form(visible="1"), "csrf_token": get_csrf(client, "/senders")}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with db.session() as session:
        sender = session.scalars(select(Sender)).one()
        assert (sender.channel, sender.state) == (Channel.WHATSAPP_WEB, SenderState.NEEDS_LINK)
        assert sender.link_requested_until is not None and sender.link_requested_until > utcnow()
        assert sender.settings == {"visible": True, "read_replies": True, "hear_days": 3}
        assert (sender.min_delay_seconds, sender.max_delay_seconds, sender.daily_cap) == (
            30,
            60,
            200,
        )
        assert (sender.break_every, sender.break_seconds) == (30, 300)
        sender_id = sender.id
        created = session.scalars(select(Event.text).where(Event.kind == "sender.created")).one()
        assert "added the WhatsApp Web sender 'Shop phone'" in created
    assert response.headers["Location"] == f"/senders/{sender_id}/link"

    page = client.get(f"/senders/{sender_id}/link").get_data(as_text=True)
    assert f'data-link-url="/senders/{sender_id}/link.json"' in page
    assert _shown(page, 'data-panel="waiting"') and not _shown(page, 'data-panel="qr"')
    assert "Waiting for the browser to start" in page
    assert "background work turned off" in page and 'data-testid="no-worker"' in page
    assert 'src="/static/js/senders.js' in page
    for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", page, flags=re.S):
        assert "src=" in attrs and body.strip() == ""
    assert not re.search(r"\s(style|on[a-z]+)=", page)

    row = re.search(
        r'data-testid="senders">(.*?)</table>', client.get("/senders").get_data(as_text=True), re.S
    ).group(1)
    assert "WhatsApp Web" in row and "needs linking" in row
    assert f'href="/senders/{sender_id}/link"' in row


def test_a_bad_chrome_profile_is_shown_next_to_its_box(client, as_role, db, tmp_path) -> None:
    as_role(Role.ADMIN)
    missing = tmp_path / "missing"
    cases = [
        ({"user_data_dir": "chrome-data"}, "user_data_dir", "full path"),
        ({"user_data_dir": str(missing)}, "user_data_dir", "There is no folder"),
        ({"profile_directory": "Profile 1"}, "profile_directory", "needs the Chrome user-data"),
        (
            {"user_data_dir": str(tmp_path), "profile_directory": "../Default"},
            "profile_directory",
            "not a path",
        ),
    ]
    for fields, box, words in cases:
        response = _post(client, "/senders/new", **_web_form(**fields))
        assert response.status_code == 400, fields
        page = response.get_data(as_text=True)
        error = re.search(rf'data-error-for="{box}">([^<]*)<', page)
        assert error and words in error.group(1), (fields, error)
        assert '<details class="profile-choice" open>' in page  # the error is not folded away
        assert re.search(r'value="whatsapp_web"[^>]*checked', page)
        assert 'value="Shop phone"' in page
    with db.session() as session:
        assert session.scalars(select(Sender)).all() == []

    response = _post(
        client,
        "/senders/new",
        **_web_form(user_data_dir=str(tmp_path), profile_directory="Profile 1"),
    )
    assert response.status_code == 302
    with db.session() as session:
        sender = session.scalars(select(Sender)).one()
        assert sender.settings == {
            "visible": False,
            "user_data_dir": str(tmp_path),
            "profile_directory": "Profile 1",
            "read_replies": True,
            "hear_days": 3,
        }
    # The edit form shows the web settings (not the dry-run ones) and posting them keeps them.
    page = client.get(f"/senders/{sender.id}/edit").get_data(as_text=True)
    assert re.search(rf'name="user_data_dir"[^>]*value="{re.escape(str(tmp_path))}"', page)
    assert not re.search(r'name="visible"[^>]*checked', page)
    assert 'name="latency_seconds"' not in page and 'name="channel"' not in page
    response = _post(
        client,
        f"/senders/{sender.id}/edit",
        **_web_form(visible="1", user_data_dir=str(tmp_path), profile_directory="Profile 1"),
    )
    assert response.status_code == 302 and response.headers["Location"] == "/senders"
    with db.session() as session:
        assert session.get(Sender, sender.id).settings == {
            "visible": True,
            "user_data_dir": str(tmp_path),
            "profile_directory": "Profile 1",
            "read_replies": True,
            "hear_days": 3,
        }


def test_the_link_page_follows_the_row_the_worker_writes(dual) -> None:
    app, db = dual
    client = _signed_in(app, db)
    sender_id = _web_sender(db)
    url = f"/senders/{sender_id}/link.json"

    response = client.get(url)
    assert response.status_code == 200 and response.is_json
    assert response.headers["Cache-Control"] == "no-store"
    view = response.get_json()
    assert set(view) == {
        "id", "state", "reason", "phone", "linking", "qr", "seconds_left", "by_phone", "code",
        "trouble", "detail",
    }  # fmt: skip
    assert (view["id"], view["state"], view["linking"], view["qr"]) == (
        sender_id,
        "needs_link",
        True,
        None,
    )
    assert 0 < view["seconds_left"] <= 300

    qr = "data:image/png;base64,iVBORw0KGgo="
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        sender.link_qr, sender.link_qr_at = qr, utcnow()
    assert client.get(url).get_json()["qr"] == qr
    page = client.get(f"/senders/{sender_id}/link").get_data(as_text=True)
    assert re.search(
        rf'<img[^>]*alt="WhatsApp QR code"[^>]*data-testid="qr" src="{re.escape(qr)}"', page
    )
    assert _shown(page, 'data-panel="qr"') and not _shown(page, 'data-panel="waiting"')
    assert "Linked devices" in page and "Link a device" in page

    with db.session() as session:
        sender = session.get(Sender, sender_id)
        sender.state, sender.phone = SenderState.LINKED, "+919876543210"
        sender.link_requested_until, sender.link_qr = None, None
    view = client.get(url).get_json()
    assert (view["state"], view["phone"], view["linking"], view["qr"]) == (
        "linked",
        "+919876543210",
        False,
        None,
    )
    page = client.get(f"/senders/{sender_id}/link").get_data(as_text=True)
    assert _shown(page, 'data-panel="linked"') and not _shown(page, 'data-panel="qr"')
    linked = re.search(r'data-testid="linked-as">(.*?)</span></span>', page).group(1)
    assert "Linked as" in linked and "+919876543210" in linked
    assert "Linked as +919876543210" in client.get("/senders").get_data(as_text=True)

    with db.session() as session:
        sender = session.get(Sender, sender_id)
        sender.state = SenderState.NEEDS_LINK
        sender.link_requested_until = utcnow() - timedelta(minutes=1)
    assert client.get(url).get_json()["linking"] is False
    page = client.get(f"/senders/{sender_id}/link").get_data(as_text=True)
    assert _shown(page, 'data-panel="idle"') and _shown(page, 'data-idle="expired"')
    assert "The QR code expired" in page
    assert re.search(rf'<form method="post" action="/senders/{sender_id}/link">', page)

    rehearsal = make_sender(db, "Rehearsal")
    assert client.get(f"/senders/{rehearsal}/link.json").status_code == 404
    assert client.get(f"/senders/{rehearsal}/link").status_code == 404
    assert client.get("/senders/999/link.json").status_code == 404


def test_the_link_page_asks_for_no_worker_when_the_app_runs_one(settings) -> None:
    app = create_app(replace(settings, worker=True))  # the worker thread is started by `serve`
    db: Database = app.extensions["wabulk.db"]
    migrate.upgrade(db.engine)
    sender_id = _web_sender(db)
    page = _signed_in(app, db).get(f"/senders/{sender_id}/link").get_data(as_text=True)
    assert "Waiting for the browser to start" in page and 'data-testid="no-worker"' not in page
    db.dispose()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_only_admins_link_senders(client, as_role, make_user, db, role) -> None:
    sender_id = _web_sender(db, state=SenderState.IN_USE, link_requested_until=None)
    make_user(Role.ADMIN)  # with nobody at all, a visitor is sent to the first-run setup
    for url in (f"/senders/{sender_id}/link", f"/senders/{sender_id}/link.json"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    as_role(role)
    page = client.get("/senders").get_data(as_text=True)
    assert "in use elsewhere" in page and f"/senders/{sender_id}/link" not in page
    assert client.get(f"/senders/{sender_id}/link").status_code == 403
    assert client.get(f"/senders/{sender_id}/link.json").status_code == 403
    response = client.post(
        f"/senders/{sender_id}/link",
        data={"takeover": "1", "csrf_token": get_csrf(client, "/senders")},
    )
    assert response.status_code == 403
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert (sender.state, sender.link_takeover, sender.link_requested_until) == (
            SenderState.IN_USE,
            False,
            None,
        )


def test_use_here_takes_the_session_back_and_try_again_restarts_the_browser(
    client, as_role, db
) -> None:
    as_role(Role.ADMIN)
    in_use = _web_sender(
        db,
        "Shop phone",
        state=SenderState.IN_USE,
        state_reason=IN_USE_REASON,
        link_requested_until=None,
    )
    failed = _web_sender(
        db,
        "Office phone",
        state=SenderState.BROWSER_FAILED,
        state_reason="Google Chrome is not installed: install it, then try again.",
        link_requested_until=None,
    )
    listing = client.get("/senders").get_data(as_text=True)
    assert "in use elsewhere" in listing and IN_USE_REASON in listing
    assert re.search(
        rf'action="/senders/{in_use}/link"\s+data-confirm="Use WhatsApp for Shop phone here\?',
        listing,
    )
    assert "browser failed" in listing and "Google Chrome is not installed" in listing
    assert "Try again" in listing
    page = client.get(f"/senders/{in_use}/link").get_data(as_text=True)
    assert _shown(page, 'data-panel="in_use"') and 'name="takeover" value="1"' in page

    response = _post(client, f"/senders/{in_use}/link", takeover="1")
    assert response.status_code == 302 and response.headers["Location"] == f"/senders/{in_use}/link"
    response = _post(client, f"/senders/{failed}/link")
    assert response.headers["Location"] == f"/senders/{failed}/link"
    with db.session() as session:
        taken, retried = session.get(Sender, in_use), session.get(Sender, failed)
        assert (taken.state, taken.link_takeover) == (SenderState.NEEDS_LINK, True)
        assert (retried.state, retried.link_takeover) == (SenderState.NEEDS_LINK, False)
        assert taken.link_requested_until > utcnow() and retried.link_requested_until > utcnow()
        asked = session.scalars(
            select(Event.text).where(Event.kind == "sender.link_requested").order_by(Event.id)
        ).all()
        assert "take back" in asked[0] and "to link" in asked[1]

    with db.session() as session:
        session.get(Sender, in_use).state = SenderState.LINKED
    page = client.post(
        f"/senders/{in_use}/link",
        data={"csrf_token": get_csrf(client, "/senders")},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Shop phone is already linked." in page


def test_screenshots_are_served_by_their_own_names_only(client, as_role, settings) -> None:
    folder = screenshots_folder(settings.instance_path)
    folder.mkdir(parents=True)
    name = "20261124T101500123456-m42-unconfirmed.png"
    (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n one screenshot")
    (folder / "notes.png").write_bytes(b"\x89PNG\r\n\x1a\n not written by the channel")
    as_role(Role.OPERATOR)
    shot = client.get(f"/senders/screenshots/{name}")
    assert shot.status_code == 200 and shot.mimetype == "image/png"
    assert shot.data == b"\x89PNG\r\n\x1a\n one screenshot"
    shot.close()
    for bad in (
        "20261124T101500123456-m43-unconfirmed.png",  # the right shape, but no such file
        "notes.png",  # a file that is there, but not a name the channel writes
        "20261124T101500123456-unconfirmed.PNG",
        "..%2Fsecret_key",
        "..%2F..%2Finstance%2Fsecret_key",
        "20261124T101500123456-x.png%0A",
    ):
        assert client.get(f"/senders/screenshots/{bad}").status_code == 404, bad


def test_a_viewer_cannot_open_screenshots(client, as_role, settings) -> None:
    folder = screenshots_folder(settings.instance_path)
    folder.mkdir(parents=True)
    (folder / "20261124T101500123456-no-preview.png").write_bytes(b"\x89PNG")
    as_role(Role.VIEWER)
    assert (
        client.get("/senders/screenshots/20261124T101500123456-no-preview.png").status_code == 403
    )
