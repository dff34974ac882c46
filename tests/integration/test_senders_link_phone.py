"""Linking a WhatsApp Web sender by phone number, over HTTP and through the worker's
`link_step`: the number typed is checked and kept on the row, the code the channel reads
reaches the link page, a refusal is explained, and the sender turns linked."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from wabulk.auth import service as users
from wabulk.channels.base import LinkStatus, SenderUnavailable
from wabulk.db import Database
from wabulk.models import Event, EventLevel, Role, Sender, SenderState, utcnow
from wabulk.senders.linking import link_phone, link_step
from wabulk.senders.service import SenderInput, create_sender

from ..conftest import PASSWORD, get_csrf, login

ACCOUNT = "+919876543210"


class Channel:
    """Answers link_status with what the test queues, and notes what it was asked."""

    def __init__(self, *answers: LinkStatus | Exception) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[bool, str | None]] = []
        self.closed = False

    def link_status(self, takeover: bool = False, phone: str | None = None) -> LinkStatus:
        self.asked.append((takeover, phone))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


def _admin(app: Flask, db: Database) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, "admin@example.com", PASSWORD, Role.ADMIN)
    assert login(client, "admin@example.com").status_code == 302
    return client


def _ask(client: FlaskClient, sender_id: int, phone: str) -> str:
    """Post the "link with phone number" form; the link page it leads to."""
    token = get_csrf(client, f"/senders/{sender_id}/link")
    response = client.post(f"/senders/{sender_id}/link", data={"phone": phone, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/senders/{sender_id}/link"
    return client.get(f"/senders/{sender_id}/link").get_data(as_text=True)


def _step(db: Database, sender_id: int, channel: Channel) -> float | None:
    with db.session() as session:
        return link_step(session, session.get(Sender, sender_id), channel, utcnow())  # type: ignore[arg-type]


def _shown(html: str, marker: str) -> bool:
    tag = re.search(rf"<[^>]*{re.escape(marker)}[^>]*>", html)
    assert tag, marker
    return not re.search(r"\shidden[\s>]", tag.group(0))


def test_linking_by_phone_number_from_the_number_to_the_code_to_linked(dual) -> None:
    app, db = dual
    client = _admin(app, db)
    with db.session() as session:
        sender = create_sender(
            session, None, SenderInput(name="Shop phone", channel="whatsapp_web")
        )
        sender.link_requested_until = None  # as after the first QR ran out
        sender_id = sender.id
    url = f"/senders/{sender_id}/link.json"
    page = client.get(f"/senders/{sender_id}/link").get_data(as_text=True)
    assert _shown(page, 'data-panel="idle"') and "Or link with phone number" in page
    assert page.count('data-testid="link-phone-form"') == 2  # idle, and beside the QR

    # Numbers that cannot be the account's: nothing is asked of the worker.
    for typed, said in (("", "Type the phone&#39;s WhatsApp number"), ("12", "&#39;12&#39;")):
        page = _ask(client, sender_id, typed)
        assert said in page and _shown(page, 'data-panel="idle"'), typed
    assert client.get(url).get_json()["linking"] is False

    page = _ask(client, sender_id, "+91 98765-43210")
    assert "Asking WhatsApp for a code" in page
    assert _shown(page, 'data-panel="waiting"') and _shown(page, 'data-waiting="phone"')
    assert not _shown(page, 'data-waiting="qr"')
    view = client.get(url).get_json()
    assert (view["linking"], view["by_phone"], view["code"], view["qr"]) == (
        True,
        ACCOUNT,
        None,
        None,
    )
    with db.session() as session:
        asked = session.scalars(
            select(Event.text).where(Event.kind == "sender.link_requested")
        ).all()
        assert asked == ["admin@example.com asked to link the WhatsApp Web sender 'Shop phone' "
                         f"by its phone number {ACCOUNT}."]  # fmt: skip

    # The worker asks the channel for the code with that number and keeps it on the row.
    channel = Channel(
        LinkStatus("loading"),
        LinkStatus("code", code="K7Q2M9XA"),
        LinkStatus("linked", phone=ACCOUNT),
    )
    assert _step(db, sender_id, channel) == 1.0
    assert client.get(url).get_json()["code"] is None
    assert _step(db, sender_id, channel) == 1.0
    view = client.get(url).get_json()
    assert (view["code"], view["by_phone"], view["state"]) == ("K7Q2M9XA", ACCOUNT, "needs_link")
    page = client.get(f"/senders/{sender_id}/link").get_data(as_text=True)
    assert _shown(page, 'data-panel="code"') and not _shown(page, 'data-panel="waiting"')
    assert re.search(r'data-testid="link-code"[^>]*>K7Q2-M9XA</div>', page)
    assert "Link with phone number instead</strong>, then type this code" in page

    # The phone typed it: linked, and the number and code are gone from the row.
    assert _step(db, sender_id, channel) == 0.0
    assert channel.asked == [(False, ACCOUNT)] * 3 and channel.closed
    view = client.get(url).get_json()
    assert (view["state"], view["phone"], view["code"], view["by_phone"]) == (
        "linked",
        ACCOUNT,
        None,
        None,
    )
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert link_phone(sender) is None and "link" not in (sender.health or {})


def test_a_refused_number_is_explained_and_a_qr_request_forgets_the_number(dual) -> None:
    app, db = dual
    client = _admin(app, db)
    with db.session() as session:
        sender = create_sender(
            session, None, SenderInput(name="Shop phone", channel="whatsapp_web")
        )
        sender_id = sender.id
    _ask(client, sender_id, ACCOUNT)
    refused = SenderUnavailable(
        f"WhatsApp did not take the number {ACCOUNT}: Invalid phone number.",
        code="phone_refused",
    )
    assert _step(db, sender_id, Channel(refused)) is None
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender.state == SenderState.NEEDS_LINK  # nothing is wrong with the browser
        assert sender.link_requested_until is None and link_phone(sender) is None
        event = session.scalars(select(Event).where(Event.kind == "sender.link_refused")).one()
        assert event.level == EventLevel.WARNING and "Invalid phone number" in event.text
    page = client.get(f"/senders/{sender_id}/link").get_data(as_text=True)
    assert _shown(page, 'data-panel="idle"')
    assert re.search(r'data-field="reason">WhatsApp did not take the number', page)

    # Asked by phone, then by QR: the worker is asked for the QR.
    _ask(client, sender_id, ACCOUNT)
    token = get_csrf(client, f"/senders/{sender_id}/link")
    client.post(f"/senders/{sender_id}/link", data={"csrf_token": token})
    channel = Channel(LinkStatus("qr", qr_png="data:image/png;base64,iVBORw0KGgo="))
    assert _step(db, sender_id, channel) == 1.0
    assert channel.asked == [(False, None)]
    view = client.get(f"/senders/{sender_id}/link.json").get_json()
    assert view["by_phone"] is None and view["qr"] and view["code"] is None
