"""The dispatcher loop and lease recovery, one step at a time against the database."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import timedelta

from sqlalchemy import select, update

from tests.campaigns_support import (
    FakeClock,
    assert_counters_exact,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from wabulk.channels.dry_run import log_path
from wabulk.dispatch.recovery import expire_stale_leases
from wabulk.dispatch.worker import Dispatcher
from wabulk.models import Campaign, Contact, Event, Message, MessageStatus, utcnow


def _sending_messages(db, leases) -> int:
    with db.session() as session:
        campaign = Campaign(name="c", status="running", total=len(leases), n_sending=len(leases))
        session.add(campaign)
        session.flush()
        for i, lease_until in enumerate(leases):
            contact = Contact(phone=f"+9198000000{i:02d}")
            session.add(contact)
            session.flush()
            session.add(
                Message(
                    campaign_id=campaign.id,
                    contact_id=contact.id,
                    phone=contact.phone,
                    body="hi",
                    status=MessageStatus.SENDING,
                    lease_owner="dead:1",
                    lease_until=lease_until,
                    sending_at=utcnow(),
                )
            )
        return campaign.id


def test_expired_leases_without_a_channel_become_unknown(migrated_db, tmp_path) -> None:
    now = utcnow()
    campaign_id = _sending_messages(
        migrated_db,
        [now - timedelta(seconds=5), now - timedelta(minutes=3), now + timedelta(minutes=1)],
    )
    hold = timedelta(seconds=1)
    with migrated_db.session() as session:
        assert expire_stale_leases(session, tmp_path, now, hold=hold) == 2  # taken
    with migrated_db.session() as session:
        assert set(session.scalars(select(Message.status)).all()) == {MessageStatus.SENDING}
    now += 2 * hold  # asked a hold later
    with migrated_db.session() as session:
        assert expire_stale_leases(session, tmp_path, now, hold=hold) == 2
    with migrated_db.session() as session:
        statuses = sorted(session.scalars(select(Message.status)).all())
        campaign = session.get(Campaign, campaign_id)
        event = session.scalars(select(Event)).one()
    assert statuses == [MessageStatus.SENDING, MessageStatus.UNKNOWN, MessageStatus.UNKNOWN]
    assert (campaign.n_sending, campaign.n_unknown) == (1, 2)
    assert event.campaign_id == campaign_id and event.level.value == "warning"
    assert "2 cannot be known" in event.text and "send again" in event.text
    with migrated_db.session() as session:
        assert expire_stale_leases(session, tmp_path, now) == 0  # nothing is counted twice


def test_a_step_reports_whether_it_found_work(db, settings) -> None:
    dispatcher = Dispatcher(db, settings)
    assert dispatcher.run_step() is False
    _sending_messages(db, [utcnow() - timedelta(seconds=1)])
    assert dispatcher.run_step() is True
    assert dispatcher.run_step() is False


def test_the_loop_runs_in_a_thread_and_stops_on_request(db, settings) -> None:
    _sending_messages(db, [utcnow() - timedelta(seconds=1)])
    # Recovery takes the message, then asks a lease later: a short one here.
    dispatcher = Dispatcher(db, dataclasses.replace(settings, lease_seconds=2))
    dispatcher.start_thread()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with db.session() as session:
            if session.scalar(select(Message.status)) is MessageStatus.UNKNOWN:
                break
        time.sleep(0.05)
    dispatcher.stop()
    assert not dispatcher.alive
    with db.session() as session:
        assert session.scalar(select(Message.status)) is MessageStatus.UNKNOWN


def test_expired_leases_are_reconciled_through_the_channel(migrated_db, tmp_path) -> None:
    """The dry-run log proves which in-flight messages went out: sent or queued again."""
    db = migrated_db
    lst = make_contacts(db, phones(3), "Customers")
    sender = make_sender(db, "Rehearsal", max_delay_seconds=0)
    campaign_id = make_campaign(db, [lst], [sender])
    clock = FakeClock()
    lane = make_lane(db, sender, tmp_path, clock, owner="dead:1")
    lane.step()  # claims all three and sends them
    with db.session() as session:
        ids = sorted(session.scalars(select(Message.id)))
        # As if the worker died after the channel took the first but before settling any.
        session.execute(
            update(Message).values(
                status=MessageStatus.SENDING,
                lease_owner="dead:1",
                lease_until=utcnow() - timedelta(seconds=1),
            )
        )
        session.execute(update(Campaign).values(n_sent=0, n_sending=3))
    log = log_path(tmp_path, "Rehearsal")
    first_line = log.read_text().splitlines()[0]
    log.write_text(first_line + "\n")
    now, hold = utcnow(), timedelta(seconds=1)
    for moment in (now, now + 2 * hold):  # taken, then asked a hold later
        with db.session() as session:
            assert expire_stale_leases(session, tmp_path, moment, hold=hold) == 3
    with db.session() as session:
        statuses = dict(session.execute(select(Message.id, Message.status)).all())
    sent_id = json.loads(first_line)["message_id"]
    assert statuses[sent_id] is MessageStatus.SENT
    assert sorted(i for i, s in statuses.items() if s is MessageStatus.QUEUED) == [
        i for i in ids if i != sent_id
    ]
    assert_counters_exact(db, campaign_id)
