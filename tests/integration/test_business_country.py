"""The business's country, asked once at first-run setup and used by test sends; landlines
noted in an import's report."""

from __future__ import annotations

import html
import io
import re

from flask.testing import FlaskClient
from sqlalchemy import select

from tests.campaigns_support import make_campaign, make_contacts, make_sender
from wabulk import app_settings
from wabulk.auth import service as users
from wabulk.auth import setup_code
from wabulk.channels.dry_run import log_path, read_log
from wabulk.db import Database
from wabulk.dispatch.worker import Dispatcher
from wabulk.models import Contact, Event, Role, User

from ..conftest import PASSWORD, get_csrf, login


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _setup_form(client: FlaskClient, code: str, **extra: str) -> dict[str, str]:
    return {
        "setup_code": code,
        "email": "owner@example.com",
        "password": PASSWORD,
        "confirm": PASSWORD,
        "csrf_token": get_csrf(client, "/setup"),
        **extra,
    }


def test_first_run_setup_asks_the_country_once(dual) -> None:
    app, db = dual
    with db.session() as session:
        code = setup_code.issue(session)
    client = app.test_client()
    page = client.get("/setup").get_data(as_text=True)
    assert '<select class="form-select" id="country" name="country" required' in page
    assert '<option value="IN" >India (+91)</option>' in page
    assert '"Asia/Calcutta": "IN"' in page and "js/setup.js" in page  # preselected in the browser

    missing = client.post("/setup", data=_setup_form(client, code))
    assert missing.status_code == 400
    assert "Choose your country" in _text(missing.get_data(as_text=True))
    assert 'value="owner@example.com"' in missing.get_data(as_text=True)
    with db.session() as session:
        assert session.scalar(select(User.id)) is None
        assert app_settings.default_country(session) is None

    done = client.post("/setup", data=_setup_form(client, code, country="in"))
    assert done.status_code == 302
    with db.session() as session:
        assert app_settings.default_country(session) == "IN"
        said = session.scalars(select(Event.text).where(Event.kind == "settings.changed")).one()
        assert said == "owner@example.com set the default country for phone numbers to IN."
    general = client.get("/settings/general").get_data(as_text=True)
    assert '<option value="IN" selected>' in general


def _operator(app, db: Database, role: Role = Role.ADMIN) -> FlaskClient:  # type: ignore[no-untyped-def]
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, "boss@example.com", PASSWORD, role)
    assert login(client, "boss@example.com").status_code == 302
    return client


def _post(client: FlaskClient, url: str, **form: str):  # type: ignore[no-untyped-def]
    token = get_csrf(client, "/contacts/")  # the session's token, for any form
    return client.post(url, data={"csrf_token": token, **form})


def test_send_a_test_to_a_national_number(dual, settings) -> None:
    app, db = dual
    client = _operator(app, db)
    lst = make_contacts(db, ["+919876543211"], "Customers")
    sender = make_sender(db, "Rehearsal")
    campaign_id = make_campaign(db, [lst], [sender], body="Hello from the shop", launch=False)
    url = f"/campaigns/{campaign_id}"

    no_country = _post(client, url + "/test", phone="98765 43210", sender_id=str(sender))
    assert no_country.status_code == 400
    page = no_country.get_data(as_text=True)
    error = re.search(r'data-error-for="phone">(.*?)</div>', page, re.S)
    assert error, "no error next to the phone box"
    assert "set your country under Settings → General" in _text(error.group(1))
    assert 'href="/settings/general">Open Settings → General</a>' in error.group(1)

    _post(client, "/settings/general", default_country="IN")
    sent = _post(client, url + "/test", phone="98765 43210", sender_id=str(sender))
    assert sent.status_code == 302, sent.get_data(as_text=True)
    lines = read_log(log_path(settings.instance_path, "Rehearsal"))
    assert [(line["phone"], line["text"]) for line in lines] == [
        ("+919876543210", "Hello from the shop")
    ]
    short = _post(client, url + "/test", phone="12345", sender_id=str(sender))
    error = re.search(r'data-error-for="phone">(.*?)</div>', short.get_data(as_text=True), re.S)
    assert error and "'12345' is too short for India" in _text(error.group(1))
    assert "Numbers without a country code are read as numbers in India" in _text(error.group(1))


def test_the_api_reads_a_national_number_with_the_country(dual) -> None:
    app, db = dual
    client = _operator(app, db)
    _post(client, "/settings/general", default_country="IN")
    with db.session() as session:
        from wabulk.contacts import service

        admin = session.scalars(select(User)).one()
        contact, created = service.upsert_contact(session, admin, phone="98765 43210")
        assert created and contact.phone == "+919876543210"


SHEET = "Mobile,Name\n9876543210,Asha\n022 2456 7890,Shop on MG Road\n9876543212,Ravi\n"


def test_an_import_notes_landlines_with_a_count_and_the_rows(dual, settings) -> None:
    app, db = dual
    client = _operator(app, db, Role.OPERATOR)
    token = get_csrf(client, "/contacts/imports/new")
    uploaded = client.post(
        "/contacts/imports/new",
        data={
            "csrf_token": token,
            "kind": "contacts",
            "file": (io.BytesIO(SHEET.encode()), "c.csv"),
        },
        content_type="multipart/form-data",
    )
    import_id = int(uploaded.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/contacts/imports/{import_id}").get_data(as_text=True)
    form = {"default_country": "IN", "list_choice": "none"}
    for i, role in enumerate(re.findall(r'name="role_(\d+)"', page)):
        chosen = re.search(rf'name="role_{role}".*?<option value="(\w+)"[^>]*selected', page, re.S)
        form[f"role_{i}"] = chosen.group(1) if chosen else "attribute"
    started = _post(client, f"/contacts/imports/{import_id}/start", **form)
    assert started.status_code == 302, started.get_data(as_text=True)
    dispatcher = Dispatcher(db, settings)
    while dispatcher.import_step():
        pass
    with db.session() as session:
        assert session.scalar(select(Contact.id).where(Contact.phone == "+912224567890"))
    status = client.get(f"/contacts/imports/{import_id}").get_data(as_text=True)
    box = re.search(r'data-testid="landlines">(.*?)</div>', status, re.S)
    assert box, "no landline count on the import's page"
    assert "1 landline number imported" in _text(box.group(1))
    assert "row 3: imported +912224567890; landline: may not reach a phone" in _text(box.group(1))
    report = client.get(f"/contacts/imports/{import_id}/report.csv").get_data(as_text=True)
    assert "landline: may not reach a phone" in report
