"""The Inbox after a tester's pass: the demo's replies make conversations (and go with the
demo), a viewer's reading changes nothing, only operators and admins are offered in Assign,
the team's actions are lines of the conversation, and the navigation's count is capped.
On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from tests.campaigns_support import make_contacts, make_sender
from wabulk.auth import service as users
from wabulk.demo import load_demo, remove_demo
from wabulk.inbox import answers, timeline
from wabulk.inbox import conversations as inbox
from wabulk.models import (
    Answer,
    Contact,
    Conversation,
    ConversationNote,
    ConversationState,
    Inbound,
    Message,
    Role,
    User,
    utcnow,
)

from ..conftest import PASSWORD, login

PHONES = [f"+9198110{i:05d}" for i in range(3)]


def _person(db, role: Role, email: str) -> User:
    with db.session() as session:
        return users.create_user(session, None, email, PASSWORD, role)


def _signed_in(app, db, role: Role, email: str) -> tuple[FlaskClient, User]:
    user = _person(db, role, email)
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client, user


def _count(db, *what) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(*what[:1]).where(*what[1:])))


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_demos_replies_are_inbox_conversations_and_go_with_the_demo(dual, settings) -> None:
    app, db = dual
    admin = _person(db, Role.ADMIN, "owner@shop.example")
    with db.session() as session:
        load_demo(session, admin, settings.instance_path)
    with db.session() as session:
        pairs = session.execute(select(Inbound.contact_id, Inbound.sender_id).distinct()).all()
        made = session.scalars(select(Conversation)).all()
        assert len(made) == len(pairs) > 5
        assert inbox.unread_count(session) == 3
        assert [c.assignee_id for c in made].count(admin.id) == 1
        assert [c.state for c in made].count(ConversationState.DONE) == 1
        answer = session.scalars(select(Answer)).one()
        message = session.get(Message, answer.message_id)
        assert message.campaign_id is None and message.status == "read"
        assert session.scalar(select(ConversationNote.conversation_id)) == answer.conversation_id
        items = timeline.timeline(session, answer.conversation_id)
        assert [i.kind for i in items][-3:] == ["in", "out", "note"]

    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    page = _text(client.get("/inbox").get_data(as_text=True))
    assert "No replies yet" not in page and "Demo" in page

    # The owner answers a demo customer from the Inbox; the answer is demo data too.
    with db.session() as session:
        conv_id = session.scalar(
            select(Conversation.id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Contact.opted_out_at.is_(None), Conversation.unread > 0)
            .limit(1)
        )
        answers.write_answer(session, admin, conv_id, text="Thanks, see you!", now=utcnow())
    with db.session() as session:
        removed = remove_demo(session, admin, settings.instance_path)
    assert removed.kept == []
    assert not any("Kept" in line for line in removed.lines())
    assert _count(db, Message) == 0  # campaign messages and answers alike
    assert _count(db, Conversation) == _count(db, Answer) == _count(db, ConversationNote) == 0
    assert _count(db, Contact) == 0


def test_a_viewer_reads_without_clearing_unread_and_is_not_offered_in_assign(dual) -> None:
    app, db = dual
    sender = make_sender(db, "Shop phone")
    make_contacts(db, PHONES, "Customers")
    t0 = utcnow().replace(microsecond=0) - timedelta(hours=1)
    with db.session() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.phone == PHONES[0]))
        conv_id = inbox.touch_on_reply(
            session, contact_id=contact_id, sender_id=sender, campaign_id=None, at=t0, preview="Hi"
        )
    viewer, _ = _signed_in(app, db, Role.VIEWER, "viewer@shop.example")
    _person(db, Role.ADMIN, "boss@shop.example")
    gone = _person(db, Role.OPERATOR, "gone@shop.example")
    with db.session() as session:
        session.execute(update(User).where(User.id == gone.id).values(is_active=False))

    assert viewer.get(f"/inbox/{conv_id}").status_code == 200
    assert viewer.get(f"/inbox/live.json?c={conv_id}").status_code == 200
    with db.session() as session:
        assert session.get(Conversation, conv_id).unread == 1
        assert [u.email for u in inbox.assignable(session)] == ["boss@shop.example"]

    op, _ = _signed_in(app, db, Role.OPERATOR, "op@shop.example")
    page = op.get(f"/inbox/{conv_id}").get_data(as_text=True)
    with db.session() as session:
        assert session.get(Conversation, conv_id).unread == 0
    assert 'id="assignee"' in page
    offered = re.findall(
        r'<option value="\d+"[^>]*>([^<]+)<',
        page.split('name="assignee">')[1].split("</select>")[0],
    )
    assert [o.strip() for o in offered] == ["boss@shop.example", "op@shop.example (me)"]


def test_the_teams_actions_are_lines_of_the_conversation(dual) -> None:
    app, db = dual
    sender = make_sender(db, "Shop phone")
    make_contacts(db, PHONES, "Customers")
    op, me = _signed_in(app, db, Role.OPERATOR, "op@shop.example")
    mate = _person(db, Role.OPERATOR, "mate@shop.example")
    t0 = utcnow().replace(microsecond=0) - timedelta(hours=1)
    with db.session() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.phone == PHONES[0]))
        conv_id = inbox.touch_on_reply(
            session, contact_id=contact_id, sender_id=sender, campaign_id=None, at=t0, preview="Hi"
        )
    with db.session() as session:
        inbox.assign(session, me, conv_id, mate.id)
        inbox.set_done(session, me, conv_id, True)
    with db.session() as session:
        inbox.touch_on_reply(
            session,
            contact_id=contact_id,
            sender_id=sender,
            campaign_id=None,
            at=utcnow(),
            preview="Book me for Saturday please",
        )
        session.add(
            Inbound(
                phone=PHONES[0],
                contact_id=contact_id,
                sender_id=sender,
                kind="text",
                body="Book me for Saturday please",
                received_at=utcnow(),
            )
        )
    with db.session() as session:
        inbox.set_done(session, me, conv_id, True)
        inbox.set_done(session, me, conv_id, False)
        inbox.opt_out(session, me, conv_id)
    with db.session() as session:
        items = timeline.with_actions(session, conv_id, timeline.timeline(session, conv_id))
        reason = session.get(Contact, contact_id).opt_out_reason
    lines = [i.text for i in items if i.kind == "action"]
    assert lines == [
        "Assigned to mate@shop.example by op@shop.example",
        "Marked done by op@shop.example",
        "Reopened by their reply",
        "Marked done by op@shop.example",
        "Reopened by op@shop.example",
        f"Opted out ({reason})",
    ]
    assert reason == (
        "Opted out from the Inbox by op@shop.example; "
        "their last message: \u201cBook me for Saturday please\u201d"
    )
    page = op.get(f"/inbox/{conv_id}").get_data(as_text=True)
    drawn = re.findall(r'data-kind="action">([^<]+)<', page)
    assert [html.unescape(d).split(" \u00b7 ")[0] for d in drawn] == lines
    assert 'data-kind="action"' in op.get(f"/inbox/live.json?c={conv_id}").get_json()["thread"]


def test_the_unread_count_stops_at_a_hundred_and_the_badge_says_99_plus(dual) -> None:
    app, db = dual
    sender = make_sender(db, "Shop phone")
    phones = [f"+9198220{i:05d}" for i in range(105)]
    make_contacts(db, phones, "Many")
    t0 = utcnow().replace(microsecond=0) - timedelta(hours=1)
    with db.session() as session:
        for contact_id in session.scalars(select(Contact.id)):
            inbox.touch_on_reply(
                session,
                contact_id=contact_id,
                sender_id=sender,
                campaign_id=None,
                at=t0,
                preview="Hi",
            )
    with db.session() as session:
        assert inbox.unread_count(session) == inbox.UNREAD_CAP + 1
    client, _ = _signed_in(app, db, Role.VIEWER, "viewer@shop.example")
    page = client.get("/inbox").get_data(as_text=True)
    assert re.search(r"data-inbox-unread[^>]*>\s*<span data-count>99\+<", page)
