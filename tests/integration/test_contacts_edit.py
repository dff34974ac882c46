"""Adding and editing one contact from the Contacts pages, and landlines marked."""

from __future__ import annotations

import html
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from wabulk import app_settings
from wabulk.auth import service as users
from wabulk.contacts import lists, tallies
from wabulk.db import Database
from wabulk.models import Contact, ContactList, Event, Role, utcnow

from ..conftest import PASSWORD, csrf_from, login


def _sign_in(app: Flask, db: Database, role: Role = Role.OPERATOR) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, f"{role.value}@example.com", PASSWORD, role)
    assert login(client, f"{role.value}@example.com").status_code == 302
    return client


def _country(db: Database, code: str = "IN") -> None:
    with db.session() as session:
        admin = users.create_user(session, None, "boss@example.com", PASSWORD, Role.ADMIN)
        app_settings.set_default_country(session, admin, code)


def _list(db: Database, name: str) -> int:
    with db.session() as session:
        return lists.create_list(session, None, name).id


def _post(client: FlaskClient, url: str, **form: object) -> object:
    token = csrf_from(client.get(url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **form})


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_add_a_contact_with_fields_and_a_list(dual) -> None:
    app, db = dual
    _country(db)
    vip = _list(db, "VIP")
    client = _sign_in(app, db)
    index = client.get("/contacts/").get_data(as_text=True)
    assert 'data-testid="add-contact"' in index
    response = _post(
        client,
        "/contacts/new",
        phone="98765 43210",
        name="  Asha   Rao ",
        field_name=["City", "Due Amount", ""],
        field_value=["Pune", "450", ""],
        list_ids=[str(vip)],
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with db.session() as session:
        asha = session.scalars(select(Contact)).one()
        assert (asha.phone, asha.name, asha.country) == ("+919876543210", "Asha Rao", "IN")
        assert asha.attributes == {"city": "Pune", "due_amount": "450"}
        assert session.get(ContactList, vip).member_count == 1
        assert tallies.totals(session)[0] == 1
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "added +919876543210 named 'Asha Rao' with city, due_amount and put it in 'VIP'" in (
        _text(page)
    )
    assert 'data-testid="edit-contact"' in page


def test_edit_changes_the_contact_and_writes_one_history_line(dual) -> None:
    app, db = dual
    _country(db)
    old, new = _list(db, "Old customers"), _list(db, "Diwali")
    with db.session() as session:
        contact = Contact(
            phone="+919876543210",
            name="Asha",
            attributes={"city": "Pune", "due": 450},
            opted_out_at=utcnow(),
            opt_out_reason="asked to stop",
        )
        session.add(contact)
        session.flush()
        contact_id = contact.id
    with db.session() as session:
        from wabulk.contacts import service

        service.add_to_list(session, None, old, [contact_id])
    client = _sign_in(app, db)
    url = f"/contacts/{contact_id}/edit"
    form = client.get(url).get_data(as_text=True)
    assert 'name="csrf_token"' in form and "saving changes keeps it opted out" in form
    assert 'value="Pune"' in form and f'value="{old}" id="list-{old}" checked' in form
    response = _post(
        client,
        url,
        phone="+91 98765 43211",
        name="Asha Rao",
        field_name=["city", "due", "Birthday"],
        field_value=["Mumbai", "", "3 May"],
        list_ids=[str(new)],
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with db.session() as session:
        asha = session.get(Contact, contact_id)
        assert (asha.phone, asha.name) == ("+919876543211", "Asha Rao")
        assert asha.attributes == {"city": "Mumbai", "birthday": "3 May"}
        assert asha.opted_out_at is not None and asha.opt_out_reason == "asked to stop"
        assert session.get(ContactList, old).member_count == 0
        assert session.get(ContactList, new).member_count == 1
        edited = session.scalars(select(Event).where(Event.kind == "contact.edited")).one()
        assert edited.text == (
            "operator@example.com changed phone from +919876543210 to +919876543211; "
            "name from 'Asha' to 'Asha Rao'; birthday from (empty) to '3 May'; "
            "city from 'Pune' to 'Mumbai'; due from '450' to (empty); "
            "left 'Old customers'; joined 'Diwali'"
        )
    page = _text(client.get(f"/contacts/{contact_id}").get_data(as_text=True))
    assert "changed phone from +919876543210 to +919876543211" in page
    # Saving the same again changes nothing and records nothing.
    same = _post(
        client,
        url,
        phone="+919876543211",
        name="Asha Rao",
        field_name=["city", "birthday"],
        field_value=["Mumbai", "3 May"],
        list_ids=[str(new)],
    )
    assert same.status_code == 302
    with db.session() as session:
        assert (
            session.scalar(
                select(Event.id).where(Event.kind == "contact.edited").order_by(Event.id.desc())
            )
            == edited.id
        )


def test_a_phone_of_another_contact_is_refused_with_a_link_to_it(dual) -> None:
    app, db = dual
    _country(db)
    with db.session() as session:
        ravi = Contact(phone="+919876543210", name="Ravi")
        asha = Contact(phone="+919876543211", name="Asha")
        session.add_all([ravi, asha])
        session.flush()
        ravi_id, asha_id = ravi.id, asha.id
    client = _sign_in(app, db)
    added = _post(client, "/contacts/new", phone="09876543210", name="Someone")
    assert added.status_code == 409
    page = added.get_data(as_text=True)
    assert "Ravi (+919876543210) is already a contact" in _text(page)
    assert f'href="/contacts/{ravi_id}" data-testid="taken-link"' in page
    assert 'value="Someone"' in page  # nothing typed is lost
    edited = _post(client, f"/contacts/{asha_id}/edit", phone="+919876543210", name="Asha")
    assert edited.status_code == 409
    with db.session() as session:
        assert session.get(Contact, asha_id).phone == "+919876543211"
        assert session.scalar(select(Contact.id).where(Contact.name == "Someone")) is None


def test_a_bad_phone_says_what_and_where_to_set_the_country(dual) -> None:
    app, db = dual
    client = _sign_in(app, db)
    response = _post(client, "/contacts/new", phone="98765 43210", name="Asha")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = re.search(r'data-error-for="phone">(.*?)</div>', page, re.S)
    assert error, "no error next to the phone box"
    assert "'98765 43210' has no country code" in _text(error.group(1))
    assert "set your country under Settings → General" in _text(error.group(1))
    _country(db)
    short = _post(client, "/contacts/new", phone="12345", name="Asha")
    error = re.search(r'data-error-for="phone">(.*?)</div>', short.get_data(as_text=True), re.S)
    assert error and "'12345' is too short for India" in _text(error.group(1))
    too_long = _post(client, "/contacts/new", phone="9" * 61)
    assert "at most 60 characters" in too_long.get_data(as_text=True)
    with db.session() as session:
        assert session.scalar(select(Contact.id)) is None


def test_bounded_fields(dual) -> None:
    app, db = dual
    _country(db)
    client = _sign_in(app, db)
    many = _post(
        client,
        "/contacts/new",
        phone="9876543210",
        field_name=[f"f{i}" for i in range(61)],
        field_value=["x"] * 61,
    )
    assert many.status_code == 400 and "at most 60 fields" in many.get_data(as_text=True)
    long = _post(
        client, "/contacts/new", phone="9876543210", field_name=["Note"], field_value=["x" * 1001]
    )
    assert long.status_code == 400
    assert "has more than 1000 characters" in html.unescape(long.get_data(as_text=True))
    nameless = _post(
        client, "/contacts/new", phone="9876543210", field_name=[""], field_value=["Pune"]
    )
    assert nameless.status_code == 400 and "a name" in html.unescape(
        nameless.get_data(as_text=True)
    )


def test_csrf_and_roles(dual) -> None:
    app, db = dual
    _country(db)
    with db.session() as session:
        contact = Contact(phone="+919876543210", name="Asha")
        session.add(contact)
        session.flush()
        contact_id = contact.id
    anonymous = app.test_client()
    assert anonymous.get("/contacts/new").status_code == 302  # to sign in
    client = _sign_in(app, db)
    no_token = client.post("/contacts/new", data={"phone": "9876543211"})
    assert no_token.status_code == 400
    viewer = _sign_in(app, db, Role.VIEWER)
    assert viewer.get("/contacts/new").status_code == 403
    assert viewer.get(f"/contacts/{contact_id}/edit").status_code == 403
    token = csrf_from(viewer.get("/contacts/").get_data(as_text=True))
    refused = viewer.post(
        f"/contacts/{contact_id}/edit", data={"csrf_token": token, "phone": "9876543211"}
    )
    assert refused.status_code == 403
    page = viewer.get(f"/contacts/{contact_id}").get_data(as_text=True)
    assert 'data-testid="edit-contact"' not in page
    assert 'data-testid="add-contact"' not in viewer.get("/contacts/").get_data(as_text=True)
    with db.session() as session:
        assert session.get(Contact, contact_id).phone == "+919876543210"
        assert session.scalar(select(Contact.id).where(Contact.phone == "+919876543211")) is None


def test_a_landline_is_accepted_and_marked(dual) -> None:
    app, db = dual
    _country(db)
    client = _sign_in(app, db)
    response = _post(client, "/contacts/new", phone="022 2456 7890", name="Shop")
    assert response.status_code == 302
    assert "is a landline" in _text(client.get(response.headers["Location"]).get_data(as_text=True))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-testid="landline">Landline: may not reach a phone' in page
    _post(client, "/contacts/new", phone="98765 43210", name="Mobile")
    rows = client.get("/contacts/").get_data(as_text=True)
    assert rows.count('data-testid="landline"') == 1
    landline_row = re.search(r"<tr>((?:(?!</tr>).)*\+912224567890(?:(?!</tr>).)*)</tr>", rows, re.S)
    assert landline_row and 'data-testid="landline"' in landline_row.group(1)
