"""The warm-up on the Senders page: where a new number stands, and skipping it (admins)."""

from __future__ import annotations

import html as htmllib
import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.campaigns_support import make_campaign, make_contacts, phones
from wabulk.auth import service as users
from wabulk.db import Database
from wabulk.models import Event, Message, MessageStatus, Role, Sender, SenderState, utcnow
from wabulk.senders.service import SenderInput, create_sender

from ..conftest import PASSWORD, get_csrf, login


def _signed_in(app: Flask, db: Database, role: Role) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, f"{role.value}@example.com", PASSWORD, role)
    assert login(client, f"{role.value}@example.com").status_code == 302
    return client


def _words(client: FlaskClient) -> str:
    page = client.get("/senders")
    assert page.status_code == 200
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", page.get_data(as_text=True))).split())


def _linked_web_sender(db: Database) -> int:
    with db.session() as session:
        sender = create_sender(
            session, None, SenderInput(name="Shop phone", channel="whatsapp_web")
        )
        sender.state, sender.link_requested_until, sender.phone = (
            SenderState.LINKED,
            None,
            "+919800000001",
        )
        return sender.id


def test_a_new_number_shows_its_warm_up_day_and_an_admin_may_skip_it(dual) -> None:
    app, db = dual
    sender_id = _linked_web_sender(db)
    admin = _signed_in(app, db, Role.ADMIN)
    words = _words(admin)
    # Never sent: day 1.
    assert "Warming up: day 1 of 6, up to 20 messages today" in words
    assert "Full pace from day 7." in words
    assert "Skip warm-up" in words
    page = admin.get("/senders").get_data(as_text=True)
    assert "New numbers that send at full pace get banned by WhatsApp more often" in page

    # Its first message went two days ago: day 3.
    campaign_id = make_campaign(db, [make_contacts(db, phones(2), "Few")], [sender_id])
    with db.session() as session:
        first = session.scalars(select(Message.id).where(Message.campaign_id == campaign_id))
        session.execute(
            update(Message)
            .where(Message.id == first.first())
            .values(
                status=MessageStatus.SENT,
                sender_id=sender_id,
                sent_at=utcnow() - timedelta(days=2),
            )
        )
    words = _words(admin)
    assert "Warming up: day 3 of 6, up to 60 messages today" in words
    assert re.search(r"\b0 / 60\b", words), words  # sent today against today's cap

    # A form without its CSRF token changes nothing.
    assert admin.post(f"/senders/{sender_id}/warmup", data={"skip": "1"}).status_code == 400
    token = get_csrf(admin, "/senders")
    done = admin.post(f"/senders/{sender_id}/warmup", data={"skip": "1", "csrf_token": token})
    assert done.status_code == 302
    words = _words(admin)
    assert "Warm-up skipped" in words and "Warming up" not in words
    assert "Turn warm-up back on" in words
    assert re.search(r"\b0 / 200\b", words), words
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender is not None and sender.settings.get("warmup_skipped") is True

    # A viewer reads where it stands but has no button, and cannot post.
    viewer = _signed_in(app, db, Role.VIEWER)
    words = _words(viewer)
    assert "Warm-up skipped" in words and "Turn warm-up back on" not in words
    token = get_csrf(viewer, "/senders")
    refused = viewer.post(f"/senders/{sender_id}/warmup", data={"skip": "0", "csrf_token": token})
    assert refused.status_code == 403

    token = get_csrf(admin, "/senders")
    admin.post(f"/senders/{sender_id}/warmup", data={"skip": "0", "csrf_token": token})
    assert "Warming up: day 3 of 6, up to 60 messages today" in _words(admin)
    with db.session() as session:
        kinds = session.scalars(
            select(Event.kind).where(Event.kind.like("sender.warmup%")).order_by(Event.id)
        ).all()
    assert kinds == ["sender.warmup_skipped", "sender.warmup_on"]


def test_a_number_past_its_warm_up_and_other_kinds_show_none(dual) -> None:
    app, db = dual
    sender_id = _linked_web_sender(db)
    with db.session() as session:
        create_sender(session, None, SenderInput(name="Rehearsal"))
    campaign_id = make_campaign(db, [make_contacts(db, phones(1), "One")], [sender_id])
    with db.session() as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == campaign_id)
            .values(
                status=MessageStatus.SENT,
                sender_id=sender_id,
                sent_at=utcnow() - timedelta(days=6),
            )
        )
    words = _words(_signed_in(app, db, Role.ADMIN))
    assert "Rehearsal" in words
    assert "Warming up" not in words and "warm-up" not in words.lower()
