"""The Contacts pages: upload → mapping → run → results, lists, opt-outs, export."""

from __future__ import annotations

import csv
import gc
import io
import re
import warnings
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from wabulk import migrate
from wabulk.app import create_app
from wabulk.auth import service as users
from wabulk.config import Settings
from wabulk.contacts import importer
from wabulk.db import Database
from wabulk.dispatch.worker import Dispatcher
from wabulk.models import Contact, ContactList, Event, Import, ImportStatus, Role

from ..conftest import PASSWORD, get_csrf, login

SHEET = (
    "Mobile,Customer Name,City,Due Amount\n"
    '9876543210,Asha,Pune,=HYPERLINK("http://evil")\n'
    "12345,Bad,Goa,1\n"
    "\n"
    "09123456789,Ravi,Delhi,0\n"
)


def _upload(client, data: bytes = SHEET.encode(), name: str = "customers.csv", kind="contacts"):
    token = get_csrf(client, "/contacts/imports/new")
    return client.post(
        "/contacts/imports/new",
        data={
            "csrf_token": token,
            "kind": kind,
            "file": (io.BytesIO(data), name),
        },
        content_type="multipart/form-data",
    )


def _start(client, import_id: int, **fields):
    page = client.get(f"/contacts/imports/{import_id}").get_data(as_text=True)
    form = {
        "csrf_token": get_csrf(client, f"/contacts/imports/{import_id}"),
        "default_country": "IN",
        "list_choice": "new",
        "new_list": "Customers",
    }
    for i, role in enumerate(re.findall(r'name="role_(\d+)"', page)):
        selected = re.search(
            rf'name="role_{role}".*?<option value="(\w+)"[^>]*selected', page, re.S
        )
        form[f"role_{i}"] = selected.group(1) if selected else "attribute"
    form.update(fields)
    return client.post(f"/contacts/imports/{import_id}/start", data=form)


def _run_worker(db, settings: Settings) -> None:
    dispatcher = Dispatcher(db, settings)
    while dispatcher.import_step():
        pass


def test_import_through_the_pages(client, as_role, db, settings) -> None:
    as_role(Role.OPERATOR)
    response = _upload(client)
    assert response.status_code == 302
    import_id = int(response.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/contacts/imports/{import_id}").get_data(as_text=True)
    assert "Check the columns" in page and "Customer Name" in page
    assert re.search(r'name="role_0".*?value="phone"[^>]*selected', page, re.S)  # guessed
    assert _start(client, import_id).status_code == 302
    assert client.get(f"/contacts/imports/{import_id}/status.json").get_json()["status"] == "queued"
    waiting = client.get(f"/contacts/imports/{import_id}").get_data(as_text=True)
    assert "Waiting to start" in waiting and "Contacts join the list" in waiting
    assert "were added" not in waiting
    _run_worker(db, settings)
    status = client.get(f"/contacts/imports/{import_id}/status.json").get_json()
    assert (status["status"], status["created"], status["invalid"], status["percent"]) == (
        "completed",
        2,
        1,
        100,
    )
    page = client.get(f"/contacts/imports/{import_id}").get_data(as_text=True)
    assert "row 3: &#39;12345&#39; is too short for India" in page
    assert "Contacts were added to the list" in page
    report = client.get(f"/contacts/imports/{import_id}/report.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(report.lstrip("\ufeff"))))
    assert rows[0][:3] == ["Row", "Status", "Reason"]
    assert rows[1][:4] == ["3", "rejected", "row 3: '12345' is too short for India", "12345"]
    listing = client.get("/contacts/").get_data(as_text=True)
    assert "+919876543210" in listing and "+919123456789" in listing and "Customers" in listing


def test_viewer_cannot_upload(client, as_role) -> None:
    as_role(Role.VIEWER)
    assert client.get("/contacts/imports/new").status_code == 403


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"Phone,Name\n", "header row but no data rows"),
        (b"%PDF-1.4 binary", "This is a PDF"),
        (b"PK\x03\x04garbage-not-a-zip", "damaged"),
    ],
)
def test_unreadable_uploads_get_a_clear_message_and_keep_nothing(
    client, as_role, db, data, message
) -> None:
    as_role(Role.OPERATOR)
    response = _upload(client, data, "customers.xlsx")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with db.session() as session:
        assert session.scalars(select(Import)).all() == []


def test_no_phone_column_is_explained(client, as_role) -> None:
    as_role(Role.OPERATOR)
    response = _upload(client, b"Customer,City\nAsha,Pune\nRavi,Delhi\n")
    import_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = _start(client, import_id, role_0="name", role_1="attribute")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "No column looks like phone numbers" in page and "&#34;City&#34;" in page


def test_an_upload_over_the_limit_is_refused_clearly(tmp_path, make_user) -> None:

    app = create_app(
        Settings(instance_path=tmp_path / "i", secret_key="k", worker=False, max_upload_mb=50)
    )
    migrate.upgrade(app.extensions["wabulk.db"].engine)
    client = app.test_client()
    from wabulk.auth import service as users

    from ..conftest import login

    with app.extensions["wabulk.db"].session() as session:
        users.create_user(session, None, "op@example.com", "correct horse battery", Role.OPERATOR)
    login(client, "op@example.com")
    token = get_csrf(client, "/contacts/imports/new")
    big = io.BytesIO(b"Phone\n" + b"9876543210\n" * (6 * 1024 * 1024))  # ~66 MB
    response = client.post(
        "/contacts/imports/new",
        data={"csrf_token": token, "file": (big, "big.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "larger than the 50 MB limit" in response.get_data(as_text=True)
    imports_dir = tmp_path / "i" / "imports"
    assert not imports_dir.exists() or not list(imports_dir.iterdir())
    # Werkzeug abandons its spooled temp file when it aborts a body at the limit; collect it
    # here so its ResourceWarning is not blamed on the next test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del response
        gc.collect()


def test_opt_out_and_back_in_with_reasons(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    with db.session() as session:
        contact = Contact(phone="+919876543210", name="Asha")
        session.add(contact)
    token = get_csrf(client, f"/contacts/{contact.id}")
    empty = client.post(
        f"/contacts/{contact.id}/opt-out",
        data={"csrf_token": token, "reason": " "},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Say why" in empty
    page = client.post(
        f"/contacts/{contact.id}/opt-out",
        data={"csrf_token": token, "reason": "Asked by phone"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "opted out" in page and "Asked by phone" in page
    assert "opted out" in client.get("/contacts/?status=opted_out").get_data(as_text=True)
    page = client.post(
        f"/contacts/{contact.id}/opt-in",
        data={"csrf_token": token, "reason": "Rejoined at the shop"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Opted back in." in page
    assert "opted Asha" not in page and "opted +919876543210 back in: Rejoined" in page
    with db.session() as session:
        kinds = session.scalars(select(Event.kind).order_by(Event.id)).all()
    assert kinds[-2:] == ["contact.opted_out", "contact.opted_in"]


def test_lists_rename_delete_keeps_contacts_and_bulk_actions(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    with db.session() as session:
        session.add_all([Contact(phone=f"+9198765432{i:02d}") for i in range(3)])
        vip = ContactList(name="VIP")
        session.add(vip)
    with db.session() as session:
        ids = session.scalars(select(Contact.id)).all()
    token = get_csrf(client, "/contacts/")
    page = client.post(
        "/contacts/bulk",
        data={"csrf_token": token, "action": "add", "list_id": vip.id, "contact_ids": ids[:2]},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Added 2 contact(s) to the list." in page
    client.post(f"/contacts/lists/{vip.id}/rename", data={"csrf_token": token, "name": "Gold"})
    listed = client.get(f"/contacts/?list_id={vip.id}").get_data(as_text=True)
    assert "Gold" in listed and "2 matching contacts" in listed
    page = client.post(
        f"/contacts/lists/{vip.id}/delete", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "its contacts were kept" in page
    with db.session() as session:
        assert len(session.scalars(select(Contact.id)).all()) == 3


def test_search_by_name_phone_and_attribute(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    with db.session() as session:
        session.add_all(
            [
                Contact(phone="+919876543210", name="Asha", attributes={"city": "Pune"}),
                Contact(phone="+14155552671", name="Maria", attributes={"city": "San Francisco"}),
            ]
        )
    assert "Maria" not in client.get("/contacts/?q=asha").get_data(as_text=True)
    assert "Asha" in client.get("/contacts/?q=98765").get_data(as_text=True)
    page = client.get("/contacts/?q=francisco").get_data(as_text=True)
    assert "Maria" in page and "Asha" not in page


def test_export_neutralises_formulas_but_keeps_e164(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    with db.session() as session:
        session.add(
            Contact(
                phone="+919876543210",
                name="=cmd|' /C calc'!A0",
                attributes={"due": "-12.50", "note": "@SUM(A1)", "x": "+1+2"},
            )
        )
    body = client.get("/contacts/export.csv").get_data(as_text=True).lstrip("\ufeff")
    header, row = list(csv.reader(io.StringIO(body)))
    values = dict(zip(header, row, strict=True))
    assert values["phone"] == "+919876543210"
    assert values["name"] == "'=cmd|' /C calc'!A0"
    assert (values["due"], values["note"], values["x"]) == ("-12.50", "'@SUM(A1)", "'+1+2")
    xlsx = client.get("/contacts/export.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    xlsx.close()


def test_sample_sheet_downloads_and_imports(client, as_role, tmp_path) -> None:
    as_role(Role.VIEWER)
    sample = client.get("/contacts/sample.xlsx")
    assert sample.status_code == 200
    path = tmp_path / "sample.xlsx"
    path.write_bytes(sample.data)
    sample.close()
    from wabulk.contacts.sheets import open_sheet

    sheet = open_sheet(path)
    assert sheet.header[:2] == ["Phone", "Name"]
    assert len(list(sheet.rows())) == 4


def test_a_contact_page_shows_attributes_lists_and_history(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    with db.session() as session:
        contact = Contact(phone="+919876543210", name="Asha", attributes={"city": "Pune"})
        vip = ContactList(name="VIP")
        session.add_all([contact, vip])
    token = get_csrf(client, f"/contacts/{contact.id}")
    client.post(f"/contacts/{contact.id}/lists", data={"csrf_token": token, "list_id": vip.id})
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "{{ city }}" in page and "Pune" in page
    assert re.search(r'data-testid="member-of".*VIP', page, re.S)
    assert client.get("/contacts/999999").status_code == 404


def test_import_of_opt_outs_marks_everyone_listed(client, as_role, db, settings) -> None:
    as_role(Role.OPERATOR)
    with db.session() as session:
        session.add(Contact(phone="+919876543210", name="Asha"))
    response = _upload(client, b"Number\n9876543210\n9123456789\n", "stop.csv", "opt_outs")
    import_id = int(response.headers["Location"].rsplit("/", 1)[1])
    _start(client, import_id, reason="Replied STOP")
    _run_worker(db, settings)
    with db.session() as session:
        contacts = session.scalars(select(Contact).order_by(Contact.phone)).all()
        imp = importer.get_import(session, import_id)
    assert imp.status == ImportStatus.COMPLETED
    assert [(c.phone, c.opt_out_reason) for c in contacts] == [
        ("+919123456789", "Replied STOP"),
        ("+919876543210", "Replied STOP"),
    ]
    assert all(c.opted_out_at is not None for c in contacts)


def _signed_in(app: Flask, db: Database, role: Role) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, f"{role.value}@example.com", PASSWORD, role)
    assert login(client, f"{role.value}@example.com").status_code == 302
    return client


def test_a_number_not_on_whatsapp_is_tried_again_when_an_operator_asks(dual) -> None:
    app, db = dual
    flagged_at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    with db.session() as session:
        contact = Contact(phone="+919876543210", name="Asha", not_on_whatsapp_at=flagged_at)
        session.add(contact)
    url = f"/contacts/{contact.id}"
    check = f"{url}/whatsapp-check"

    viewer = _signed_in(app, db, Role.VIEWER)
    page = viewer.get(url).get_data(as_text=True)
    badge = re.search(r'data-testid="not-on-whatsapp">([^<]*)<', page)
    assert badge and badge.group(1) == "Not on WhatsApp since 2026-11-20 09:30 UTC"
    assert check not in page
    row = viewer.get("/contacts/").get_data(as_text=True)
    assert re.search(r'data-testid="not-on-whatsapp"[^>]*>not on WhatsApp<', row)
    assert viewer.post(check, data={"csrf_token": get_csrf(viewer, url)}).status_code == 403

    operator = _signed_in(app, db, Role.OPERATOR)
    page = operator.get(url).get_data(as_text=True)
    assert re.search(rf'action="{check}" data-confirm="Try \+919876543210 on WhatsApp again', page)
    response = operator.post(check, data={"csrf_token": get_csrf(operator, url)})
    assert response.status_code == 302 and response.headers["Location"] == url
    with db.session() as session:
        assert session.get(Contact, contact.id).not_on_whatsapp_at is None
        event = session.scalars(select(Event).where(Event.kind == "contact.whatsapp_cleared")).one()
        assert event.data == {"contact_id": contact.id}
        assert event.text == (
            "operator@example.com asked the next campaign to try +919876543210 on WhatsApp again"
        )
    page = operator.get(url).get_data(as_text=True)
    assert 'data-testid="not-on-whatsapp"' not in page and check not in page
    assert "try +919876543210 on WhatsApp again" in page  # in the contact's history
    again = operator.post(
        check, data={"csrf_token": get_csrf(operator, url)}, follow_redirects=True
    ).get_data(as_text=True)
    assert "+919876543210 is not marked as not on WhatsApp." in again
