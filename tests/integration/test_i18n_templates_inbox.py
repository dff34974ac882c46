"""Templates and the Inbox in each of our languages: the templates list, the editor with its
WhatsApp Cloud API part and the placeholders help, the Inbox's list (with its empty states),
a conversation with an open window, one whose 24-hour window closed, one opted out, and
Settings → Quick replies show no sentence the catalogue translates. The services' English
sentences (a refused answer, a quick reply's mistake, an opt-out reason, an Event, a
preview's error) are read in the reader's language; what users wrote stays as written, and
English pages keep their words."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.campaigns_support import make_campaign, make_contacts, make_sender
from wabulk.campaigns import templates as template_service
from wabulk.db import Database
from wabulk.inbox import conversations
from wabulk.inbox import quick_replies as saved
from wabulk.models import (
    Channel,
    CloudTemplate,
    Message,
    MessageStatus,
    Role,
    Sender,
    SenderState,
    User,
    utcnow,
)

from ..conftest import get_csrf, login
from .test_i18n_groundwork import LOCALES, english_runs, untranslated
from .test_inbox_pages import _reply

PHONES = ["+919876500001", "+919876500002", "+919876500003"]
# Reads the same in every language: seeded names, numbers, template names and bodies,
# what customers wrote, and the product names.
ALLOWED = (
    "Diwali sale",
    "Dukaan",
    "Bazaar",
    "Timings",
    "Khula 10-8",
    "Hello {{ name }}",
    "Diwali offer",
    "Namaste {{ first_name }}, Diwali dhamaka!",
    "order_ready",
    "new_offer",
    "Namaste {{1}}, saaman taiyar hai.",
    "Dukaan khuli hai?",
    "WhatsApp Cloud API",
    "WhatsApp Web",
)
ORDER_READY: list[dict[str, Any]] = [
    {
        "type": "BODY",
        "text": "Namaste {{1}}, saaman taiyar hai.",
        "example": {"body_text": [["Asha"]]},
    },
]


def _speak(db: Database, user: User, language: str | None) -> None:
    with db.session() as session:
        session.get(User, user.id).language = language  # type: ignore[union-attr]
        session.commit()


def _get(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


@pytest.fixture
def shop(db: Database, make_user: Callable[..., User], client: FlaskClient) -> dict[str, Any]:
    """An admin signed in; templates (one linked to an approved WhatsApp template), quick
    replies, and conversations: an open one with a note and the team's actions, one
    opted out by a STOP reply, and a Cloud API one whose 24-hour window closed."""
    admin = make_user(Role.ADMIN)
    teammate = make_user(Role.OPERATOR, "asha@example.com")
    assert login(client, admin.email).status_code == 302
    list_id = make_contacts(db, PHONES, "Customers", attributes={"city": "Pune"})
    web = make_sender(db, "Dukaan")
    campaign = make_campaign(db, [list_id], [web], name="Diwali sale")
    now = utcnow()
    with db.session() as session:
        for message in session.scalars(select(Message).where(Message.campaign_id == campaign)):
            message.status = MessageStatus.SENT
            message.sent_at = now - timedelta(hours=2)
        cloud = Sender(name="Bazaar", channel=Channel.CLOUD_API, state=SenderState.LINKED)
        session.add(cloud)
        session.flush()
        session.add_all(
            [
                CloudTemplate(
                    sender_id=cloud.id,
                    name="order_ready",
                    language="en_US",
                    category="UTILITY",
                    status="APPROVED",
                    parameter_format="positional",
                    components=ORDER_READY,
                ),
                CloudTemplate(
                    sender_id=cloud.id,
                    name="new_offer",
                    language="es",
                    category="MARKETING",
                    status="PENDING",
                    parameter_format="positional",
                    components=[{"type": "BODY", "text": "Hola"}],
                ),
            ]
        )
        actor = session.get(User, admin.id)
        template = template_service.create_template(
            session, actor, "Diwali offer", "Namaste {{ first_name }}, Diwali dhamaka!"
        )
        linked = template_service.create_template(
            session,
            actor,
            "Tayyar",
            "",
            cloud=template_service.CloudChoice(
                "order_ready", "en_US", {"body.1": "{{ first_name }}"}
            ),
        )
        saved.create(session, actor, "Timings", "Khula 10-8")
        session.commit()
        cloud_id, template_id, linked_id = cloud.id, template.id, linked.id
    open_one = _reply(db, web, PHONES[0], "Dukaan khuli hai?", now - timedelta(minutes=30))
    stopped = _reply(db, web, PHONES[1], "STOP", now - timedelta(minutes=20), ("STOP",))
    closed = _reply(db, cloud_id, PHONES[2], "Namaste", now - timedelta(hours=30))
    with db.session() as session:
        actor = session.get(User, admin.id)
        conversations.assign(session, actor, open_one, teammate.id)
        conversations.add_note(session, actor, open_one, "Kal baat karna")
        conversations.set_done(session, actor, open_one, True)
        conversations.set_done(session, actor, open_one, False)
        session.commit()
    return {
        "admin": admin,
        "template": template_id,
        "linked": linked_id,
        "open": open_one,
        "stopped": stopped,
        "closed": closed,
    }


def _pages(shop: dict[str, Any]) -> list[str]:
    return [
        "/templates",
        "/templates/new",
        f"/templates/{shop['template']}",
        f"/templates/{shop['linked']}",
        "/inbox",
        "/inbox?f=unread",
        "/inbox?f=mine",
        "/inbox?f=unassigned",
        "/inbox?f=done",
        "/inbox?q=nobody-like-this",
        "/inbox?q=919876",
        f"/inbox/{shop['open']}",
        f"/inbox/{shop['stopped']}",
        f"/inbox/{shop['closed']}",
        "/settings/quick-replies",
    ]


@pytest.mark.parametrize("locale", LOCALES)
def test_every_page_of_the_area_is_translated(
    db: Database, client: FlaskClient, shop: dict[str, Any], locale: str
) -> None:
    _speak(db, shop["admin"], locale)
    for url in _pages(shop):
        page = _without_codes(_get(client, url))
        assert untranslated(page, locale) == [], url
        if locale != "hi":
            continue  # Latin-script translations read as English words to english_runs
        # A review aid: no run of English words of ours is left (user data is allowed).
        left = [
            run
            for run in english_runs(page, allow=ALLOWED)
            if "@example.com" not in run and "Kal baat karna" not in run
        ]
        assert left == [], (url, left)


def _without_codes(page: str) -> str:
    """The page less what is code, the same in every language: the contact fields offered
    for a WhatsApp template's blank are their placeholder names (first_name, city), and a
    placeholder written out ({{ name }}) is typed as it is."""
    page = re.sub(r"(<select[^>]*data-cloud-field[^>]*>).*?(</select>)", r"\1\2", page, flags=re.S)
    return re.sub(r"\{\{[^{}]*\}\}", "{{ }}", page)


def test_known_sentences_read_in_hindi_and_portuguese(
    db: Database, client: FlaskClient, shop: dict[str, Any]
) -> None:
    _speak(db, shop["admin"], "hi")
    assert "तुरंत जवाब जोड़ें" in _get(client, "/settings/quick-replies")
    assert "नया टेम्पलेट" in _get(client, "/templates")
    page = _get(client, f"/inbox/{shop['open']}")
    assert "अंदरूनी नोट (सिर्फ़ आपकी टीम देखती है)" in page
    assert "Dukaan khuli hai?" in page  # what the customer wrote stays as written
    _speak(db, shop["admin"], "pt_BR")
    assert "Salvar modelo" in _get(client, "/templates/new")
    page = _get(client, f"/inbox/{shop['closed']}")
    assert "A janela de 24 horas fechou em" in page
    assert "Namaste {{1}}, saaman taiyar hai." in page  # the template's body is Meta's, as is


def test_english_pages_keep_their_words(
    db: Database, client: FlaskClient, shop: dict[str, Any]
) -> None:
    _speak(db, shop["admin"], "en")
    page = _get(client, f"/inbox/{shop['open']}")
    assert "Internal note (only your team sees it)" in page
    assert "Assigned to asha@example.com by" in page
    assert "Reopened by" in page
    page = _get(client, f"/inbox/{shop['stopped']}")
    assert "(Replied “STOP” on WhatsApp)" in page
    assert "Save template" in _get(client, "/templates/new")


def test_the_opt_out_reason_and_the_teams_actions_read_in_the_readers_language(
    db: Database, client: FlaskClient, shop: dict[str, Any]
) -> None:
    _speak(db, shop["admin"], "hi")
    page = _get(client, f"/inbox/{shop['stopped']}")
    # The stored reason is English ("Replied “STOP” on WhatsApp."); the keyword is as typed.
    assert "WhatsApp पर “STOP” जवाब दिया" in page
    assert "Replied “STOP”" not in page
    page = _get(client, f"/inbox/{shop['open']}")
    assert "asha@example.com को सौंपी" in page
    assert "ने फिर से खोली" in page
    _speak(db, shop["admin"], "es")
    page = _get(client, f"/inbox/{shop['stopped']}")
    assert "Respondió “STOP” en WhatsApp" in page


def test_a_refused_answer_is_flashed_in_the_readers_language(
    db: Database, client: FlaskClient, shop: dict[str, Any]
) -> None:
    _speak(db, shop["admin"], "pt_BR")
    url = f"/inbox/{shop['open']}"
    token = get_csrf(client, url)
    response = client.post(f"{url}/answer", data={"csrf_token": token, "text": "   "})
    assert response.status_code == 302
    page = _get(client, url)
    assert "Escreva uma resposta primeiro." in page
    assert "Write an answer first." not in page


def test_a_quick_reply_mistake_shows_in_the_readers_language(
    db: Database, client: FlaskClient, shop: dict[str, Any]
) -> None:
    _speak(db, shop["admin"], "id")
    token = get_csrf(client, "/settings/quick-replies")
    response = client.post(
        "/settings/quick-replies",
        data={"csrf_token": token, "name": "Timings", "body": "Again"},
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Sudah ada balasan cepat bernama “Timings”." in page
    assert untranslated(_without_codes(page), "id") == []


def test_an_event_of_the_area_reads_in_the_readers_language(
    db: Database, client: FlaskClient, shop: dict[str, Any]
) -> None:
    _speak(db, shop["admin"], "hi")
    page = html.unescape(_get(client, "/activity"))
    assert "ने टेम्पलेट 'Diwali offer' बनाया" in page
    assert "ने तुरंत जवाब “Timings” बनाया" in page
    assert "created the template 'Diwali offer'" not in page


def test_a_previews_error_is_sent_in_the_readers_language(
    db: Database, client: FlaskClient, shop: dict[str, Any]
) -> None:
    _speak(db, shop["admin"], "es")
    token = get_csrf(client, "/templates/new")

    def error_of(body: str) -> str:
        answer = client.post("/templates/preview.json", data={"csrf_token": token, "body": body})
        return answer.get_json()["error"]  # type: ignore[no-any-return]

    assert error_of("x" * 5000).startswith("El mensaje tiene 5,000 caracteres; WhatsApp permite")
    assert error_of("Hi {{ shoe_size }}")
    _speak(db, shop["admin"], "en")
    assert error_of("x" * 5000) == "The message has 5,000 characters; WhatsApp allows 4,096."


def test_the_inbox_scripts_words_are_in_the_pages_catalogue(
    db: Database, client: FlaskClient, shop: dict[str, Any]
) -> None:
    _speak(db, shop["admin"], "hi")
    words = _script_words(_get(client, f"/templates/{shop['linked']}"))
    assert words["Updating…"] == "अपडेट हो रहा है…"  # cloud_template.js
    words = _script_words(_get(client, "/inbox"))
    assert words["%(hours)s h %(minutes)s min"] == "%(hours)s घंटे %(minutes)s मिनट"  # inbox.js


def _script_words(page: str) -> dict[str, str]:
    """The translations the page hands its scripts (<meta name="wabulk-i18n">)."""
    found = re.search(r'<meta name="wabulk-i18n" content="([^"]*)"', page)
    assert found
    return json.loads(html.unescape(found.group(1)))  # type: ignore[no-any-return]
