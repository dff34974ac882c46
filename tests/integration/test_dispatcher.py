"""The dispatcher loop and lease recovery, one step at a time against the database."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

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


def test_expired_leases_become_unknown_and_counters_stay_exact(migrated_db) -> None:
    now = utcnow()
    campaign_id = _sending_messages(
        migrated_db,
        [now - timedelta(seconds=5), now - timedelta(minutes=3), now + timedelta(minutes=1)],
    )
    with migrated_db.session() as session:
        assert expire_stale_leases(session, now) == 2
    with migrated_db.session() as session:
        statuses = sorted(session.scalars(select(Message.status)).all())
        campaign = session.get(Campaign, campaign_id)
        event = session.scalars(select(Event)).one()
    assert statuses == [MessageStatus.SENDING, MessageStatus.UNKNOWN, MessageStatus.UNKNOWN]
    assert (campaign.n_sending, campaign.n_unknown) == (1, 2)
    assert event.campaign_id == campaign_id and event.level.value == "warning"
    assert "not sent twice" in event.text
    with migrated_db.session() as session:
        assert expire_stale_leases(session, now) == 0  # nothing is counted twice


def test_a_step_reports_whether_it_found_work(db, settings) -> None:
    dispatcher = Dispatcher(db, settings)
    assert dispatcher.run_step() is False
    _sending_messages(db, [utcnow() - timedelta(seconds=1)])
    assert dispatcher.run_step() is True
    assert dispatcher.run_step() is False


def test_the_loop_runs_in_a_thread_and_stops_on_request(db, settings) -> None:
    _sending_messages(db, [utcnow() - timedelta(seconds=1)])
    dispatcher = Dispatcher(db, settings)
    dispatcher.start_thread()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.session() as session:
            if session.scalar(select(Message.status)) is MessageStatus.UNKNOWN:
                break
        time.sleep(0.05)
    dispatcher.stop()
    assert not dispatcher.alive
    with db.session() as session:
        assert session.scalar(select(Message.status)) is MessageStatus.UNKNOWN
