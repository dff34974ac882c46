"""Issue 14, item 8: a number too big for the database in an address, a query string or a
form answers 404 (or is taken as an id that names nothing), never a 500."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing.converters import NumberConverter

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.auth import service as users
from wabulk.db import Database
from wabulk.models import Contact, Role
from wabulk.web.helpers import MAX_ID, cursor_value, id_value

from ..conftest import PASSWORD, get_csrf, login

HUGE = 99999999999999999999999  # past SQLite's 64 bits and PostgreSQL's 32


def test_every_route_with_an_id_answers_404_for_a_huge_one(
    app: Flask, client: FlaskClient, as_role
) -> None:
    as_role(Role.ADMIN)
    token = get_csrf(client, "/contacts/")
    adapter = app.url_map.bind("localhost")
    checked = []
    for rule in app.url_map.iter_rules():
        numbers = [a for a in rule.arguments if isinstance(rule._converters[a], NumberConverter)]
        if not numbers:
            continue
        values = {a: HUGE if a in numbers else "x" for a in rule.arguments}
        url = adapter.build(rule.endpoint, values)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(
                url,
                method=method,
                data={"csrf_token": token},
                headers={"X-CSRFToken": token},
            )
            assert response.status_code == 404, (method, url, response.status_code)
            response.close()
            checked.append((method, rule.rule))
    # Pages and the API alike: contacts, lists, campaigns, templates, attachments, imports,
    # senders, users, tokens...
    assert len(checked) >= 40, checked
    assert any(rule.startswith("/api/") for _, rule in checked)
    assert any(rule.startswith("/contacts/") for _, rule in checked)


def test_the_address_in_the_issue_answers_404_with_our_sentence(
    client: FlaskClient, as_role
) -> None:
    as_role(Role.VIEWER)
    response = client.get(f"/contacts/{HUGE}")
    assert response.status_code == 404
    assert "There is nothing at this address." in response.get_data(as_text=True)


def test_huge_ids_in_query_strings_name_nothing(client: FlaskClient, as_role, db: Database) -> None:
    campaign_id = make_campaign(db, [make_contacts(db, phones(3), "Buyers")], [make_sender(db)])
    with db.session() as session:
        contact_id = session.query(Contact.id).order_by(Contact.id).first()[0]
    as_role(Role.OPERATOR)
    urls = [
        f"/contacts/?before={HUGE}",
        f"/contacts/?list_id={HUGE}",
        f"/contacts/{contact_id}?messages_before={HUGE}",
        f"/activity?before={HUGE}",
        f"/activity?after={HUGE}",
        f"/campaigns/new?template_id={HUGE}",
        f"/campaigns/audience.json?list_ids={HUGE}&list_ids=1",
        f"/campaigns/{campaign_id}?after={HUGE}",
        f"/campaigns/{campaign_id}/recipients?after={HUGE}",
        f"/campaigns/{campaign_id}/progress.json?after_event={HUGE}",
        f"/live/campaigns.json?ids={HUGE},{campaign_id}",
        f"/contacts/export.csv?list_id={HUGE}",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        assert response.status_code in (200, 404), (url, response.status_code)
        response.close()
    # As a cursor, a huge "before" is the newest page: every contact is there.
    page = client.get(f"/contacts/?before={HUGE}").get_data(as_text=True)
    assert all(p in page for p in phones(3))
    # As a filter, a huge list id is a list that does not exist: nobody is in it.
    page = client.get(f"/contacts/?list_id={HUGE}").get_data(as_text=True)
    assert not any(p in page for p in phones(3))
    audience = client.get(f"/campaigns/audience.json?list_ids={HUGE}").get_json()
    assert audience["recipients"] == 0
    live = client.get(f"/live/campaigns.json?ids={HUGE},{campaign_id}").get_json()
    assert [c["id"] for c in live["campaigns"]] == [campaign_id]


def test_filters_refuse_huge_or_unusual_numbers_with_a_sentence(
    client: FlaskClient, as_role
) -> None:
    as_role(Role.VIEWER)
    for value in (str(HUGE), "²", "١٢"):
        for url in (
            f"/analytics?campaign={value}",
            f"/analytics?sender={value}",
            f"/analytics.json?campaign={value}",
            f"/activity?campaign={value}",
            f"/activity?user={value}",
        ):
            response = client.get(url)
            assert response.status_code == 400, (url, response.status_code)
            body = response.get_data(as_text=True)
            assert "choose one from the list" in body or "is not a" in body, url


def test_huge_ids_in_forms_name_nothing(client: FlaskClient, as_role, db: Database) -> None:
    list_id = make_contacts(db, phones(2), "Buyers")
    with db.session() as session:
        contact_id = session.query(Contact.id).order_by(Contact.id).first()[0]
    as_role(Role.OPERATOR)
    token = get_csrf(client, "/contacts/")
    posts = [
        ("/contacts/bulk", {"action": "add", "list_id": HUGE, "contact_ids": [HUGE, contact_id]}),
        ("/contacts/bulk", {"action": "add", "list_id": list_id, "contact_ids": HUGE}),
        ("/contacts/bulk", {"action": "opt_out", "contact_ids": HUGE}),
        (f"/contacts/{contact_id}/lists", {"remove": HUGE}),
        (f"/contacts/{contact_id}/lists", {"list_id": HUGE}),
        ("/templates/preview.json", {"template_id": HUGE, "body": "Hi", "list_ids": HUGE}),
        (
            "/campaigns/new",
            {
                "name": "Huge",
                "list_ids": HUGE,
                "sender_ids": HUGE,
                "template_id": HUGE,
                "media_id": HUGE,
                "body": "Hi",
                "max_attempts": "3",
                "retry_seconds": "60",
            },
        ),
        (
            "/contacts/imports/new",
            {"kind": "contacts", "list_choice": str(HUGE)},
        ),
    ]
    for url, form in posts:
        response = client.post(url, data={"csrf_token": token, **form})
        assert response.status_code < 500, (url, response.status_code)
        response.close()
    with db.session() as session:
        assert session.get(Contact, contact_id).opted_out_at is None


def test_ids_are_digits_only_and_bounded_and_cursors_are_capped() -> None:
    assert id_value("42") == 42
    assert id_value(" 0 ") == 0
    assert id_value(str(MAX_ID)) == MAX_ID
    assert id_value("0" * 5000 + "7") == 7
    assert cursor_value("42") == 42
    assert cursor_value(str(HUGE)) == MAX_ID - 1
    assert cursor_value("9" * 5000) == MAX_ID - 1
    for bad in ("", "-1", "1.5", "²", "١٢", "0x10", "1e9", str(MAX_ID + 1), str(HUGE)):
        with pytest.raises(ValueError):
            id_value(bad)
    for bad in ("", "-1", "²", "١٢"):
        with pytest.raises(ValueError):
            cursor_value(bad)


def test_past_32_bits_names_nothing_on_either_database(dual) -> None:
    """2**31 fits SQLite but not PostgreSQL's integer ids: refused the same on both."""
    app, db = dual
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, "admin@example.com", PASSWORD, Role.ADMIN)
    login(client, "admin@example.com")
    past = 2**31
    for url in (f"/contacts/{past}", f"/campaigns/{past}", f"/api/v1/contacts/{past}"):
        assert client.get(url).status_code == 404, url
    for url in (
        f"/contacts/?before={past}&list_id={past}",
        f"/activity?before={past}&after={past}",
        f"/live/campaigns.json?ids={past}",
    ):
        assert client.get(url).status_code == 200, url
