"""How the engine takes each channel error: retry with backoff, fail, or pause."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.campaigns_support import (
    FakeClock,
    assert_counters_exact,
    counters,
    drive,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from tests.fakes.scripted_channel import ScriptedChannel
from wabulk.campaigns import lifecycle
from wabulk.channels import registry
from wabulk.channels.base import PermanentError, SenderUnavailable, TransientError
from wabulk.errors import Conflict
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Event,
    Message,
    MessageStatus,
    Sender,
    SenderState,
)


@pytest.fixture
def scripted(monkeypatch):
    """Senders of kind dry_run open the scripted channel instead, for these tests only."""
    monkeypatch.setitem(registry.FACTORIES, "dry_run", ScriptedChannel)
    ScriptedChannel.script = None
    ScriptedChannel.sent = []
    ScriptedChannel.prepared = []
    yield ScriptedChannel
    ScriptedChannel.script = None


def test_transient_errors_retry_with_growing_backoff_then_succeed(
    migrated_db, tmp_path, scripted
) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(1), "Customers")
    sender = make_sender(db, max_delay_seconds=0)
    campaign_id = make_campaign(db, [lst], [sender], max_attempts=5, retry_seconds=60)
    tries = []

    def flaky(channel, message):
        tries.append(clock.now())
        if len(tries) <= 3:
            raise TransientError("network hiccup", code="timeout")

    scripted.script = flaky
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(tries)]
    assert len(tries) == 4
    # 60 s, 120 s, 240 s, each with ±20% jitter.
    for gap, base in zip(gaps, (60, 120, 240), strict=True):
        assert 0.8 * base <= gap <= 1.2 * base, gaps
    with db.session() as session:
        message = session.scalar(select(Message))
        assert message.status is MessageStatus.SENT and message.attempts == 4
    assert_counters_exact(db, campaign_id)


def test_retry_after_is_honoured_and_attempts_run_out(migrated_db, tmp_path, scripted) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(1), "Customers")
    sender = make_sender(db, max_delay_seconds=0)
    campaign_id = make_campaign(db, [lst], [sender], max_attempts=3, retry_seconds=1)
    tries = []

    def limited(channel, message):
        tries.append(clock.now())
        raise TransientError("rate limited", code="131056", retry_after=900)

    scripted.script = limited
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    assert len(tries) == 3
    assert all(b - a >= timedelta(seconds=900) for a, b in itertools.pairwise(tries))
    with db.session() as session:
        message = session.scalar(select(Message))
        assert message.status is MessageStatus.FAILED
        assert message.error_code == "131056"
        assert message.error_detail.startswith("Gave up after 3 attempt(s): rate limited")
    assert counters(db, campaign_id)["failed"] == 1
    assert_counters_exact(db, campaign_id)


def test_permanent_errors_fail_at_once_with_code_and_sentence(
    migrated_db, tmp_path, scripted
) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(4), "Customers")
    sender = make_sender(db, max_delay_seconds=0)
    campaign_id = make_campaign(db, [lst], [sender])
    bad = phones(4)[1]

    def not_on_whatsapp(channel, message):
        if message.phone == bad:
            raise PermanentError("This number is not on WhatsApp.", code="not_on_whatsapp")

    scripted.script = not_on_whatsapp
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    with db.session() as session:
        failed = session.scalar(select(Message).where(Message.phone == bad))
        assert failed.status is MessageStatus.FAILED and failed.attempts == 1
        assert (failed.error_code, failed.error_detail) == (
            "not_on_whatsapp",
            "This number is not on WhatsApp.",
        )
        event = session.scalar(select(Event).where(Event.kind == "message.failed"))
        assert event.message_id == failed.id and "not on WhatsApp" in event.text
    assert counters(db, campaign_id) | {} == {
        **counters(db, campaign_id),
        "sent": 3,
        "failed": 1,
    }
    assert_counters_exact(db, campaign_id)


def test_a_lost_sender_hands_its_messages_to_the_other(migrated_db, tmp_path, scripted) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(10), "Customers")
    a = make_sender(db, "A", min_delay_seconds=10, max_delay_seconds=10)
    b = make_sender(db, "B", min_delay_seconds=10, max_delay_seconds=10)
    campaign_id = make_campaign(db, [lst], [a, b])

    def logged_out(channel, message):
        if channel.config.sender_name == "A" and channel.calls == 4:
            raise SenderUnavailable("WhatsApp logged this phone out.", code="logged_out")

    scripted.script = logged_out
    clock = FakeClock()
    lanes = [
        make_lane(db, a, tmp_path, clock, owner="w:a"),
        make_lane(db, b, tmp_path, clock, owner="w:b"),
    ]
    drive(lanes, clock, db)
    with db.session() as session:
        sender_a = session.get(Sender, a)
        assert sender_a.state is SenderState.NEEDS_LINK
        assert "logged this phone out" in sender_a.state_reason
        campaign = session.get(Campaign, campaign_id)
        assert campaign.status is CampaignStatus.RUNNING  # B carries on
        by_sender = dict(
            session.execute(
                select(Message.sender_id, Message.id).where(Message.status == MessageStatus.SENT)
            ).all()
        )
    assert counters(db, campaign_id)["sent"] == 10, counters(db, campaign_id)
    assert len({m.message_id for m in scripted.sent}) == 10
    assert b in by_sender
    assert_counters_exact(db, campaign_id)


def test_the_last_sender_lost_pauses_the_campaign_with_the_reason(
    migrated_db, tmp_path, scripted
) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(5), "Customers")
    sender = make_sender(db, "Phone 1", min_delay_seconds=5, max_delay_seconds=5)
    campaign_id = make_campaign(db, [lst], [sender])

    def logout_after_two(channel, message):
        if channel.calls == 3:
            raise SenderUnavailable("WhatsApp logged this phone out.", code="logged_out")

    scripted.script = logout_after_two
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign.status is CampaignStatus.PAUSED
        assert "Phone 1" in campaign.status_reason
        assert "logged this phone out" in campaign.status_reason
    assert counters(db, campaign_id)["sent"] == 2
    assert counters(db, campaign_id)["queued"] == 3  # nothing lost: back in the queue
    assert_counters_exact(db, campaign_id)
    with db.session() as session, pytest.raises(Conflict, match="No sender"):
        lifecycle.resume(session, None, campaign_id)


def test_closing_a_lane_gives_back_its_messages_and_its_sender(migrated_db, tmp_path) -> None:
    """What SIGTERM does: the lane's claimed message returns to the queue, ready to send."""
    db = migrated_db
    lst = make_contacts(db, phones(3), "Customers")
    sender = make_sender(db, min_delay_seconds=30, max_delay_seconds=30)
    campaign_id = make_campaign(db, [lst], [sender])
    clock = FakeClock()
    lane = make_lane(db, sender, tmp_path, clock)
    lane.step()  # sends the first
    assert lane.step() == pytest.approx(30)  # the second is claimed, waiting its turn
    assert counters(db, campaign_id)["sending"] == 1
    lane.close()
    with db.session() as session:
        queued = session.scalars(select(Message).where(Message.status == MessageStatus.QUEUED))
        assert all(m.next_attempt_at is not None and m.lease_owner is None for m in queued)
        assert session.get(Sender, sender).lease_owner is None
    assert counters(db, campaign_id)["queued"] == 2
    assert_counters_exact(db, campaign_id)
    other = make_lane(db, sender, tmp_path, clock, owner="next:1")
    drive([other], clock, db)
    assert counters(db, campaign_id)["sent"] == 3


def test_a_campaign_whose_senders_are_all_disabled_pauses_saying_why(migrated_db) -> None:
    from wabulk.campaigns.lifecycle import pause_orphaned
    from wabulk.senders.service import set_enabled

    db = migrated_db
    lst = make_contacts(db, phones(3), "Customers")
    sender = make_sender(db, "Shop phone")
    campaign_id = make_campaign(db, [lst], [sender])
    with db.session() as session:
        assert pause_orphaned(session) == []
        set_enabled(session, None, sender, enabled=False)
    with db.session() as session:
        assert pause_orphaned(session) == [campaign_id]
        campaign = session.get(Campaign, campaign_id)
        assert campaign.status is CampaignStatus.PAUSED
        assert "Shop phone: Disabled by an admin" in campaign.status_reason


def test_the_next_message_is_prepared_during_the_wait(migrated_db, tmp_path, scripted) -> None:
    """A browser opens the next chat while the pacing delay runs, not after it."""
    db = migrated_db
    lst = make_contacts(db, phones(3), "Customers")
    sender = make_sender(db, min_delay_seconds=15, max_delay_seconds=15)
    make_campaign(db, [lst], [sender])
    clock = FakeClock()
    timeline: list[tuple[str, int, object]] = []
    original_prepare = ScriptedChannel.prepare

    def prepare(self, message):
        timeline.append(("prepare", message.message_id, clock.now()))
        original_prepare(self, message)

    def record_send(channel, message):
        timeline.append(("send", message.message_id, clock.now()))

    scripted.prepare = prepare  # type: ignore[method-assign]
    scripted.script = record_send
    try:
        drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    finally:
        scripted.prepare = original_prepare  # type: ignore[method-assign]
    sends = [(mid, at) for kind, mid, at in timeline if kind == "send"]
    prepares = {mid: at for kind, mid, at in timeline if kind == "prepare"}
    assert len(sends) == 3
    for (_, previous_at), (mid, at) in itertools.pairwise(sends):
        assert (at - previous_at).total_seconds() == 15
        # Prepared right after the previous send, 15 s before its own turn.
        assert prepares[mid] == previous_at
