"""Answers written in the Inbox: refused when they cannot go, sent once through the sender
that holds the conversation, ahead of campaign traffic but within its pace, moved by status
webhooks, and reconciled like a campaign message after a crash. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.campaigns_support import (
    FakeClock,
    assert_counters_exact,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from tests.cloud_support import PHONE_NUMBER_ID, WABA_ID, add_sender, cloud_settings
from tests.inbound_support import make_cloud_sender, status, statuses_body
from tests.integration.test_whatsapp_web_engine import lane_for, link_in_lane, run, web_sender
from wabulk.analytics import stats
from wabulk.auth.service import create_user
from wabulk.channels.base import ChannelConfig, OutgoingMessage
from wabulk.channels.dry_run import DryRunChannel, log_path, read_log
from wabulk.db import Database
from wabulk.dispatch import answer_queue, receipts
from wabulk.dispatch.lane import Lane
from wabulk.errors import PermissionDenied
from wabulk.inbox import conversations
from wabulk.inbox.answers import AnswerRefused, templates_for, write_answer
from wabulk.models import (
    Answer,
    CloudTemplate,
    Contact,
    Event,
    Inbound,
    Message,
    MessageStat,
    MessageStatus,
    Role,
    User,
    utcnow,
)
from wabulk.senders.pace import Pace

S = MessageStatus
ORDER_READY = [
    {"type": "HEADER", "format": "TEXT", "text": "Order for {{1}}"},
    {"type": "BODY", "text": "Hi {{1}}, your order from our {{2}} shop is ready."},
]
TEMPLATE_VALUES = {"header.1": "{{ first_name }}", "body.1": "{{ first_name }}", "body.2": "Pune"}


def person(db: Database, phone: str, name: str = "Asha Rao", **extra: Any) -> int:
    with db.session() as session:
        contact = Contact(phone=phone, name=name, **extra)
        session.add(contact)
        session.flush()
        return contact.id


def conversation(db: Database, contact_id: int, sender_id: int, wrote_ago: float | None) -> int:
    """The conversation, with the customer's last message `wrote_ago` hours back (stored as
    a reply too: the dispatcher reads the window from the replies)."""
    now = utcnow()
    with db.session() as session:
        conv_id = conversations.ensure(session, contact_id, sender_id, now)
        if wrote_ago is not None:
            at = now - timedelta(hours=wrote_ago)
            phone = session.get(Contact, contact_id).phone  # type: ignore[union-attr]
            session.add(
                Inbound(
                    contact_id=contact_id,
                    sender_id=sender_id,
                    phone=phone,
                    body="Hi",
                    received_at=at,
                )
            )
            conv = session.get(conversations.Conversation, conv_id)
            assert conv is not None
            conv.last_inbound_at = at
        return conv_id


def user(db: Database, role: Role) -> User:
    with db.session() as session:
        made = create_user(session, None, f"{role.value}@shop.example", "a-long-password-1", role)
        session.expunge(made)
        return made


def approved(
    db: Database, sender_id: int, status_: str = "APPROVED", name: str = "order_ready"
) -> int:
    with db.session() as session:
        row = CloudTemplate(
            sender_id=sender_id,
            name=name,
            language="en_US",
            category="UTILITY",
            status=status_,
            components=ORDER_READY,
        )
        session.add(row)
        session.flush()
        return row.id


def answer(db: Database, actor: User | None, conv_id: int, **kw: Any) -> int:
    with db.session() as session:
        return write_answer(session, actor, conv_id, now=kw.pop("now", utcnow()), **kw)


def refused(db: Database, actor: User | None, conv_id: int, **kw: Any) -> str:
    with pytest.raises(AnswerRefused) as caught:
        answer(db, actor, conv_id, **kw)
    return str(caught.value)


def message(db: Database, message_id: int) -> Message:
    with db.session() as session:
        row = session.get(Message, message_id)
        assert row is not None
        session.expunge(row)
        return row


# --- write_answer ---------------------------------------------------------------------


def test_answers_that_cannot_go_are_refused_with_a_reason(migrated_db) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    web = make_sender(db, "Shop phone")
    operator, viewer = user(db, Role.OPERATOR), user(db, Role.VIEWER)
    asha = person(db, "+919812300001", attributes={"City": "Pune"})
    stale = conversation(db, asha, cloud, wrote_ago=25)
    fresh = conversation(db, person(db, "+919812300002", "Ravi"), cloud, wrote_ago=2)
    never = conversation(db, person(db, "+919812300003", "Meena"), cloud, wrote_ago=None)
    on_web = conversation(db, person(db, "+919812300004", "Kiran"), web, wrote_ago=None)

    with pytest.raises(PermissionDenied):
        answer(db, viewer, fresh, text="Yes, we deliver")
    assert "Write an answer" in refused(db, operator, fresh, text="   \n")
    assert "4,096" in refused(db, operator, fresh, text="x" * 5000)
    assert "could not be written" in refused(db, operator, fresh, text="Hi {{ name ")
    # Free text once the 24-hour window has closed (or never opened): a template is offered.
    closed = refused(db, operator, stale, text="Yes, we deliver")
    assert "24-hour window closed" in closed and "template" in closed
    assert "not written" in refused(db, operator, never, text="Hello")
    pending = approved(db, cloud, "PENDING", name="order_pending")
    assert "not approved" in refused(
        db, operator, stale, template={"template_id": pending, "values": TEMPLATE_VALUES}
    )
    assert "WhatsApp Web" in refused(
        db, operator, on_web, template={"template_id": pending, "values": TEMPLATE_VALUES}
    )
    with db.session() as session:
        assert session.scalar(select(Message.id).where(Message.campaign_id.is_(None))) is None

    # The template path is accepted outside the window, rendered for the contact now.
    order = approved(db, cloud)
    assert [t.id for t in _templates(db, cloud)] == [order]
    mid = answer(db, operator, stale, template={"template_id": order, "values": TEMPLATE_VALUES})
    row = message(db, mid)
    assert row.body == "Order for Asha\n\nHi Asha, your order from our Pune shop is ready."
    assert row.template_params == {
        "header": ["1", "Asha"],
        "body": [["1", "Asha"], ["2", "Pune"]],
        "buttons": [],
    }
    assert (row.campaign_id, row.sender_id, row.status) == (None, cloud, S.QUEUED)
    with db.session() as session:
        kept = session.get(Answer, mid)
        assert kept is not None and kept.template["name"] == "order_ready"
        assert kept.author_id == operator.id and kept.conversation_id == stale
        event = session.scalar(select(Event).where(Event.message_id == mid))
        assert event is not None and "order_ready" in event.text

    # Inside the window free text goes, with the contact's fields filled in; on WhatsApp
    # Web there is no window.
    mid = answer(db, operator, fresh, text="Yes {{ first_name }}, we deliver to Pune")
    assert message(db, mid).body == "Yes Ravi, we deliver to Pune"
    assert message(db, answer(db, operator, on_web, text="Hello")).sender_id == web

    # An opted-out customer gets nothing, whatever the way.
    with db.session() as session:
        session.get(Contact, asha).opted_out_at = utcnow()  # type: ignore[union-attr]
    assert "opted out" in refused(
        db, operator, stale, template={"template_id": order, "values": TEMPLATE_VALUES}
    )


def _templates(db: Database, sender_id: int) -> list[Any]:
    with db.session() as session:
        return templates_for(session, sender_id)


# --- the lane ------------------------------------------------------------------------


def _sent_in_order(db: Database, sender_id: int) -> list[tuple[int | None, str, Any]]:
    with db.session() as session:
        return [
            (r.campaign_id, r.phone, r.sent_at)
            for r in session.execute(
                select(Message.campaign_id, Message.phone, Message.sent_at)
                .where(Message.sender_id == sender_id, Message.sent_at.is_not(None))
                .order_by(Message.sent_at, Message.id)
            )
        ]


def _step_until(lane: Lane, clock: FakeClock, done: Any, steps: int = 500) -> None:
    for _ in range(steps):
        if done():
            return
        wait = lane.step()
        clock.advance(1.0 if wait is None else wait)
    raise AssertionError("the lane did not get there")


def _in_hand(db: Database, campaign_id: int) -> bool:
    with db.session() as session:
        return (
            session.scalar(
                select(Message.id).where(
                    Message.campaign_id == campaign_id, Message.status == S.SENDING
                )
            )
            is not None
        )


def test_an_answer_takes_the_next_send_slot_ahead_of_a_running_campaign(
    migrated_db, tmp_path
) -> None:
    db = migrated_db
    sender = make_sender(db, min_delay_seconds=10, max_delay_seconds=10)
    campaign = make_campaign(db, [make_contacts(db, phones(6), "Customers")], [sender])
    conv = conversation(db, person(db, "+919800000999", "Asha"), sender, wrote_ago=1)
    clock = FakeClock()
    lane = make_lane(db, sender, tmp_path, clock)
    try:
        _step_until(lane, clock, lambda: len(_sent_in_order(db, sender)) == 2)
        # The third campaign message is claimed and prepared for the next slot…
        wait = lane.step()
        assert wait is not None and wait > 3 and _in_hand(db, campaign)
        clock.advance(3)  # …and the answer is written while the lane waits for that slot.
        written_at = clock.now()
        mid = answer(db, None, conv, text="Yes {{ first_name }}, Saturday works", now=written_at)
        _step_until(lane, clock, lambda: len(_sent_in_order(db, sender)) == 7)
    finally:
        lane.close()
    sent = _sent_in_order(db, sender)
    # Third: the next slot after it was written, not the one after the prepared message.
    assert [c for c, _, _ in sent] == [campaign, campaign, None, *[campaign] * 4]
    gaps = [(b[2] - a[2]).total_seconds() for a, b in itertools.pairwise(sent)]
    assert gaps == [10.0] * 6  # the pace holds: no extra slot for the answer
    delivered = Counter(int(d["message_id"]) for d in read_log(log_path(tmp_path, "Rehearsal")))  # type: ignore[call-overload]
    assert delivered[mid] == 1 and set(delivered.values()) == {1}
    row = message(db, mid)
    assert row.status == S.SENT and row.body == "Yes Asha, Saturday works"
    assert_counters_exact(db, campaign)
    _assert_stats_exact(db)


def test_an_answer_keeps_the_daily_cap_and_waits_for_the_next_day(migrated_db, tmp_path) -> None:
    db = migrated_db
    sender = make_sender(db, min_delay_seconds=1, max_delay_seconds=1, daily_cap=2)
    campaign = make_campaign(db, [make_contacts(db, phones(2), "Customers")], [sender])
    conv = conversation(db, person(db, "+919800000998", "Asha"), sender, wrote_ago=1)
    clock = FakeClock()
    lane = make_lane(db, sender, tmp_path, clock)
    try:
        _step_until(lane, clock, lambda: len(_sent_in_order(db, sender)) == 2)
        mid = answer(db, None, conv, text="Thanks!", now=clock.now())
        day_ends = Pace().next_day_start(clock.now())
        _step_until(lane, clock, lambda: message(db, mid).status == S.SENT, steps=50)
    finally:
        lane.close()
    assert message(db, mid).sent_at >= day_ends  # type: ignore[operator]
    assert_counters_exact(db, campaign)


def test_an_answer_claimed_by_a_worker_that_died_is_sent_once(migrated_db, tmp_path) -> None:
    db = migrated_db
    sender = make_sender(db)
    first = conversation(db, person(db, "+919800000997", "Asha"), sender, wrote_ago=1)
    second = conversation(db, person(db, "+919800000996", "Ravi"), sender, wrote_ago=1)
    clock = FakeClock()
    never_sent = answer(db, None, first, text="Coming Saturday?", now=clock.now())
    went = answer(db, None, second, text="Your order is ready", now=clock.now())
    # A worker claims both, sends one through the channel, and dies before either settle.
    with db.session() as session:
        claimed = answer_queue.claim_answers(
            session,
            sender_id=sender,
            owner="dead:1",
            limit=10,
            now=clock.now(),
            lease_until=clock.now() + timedelta(seconds=60),
            pace=Pace(),
        )
    assert sorted(c.id for c in claimed) == [never_sent, went]
    assert {message(db, m).status for m in (never_sent, went)} == {S.SENDING}
    channel = DryRunChannel(ChannelConfig("Rehearsal", {}, tmp_path, {}))
    sent_one = next(c for c in claimed if c.id == went)
    channel.send(OutgoingMessage(message_id=went, phone=sent_one.phone, text=sent_one.text))
    channel.close()

    clock.advance(120)  # its lease runs out; another worker's lane takes the sender
    lane = make_lane(db, sender, tmp_path, clock, owner="live:2")
    try:
        _step_until(lane, clock, lambda: message(db, never_sent).status == S.SENT)
    finally:
        lane.close()
    delivered = Counter(int(d["message_id"]) for d in read_log(log_path(tmp_path, "Rehearsal")))  # type: ignore[call-overload]
    assert delivered == Counter({never_sent: 1, went: 1})
    assert message(db, went).status == S.SENT
    assert message(db, never_sent).sender_id == sender  # queued again for its own sender
    with db.session() as session:
        texts = session.scalars(select(Event.text).where(Event.kind == "messages.recovered"))
        assert any("1 had been sent, 1 had not" in t for t in texts)
    _assert_stats_exact(db)


def _assert_stats_exact(db: Database) -> None:
    def snapshot() -> Counter:
        with db.session() as session:
            return Counter(
                {
                    (r.slot, r.campaign_id, r.sender_id, r.kind, r.code): r.n
                    for r in session.scalars(select(MessageStat))
                    if r.n
                }
            )

    kept = snapshot()
    with db.session() as session:
        stats.rebuild(session)
    assert snapshot() == kept
    assert any(key[1] == stats.NO_CAMPAIGN for key in kept)  # answers: campaign 0


# --- Cloud API ---------------------------------------------------------------------


def test_cloud_answers_go_once_free_form_in_the_window_and_as_a_template_outside(
    migrated_db, settings, fake_cloud
) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    sender = add_sender(db, settings, fake)
    fake.add_template(WABA_ID, "order_ready", "en_US", "UTILITY", components=ORDER_READY)
    order = approved(db, sender)
    inside = conversation(db, person(db, "+919812300011", "Asha Rao"), sender, wrote_ago=2)
    outside = conversation(db, person(db, "+919812300012", "Ravi Kumar"), sender, wrote_ago=30)
    clock = FakeClock()
    free = answer(db, None, inside, text="Yes {{ first_name }}, we deliver", now=clock.now())
    templated = answer(
        db,
        None,
        outside,
        template={"template_id": order, "values": TEMPLATE_VALUES},
        now=clock.now(),
    )
    lane = Lane(
        db,
        sender,
        "test:cloud",
        Path(settings.instance_path),
        lease_seconds=120,
        clock=clock,
        rng=random.Random(1),
        options=settings.channel_options(),
        secret_key=settings.secret_key,
    )
    try:
        _step_until(
            lane, clock, lambda: {message(db, m).status for m in (free, templated)} == {S.SENT}
        )
        for _ in range(3):  # nothing more goes on later steps
            lane.step()
    finally:
        lane.close()
    by_callback = Counter(s["callback"] for s in fake.sent)
    assert by_callback == Counter({str(free): 1, str(templated): 1})
    kinds = {s["callback"]: s for s in fake.sent}
    assert kinds[str(free)]["type"] == "text"
    assert kinds[str(free)]["body"]["text"]["body"] == "Yes Asha, we deliver"
    assert kinds[str(templated)]["type"] == "template"
    assert kinds[str(templated)]["body"]["template"]["name"] == "order_ready"

    # Meta's delivered and read webhooks move the answer, as they move a campaign message.
    row = message(db, free)
    later = clock.now() + timedelta(minutes=1)
    body = statuses_body(
        [
            status(free, "delivered", later, provider_id=row.provider_message_id),
            status(free, "read", later + timedelta(minutes=1), provider_id=row.provider_message_id),
        ],
        phone_number_id=PHONE_NUMBER_ID,
    )
    with db.session() as session:
        receipts.store_receipt(session, sender, body, later)
    receipts.process_receipts(db, now=later + timedelta(minutes=2))
    row = message(db, free)
    assert row.status == S.READ and row.delivered_at is not None and row.read_at is not None
    _assert_stats_exact(db)


# --- WhatsApp Web, in Chromium -----------------------------------------------------------


@pytest.mark.browser
def test_a_web_answer_reaches_the_phone_once_ahead_of_the_campaign(
    migrated_db, fake, tmp_path
) -> None:
    db, instance = migrated_db, tmp_path / "instance"
    sender = web_sender(db)
    customers = [f"+91981250{i:04d}" for i in range(1, 5)]
    asha = person(db, "+919812509999", "Asha Rao")
    conv = conversation(db, asha, sender, wrote_ago=1)
    lane = lane_for(db, sender, instance, fake, "worker:1")
    try:
        link_in_lane(db, lane, sender, fake)
        campaign = make_campaign(db, [make_contacts(db, customers, "Diwali")], [sender])
        run([lane], db, lambda: len(_sent_in_order(db, sender)) >= 1)
        mid = answer(db, None, conv, text="Yes {{ first_name }}, Saturday at 11 works")
        run([lane], db, lambda: len(_sent_in_order(db, sender)) == 5)
        for _ in range(3):  # later steps send nothing more
            lane.step()
    finally:
        lane.close()
    to_asha = [m["text"] for m in fake.messages() if m["phone"] == "919812509999"]
    assert to_asha == ["Yes Asha, Saturday at 11 works"]
    assert Counter(m["phone"] for m in fake.messages()) == Counter(
        p[1:] for p in [*customers, "+919812509999"]
    )
    order = [c for c, _, _ in _sent_in_order(db, sender)]
    assert order.index(None) < len(order) - 1 - order[::-1].index(campaign)  # before the last
    assert message(db, mid).status == S.SENT
    assert_counters_exact(db, campaign)
