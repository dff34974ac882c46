"""The Senders page over HTTP: admins add, edit, disable and enable; everyone else reads."""

from __future__ import annotations

import re
from datetime import time

import pytest
from sqlalchemy import select

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.models import Channel, Role, Sender, SenderState, utcnow
from wabulk.models import Message as MessageRow

from ..conftest import get_csrf


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
    assert "arrive in a later version" in page
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
