"""A WhatsApp Web lane hearing back in its pacing waits and after its campaigns, under a fake
clock, with a channel that hears on cue (tests/fakes/hearing_channel.py): ticks and replies
reach the counters and `message_stats` as a rebuild would write them, a STOP reply stops a
running campaign's next message, a limit banner stops the sender before another send,
unknown messages are settled both ways, and the idle looks end with the hearing period."""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select, update

from tests.campaigns_support import (
    FakeClock,
    counters,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from tests.fakes.hearing_channel import SHOT, HearingChannel, Phone
from tests.inbound_support import assert_exact, by_kind
from wabulk.channels import registry
from wabulk.dispatch import hearing
from wabulk.dispatch.lane_hearing import LOOK_EVERY, MIN_LOOK_SECONDS
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Event,
    Inbound,
    Message,
    MessageStatus,
    Sender,
    SenderState,
)
from wabulk.senders import service as senders
from wabulk.senders.service import SenderInput, create_sender

S = MessageStatus


@pytest.fixture
def web(monkeypatch):
    """WhatsApp Web senders open the hearing fake instead, for these tests only."""
    monkeypatch.setitem(registry.FACTORIES, "whatsapp_web", HearingChannel)
    HearingChannel.phone = Phone()
    yield HearingChannel
    HearingChannel.phone = Phone()


def web_sender(db, name: str = "Shop phone", delay: float = 10, **settings) -> int:
    """A linked WhatsApp Web sender pacing `delay` seconds between messages."""
    with db.session() as session:
        sender = create_sender(
            session,
            None,
            SenderInput(
                name=name,
                channel="whatsapp_web",
                pacing={"min_delay_seconds": delay, "max_delay_seconds": delay},
                settings=settings,
            ),
        )
        sender.state = SenderState.LINKED
        sender.state_reason = None
        sender.link_requested_until = None
        return sender.id


def run(lane, clock: FakeClock, until=lambda: False, max_steps: int = 2000) -> int:
    """Step one lane as the worker does, the fake clock jumping over each wait, until it is
    idle or `until()` holds; returns the steps taken."""
    for n in range(max_steps):
        if until():
            return n
        wait = lane.step()
        if wait is None:
            return n
        clock.advance(wait)
    raise AssertionError("the lane kept going")


def statuses(db, campaign_id: int) -> dict[str, MessageStatus]:
    with db.session() as session:
        return dict(
            session.execute(  # type: ignore[arg-type]
                select(Message.phone, Message.status).where(Message.campaign_id == campaign_id)
            ).all()
        )


def test_ticks_and_replies_are_read_in_the_waits_and_a_stop_reply_skips_the_next_campaign(
    migrated_db, tmp_path, web
) -> None:
    db = migrated_db
    numbers = phones(4)
    lst = make_contacts(db, numbers, "Customers")
    sender = web_sender(db)
    first = make_campaign(db, [lst], [sender], name="Diwali")
    second = make_campaign(db, [lst], [sender], name="New year")
    clock = FakeClock()
    phone = web.phone
    phone.now = clock.now

    def customers(phone: Phone, message) -> None:
        # Each send: the one before is delivered, the one before that read. The first
        # customer answers the first campaign "Thanks!" and then STOP.
        ids = [m.message_id for m in phone.sent]
        if len(ids) >= 2:
            phone.ticks[ids[-2]] = "delivered"
        if len(ids) >= 3:
            phone.ticks[ids[-3]] = "read"
        if len(ids) == 1:
            phone.reply(message.phone, "Thanks!")
            phone.reply(message.phone, "STOP")
            phone.reply("+919999900000", "Who is this?")  # not a recipient

    phone.on_send = customers
    lane = make_lane(db, sender, tmp_path, clock)
    run(
        lane,
        clock,
        until=lambda: (
            counters(db, first)["queued"] + counters(db, second)["queued"] == 0
            and counters(db, first)["sending"] + counters(db, second)["sending"] == 0
        ),
    )
    # A few idle looks read the last ticks.
    for _ in range(3):
        clock.advance(LOOK_EVERY.total_seconds())
        lane.step()
    lane.close()

    # The first customer got the first campaign only: STOP came before the second's turn.
    sent_to = [(m.message_id, m.phone) for m in phone.sent]
    assert [p for _, p in sent_to].count(numbers[0]) == 1
    assert statuses(db, second)[numbers[0]] == S.SKIPPED
    with db.session() as session:
        skipped = session.scalars(
            select(Message).where(Message.campaign_id == second, Message.phone == numbers[0])
        ).one()
        assert skipped.error_code == "opted_out"
        contact = session.scalars(select(Contact).where(Contact.phone == numbers[0])).one()
        assert contact.opted_out_at is not None
        replies = session.scalars(select(Inbound).order_by(Inbound.id)).all()
        answered = session.scalars(
            select(Message.id).where(Message.campaign_id == first, Message.phone == numbers[0])
        ).one()
    # Both replies stored against the message they answer; the stranger's chat not read.
    assert [(r.body, r.message_id, r.opted_out) for r in replies] == [
        ("Thanks!", answered, False),
        ("STOP", answered, True),
    ]
    assert "+919999900000" not in phone.opened
    assert phone.inbox == [("+919999900000", "Who is this?")]

    # Every message went out once; ticks only moved forward to what the phone showed, and
    # the newest message to each customer (the one its chat row shows) reached its tick.
    assert len(sent_to) == 7
    rank = {S.SENT: 1, S.DELIVERED: 2, S.READ: 3}
    newest = {p: m for m, p in sent_to}
    with db.session() as session:
        rows = session.execute(
            select(Message.id, Message.status).where(Message.id.in_([m for m, _ in sent_to]))
        ).all()
    for mid, status in rows:
        shown = S(phone.ticks.get(mid, "sent"))
        assert rank[status] <= rank[shown], mid
        if mid in newest.values():
            assert status == shown, mid
    kept = assert_exact(db, first, second)
    kinds = by_kind(kept)
    assert kinds["sent"] == 7
    moved = {mid: S(phone.ticks.get(mid, "sent")) for mid in newest.values()}
    assert kinds["delivered"] >= sum(1 for t in moved.values() if t in (S.DELIVERED, S.READ)) > 0
    assert kinds["read"] >= sum(1 for t in moved.values() if t == S.READ) > 0
    assert kinds["replied"] == 1
    assert counters(db, first)["read"] + counters(db, second)["read"] == kinds["read"]
    with db.session() as session:
        assert session.get(Campaign, first).n_replied == 1
    # Reading happened in the waits: every look came with time to spare before a send.
    assert phone.watches and all(w.read_replies for w in phone.watches)


def test_no_look_in_a_wait_too_short_and_the_pace_is_kept(migrated_db, tmp_path, web) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(4), "Customers")
    quick = web_sender(db, "Quick", delay=MIN_LOOK_SECONDS / 2)
    make_campaign(db, [lst], [quick], name="Quick")
    clock = FakeClock()
    phone = web.phone
    phone.now = clock.now
    run(make_lane(db, quick, tmp_path, clock), clock, until=lambda: len(phone.sent) == 4)
    assert phone.watches == []

    slow = web_sender(db, "Slow", delay=10, read_replies=False)
    lst2 = make_contacts(db, phones(4, "+9198766"), "Others")
    make_campaign(db, [lst2], [slow], name="Slow")
    phone.sends_at.clear()
    lane = make_lane(db, slow, tmp_path, clock, owner="test:2")
    run(lane, clock, until=lambda: len(phone.sent) == 8)
    lane.close()
    # One look in each of the three waits, none moving a send: 10 s apart exactly.
    gaps = [
        (b - a).total_seconds() for a, b in zip(phone.sends_at, phone.sends_at[1:], strict=False)
    ]
    assert gaps == [10.0, 10.0, 10.0]
    assert len(phone.watches) == 3
    # Each look may open chats only until the next send less the time to prepare one.
    assert all(b <= 10 for b in phone.budgets)
    assert not any(w.read_replies for w in phone.watches)


def test_a_limit_banner_stops_the_sender_before_another_send(migrated_db, tmp_path, web) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(5), "Customers")
    sender = web_sender(db)
    campaign_id = make_campaign(db, [lst], [sender], name="Sale")
    clock = FakeClock()
    phone = web.phone
    phone.now = clock.now

    def banner_after_two(phone: Phone, message) -> None:
        if len(phone.sent) == 2:
            phone.banner = "Too many messages"

    phone.on_send = banner_after_two
    lane = make_lane(db, sender, tmp_path, clock)
    run(lane, clock)
    lane.close()
    assert len(phone.sent) == 2  # the look in the wait saw the banner first
    with db.session() as session:
        row = session.get(Sender, sender)
        assert row.state == SenderState.LIMITED
        assert row.state_reason == "WhatsApp shows: \u201cToo many messages\u201d"
        assert row.limited_until == clock.now() + timedelta(hours=24)
        event = session.scalars(select(Event).where(Event.kind == "sender.limited")).one()
        assert "Too many messages" in event.text and "rests for 24 hours" in event.text
        assert event.data == {"screenshot": SHOT.name}
        # The message in hand went back untouched; the campaign paused, saying why.
        waiting = session.scalars(select(Message).where(Message.status == S.QUEUED)).all()
        assert len(waiting) == 3 and {m.attempts for m in waiting} == {0}
        campaign = session.get(Campaign, campaign_id)
        assert campaign.status == CampaignStatus.PAUSED
        assert "Too many messages" in campaign.status_reason
    assert_exact(db, campaign_id)

    # A person resumes it; a banner at the send itself stops it the same way.
    with db.session() as session:
        senders.resume(session, None, sender)
        session.get(Campaign, campaign_id).status = CampaignStatus.RUNNING
    phone.banner = None
    quick = web_sender(db, "Other phone", delay=0)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        campaign.senders.append(session.get(Sender, quick))
        session.execute(
            update(Sender).where(Sender.id == sender).values(state=SenderState.DISABLED)
        )
    phone.on_send = lambda phone, m: setattr(phone, "banner", "Message not sent")
    lane = make_lane(db, quick, tmp_path, clock, owner="test:3")
    run(lane, clock)
    lane.close()
    assert len(phone.sent) == 3
    with db.session() as session:
        assert session.get(Sender, quick).state == SenderState.LIMITED
        waiting = session.scalars(select(Message).where(Message.status == S.QUEUED)).all()
        assert len(waiting) == 2 and {m.attempts for m in waiting} == {0}
    assert_exact(db, campaign_id)


def test_unknown_messages_are_settled_both_ways_when_idle(migrated_db, tmp_path, web) -> None:
    db = migrated_db
    numbers = phones(3)
    lst = make_contacts(db, numbers, "Customers")
    sender = web_sender(db)
    campaign_id = make_campaign(db, [lst], [sender], name="Sale")
    with db.session() as session:
        ids = session.scalars(
            select(Message.id).where(Message.campaign_id == campaign_id).order_by(Message.id)
        ).all()
    clock = FakeClock()
    phone = web.phone
    phone.now = clock.now
    phone.unconfirmed = {ids[0], ids[1]}
    lane = make_lane(db, sender, tmp_path, clock)
    run(
        lane,
        clock,
        until=lambda: (
            counters(db, campaign_id)["unknown"] == 2
            and counters(db, campaign_id)["queued"] + counters(db, campaign_id)["sending"] == 0
        ),
    )
    # Nothing to settle while sending: the chats are read for that only when idle.
    assert not any(w.settle for w in phone.watches)
    phone.unconfirmed = set()
    phone.in_chat = {ids[0]}
    phone.not_in_chat = {ids[1]}
    from wabulk.campaigns import lifecycle

    with db.session() as session:
        lifecycle.complete_finished(session, clock.now())
    clock.advance(LOOK_EVERY.total_seconds())
    run(
        lane,
        clock,
        until=lambda: (
            counters(db, campaign_id)["unknown"] == 0
            and counters(db, campaign_id)["queued"] == 0
            and len(phone.sent) == 2
        ),
    )
    lane.close()

    # Proven sent: sent. Proven not sent: queued, the finished campaign running again to
    # send it, which it did, once.
    assert statuses(db, campaign_id) == {n: S.SENT for n in numbers}
    assert [m.message_id for m in phone.sent] == [ids[2], ids[1]]
    with db.session() as session:
        first = session.get(Message, ids[0])
        assert first.error_code is None and first.sent_at is not None
        settled = session.scalars(
            select(Event).where(Event.kind == hearing.SETTLED).order_by(Event.message_id)
        ).all()
        assert [e.message_id for e in settled] == [ids[0], ids[1]]
        assert "was sent" in settled[0].text and "never went" in settled[1].text
        assert hearing.settled_count(session, campaign_id) == 2
    assert_exact(db, campaign_id)


def test_idle_looks_last_the_hearing_period_then_stop(migrated_db, tmp_path, web) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(2), "Customers")
    sender = web_sender(db, hear_days=1)
    campaign_id = make_campaign(db, [lst], [sender], name="Sale")
    clock = FakeClock()
    phone = web.phone
    phone.now = clock.now
    lane = make_lane(db, sender, tmp_path, clock)
    run(lane, clock, until=lambda: len(phone.sent) == 2)
    with db.session() as session:
        assert hearing.hearing_senders(session, clock.now()) == {sender}
    looks = len(phone.watches)
    steps = run(lane, clock, until=lambda: len(phone.watches) >= looks + 4)
    assert steps >= 4
    # The hours of the day pass in looks (every half minute); then, a day after the last
    # send, the lane has nothing left to hear and ends, and the worker starts none.
    clock.advance(24 * 3600)
    assert lane.step() is None
    lane.close()
    with db.session() as session:
        assert hearing.hearing_senders(session, clock.now()) == set()
        assert session.get(Campaign, campaign_id).n_sent == 2
    assert time.monotonic() > 0


def test_the_worker_keeps_lanes_only_for_web_senders_still_hearing(migrated_db, web) -> None:
    db = migrated_db
    now = FakeClock().now()
    lst = make_contacts(db, phones(6), "Customers")
    recent, old, longer, unlinked, unknown = (
        web_sender(db, "Recent"),
        web_sender(db, "Old"),
        web_sender(db, "Longer", hear_days=7),
        web_sender(db, "Unlinked"),
        web_sender(db, "Unknown"),
    )
    rehearsal = make_sender(db, "Rehearsal")
    campaign_id = make_campaign(db, [lst], [rehearsal], name="Sale")
    day = timedelta(days=1)
    plan = [
        (recent, S.SENT, now - day, now - day),
        (old, S.READ, now - 4 * day, now - 4 * day),
        (longer, S.DELIVERED, now - 4 * day, now - 4 * day),
        (unlinked, S.SENT, now - day, now - day),
        (rehearsal, S.SENT, now - day, now - day),
        (unknown, S.UNKNOWN, None, now - day),
    ]
    with db.session() as session:
        ids = session.scalars(
            select(Message.id).where(Message.campaign_id == campaign_id).order_by(Message.id)
        ).all()
        for mid, (sender_id, status, sent_at, updated_at) in zip(ids, plan, strict=True):
            session.execute(
                update(Message)
                .where(Message.id == mid)
                .values(sender_id=sender_id, status=status, sent_at=sent_at, updated_at=updated_at)
            )
        session.get(Sender, unlinked).state = SenderState.NEEDS_LINK
    with db.session() as session:
        assert hearing.hearing_senders(session, now) == {recent, longer, unknown}
        # Three days on, the unknown message is too old to settle by a look.
        assert hearing.hearing_senders(session, now + 3 * day) == {longer}


def test_idle_looks_come_soon_after_the_last_send_then_further_apart(
    migrated_db, tmp_path, web
) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(2), "Customers")
    sender = web_sender(db, delay=10)
    make_campaign(db, [lst], [sender], name="Sale")
    clock = FakeClock()
    phone = web.phone
    phone.now = clock.now
    lane = make_lane(db, sender, tmp_path, clock)
    run(lane, clock, until=lambda: len(phone.sent) == 2)
    last_send = phone.sends_at[-1]
    before = len(phone.looks_at)
    run(lane, clock, until=lambda: clock.now() - last_send > timedelta(minutes=3))
    after = [(t - last_send).total_seconds() for t in phone.looks_at[before:]]
    gaps = [b - a for a, b in zip([0.0, *after], after, strict=False)]
    # A pace after the last send, as the next wait's look would have come; then half the
    # time since the send (never less than the pace), up to LOOK_EVERY a minute on.
    every = LOOK_EVERY.total_seconds()
    assert gaps[:6] == pytest.approx([10, 10, 10, 15, 22.5, every])
    assert len([t for t in after if t <= 60]) == 4  # two at the old half-minute rate
    assert len(gaps) > 7 and gaps[5:] == pytest.approx([every] * len(gaps[5:]))

    # Hours later (a restarted lane has no send to go by either) the rate stays there.
    clock.advance(5 * 3600)
    looks = len(phone.looks_at)
    run(lane, clock, until=lambda: len(phone.looks_at) == looks + 4)
    later = phone.looks_at[looks:]
    assert [(b - a).total_seconds() for a, b in pairwise(later)] == [pytest.approx(every)] * 3
    lane.close()
    restarted = make_lane(db, sender, tmp_path, clock, owner="test:2")
    looks = len(phone.looks_at)
    run(restarted, clock, until=lambda: len(phone.looks_at) == looks + 3)
    again = phone.looks_at[looks:]
    assert [(b - a).total_seconds() for a, b in pairwise(again)] == [pytest.approx(every)] * 2
    restarted.close()


def test_one_slow_preparation_does_not_take_the_looks_time_to_read_replies(
    migrated_db, tmp_path, web, monkeypatch
) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(10), "Customers")
    sender = web_sender(db, delay=10)
    make_campaign(db, [lst], [sender], name="Sale")
    clock = FakeClock()
    phone = web.phone
    phone.now = clock.now
    given: list[float] = []
    deadline = hearing.monotonic_deadline

    def noted(seconds: float) -> float:
        given.append(seconds)
        return deadline(seconds)

    monkeypatch.setattr(hearing, "monotonic_deadline", noted)
    # The first preparation starts the browser (not learnt); then 2 s each, one of 9 s
    # (a busy moment), and from the seventh on 12 s each, longer than the pace itself.
    phone.prepare_takes = [7, 2, 2, 9, 2, 2, 12, 12, 12, 12]
    lane = make_lane(db, sender, tmp_path, clock)
    lane.stopwatch = lambda: phone.worked
    run(lane, clock, until=lambda: len(phone.sent) == 10)
    lane.close()
    # Each wait's look, before that wait's preparation, may open chats for the 10 s less
    # the time preparing one takes: the first by a guess (nothing learnt yet), the 9 s one
    # passed over (one of the last few); the lasting slowdown followed two preparations on,
    # keeping a quarter of the wait for reading replies all the same.
    assert given == pytest.approx([9, 8, 8, 8, 8, 8, 8, 2.5, 2.5])
    assert not phone.prepare_takes
