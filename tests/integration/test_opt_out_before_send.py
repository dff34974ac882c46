"""Opt-outs are absolute (DESIGN §3): a message claimed for a later send slot is read again
just before it goes.

A lane claims the next message (an Inbox answer, a paced campaign message, a Cloud API
answer waiting for its second) before the wait for its slot. A contact who opts out in
that wait, by hand or by a STOP reply, is skipped as the claim would skip them, and a
free-form Cloud API answer whose 24-hour window closed in that wait is skipped too: nothing
reaches the channel, the counters stay exact. SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.campaigns_support import (
    FakeClock,
    assert_counters_exact,
    counters,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from tests.cloud_support import add_sender, cloud_settings
from tests.integration.test_inbox_answers import (
    _assert_stats_exact,
    _sent_in_order,
    _step_until,
    answer,
    conversation,
    message,
    person,
)
from wabulk import inbound
from wabulk.analytics import stats
from wabulk.channels.dry_run import log_path, read_log
from wabulk.channels.heard import Heard, Reply
from wabulk.contacts import service as contacts_service
from wabulk.db import Database
from wabulk.dispatch.lane import Lane
from wabulk.dispatch.queue import OUTSIDE_WINDOW
from wabulk.models import Contact, Message, MessageStat, MessageStatus, Sender

S = MessageStatus
HOW = ["by_hand", "stop_reply"]


def _opt_out(db: Database, how: str, contact_id: int, sender_id: int, at) -> None:
    with db.session() as session:
        if how == "by_hand":
            contacts_service.opt_out(session, None, [contact_id], "Asked by phone to stop")
        else:
            phone = session.scalar(select(Contact.phone).where(Contact.id == contact_id))
            stop = Reply(at, f"wamid.stop.{contact_id}", phone, text="STOP")
            inbound.apply(session, sender_id, Heard(replies=[stop]), at, keywords=("STOP",))
    with db.session() as session:
        assert session.get(Contact, contact_id).opted_out_at is not None  # type: ignore[union-attr]


def _delivered(tmp_path: Path) -> Counter:
    return Counter(int(d["message_id"]) for d in read_log(log_path(tmp_path, "Rehearsal")))  # type: ignore[call-overload]


def _stats_exact(db: Database) -> None:
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


@pytest.mark.parametrize("how", HOW)
def test_an_answer_waiting_for_its_slot_is_skipped_when_the_contact_opts_out(
    migrated_db: Database, tmp_path, how: str
) -> None:
    db = migrated_db
    sender = make_sender(db, min_delay_seconds=30, max_delay_seconds=30)
    asha = person(db, "+919812300201", "Asha")
    conv = conversation(db, asha, sender, wrote_ago=1)
    clock = FakeClock()
    lane = make_lane(db, sender, tmp_path, clock)
    try:
        first = answer(db, None, conv, text="Checking for you", now=clock.now())
        _step_until(lane, clock, lambda: len(_sent_in_order(db, sender)) == 1)
        second = answer(db, None, conv, text="Yes, Saturday works", now=clock.now())
        # Claimed for the slot 30 s after the first, and waiting for it…
        _step_until(lane, clock, lambda: message(db, second).status == S.SENDING)
        _opt_out(db, how, asha, sender, clock.now())  # …when Asha opts out.
        _step_until(lane, clock, lambda: message(db, second).status != S.SENDING)
        for _ in range(3):  # nothing more goes on later steps
            clock.advance(lane.step() or 1.0)
    finally:
        lane.close()
    assert _delivered(tmp_path) == Counter({first: 1})
    row = message(db, second)
    assert (row.status, row.error_code, row.attempts) == (S.SKIPPED, "opted_out", 0)
    assert row.lease_owner is None and row.sent_at is None
    _assert_stats_exact(db)


@pytest.mark.parametrize("how", HOW)
def test_a_paced_campaign_message_waiting_for_its_slot_is_skipped_when_the_contact_opts_out(
    migrated_db: Database, tmp_path, how: str
) -> None:
    db = migrated_db
    sender = make_sender(db, min_delay_seconds=30, max_delay_seconds=30)
    campaign = make_campaign(db, [make_contacts(db, phones(3), "Customers")], [sender])
    clock = FakeClock()
    lane = make_lane(db, sender, tmp_path, clock)

    def claimed() -> Message | None:
        with db.session() as session:
            row = session.scalar(
                select(Message).where(Message.campaign_id == campaign, Message.status == S.SENDING)
            )
            if row is not None:
                session.expunge(row)
            return row

    try:
        _step_until(lane, clock, lambda: len(_sent_in_order(db, sender)) == 1)
        _step_until(lane, clock, lambda: claimed() is not None)
        waiting = claimed()
        assert waiting is not None and len(_sent_in_order(db, sender)) == 1
        _opt_out(db, how, waiting.contact_id, sender, clock.now())
        _step_until(lane, clock, lambda: counters(db, campaign).get(S.QUEUED, 0) == 0)
        _step_until(lane, clock, lambda: claimed() is None)
    finally:
        lane.close()
    row = message(db, waiting.id)
    assert (row.status, row.error_code, row.attempts) == (S.SKIPPED, "opted_out", 0)
    delivered = _delivered(tmp_path)
    assert waiting.id not in delivered and set(delivered.values()) == {1}
    assert len(delivered) == 2  # the other two went, once each
    assert counters(db, campaign).get(S.SKIPPED) == 1
    assert_counters_exact(db, campaign)
    _stats_exact(db)


@pytest.mark.parametrize("change", ["window_closes", "opts_out"])
def test_a_cloud_answer_waiting_for_its_second_is_skipped_when_it_may_no_longer_go(
    migrated_db: Database, settings, fake_cloud, change: str
) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    sender = add_sender(db, settings, fake)
    with db.session() as session:  # one message every 10 s: the next is claimed 10 s early
        session.execute(update(Sender).where(Sender.id == sender).values(max_per_second=0.1))
    inside = conversation(db, person(db, "+919812300211", "Asha"), sender, wrote_ago=1)
    ravi = person(db, "+919812300212", "Ravi")
    # Ravi wrote almost 24 hours ago: his window is open when his answer is claimed.
    closing = conversation(db, ravi, sender, wrote_ago=24 - 120 / 3600)
    clock = FakeClock()
    first = answer(db, None, inside, text="We deliver to Pune", now=clock.now())
    late = answer(db, None, closing, text="Yes, tomorrow", now=clock.now())
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
        _step_until(lane, clock, lambda: message(db, first).status == S.SENT)
        _step_until(lane, clock, lambda: message(db, late).status == S.SENDING)
        assert [s["callback"] for s in fake.sent] == [str(first)]
        if change == "window_closes":
            clock.advance(300)
        else:
            _opt_out(db, "by_hand", ravi, sender, clock.now())
        _step_until(lane, clock, lambda: message(db, late).status != S.SENDING)
        for _ in range(3):
            clock.advance(lane.step() or 1.0)
    finally:
        lane.close()
    assert [s["callback"] for s in fake.sent] == [str(first)]
    row = message(db, late)
    code = OUTSIDE_WINDOW if change == "window_closes" else "opted_out"
    assert (row.status, row.error_code, row.attempts) == (S.SKIPPED, code, 0)
    _assert_stats_exact(db)
