"""Pause and Cancel stop a lane within one message; the page's counts follow the sends.

Each test commits the Pause (or Cancel) from the channel itself, while it sends one message
of a claimed batch: exactly the messages started before that commit go out, and the rest
are back in the queue untouched (or skipped, for a cancel), for a sender that sends one by
one (paced or not) and for one that takes the batch at once (`send_batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import select, update

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
from tests.fakes.cloud_api import FakeCloudApi
from tests.fakes.scripted_channel import ScriptedChannel
from tests.integration.test_cloud_api_channel import PNID, TOKEN, WABA, make_channel, msg
from wabulk.campaigns import lifecycle
from wabulk.channels import registry
from wabulk.channels.base import OutgoingMessage, SendResult, TransientError
from wabulk.dispatch import lane_sending
from wabulk.models import Campaign, CampaignStatus, Message, MessageStatus, utcnow


class BatchedChannel(ScriptedChannel):
    """Takes a batch at once, as the Cloud API channel does, asking before each send."""

    batches: list[int] = []

    def send_batch(
        self, messages: Sequence[OutgoingMessage], may_send: Callable[[], bool] | None = None
    ) -> list[SendResult | None]:
        BatchedChannel.batches.append(len(messages))
        out: list[SendResult | None] = []
        for message in messages:
            if may_send is not None and not may_send():
                out.append(None)
                continue
            out.append(self.send(message))
        return out


@pytest.fixture(params=["one_by_one", "batched"])
def channel_kind(request, monkeypatch):
    """Dry-run senders open the scripted channel, one by one or batched, for these tests."""
    kind = BatchedChannel if request.param == "batched" else ScriptedChannel
    monkeypatch.setitem(registry.FACTORIES, "dry_run", kind)
    ScriptedChannel.script = None
    ScriptedChannel.sent = []
    ScriptedChannel.prepared = []
    BatchedChannel.batches = []
    yield request.param
    ScriptedChannel.script = None


def _stop_during_send(db, campaign_id: int, at: int, action: str) -> None:
    """While the `at`-th send is under way, a person presses Pause (or Cancel)."""

    def script(channel, message):
        if len(ScriptedChannel.sent) + 1 == at:
            with db.session() as session:
                getattr(lifecycle, action)(session, None, campaign_id)

    ScriptedChannel.script = script


def _rows(db, campaign_id: int) -> list[Message]:
    with db.session() as session:
        return list(
            session.scalars(
                select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id)
            )
        )


@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_no_send_starts_after_the_stop_commits(migrated_db, tmp_path, channel_kind, action) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(12), "Customers")
    sender = make_sender(db, max_delay_seconds=0)  # unpaced: the lane claims a batch
    campaign_id = make_campaign(db, [lst], [sender])
    _stop_during_send(db, campaign_id, 4, action)
    clock = FakeClock()
    lane = make_lane(db, sender, tmp_path, clock)
    drive([lane], clock, db)

    assert len(ScriptedChannel.sent) == 4  # the 4th was under way; none started after
    if channel_kind == "batched":
        assert BatchedChannel.batches == [12]  # one batch, stopped inside
    rows = _rows(db, campaign_id)
    sent = {m.message_id for m in ScriptedChannel.sent}
    assert {m.id for m in rows if m.status == MessageStatus.SENT} == sent
    unsent = [m for m in rows if m.id not in sent]
    assert len(unsent) == 8
    want = MessageStatus.QUEUED if action == "pause" else MessageStatus.SKIPPED
    for m in unsent:
        assert (m.status, m.attempts, m.lease_owner, m.sender_id) == (want, 0, None, None)
        assert m.error_code == (None if action == "pause" else "cancelled")
    c = counters(db, campaign_id)
    assert (c["sending"], c["sent"]) == (0, 4)
    assert_counters_exact(db, campaign_id)
    if action == "pause":
        # Resumed, the rest go out once each.
        with db.session() as session:
            lifecycle.resume(session, None, campaign_id)
        ScriptedChannel.script = None
        drive([lane], clock, db)
        assert sorted(m.message_id for m in ScriptedChannel.sent) == [m.id for m in rows]
        assert counters(db, campaign_id)["sent"] == 12
    else:
        assert c["queued"] == 0  # the cancelled campaign is at 100%


def test_a_paced_sender_stops_at_the_message_under_way(migrated_db, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(registry.FACTORIES, "dry_run", ScriptedChannel)
    ScriptedChannel.sent = []
    db = migrated_db
    lst = make_contacts(db, phones(6), "Customers")
    sender = make_sender(db, min_delay_seconds=30, max_delay_seconds=60)
    campaign_id = make_campaign(db, [lst], [sender])
    _stop_during_send(db, campaign_id, 2, "pause")
    try:
        clock = FakeClock()
        drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    finally:
        ScriptedChannel.script = None
    assert len(ScriptedChannel.sent) == 2
    c = counters(db, campaign_id)
    assert (c["sent"], c["queued"], c["sending"]) == (2, 4, 0)
    assert all(m.attempts == 0 for m in _rows(db, campaign_id) if m.status == "queued")
    assert_counters_exact(db, campaign_id)


def test_the_counts_follow_the_sends_within_a_batch(
    migrated_db, tmp_path, channel_kind, monkeypatch
) -> None:
    """With outcomes written after every send (a settle period of 0 s), the campaign's
    counters seen from another session during each send count every send before it."""
    monkeypatch.setattr(lane_sending, "SETTLE_SECONDS", 0.0)
    db = migrated_db
    lst = make_contacts(db, phones(50), "Customers")
    sender = make_sender(db, max_delay_seconds=0)
    campaign_id = make_campaign(db, [lst], [sender])
    seen: list[int] = []

    def script(channel, message):
        seen.append(counters(db, campaign_id)["sent"])

    ScriptedChannel.script = script
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    assert len(seen) == 50
    # The first batch of a new lane goes whole (it has not timed a send yet); after that
    # each send finds the ones before it written.
    first = BatchedChannel.batches[0] if channel_kind == "batched" else 1
    assert seen[first:] == list(range(first, 50))
    assert counters(db, campaign_id)["sent"] == 50


def test_cancel_skips_messages_waiting_for_a_retry(migrated_db, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(registry.FACTORIES, "dry_run", ScriptedChannel)
    ScriptedChannel.sent = []
    db = migrated_db
    lst = make_contacts(db, phones(5), "Customers")
    sender = make_sender(db, max_delay_seconds=0)
    campaign_id = make_campaign(db, [lst], [sender], max_attempts=5, retry_seconds=3600)
    flaky = set()

    def script(channel, message):
        if message.message_id % 2 == 0:
            flaky.add(message.message_id)
            raise TransientError("network hiccup", code="timeout")

    ScriptedChannel.script = script
    clock = FakeClock()
    lane = make_lane(db, sender, tmp_path, clock)
    try:
        for _ in range(10):
            if lane.step() is None:
                break
    finally:
        ScriptedChannel.script = None
        lane.close()
    waiting = counters(db, campaign_id)["queued"]
    assert waiting == len(flaky) > 0  # waiting an hour for their retry
    with db.session() as session:
        lifecycle.cancel(session, None, campaign_id)
    c = counters(db, campaign_id)
    assert (c["queued"], c["sending"], c["skipped"]) == (0, 0, waiting)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign.status == CampaignStatus.CANCELLED and campaign.finished_at
    assert_counters_exact(db, campaign_id)


def test_a_send_that_fails_for_a_moment_as_cancel_commits_is_not_left_waiting(
    migrated_db, tmp_path, monkeypatch
) -> None:
    """The message under way when Cancel commits fails temporarily: its retry is not queued
    for later, it is skipped with the rest, and the campaign ends at 100%."""
    monkeypatch.setitem(registry.FACTORIES, "dry_run", ScriptedChannel)
    ScriptedChannel.sent = []
    db = migrated_db
    lst = make_contacts(db, phones(5), "Customers")
    sender = make_sender(db, max_delay_seconds=0)
    campaign_id = make_campaign(db, [lst], [sender], max_attempts=5, retry_seconds=60)

    def script(channel, message):
        if len(ScriptedChannel.sent) == 2:
            with db.session() as session:
                lifecycle.cancel(session, None, campaign_id)
            raise TransientError("network hiccup", code="timeout")

    ScriptedChannel.script = script
    try:
        clock = FakeClock()
        drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    finally:
        ScriptedChannel.script = None
    c = counters(db, campaign_id)
    assert (c["sent"], c["queued"], c["sending"], c["skipped"]) == (2, 0, 0, 3)
    assert_counters_exact(db, campaign_id)


def test_what_comes_back_to_a_cancelled_campaign_is_skipped(migrated_db) -> None:
    """A message a crash's recovery puts back in the queue after the cancel is skipped by
    the dispatcher's sweep, so the campaign still ends at 100%."""
    db = migrated_db
    lst = make_contacts(db, phones(3), "Customers")
    sender = make_sender(db)
    campaign_id = make_campaign(db, [lst], [sender])
    with db.session() as session:
        lifecycle.cancel(session, None, campaign_id)
        first = session.scalar(select(Message.id).where(Message.campaign_id == campaign_id))
    with db.session() as session:  # as recovery would: proven not sent, queued again
        session.execute(update(Message).where(Message.id == first).values(status="queued"))
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(n_queued=1, n_skipped=Campaign.n_skipped - 1)
        )
    with db.session() as session:
        assert lifecycle.skip_cancelled(session, utcnow() + timedelta(seconds=1)) == 1
    c = counters(db, campaign_id)
    assert (c["queued"], c["skipped"]) == (0, 3)
    assert_counters_exact(db, campaign_id)
    with db.session() as session:
        assert lifecycle.skip_cancelled(session, utcnow()) == 0


def test_the_cloud_channel_asks_before_each_request(fake_cloud: FakeCloudApi) -> None:
    fake_cloud.add_number(
        phone_number_id=PNID, waba_id=WABA, token=TOKEN, app_secret="s", throughput="HIGH"
    )
    asked = []

    def may_send() -> bool:
        asked.append(1)
        return len(asked) <= 5

    ch = make_channel(fake_cloud)
    try:
        results = ch.send_batch([msg(i) for i in range(1, 101)], may_send)
    finally:
        ch.close()
    answered = [r for r in results if r is not None]
    assert len(answered) == len(fake_cloud.sent) == 5
    assert all(isinstance(r, SendResult) for r in answered)
    # A question that fails is a no: nothing goes out, and nothing is lost.
    ch = make_channel(fake_cloud)
    try:
        results = ch.send_batch([msg(i) for i in range(200, 210)], lambda: 1 / 0)  # type: ignore[arg-type,return-value]
    finally:
        ch.close()
    assert results == [None] * 10 and len(fake_cloud.sent) == 5
