"""The Segments pages and the API docs in each of our languages, on real data (segments by
list and sheet column, by an earlier campaign's outcome, by opt-out history and WhatsApp, one
used by a campaign), show no sentence the catalogue translates; a condition the builder
refuses, the live count and the conditions' sentence read in the reader's language; the JSON
API answers in English with its stable codes unless the request sends Accept-Language."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.campaigns.service import DraftInput, save_draft
from wabulk.db import Database
from wabulk.models import Role, User
from wabulk.segments import service as segments

from ..campaigns_support import make_campaign, make_contacts, make_sender, phones
from ..conftest import PASSWORD, get_csrf, login
from .test_i18n_groundwork import LOCALES, english_runs, untranslated

# What reads the same in every language: the seeded names, lists, sheet columns, product names.
ALLOWED = (
    "Pune dues",
    "Spring sale",
    "Dues May",
    "Due Amount",
    "due_amount",
    "Pune",
    "Mumbai",
    "Person 0",
    "Person 1",
    "Person 2",
    "Person 3",
    "Reminders for the month",
    "Tidy up",
)


# The segment "New campaign to those who got it but did not read it" makes is named in English
# once ("Did not read: Spring sale"), and is then the shop's own name like any other.
RETARGET_NAME = "Did not read: Spring sale"


def _speak(db: Database, user: User, language: str | None) -> None:
    with db.session() as session:
        session.get(User, user.id).language = language  # type: ignore[union-attr]
        session.commit()


@pytest.fixture
def shop(db: Database, make_user: Callable[..., User], client: FlaskClient) -> dict[str, Any]:
    """An operator signed in; Pune (dues 100…400) and Mumbai lists, a launched campaign, and
    three segments: by list and column (a draft sends to it), by the campaign's outcome, and
    by opt-out history and WhatsApp in any-match."""
    operator = make_user(Role.OPERATOR)
    assert login(client, operator.email).status_code == 302
    pune = make_contacts(db, phones(4, "+9198711"), "Pune", attributes={"due_amount": "300"})
    mumbai = make_contacts(db, phones(3, "+9198722"), "Mumbai")
    sender = make_sender(db)
    campaign = make_campaign(db, [pune, mumbai], [sender])
    with db.session() as session:
        actor = session.get(User, operator.id)
        dues = segments.create(
            session,
            actor,
            "Pune dues",
            "Reminders for the month",
            {
                "match": "all",
                "conditions": [
                    {"field": "list", "op": "in", "value": [pune]},
                    {"field": "attribute", "key": "due_amount", "op": "gt", "value": 250},
                ],
            },
        )
        unread = segments.outcome_segment(session, actor, campaign, "delivered_not_read")
        tidy = segments.create(
            session,
            actor,
            "Tidy up",
            None,
            {
                "match": "any",
                "conditions": [
                    {"field": "opt_in", "op": "eq", "value": "never_opted_out"},
                    {"field": "not_on_whatsapp", "op": "eq", "value": True},
                    {"field": "country", "op": "in", "value": ["IN"]},
                ],
            },
        )
        ids = {"dues": dues.id, "unread": unread.id, "tidy": tidy.id}
    with db.session() as session:
        save_draft(
            session, None, DraftInput(name="Dues May", sender_ids=[sender], segment_id=ids["dues"])
        )
    return {"user": operator, "campaign": campaign, "pune": pune, **ids}


def _pages(shop: dict[str, Any]) -> list[str]:
    return [
        "/segments",
        "/segments/new",
        f"/segments/{shop['dues']}",
        f"/segments/{shop['unread']}",
        f"/segments/{shop['tidy']}",
    ]


def _without_reference(page: str) -> str:
    """The API docs page without what stays English on purpose: the operations' reference
    (marked lang="en") and code."""
    page = re.sub(r"<(pre|code)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r'<(\w+)\b[^>]*\blang="en"[^>]*>.*?</\1>', " ", page, flags=re.S)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_segments_page_and_the_api_docs_are_translated(
    client: FlaskClient, db: Database, shop: dict[str, Any], locale: str
) -> None:
    _speak(db, shop["user"], locale)
    for url in _pages(shop):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.get_data(as_text=True).replace(RETARGET_NAME, " | ")
        assert untranslated(page, locale) == [], url
        if locale == "hi":  # in Devanagari an English run stands out; Latin scripts share words
            assert english_runs(page, allow=ALLOWED) == [], url
    docs = client.get("/api/docs", headers={"Accept": "text/html"})
    assert docs.status_code == 200
    page = _without_reference(docs.get_data(as_text=True))
    assert untranslated(page, locale) == []
    if locale == "hi":
        assert english_runs(page, allow=ALLOWED) == []


def test_known_sentences_read_in_hindi_and_portuguese(
    client: FlaskClient, db: Database, shop: dict[str, Any]
) -> None:
    _speak(db, shop["user"], "hi")
    page = html.unescape(client.get("/segments").get_data(as_text=True))
    assert "नया सेगमेंट" in page and "सूची Pune में और Due Amount > 250" in page
    builder = html.unescape(client.get(f"/segments/{shop['dues']}").get_data(as_text=True))
    assert "अभी कौन मेल खाता है" in builder and ">इससे ज़्यादा है</option>" in builder
    _speak(db, shop["user"], "pt_BR")
    page = html.unescape(client.get("/segments").get_data(as_text=True))
    assert "Novo segmento" in page and "Na lista Pune e Due Amount > 250" in page
    tidy = html.unescape(client.get(f"/segments/{shop['tidy']}").get_data(as_text=True))
    assert "Nunca se descadastrou, sem WhatsApp ou país é Índia" in tidy


def test_english_stays_as_it_was(client: FlaskClient, shop: dict[str, Any]) -> None:
    page = html.unescape(client.get("/segments").get_data(as_text=True))
    assert "In list Pune and Due Amount > 250" in page
    tidy = html.unescape(client.get(f"/segments/{shop['tidy']}").get_data(as_text=True))
    assert "Never opted out or not on WhatsApp or country is India" in tidy


def test_a_refused_condition_and_the_live_count_read_in_the_readers_language(
    client: FlaskClient, db: Database, shop: dict[str, Any]
) -> None:
    _speak(db, shop["user"], "es")
    form = {
        "csrf_token": get_csrf(client, "/segments/new"),
        "name": "Deudas",
        "match": "all",
        "c-0-field": "attribute",
        "c-0-key": "due_amount",
        "c-0-op": "gt",
        "c-0-value": "mucho",
    }
    response = client.post("/segments/new", data=form)
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert "Condición 1: “Due Amount” — escribe un número." in page
    assert "Corrige la casilla marcada abajo; todavía no se guardó nada." in page
    # The live count's JSON is for the page: its words are in the page's language too.
    token = get_csrf(client, "/segments/new")
    terms = {"match": "all", "conditions": [{"field": "list", "op": "in", "value": [shop["pune"]]}]}
    answer = client.post(
        "/segments/preview.json", json={"terms": terms, "rows": [0]}, headers={"X-CSRFToken": token}
    ).get_json()
    assert answer["ok"] and answer["noun"] == "contactos"
    assert answer["matches"] == f"{answer['text']} contactos coinciden ahora: mira quiénes"
    assert answer["sentence"] == "En la lista Pune"
    bad = {"match": "all", "conditions": [{"field": "country", "op": "in", "value": []}]}
    answer = client.post(
        "/segments/preview.json", json={"terms": bad, "rows": [0]}, headers={"X-CSRFToken": token}
    ).get_json()
    assert answer["error"] == "Condición 1: País — elige al menos un país."


def test_the_stored_event_stays_english_and_reads_in_the_readers_language(
    client: FlaskClient, db: Database, shop: dict[str, Any]
) -> None:
    from sqlalchemy import select

    from wabulk.models import Event

    with db.session() as session:
        text = session.scalar(select(Event.text).where(Event.kind == "segment.created"))
    assert text is not None and text.endswith(
        "saved the segment 'Pune dues': In list Pune and Due Amount > 250."
    )
    _speak(db, shop["user"], "hi")
    page = html.unescape(client.get("/activity").get_data(as_text=True))
    assert "ने सेगमेंट 'Pune dues' सेव किया" in page


# --- the JSON API: English and stable codes unless Accept-Language asks ---


def _token(db: Database, language: str | None = None) -> dict[str, str]:
    with db.session() as session:
        user = users.create_user(session, None, "api-reader@example.com", PASSWORD, Role.OPERATOR)
        user.language = language
        secret = tokens.create_token(session, user, "tests").secret
    return {"Authorization": f"Bearer {secret}"}


def _error(
    client: FlaskClient, method: str, url: str, headers: dict[str, str], **kw: Any
) -> dict[str, Any]:
    response = client.open("/api/v1" + url, method=method, headers=headers, **kw)
    assert response.status_code >= 400, response.get_data(as_text=True)
    return {"status": response.status_code, **response.get_json()["error"]}


def test_an_api_error_is_english_with_its_code_without_accept_language(
    client: FlaskClient, db: Database
) -> None:
    headers = _token(db)
    error = _error(client, "GET", "/segments/999999", headers)
    assert (error["status"], error["code"]) == (404, "not_found")
    assert error["message"] == "There is no segment #999999."


def test_accept_language_gives_the_same_code_with_a_hindi_message(
    client: FlaskClient, db: Database
) -> None:
    headers = {**_token(db), "Accept-Language": "hi"}
    error = _error(client, "GET", "/segments/999999", headers)
    assert (error["status"], error["code"]) == (404, "not_found")
    assert error["message"] == "सेगमेंट #999999 मौजूद नहीं है।"
    # A refused condition: the same code and field, the sentence in the client's language.
    body = {"name": "X", "conditions": [{"field": "country", "op": "in", "value": []}]}
    error = _error(client, "POST", "/segments", {**headers, "Accept-Language": "pt-BR"}, json=body)
    assert (error["status"], error["code"]) == (422, "invalid")
    assert error["message"] == "Condição 1: País — escolha pelo menos um país."
    assert error["details"][0]["field"] == "conditions.0.value"
    assert error["details"][0]["message"] == error["message"]
    # Words of the API itself (a body that is not JSON), and pydantic's for a bad field.
    error = _error(
        client,
        "POST",
        "/segments",
        {**headers, "Accept-Language": "es"},
        data="{",
        content_type="application/json",
    )
    assert error["code"] == "bad_request" and error["message"].startswith(
        "El cuerpo no es un JSON válido: "
    )
    error = _error(client, "GET", "/segments?limit=0", {**headers, "Accept-Language": "id"})
    assert error["code"] == "invalid"
    assert error["details"] == [
        {"field": "limit", "message": "Harus lebih dari atau sama dengan 1"}
    ]
    english = _error(client, "GET", "/segments?limit=0", _token_headers_only(headers))
    assert english["details"] == [
        {"field": "limit", "message": "Input should be greater than or equal to 1"}
    ]


def _token_headers_only(headers: dict[str, str]) -> dict[str, str]:
    return {"Authorization": headers["Authorization"]}


def test_a_token_owner_who_reads_portuguese_still_gets_english_without_the_header(
    client: FlaskClient, db: Database
) -> None:
    headers = _token(db, "pt_BR")
    error = _error(client, "GET", "/segments/999999", headers)
    assert (error["code"], error["message"]) == ("not_found", "There is no segment #999999.")
    body = {"name": "  ", "conditions": []}
    error = _error(client, "POST", "/segments", headers, json=body)
    assert (error["code"], error["message"]) == ("invalid", "Give the segment a name.")
    # With the header, the best of ours for it (the owner's own only when none fits).
    error = _error(client, "GET", "/segments/999999", {**headers, "Accept-Language": "fr"})
    assert error["message"] == "Não existe o segmento #999999."
    assert json.dumps(error["code"]) == '"not_found"'


def test_a_refused_delete_is_flashed_in_the_readers_language(
    client: FlaskClient, db: Database, shop: dict[str, Any]
) -> None:
    _speak(db, shop["user"], "hi")
    url = f"/segments/{shop['dues']}"
    response = client.post(
        f"{url}/delete", data={"csrf_token": get_csrf(client, url)}, follow_redirects=True
    )
    page = html.unescape(response.get_data(as_text=True))
    assert "अभियान 'Dues May' अभी भी सेगमेंट 'Pune dues' को भेजता है; पहले उसे पूरा करें या हटाएँ।" in page
