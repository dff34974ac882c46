"""A contact's campaign messages and replies on its page; the "not on WhatsApp" filter."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.campaigns_support import make_sender
from tests.integration.test_inbox_answers import answer, conversation, user
from wabulk.auth import service as users
from wabulk.db import Database
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Inbound,
    Message,
    MessageStatus,
    Role,
)

from ..conftest import PASSWORD, login

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def _sign_in(app: Flask, db: Database, role: Role = Role.VIEWER, timezone: str = "") -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        user = users.create_user(session, None, f"{role.value}@example.com", PASSWORD, role)
        if timezone:
            users.set_timezone(session, user, timezone)
    assert login(client, f"{role.value}@example.com").status_code == 302
    return client


def _contact(db: Database, phone: str = "+919876543210", **values: object) -> int:
    with db.session() as session:
        contact = Contact(phone=phone, name=values.pop("name", "Asha"), **values)
        session.add(contact)
        session.flush()
        return contact.id


def _message(db: Database, contact_id: int, campaign: str, **values: object) -> int:
    """A finished campaign with one message to the contact (built directly: the page reads
    rows, however they were sent)."""
    with db.session() as session:
        c = Campaign(name=campaign, status=CampaignStatus.COMPLETED, body="Hi", total=1)
        session.add(c)
        session.flush()
        phone = session.get(Contact, contact_id).phone
        m = Message(campaign_id=c.id, contact_id=contact_id, phone=phone, **values)
        session.add(m)
        session.flush()
        return m.id


def _rows(page: str) -> list[str]:
    table = re.search(r'data-testid="contact-messages">(.*?)</table>', page, re.S)
    assert table, "no messages table"
    return re.findall(r'<tr data-message-id="\d+">(.*?)</tr>', table.group(1), re.S)


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_a_contact_page_lists_every_campaign_message_with_statuses_and_replies(dual) -> None:
    app, db = dual
    asha = _contact(db)
    other = _contact(db, "+919876543211", name="Ravi")
    read = _message(
        db,
        asha,
        "Diwali offer",
        status=MessageStatus.READ,
        body="Hi Asha, 20% off this week",
        sent_at=T0,
        delivered_at=T0 + timedelta(minutes=1),
        read_at=T0 + timedelta(minutes=30),
    )
    failed = _message(
        db,
        asha,
        "Spring sale",
        status=MessageStatus.FAILED,
        body="Spring is here",
        failed_at=T0,
        error_code="131026",
        error_detail="Message undeliverable",
    )
    _message(db, asha, "New arrivals")  # still queued: its text is written later
    _message(db, other, "Ravi only", status=MessageStatus.SENT, sent_at=T0)
    with db.session() as session:
        session.add_all(
            [
                Inbound(
                    phone="+919876543210",
                    contact_id=asha,
                    message_id=read,
                    body="Is it on in Pune too?",
                    received_at=T0 + timedelta(minutes=40),
                ),
                Inbound(
                    phone="+919876543210",
                    contact_id=asha,
                    message_id=read,
                    kind="image",
                    received_at=T0 + timedelta(minutes=41),
                ),
                Inbound(
                    phone="+919876543210",
                    contact_id=asha,
                    body="Hello? Anyone there",
                    received_at=T0 + timedelta(days=1),
                ),
            ]
        )
    client = _sign_in(app, db, Role.VIEWER, "Asia/Kolkata")
    page = client.get(f"/contacts/{asha}").get_data(as_text=True)
    rows = _rows(page)
    assert len(rows) == 3  # Ravi's message is not Asha's
    newest, spring, diwali = rows  # newest first
    assert "New arrivals" in newest and "msg-queued" in newest
    assert "(written when its turn comes)" in newest
    assert "Spring sale" in spring and "msg-failed" in spring
    assert "131026 Message undeliverable" in _text(spring)
    assert 'data-testid="reply"' not in spring
    with db.session() as session:
        diwali_campaign = session.get(Message, read).campaign_id
        assert session.get(Message, failed).status == MessageStatus.FAILED
    assert f'<a href="/campaigns/{diwali_campaign}">Diwali offer</a>' in diwali
    text = _text(diwali)
    # Sent, delivered and read at 15:00, 15:01 and 15:30 in India (09:30 UTC + 5:30).
    assert "2026-11-20 15:00 IST 2026-11-20 15:01 IST 2026-11-20 15:30 IST" in text
    assert re.findall(r'data-testid="reply">(.*?)</div>', diwali, re.S) == [
        '<i class="bi bi-reply" aria-hidden="true"></i> Is it on in Pune too? '
        '<span class="text-body-secondary">2026-11-20 15:40 IST</span>',
        '<i class="bi bi-reply" aria-hidden="true"></i> (image) '
        '<span class="text-body-secondary">2026-11-20 15:41 IST</span>',
    ]
    other_replies = re.search(r'data-testid="other-replies">(.*?)</ul>', page, re.S)
    assert other_replies and "Hello? Anyone there" in other_replies.group(1)
    assert "Ravi only" not in page


def test_a_long_history_is_paged_newest_first_and_every_message_shows_once(dual) -> None:
    app, db = dual
    asha = _contact(db)
    with db.session() as session:
        campaigns = [
            Campaign(name=f"Weekly offer {i}", status=CampaignStatus.COMPLETED) for i in range(120)
        ]
        session.add_all(campaigns)
        session.flush()
        session.add_all(
            [
                Message(
                    campaign_id=c.id,
                    contact_id=asha,
                    phone="+919876543210",
                    status=MessageStatus.DELIVERED,
                    sent_at=T0,
                )
                for c in campaigns
            ]
        )
    with db.session() as session:
        expected = list(
            session.scalars(
                select(Message.id).where(Message.contact_id == asha).order_by(Message.id.desc())
            )
        )
    client = _sign_in(app, db)
    seen: list[int] = []
    url: str | None = f"/contacts/{asha}"
    sizes = []
    while url:
        page = client.get(url).get_data(as_text=True)
        ids = [int(i) for i in re.findall(r'data-message-id="(\d+)"', page)]
        sizes.append(len(ids))
        seen.extend(ids)
        if url != f"/contacts/{asha}":
            assert f'href="/contacts/{asha}#messages">« Newest</a>' in page
        older = re.search(r'href="([^"]+)" data-testid="older-messages"', page)
        url = html.unescape(older.group(1)) if older else None
    assert sizes == [50, 50, 20]
    assert seen == expected


def test_a_contact_no_campaign_messaged_says_so(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    asha = _contact(db)
    page = client.get(f"/contacts/{asha}").get_data(as_text=True)
    assert 'data-testid="no-messages">No campaign has messaged this contact yet.' in page
    assert 'data-testid="other-replies"' not in page


def test_the_not_on_whatsapp_filter_lists_only_flagged_numbers(dual) -> None:
    app, db = dual
    flagged = _contact(db, "+919876543210", name="Flagged", not_on_whatsapp_at=T0)
    _contact(db, "+919876543211", name="Fine")
    both = _contact(
        db, "+919876543212", name="Opted out too", not_on_whatsapp_at=T0, opted_out_at=T0
    )
    client = _sign_in(app, db)
    page = client.get("/contacts/?status=not_on_whatsapp").get_data(as_text=True)
    shown = re.findall(r'href="/contacts/(\d+)">', page)
    assert sorted(int(i) for i in shown) == sorted([flagged, both])
    assert '<option value="not_on_whatsapp" selected>Not on WhatsApp</option>' in page
    assert 'data-testid="matching">2 matching contacts.' in page
    # The filter is kept in the pages and applies to the export of "these contacts".
    export = client.get("/contacts/export.csv?status=not_on_whatsapp").get_data(as_text=True)
    names = [row[1] for row in list(csv.reader(io.StringIO(export.lstrip("\ufeff"))))[1:]]
    assert sorted(names) == ["Flagged", "Opted out too"]
    everyone = client.get("/contacts/").get_data(as_text=True)
    assert len(re.findall(r'href="/contacts/(\d+)">', everyone)) == 3


def test_answers_from_the_inbox_are_on_the_contact_page_with_their_author(dual) -> None:
    app, db = dual
    asha = _contact(db)
    campaign_message = _message(db, asha, "Diwali offer", status=MessageStatus.SENT, sent_at=T0)
    operator = user(db, Role.OPERATOR)
    conv = conversation(db, asha, make_sender(db), wrote_ago=1)
    answered = answer(db, operator, conv, text="Yes, we deliver to Pune")
    with db.session() as session:  # the page reads rows, however they were sent
        session.execute(
            update(Message)
            .where(Message.id == answered)
            .values(status=MessageStatus.SENT, sent_at=T0 + timedelta(hours=1))
        )
    page = _sign_in(app, db).get(f"/contacts/{asha}").get_data(as_text=True)
    rows = _rows(page)
    assert re.findall(r'<tr data-message-id="(\d+)">', page) == [
        str(answered),
        str(campaign_message),
    ]
    newest, oldest = (_text(r) for r in rows)
    assert newest.startswith("Answer from the Inbox by operator@shop.example")
    assert "Yes, we deliver to Pune" in newest and "sent" in newest.split()
    assert oldest.startswith("Diwali offer")
