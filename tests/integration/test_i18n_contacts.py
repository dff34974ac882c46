"""The Contacts pages in each of our languages: the table, one contact, its form, the upload,
the columns' check and an import's results, on real data (an import with a rejected row, a
landline, a repeated number and a list; an opted-out contact and one not on WhatsApp) show no
sentence the catalogue translates; the import reader's English reasons, a refused phone number
and the downloads (report and export) are read in the reader's language, and English stays as
it was."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from wabulk import app_settings
from wabulk.config import Settings
from wabulk.contacts import service as contacts
from wabulk.db import Database
from wabulk.dispatch.worker import Dispatcher
from wabulk.models import Contact, Role, User, utcnow

from ..conftest import get_csrf, login
from .test_i18n_groundwork import LOCALES, english_runs, untranslated

SHEET = (
    "Mobile,Customer,Town\n"
    "9876543210,Asha,Pune\n"
    "12345,Bad,Goa\n"
    "02026123456,Office,Pune\n"
    "9876543210,Asha Patel,Mumbai\n"
    "09123456789,Ravi,Delhi\n"
)
# What reads the same in every language: the seeded data, file and product names.
ALLOWED = ("customers.csv", "Asha Patel", "Asha", "Ravi", "Pune", "Customers")


def _speak(db: Database, user: User, language: str | None) -> None:
    with db.session() as session:
        session.get(User, user.id).language = language  # type: ignore[union-attr]
        session.commit()


def _upload(client: FlaskClient, data: str = SHEET, kind: str = "contacts") -> int:
    response = client.post(
        "/contacts/imports/new",
        data={
            "csrf_token": get_csrf(client, "/contacts/imports/new"),
            "kind": kind,
            "file": (io.BytesIO(data.encode()), "customers.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def _start(client: FlaskClient, import_id: int) -> None:
    form = {
        "csrf_token": get_csrf(client, f"/contacts/imports/{import_id}"),
        "default_country": "IN",
        "list_choice": "new",
        "new_list": "Customers",
        "role_0": "phone",
        "role_1": "name",
        "role_2": "attribute",
        "key_2": "town",
        "duplicates": "last",
    }
    assert client.post(f"/contacts/imports/{import_id}/start", data=form).status_code == 302


@pytest.fixture
def shop(
    db: Database, settings: Settings, make_user: Callable[..., User], client: FlaskClient
) -> dict[str, object]:
    """An operator signed in, a finished import into a list, a draft upload, an opted-out
    contact and one WhatsApp said has no account."""
    operator = make_user(Role.OPERATOR)
    assert login(client, operator.email).status_code == 302
    finished = _upload(client)
    _start(client, finished)
    dispatcher = Dispatcher(db, settings)
    while dispatcher.import_step():
        pass
    draft = _upload(client)
    with db.session() as session:
        rows = {c.phone: c for c in session.scalars(select(Contact))}
        asha, ravi = rows["+919876543210"], rows["+919123456789"]
        actor = session.get(User, operator.id)
        contacts.opt_out(session, actor, [ravi.id], "wants fewer offers")
        asha.not_on_whatsapp_at = utcnow()
        session.commit()
        ids = {"asha": asha.id, "ravi": ravi.id, "landline": rows["+912026123456"].id}
    return {"user": operator, "finished": finished, "draft": draft, **ids}


def _pages(shop: dict[str, object]) -> list[str]:
    return [
        "/contacts/",
        "/contacts/?status=opted_out",
        "/contacts/?q=nobody-matches-this",
        f"/contacts/{shop['asha']}",
        f"/contacts/{shop['ravi']}",
        f"/contacts/{shop['landline']}",
        "/contacts/new",
        f"/contacts/{shop['ravi']}/edit",
        "/contacts/imports/new",
        "/contacts/imports/new?kind=opt_outs",
        f"/contacts/imports/{shop['draft']}",
        f"/contacts/imports/{shop['finished']}",
    ]


@pytest.mark.parametrize("locale", LOCALES)
def test_every_contacts_page_is_translated(
    client: FlaskClient, db: Database, shop: dict[str, object], locale: str
) -> None:
    _speak(db, shop["user"], locale)  # type: ignore[arg-type]
    for url in _pages(shop):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.get_data(as_text=True)
        assert untranslated(page, locale) == [], url


def test_no_english_runs_of_ours_are_left(
    client: FlaskClient, db: Database, shop: dict[str, object]
) -> None:
    # In Hindi, as Devanagari, every run of English words left is one to look at (in the
    # other languages many of their own words look English to the check).
    _speak(db, shop["user"], "hi")  # type: ignore[arg-type]
    for url in _pages(shop):
        page = client.get(url).get_data(as_text=True)
        assert english_runs(page, allow=ALLOWED) == [], url


def test_known_sentences_read_in_hindi_and_portuguese(
    client: FlaskClient, db: Database, shop: dict[str, object]
) -> None:
    _speak(db, shop["user"], "hi")
    page = html.unescape(client.get("/contacts/").get_data(as_text=True))
    assert "संपर्क जोड़ें" in page and "ऑप्ट-आउट इम्पोर्ट करें" in page
    _speak(db, shop["user"], "pt_BR")
    page = html.unescape(client.get("/contacts/").get_data(as_text=True))
    assert "Adicionar contato" in page and "Importar descadastros" in page


def test_the_import_reasons_read_in_the_readers_language(
    client: FlaskClient, db: Database, shop: dict[str, object]
) -> None:
    url = f"/contacts/imports/{shop['finished']}"
    english = html.unescape(client.get(url).get_data(as_text=True))
    assert "row 3: '12345' is too short for India" in english
    assert "row 5 repeats row 2 (+919876543210); taken, as the last row wins" in english
    _speak(db, shop["user"], "hi")
    hindi = html.unescape(client.get(url).get_data(as_text=True))
    assert "पंक्ति 3: '12345' भारत के नंबर के लिए बहुत छोटा है" in hindi
    assert "पंक्ति 4: +912026123456 इम्पोर्ट हुआ; लैंडलाइन" in hindi
    _speak(db, shop["user"], "pt_BR")
    portuguese = html.unescape(client.get(url).get_data(as_text=True))
    assert "linha 3: '12345' é curto demais para Índia" in portuguese
    assert "a linha 5 repete a linha 2 (+919876543210); usada, pois vale a última linha" in (
        portuguese
    )
    # The stored reasons stay English: the API and other readers get them as written.
    report = client.get(f"{url}/report.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(report.lstrip("\ufeff"))))
    assert (rows[0][0], rows[0][2]) == ("Linha", "Motivo")
    assert rows[1][:3] == ["3", "rejeitado", "linha 3: '12345' é curto demais para Índia"]


def test_the_report_and_the_export_keep_english_for_english_readers(
    client: FlaskClient, shop: dict[str, object]
) -> None:
    report = client.get(f"/contacts/imports/{shop['finished']}/report.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(report.lstrip("\ufeff"))))
    assert rows[0][:3] == ["Row", "Status", "Reason"]
    assert rows[1][:3] == ["3", "rejected", "row 3: '12345' is too short for India"]
    export = client.get("/contacts/export.csv").get_data(as_text=True).lstrip("\ufeff")
    assert export.splitlines()[0].startswith("phone,name,opted_out,opted_out_at,opt_out_reason")


def test_the_export_headers_are_in_the_downloaders_language(
    client: FlaskClient, db: Database, shop: dict[str, object]
) -> None:
    _speak(db, shop["user"], "es")
    export = client.get("/contacts/export.csv").get_data(as_text=True).lstrip("\ufeff")
    header = next(csv.reader(io.StringIO(export)))
    assert header[:3] == ["teléfono", "nombre", "dado de baja"]
    assert "town" in header  # the shop's own field names stay as they are


def test_a_refused_phone_number_reads_in_the_readers_language(
    client: FlaskClient, db: Database, shop: dict[str, object]
) -> None:
    _speak(db, shop["user"], "pt_BR")
    token = get_csrf(client, "/contacts/new")
    response = client.post(
        "/contacts/new", data={"csrf_token": token, "phone": "12345", "name": "X"}
    )
    page = html.unescape(response.get_data(as_text=True))
    assert "O número de telefone '12345' não tem código do país" in page
    with db.session() as session:
        app_settings.set_default_country(session, None, "IN")
        session.commit()
    response = client.post("/contacts/new", data={"csrf_token": token, "phone": "", "name": "X"})
    assert response.status_code == 400
    assert "Informe o número de telefone do contato." in response.get_data(as_text=True)
    response = client.post(
        "/contacts/new", data={"csrf_token": token, "phone": "12345", "name": "X"}
    )
    page = html.unescape(response.get_data(as_text=True))
    assert "Número de telefone: '12345' é curto demais para Índia." in page, page


def test_an_event_line_reads_in_the_readers_language(
    client: FlaskClient, db: Database, shop: dict[str, object]
) -> None:
    _speak(db, shop["user"], "hi")
    page = html.unescape(client.get(f"/contacts/{shop['ravi']}").get_data(as_text=True))
    assert re.search(r"\+919123456789 को \S+ ने ऑप्ट-आउट किया: wants fewer offers", page)


def test_the_import_script_has_its_words(
    client: FlaskClient, db: Database, shop: dict[str, object]
) -> None:
    _speak(db, shop["user"], "id")
    page = client.get(f"/contacts/imports/{shop['finished']}").get_data(as_text=True)
    meta = re.search(r'<meta name="wabulk-i18n" content="([^"]*)"', page)
    assert meta is not None
    words = json.loads(html.unescape(meta.group(1)))
    assert words["Connection lost; retrying…"] == "Koneksi terputus; mencoba lagi…"
    assert words["%(n)s rows read"] == "%(n)s baris dibaca"


def test_a_refused_action_is_flashed_in_the_readers_language(
    client: FlaskClient, db: Database, shop: dict[str, object]
) -> None:
    _speak(db, shop["user"], "pt_BR")
    token = get_csrf(client, "/contacts/")
    data = {"csrf_token": token, "action": "", "contact_ids": [shop["asha"]], "back": "/contacts/"}
    response = client.post("/contacts/bulk", data=data, follow_redirects=True)
    assert "Escolha o que fazer com os contatos selecionados." in response.get_data(as_text=True)
    data = {**data, "action": "add", "list_id": ""}
    response = client.post("/contacts/bulk", data=data, follow_redirects=True)
    assert "Escolha uma lista." in response.get_data(as_text=True)
