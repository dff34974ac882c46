"""The Inbox's conversations: made and moved by replies in the transaction that stores them,
listed by scope with keyset pages and a search, a timeline in time order (campaign message,
reply, note, answer), the team's actions with their roles and Events, and opt-out with the
customer's own words as the reason. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.campaigns_support import make_contacts, make_sender
from tests.inbound_support import campaign_for, claim_all, make_cloud_sender, settle_sent
from wabulk.auth import service as users
from wabulk.channels.heard import Reply
from wabulk.errors import Conflict, NotFound, PermissionDenied, ValidationError
from wabulk.inbound.replies import store_replies
from wabulk.inbox import conversations as inbox
from wabulk.inbox import quick_replies
from wabulk.models import (
    Answer,
    Contact,
    ContactList,
    Conversation,
    ConversationNote,
    Event,
    Message,
    MessageStatus,
    Role,
    utcnow,
)

PASSWORD = "correct horse battery"
FIRST = "+919876500000"  # the first recipient of `campaign_for`


def person(db, role: Role, email: str):
    with db.session() as session:
        return users.create_user(session, None, email, PASSWORD, role)


def hear(db, sender_id: int, phone: str, text: str, at, pid: str | None = None):
    reply = Reply(at=at, provider_message_id=pid, phone=phone, text=text)
    with db.session() as session:
        return store_replies(session, sender_id, [reply], ("stop",), at)


def conversation(db, conv_id: int | None = None) -> Conversation:
    with db.session() as session:
        if conv_id is None:
            return session.scalars(select(Conversation)).one()
        return session.get(Conversation, conv_id)


def sent_campaign(db, n: int = 2):
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, n, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    settle_sent(db, claim_all(db, campaign_id, cloud, t0, "lane:1"), cloud, t0, "lane:1")
    return cloud, campaign_id, ids, t0


def test_a_reply_makes_and_moves_its_conversation(migrated_db) -> None:
    db = migrated_db
    cloud, campaign_id, _ids, t0 = sent_campaign(db)
    hear(db, cloud, FIRST, "Price?", t0 + timedelta(minutes=1), "wamid.a")
    first = conversation(db)
    assert (first.unread, first.state, first.campaign_id) == (1, "open", campaign_id)
    assert first.preview == "Price?" and first.last_inbound_at == t0 + timedelta(minutes=1)

    hear(db, cloud, FIRST, "  Do you\n deliver to Pune? " + "x" * 300, t0 + timedelta(minutes=2))
    # Heard late: counts as unread, but moves neither the time nor the preview back.
    hear(db, cloud, FIRST, "older", t0 + timedelta(seconds=30), "wamid.b")
    hear(db, cloud, FIRST, "Price?", t0 + timedelta(minutes=1), "wamid.a")  # a retry: nothing
    hear(db, cloud, "+14155550000", "who is this?", t0)  # no contact: no conversation
    now = conversation(db)
    assert now.id == first.id and now.unread == 3
    assert now.last_activity_at == now.last_inbound_at == t0 + timedelta(minutes=2)
    assert now.preview.startswith("Do you deliver to Pune? xxx") and len(now.preview) == 200
    assert now.preview.endswith("\u2026")
    with db.session() as session:
        assert session.scalar(select(Conversation.id).where(Conversation.id != first.id)) is None
        assert inbox.unread_count(session) == 1
        view = inbox.get(session, first.id)
        assert view.window_closes_at == t0 + timedelta(minutes=2) + timedelta(hours=24)
        assert view.campaign_name == "Sale" and view.phone == FIRST
        assert [ref.name for ref in view.lists] == ["List Sale"]
        assert inbox.window_closes_at(session, now) == view.window_closes_at
        assert inbox.get(session, first.id + 1000) is None


def test_done_reopens_on_the_next_reply_and_each_action_is_recorded(migrated_db) -> None:
    db = migrated_db
    cloud, _campaign_id, _ids, t0 = sent_campaign(db)
    op = person(db, Role.OPERATOR, "op@example.com")
    mate = person(db, Role.OPERATOR, "mate@example.com")
    viewer = person(db, Role.VIEWER, "viewer@example.com")
    hear(db, cloud, FIRST, "Book me for Saturday", t0 + timedelta(minutes=1))
    conv_id = conversation(db).id
    with db.session() as session:
        inbox.assign(session, op, conv_id, mate.id)
        inbox.assign(session, op, conv_id, mate.id)  # no change: no second Event
        with pytest.raises(ValidationError, match="viewer"):
            inbox.assign(session, op, conv_id, viewer.id)
        inbox.set_done(session, op, conv_id, True)
    done = conversation(db, conv_id)
    assert (done.state, done.unread, done.assignee_id) == ("done", 0, mate.id)
    with db.session() as session:
        assert inbox.unread_count(session) == 0
        assert [r.id for r in inbox.list_page(session, filter="done", user_id=op.id).rows] == [
            conv_id
        ]
        assert inbox.list_page(session, filter="all", user_id=op.id).rows == []

    hear(db, cloud, FIRST, "Are you there?", t0 + timedelta(minutes=5))
    back = conversation(db, conv_id)
    assert (back.state, back.unread, back.assignee_id) == ("open", 1, mate.id)
    with db.session() as session:
        inbox.mark_read(session, op, conv_id)
        inbox.assign(session, op, conv_id, None)
        kinds = session.scalars(
            select(Event.kind).where(Event.kind.like("conversation.%")).order_by(Event.id)
        ).all()
        texts = session.scalars(select(Event.text).where(Event.kind.like("conversation.%"))).all()
    assert conversation(db, conv_id).unread == 0
    assert kinds == ["conversation.assigned", "conversation.done", "conversation.unassigned"]
    assert texts[0] == (
        f"op@example.com assigned the conversation with Person 0 ({FIRST}) to mate@example.com."
    )


def test_scopes_search_and_keyset_pages(migrated_db) -> None:
    db = migrated_db
    sender = make_sender(db, "Web")
    phones = [f"+9198000{i:05d}" for i in range(9)]
    make_contacts(db, phones, "Everyone")
    me = person(db, Role.OPERATOR, "me@example.com")
    base = utcnow().replace(microsecond=0)
    with db.session() as session:
        ids = {p: session.scalar(select(Contact.id).where(Contact.phone == p)) for p in phones}
        session.execute(update(Contact).where(Contact.phone == phones[4]).values(name="Asha_Rao"))
        conv = {}
        for i, p in enumerate(phones):
            # Three share one moment: the id breaks the tie, and no page loses or repeats one.
            at = base + timedelta(minutes=min(i, 5))
            conv[i] = inbox.touch_on_reply(
                session, contact_id=ids[p], sender_id=sender, campaign_id=None, at=at, preview=p
            )
    with db.session() as session:
        for i in (0, 1):
            inbox.mark_read(session, me, conv[i])
        inbox.assign(session, me, conv[2], me.id)
        inbox.set_done(session, me, conv[3], True)

    def walk(filter: str, q: str = "", limit: int = 2) -> list[int]:
        seen: list[int] = []
        before = None
        with db.session() as session:
            for _ in range(20):
                page = inbox.list_page(
                    session, filter=filter, user_id=me.id, q=q, before=before, limit=limit
                )
                seen += [row.id for row in page.rows]
                if page.next_before is None:
                    return seen
                before = page.next_before
        raise AssertionError("pages never ended")

    newest_first = [conv[i] for i in (8, 7, 6, 5, 4, 2, 1, 0)]  # 3 is done
    assert walk("all") == newest_first == walk("all", limit=3) == walk("all", limit=200)
    assert walk("unread") == [conv[i] for i in (8, 7, 6, 5, 4, 2)]
    assert walk("mine") == [conv[2]]
    assert walk("unassigned") == [conv[i] for i in (8, 7, 6, 5, 4, 1, 0)]
    assert walk("done") == [conv[3]]
    # A search looks in every conversation, open and done, whatever the filter.
    with db.session() as session:
        session.execute(update(Contact).where(Contact.phone == phones[3]).values(name="Ravi Done"))
    assert walk("all", q="ravi") == [conv[3]] == walk("unread", q="ravi") == walk("done", q="ravi")
    assert walk("mine", q="0000", limit=2) == [conv[i] for i in (8, 7, 6, 5, 4, 3, 2, 1, 0)]
    assert walk("all", q="asha_") == [conv[4]] == walk("all", q="  ASHA ")
    assert walk("all", q="%") == []  # a wildcard typed is a character searched
    assert walk("all", q="00007") == [conv[7]]
    assert walk("all", q="x" * 5000) == []  # bounded, not refused
    with db.session() as session:
        row = inbox.list_page(session, filter="all", user_id=me.id, limit=1).rows[0]
        assert (row.sender_name, row.channel, row.preview) == ("Web", "dry_run", phones[8])
        assert inbox.window_closes_at(session, inbox.get(session, row.id)) is None
        with pytest.raises(ValidationError):
            inbox.list_page(session, filter="everything", user_id=me.id)


def test_the_timeline_runs_in_time_order_and_pages_back(migrated_db) -> None:
    db = migrated_db
    cloud, _campaign_id, ids, t0 = sent_campaign(db)
    op = person(db, Role.OPERATOR, "op@example.com")
    hear(db, cloud, FIRST, "Price?", t0 + timedelta(minutes=1))
    conv = conversation(db)
    with db.session() as session:
        note = inbox.add_note(session, op, conv.id, "  Asked about the blue one  ")
        session.execute(
            update(ConversationNote)
            .where(ConversationNote.id == note)
            .values(at=t0 + timedelta(minutes=2))
        )
        # An answer as the answers module writes it: a message with no campaign.
        answer = Message(
            campaign_id=None,
            contact_id=conv.contact_id,
            phone=FIRST,
            body="It is 499 rupees.",
            status=MessageStatus.QUEUED,
            sender_id=cloud,
            queued_at=t0 + timedelta(minutes=3),
            next_attempt_at=t0 + timedelta(minutes=3),
        )
        session.add(answer)
        session.flush()
        session.add(Answer(message_id=answer.id, conversation_id=conv.id, author_id=op.id))
        inbox.touch_on_answer(session, conv.id, t0 + timedelta(minutes=3), answer.body)
        answer_id = answer.id
    with db.session() as session:
        items = inbox.timeline(session, conv.id)
    assert [(i.kind, i.id) for i in items] == [
        ("out", ids[0]),
        ("in", items[1].id),
        ("note", note),
        ("out", answer_id),
    ]
    sent, reply, written, answered = items
    assert sent.campaign_name == "Sale" and sent.status == "sent" and not sent.is_answer
    assert sent.text == "Hello Person 0" and sent.sent_at == t0
    assert reply.text == "Price?" and reply.reply_kind == "text" and not reply.opted_out
    assert written.text == "Asked about the blue one" and written.author == "op@example.com"
    assert answered.is_answer and answered.author == "op@example.com"
    assert answered.status == "queued" and answered.campaign_id is None
    assert conversation(db, conv.id).preview == "It is 499 rupees."
    assert conversation(db, conv.id).unread == 1  # an answer does not read the replies
    with db.session() as session:
        last_two = inbox.timeline(session, conv.id, limit=2)
        earlier = inbox.timeline(session, conv.id, before_id=last_two[0].key, limit=2)
        assert [i.key for i in earlier + last_two] == [i.key for i in items]
        assert inbox.timeline(session, conv.id, before_id=items[0].key) == []
        for bad in ("out:x", "nope:1", "note:999999", f"in:{reply.id}0"):
            with pytest.raises(ValidationError):
                inbox.timeline(session, conv.id, before_id=bad)
        with pytest.raises(NotFound):
            inbox.timeline(session, conv.id + 1)


def test_roles_are_checked_inside(migrated_db) -> None:
    db = migrated_db
    cloud, _campaign_id, _ids, t0 = sent_campaign(db)
    viewer = person(db, Role.VIEWER, "viewer@example.com")
    op = person(db, Role.OPERATOR, "op@example.com")
    hear(db, cloud, FIRST, "Hi", t0)
    conv_id = conversation(db).id
    with db.session() as session:
        for action in (
            lambda: inbox.assign(session, viewer, conv_id, op.id),
            lambda: inbox.set_done(session, viewer, conv_id, True),
            lambda: inbox.add_note(session, viewer, conv_id, "note"),
            lambda: inbox.opt_out(session, viewer, conv_id),
            # A viewer's reading must not clear the team's unread count.
            lambda: inbox.mark_read(session, viewer, conv_id),
            lambda: quick_replies.create(session, op, "Hours", "We open at 10."),
            lambda: quick_replies.delete(session, op, 1),
        ):
            with pytest.raises(PermissionDenied):
                action()
    assert conversation(db, conv_id).state == "open"
    assert conversation(db, conv_id).unread == 1
    assert conversation(db, conv_id).assignee_id is None


def test_opt_out_from_the_conversation_gives_the_reply_as_the_reason(migrated_db) -> None:
    db = migrated_db
    cloud, _campaign_id, _ids, t0 = sent_campaign(db)
    op = person(db, Role.OPERATOR, "op@example.com")
    hear(db, cloud, FIRST, "ok thanks", t0 + timedelta(minutes=1))
    hear(db, cloud, FIRST, "Please  don't send me\nthese offers", t0 + timedelta(minutes=2))
    conv_id = conversation(db).id
    with db.session() as session:
        inbox.opt_out(session, op, conv_id)
        inbox.opt_out(session, op, conv_id)  # already: the first reason stays
        view = inbox.get(session, conv_id)
        logged = session.scalars(select(Event.text).where(Event.kind == "contact.opted_out")).all()
    assert view.opted_out_at is not None
    # What happened is the team's action; the last message is context, not a stop request.
    assert view.opt_out_reason == (
        "Opted out from the Inbox by op@example.com; "
        "their last message: \u201cPlease don't send me these offers\u201d"
    )
    assert logged == [f"{FIRST} was opted out by op@example.com: {view.opt_out_reason}"]


def test_ensure_finds_or_makes_an_empty_conversation(migrated_db) -> None:
    db = migrated_db
    sender = make_sender(db, "Web")
    make_contacts(db, ["+919800000001"], "One")
    now = utcnow()
    with db.session() as session:
        contact_id = session.scalar(select(Contact.id))
        first = inbox.ensure(session, contact_id, sender, now)
        assert inbox.ensure(session, contact_id, sender, now) == first
        with pytest.raises(NotFound):
            inbox.ensure(session, contact_id + 1, sender, now)
        made = session.get(Conversation, first)
        assert (made.unread, made.preview, made.last_inbound_at) == (0, "", None)
        assert session.scalar(select(ContactList.name)) == "One"


def test_quick_replies_are_checked_like_templates(migrated_db) -> None:
    db = migrated_db
    admin = person(db, Role.ADMIN, "admin@example.com")
    make_contacts(db, ["+919800000001"], "One", attributes={"city": "Pune"})
    with db.session() as session:
        hours = quick_replies.create(session, admin, "  Opening   hours ", "Hi {{ name }}!")
        quick_replies.create(session, admin, "Address", "We are in {{ city }}.")
        assert hours.name == "Opening hours"
        with pytest.raises(Conflict):
            quick_replies.create(session, admin, "opening HOURS", "Again")
        with pytest.raises(ValidationError, match="did you mean"):
            quick_replies.create(session, admin, "Typo", "Hi {{ nmae }}")
        with pytest.raises(ValidationError):
            quick_replies.create(session, admin, "Long", "x" * 4097)
        with pytest.raises(ValidationError):
            quick_replies.create(session, admin, "x" * 121, "Hi")
        with pytest.raises(ValidationError):
            quick_replies.create(session, admin, "Empty", "   ")
        quick_replies.update(session, admin, hours.id, "Hours", "We open at 10, {{ name }}.")
        assert [q.name for q in quick_replies.list_all(session)] == ["Address", "Hours"]
        assert quick_replies.delete(session, admin, hours.id) == "Hours"
        with pytest.raises(NotFound):
            quick_replies.get(session, hours.id)
        kinds = session.scalars(select(Event.kind).where(Event.kind.like("quick_reply.%"))).all()
    assert sorted(kinds) == sorted(
        ["quick_reply.created", "quick_reply.created", "quick_reply.edited", "quick_reply.deleted"]
    )
