"""The Inbox under attack, on SQLite and PostgreSQL: hostile words from customers, contacts
and teammates shown as text (the page and the live poll), refusals for viewers and for posts
without their CSRF token, actions on what does not exist or is not the sender's, a STOP
before an answer, a reply storm, and an answer sent twice or to someone who opted out.

Tests marked xfail(strict=True) show a problem not fixed yet: they fail today, and the
mark must go once the fix lands (strict turns an unexpected pass into a failure).
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select, update

from tests.campaigns_support import FakeClock, make_lane, make_sender
from tests.inbound_support import make_cloud_sender
from tests.integration.test_api_conversations import api_as, hear
from tests.integration.test_inbox_answers import (
    TEMPLATE_VALUES,
    _sent_in_order,
    _step_until,
    answer,
    approved,
    conversation,
    message,
    person,
    user,
)
from tests.integration.test_inbox_pages import _client, _reply
from wabulk.channels.dry_run import log_path, read_log
from wabulk.db import Database
from wabulk.inbox import conversations, quick_replies
from wabulk.models import (
    Answer,
    Contact,
    Conversation,
    ConversationNote,
    Inbound,
    Message,
    MessageStatus,
    QuickReply,
    Role,
    utcnow,
)

from ..conftest import csrf_from

S = MessageStatus
HOSTILE = '<img src=x onerror="alert(1)">'
SCRIPT = "<script>alert(2)</script>"


def _customer(
    db: Database, sender: int, phone: str, text: str, at: datetime, **contact: object
) -> int:
    """A known contact who writes to the sender: their conversation's id."""
    with db.session() as session:
        if session.scalar(select(Contact.id).where(Contact.phone == phone)) is None:
            session.add(Contact(phone=phone, **contact))
    return _reply(db, sender, phone, text, at)


def _raw_markup(text: str) -> list[str]:
    return [bad for bad in ("<img src=x", "<script>alert", "<b>key") if bad in text]


def test_hostile_words_are_shown_as_text(dual: tuple[Flask, Database]) -> None:
    app, db = dual
    sender = make_sender(db, "Shop phone")
    admin = user(db, Role.ADMIN)
    phone = "+919812300101"
    with db.session() as session:
        session.add(Contact(phone=phone, name=f"Asha {SCRIPT}", attributes={"<b>key</b>": HOSTILE}))
    conv = _reply(db, sender, phone, f"price? {HOSTILE} {SCRIPT}", utcnow())
    with db.session() as session:
        quick_replies.create(session, admin, f"Prices {SCRIPT}", f"Hi {{{{ name }}}} {HOSTILE}")
        conversations.add_note(session, admin, conv, f"call back {HOSTILE}")
    client = _client(app, db, Role.OPERATOR)
    page = client.get(f"/inbox/{conv}").get_data(as_text=True)
    assert "price?" in page and "call back" in page and "Prices" in page
    assert _raw_markup(page) == []
    assert "&lt;img src=x" in page
    live = client.get(f"/inbox/live.json?c={conv}").get_json()
    assert "price?" in live["thread"] and _raw_markup(live["thread"]) == []
    assert "Asha" in live["list"] and _raw_markup(live["list"]) == []
    searched = client.get("/inbox", query_string={"q": SCRIPT}).get_data(as_text=True)
    assert _raw_markup(searched) == []


def _form(client: FlaskClient, conv: int) -> str:
    return csrf_from(client.get(f"/inbox/{conv}").get_data(as_text=True))


def _counts(db: Database) -> tuple[int, int, int]:
    with db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Answer)) or 0,
            session.scalar(select(func.count()).select_from(ConversationNote)) or 0,
            session.scalar(select(func.count()).select_from(QuickReply)) or 0,
        )


def test_viewers_only_read_and_every_post_needs_its_token(dual: tuple[Flask, Database]) -> None:
    app, db = dual
    sender = make_sender(db, "Shop phone")
    conv = _customer(db, sender, "+919812300102", "do you deliver?", utcnow())
    viewer = _client(app, db, Role.VIEWER)
    operator = _client(app, db, Role.OPERATOR)
    actions = {
        "answer": {"text": "Yes"},
        "assign": {"assignee": "1"},
        "done": {"done": "1"},
        "note": {"body": "vip"},
        "opt-out": {},
    }
    token = _form(viewer, conv)
    for action, form in actions.items():
        answered = viewer.post(f"/inbox/{conv}/{action}", data={"csrf_token": token, **form})
        assert answered.status_code == 403, action
    # A page elsewhere cannot make an operator's browser act: no token, no action.
    for action, form in actions.items():
        assert operator.post(f"/inbox/{conv}/{action}", data=form).status_code == 400, action
    token = _form(operator, conv)
    made = operator.post(
        "/settings/quick-replies", data={"csrf_token": token, "name": "Hours", "body": "10-6"}
    )
    assert made.status_code == 403
    assert _counts(db) == (0, 0, 0)
    with db.session() as session:
        row = session.get(Conversation, conv)
        assert row is not None and row.assignee_id is None and str(row.state) == "open"
        assert (
            session.scalar(select(Contact.opted_out_at).where(Contact.id == row.contact_id)) is None
        )
    for role in (Role.VIEWER, Role.OPERATOR):
        api = api_as(app, db, role)
        assert api("POST", "/quick-replies", json={"name": "Hours", "body": "10-6"})[0] == 403
    viewer_api = api_as(app, db, Role.VIEWER)
    assert viewer_api("POST", f"/conversations/{conv}/answers", json={"text": "Yes"})[0] == 403
    assert viewer_api("POST", f"/conversations/{conv}/notes", json={"body": "x"})[0] == 403
    assert _counts(db) == (0, 0, 0)


def test_actions_on_what_does_not_exist_or_is_not_the_senders(
    dual: tuple[Flask, Database],
) -> None:
    app, db = dual
    ours = make_cloud_sender(db, "Cloud A")
    theirs = make_cloud_sender(db, "Cloud B", phone_number_id="222222222222222")
    stale = conversation(db, person(db, "+919812300103"), ours, wrote_ago=25)
    other_template = approved(db, theirs)
    operator = _client(app, db, Role.OPERATOR)
    token = _form(operator, stale)
    missing = 2_000_000_000
    for action, form in (("answer", {"text": "Hi"}), ("note", {"body": "x"}), ("done", {})):
        answered = operator.post(f"/inbox/{missing}/{action}", data={"csrf_token": token, **form})
        assert answered.status_code in (302, 404), action
    assigned = operator.post(
        f"/inbox/{stale}/assign", data={"csrf_token": token, "assignee": str(missing)}
    )
    assert assigned.status_code == 302
    api = api_as(app, db, Role.OPERATOR)
    status, body = api(
        "POST",
        f"/conversations/{stale}/answers",
        json={"template": {"template_id": other_template, "values": TEMPLATE_VALUES}},
    )
    assert status == 422 and "not one of" in str(body), body
    assert api("POST", f"/conversations/{missing}/answers", json={"text": "Hi"})[0] == 404
    assert api("POST", f"/conversations/{missing}/notes", json={"body": "x"})[0] == 404
    status, body = api("POST", f"/conversations/{stale}/assign", json={"assignee_id": missing})
    assert status == 422, body
    assert _counts(db) == (0, 0, 0)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.get(Conversation, stale).assignee_id is None  # type: ignore[union-attr]


def test_a_stop_reply_then_an_answer_is_refused(dual: tuple[Flask, Database]) -> None:
    app, db = dual
    sender = make_sender(db, "Shop phone")
    phone = "+919812300104"
    conv = _customer(db, sender, phone, "price?", utcnow() - timedelta(minutes=5))
    hear(db, sender, phone, "STOP", utcnow())
    operator = _client(app, db, Role.OPERATOR)
    page = operator.get(f"/inbox/{conv}").get_data(as_text=True)
    assert 'data-testid="opted-out"' in page
    operator.post(f"/inbox/{conv}/answer", data={"csrf_token": csrf_from(page), "text": "ok"})
    api = api_as(app, db, Role.OPERATOR)
    status, body = api("POST", f"/conversations/{conv}/answers", json={"text": "ok"})
    assert status == 422 and "opted out" in str(body), body
    assert _counts(db)[0] == 0


def test_a_double_submitted_answer_goes_once(dual: tuple[Flask, Database]) -> None:
    """The same answer form sent twice makes one answer (fixed in 9289d7e)."""
    app, db = dual
    sender = make_sender(db, "Shop phone")
    conv = _customer(db, sender, "+919812300105", "book me for Saturday", utcnow())
    operator = _client(app, db, Role.OPERATOR)
    page = operator.get(f"/inbox/{conv}").get_data(as_text=True)
    form = re.search(
        r'<form\b[^>]*action="([^"]+)"[^>]*data-answer-form[^>]*>(.*?)</form>', page, re.S
    )
    assert form, "no answer form"
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", form.group(2)):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        if attrs.get("type") == "hidden" and "name" in attrs:
            fields[attrs["name"]] = html.unescape(attrs.get("value", ""))
    fields["text"] = "Saturday 11:00 is booked for you."
    for _ in range(2):
        assert operator.post(html.unescape(form.group(1)), data=fields).status_code == 302
    assert _counts(db)[0] == 1


def test_an_opt_out_while_the_answer_waits_for_its_slot_skips_it(
    migrated_db: Database, tmp_path
) -> None:
    db = migrated_db
    sender = make_sender(db, min_delay_seconds=30, max_delay_seconds=30)
    operator = user(db, Role.OPERATOR)
    conv = conversation(db, person(db, "+919812300106", "Asha"), sender, wrote_ago=1)
    clock = FakeClock()
    lane = make_lane(db, sender, tmp_path, clock)
    try:
        first = answer(db, operator, conv, text="Checking for you", now=clock.now())
        _step_until(lane, clock, lambda: len(_sent_in_order(db, sender)) == 1)
        second = answer(db, operator, conv, text="Yes, Saturday works", now=clock.now())
        # The lane takes the second answer for its next slot, 30 s after the first…
        _step_until(lane, clock, lambda: message(db, second).status == S.SENDING)
        assert len(_sent_in_order(db, sender)) == 1
        with db.session() as session:  # …and a teammate opts Asha out meanwhile.
            conversations.opt_out(session, operator, conv)
        _step_until(lane, clock, lambda: message(db, second).status not in (S.QUEUED, S.SENDING))
    finally:
        lane.close()
    sent = [int(d["message_id"]) for d in read_log(log_path(tmp_path, "Rehearsal"))]  # type: ignore[call-overload]
    assert sent.count(first) == 1
    assert second not in sent, "the answer went to a contact who had opted out"
    assert message(db, second).status == S.SKIPPED


def test_a_reply_storm_stays_bounded(dual: tuple[Flask, Database]) -> None:
    app, db = dual
    sender = make_sender(db, "Shop phone")
    phone = "+919812300107"
    start = utcnow() - timedelta(hours=3)
    conv = _customer(db, sender, phone, "first", start)
    with db.session() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.phone == phone))
        session.execute(
            insert(Inbound),
            [
                {
                    "contact_id": contact_id,
                    "sender_id": sender,
                    "phone": phone,
                    "body": f"spam {i}",
                    "received_at": start + timedelta(milliseconds=i + 1),
                }
                for i in range(10_000)
            ],
        )
        session.execute(update(Conversation).where(Conversation.id == conv).values(unread=10_001))
    operator = _client(app, db, Role.OPERATOR)
    listed = operator.get("/inbox").get_data(as_text=True)
    assert listed.count("data-conversation=") == 1
    page = operator.get(f"/inbox/{conv}").get_data(as_text=True)
    shown = page.count('data-kind="in"')
    assert 1 <= shown <= 200 and "spam 9999" in page
    thread = operator.get(f"/inbox/live.json?c={conv}").get_json()["thread"]
    assert 1 <= thread.count('data-kind="in"') <= 200
    api = api_as(app, db, Role.OPERATOR)
    status, body = api("GET", f"/conversations/{conv}")
    assert status == 200 and 1 <= len(body["timeline"]) <= 200 and body["earlier"]
    status, body = api("GET", f"/conversations/{conv}/timeline?limit=200&before={body['earlier']}")
    assert status == 200 and len(body["data"]) == 200
    assert api("GET", f"/conversations/{conv}/timeline?limit=100000")[0] == 422
