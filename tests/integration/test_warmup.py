"""A new WhatsApp Web number's warm-up ramp, through the lane under a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.campaigns_support import FakeClock, drive, make_campaign, make_contacts, phones
from wabulk.channels.base import ChannelConfig
from wabulk.channels.dry_run import DryRunChannel
from wabulk.db import Database
from wabulk.dispatch.lane import Lane
from wabulk.errors import Conflict
from wabulk.models import Event, Message, MessageStatus, Sender, SenderState
from wabulk.senders import warmup
from wabulk.senders.pace import Pace
from wabulk.senders.service import SenderInput, create_sender, set_warmup, update_sender

START = datetime(2030, 3, 1, 6, 0, tzinfo=UTC)  # 11:30 in Kolkata


def web_sender(db: Database, daily_cap: int | str, name: str = "Shop phone") -> int:
    """A linked WhatsApp Web sender with a one-second pace."""
    with db.session() as session:
        sender = create_sender(
            session,
            None,
            SenderInput(
                name=name,
                channel="whatsapp_web",
                timezone="Asia/Kolkata",
                pacing={
                    "min_delay_seconds": 1,
                    "max_delay_seconds": 1,
                    "daily_cap": daily_cap,
                    "break_every": "",
                    "break_seconds": "",
                },
            ),
        )
        sender.state, sender.link_requested_until = SenderState.LINKED, None
        return sender.id


def lane(db: Database, sender_id: int, instance: Path, clock: FakeClock) -> Lane:
    """A lane for a Web sender that sends through the dry-run channel: the warm-up is the
    lane's rule, not the browser's."""
    import random

    made = Lane(
        db, sender_id, "test:1", instance, lease_seconds=120, clock=clock, rng=random.Random(1)
    )
    made.channel = DryRunChannel(ChannelConfig("Shop phone", {}, instance, {}))
    return made


def campaign_now(db: Database, list_id: int, sender_id: int, at: datetime, name: str) -> int:
    campaign_id = make_campaign(db, [list_id], [sender_id], name=name)
    with db.session() as session:
        session.execute(
            Message.__table__.update()
            .where(Message.campaign_id == campaign_id)
            .values(next_attempt_at=at)
        )
    return campaign_id


def per_day(db: Database, campaign_id: int) -> list[int]:
    kolkata = Pace(timezone="Asia/Kolkata")
    with db.session() as session:
        times = session.scalars(
            select(Message.sent_at)
            .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.SENT)
            .order_by(Message.sent_at)
        ).all()
    days: dict[datetime, int] = {}
    for at in times:
        start = kolkata.day_start(at)
        days[start] = days.get(start, 0) + 1
    return [days[d] for d in sorted(days)]


def test_a_new_web_sender_ramps_up_day_by_day_to_its_own_cap(migrated_db, tmp_path) -> None:
    db = migrated_db
    # Its own cap (150) is below the ramp's 180 on day 6; day 7 is at its own cap.
    sender_id = web_sender(db, 150)
    list_id = make_contacts(db, phones(540), "Customers")
    campaign_id = campaign_now(db, list_id, sender_id, START, "Spring sale")
    clock = FakeClock(START)
    drive([lane(db, sender_id, tmp_path, clock)], clock, db)
    assert per_day(db, campaign_id) == [20, 40, 60, 100, 140, 150, 30]
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender is not None
        # Day 1 is the day of the first message, in the sender's timezone (Kolkata).
        assert warmup.first_day(session, sender) == START.date()
        assert warmup.status(session, sender, START + timedelta(days=2)) == warmup.Warmup(3, 60)
        assert warmup.status(session, sender, START + timedelta(days=6)) is None


def test_a_sender_that_has_sent_for_a_week_is_past_the_ramp(migrated_db, tmp_path) -> None:
    db = migrated_db
    sender_id = web_sender(db, 200)
    earlier = START - timedelta(days=10)
    first = campaign_now(db, make_contacts(db, phones(5), "Few"), sender_id, earlier, "Old")
    clock = FakeClock(earlier)
    drive([lane(db, sender_id, tmp_path, clock)], clock, db)
    assert per_day(db, first) == [5]
    later = campaign_now(
        db, make_contacts(db, phones(250, "+9197000"), "Many"), sender_id, START, "New"
    )
    clock = FakeClock(START)
    drive([lane(db, sender_id, tmp_path, clock)], clock, db)
    assert per_day(db, later) == [200, 50]


def test_skipping_the_warm_up_and_turning_it_back_on(migrated_db, tmp_path) -> None:
    db = migrated_db
    sender_id = web_sender(db, 100)
    list_id = make_contacts(db, phones(260), "Customers")
    with db.session() as session:
        set_warmup(session, None, sender_id, skip=True)
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender is not None and warmup.skipped(sender)
        # Editing the sender on its form keeps the warm-up skipped.
        update_sender(
            session,
            None,
            sender_id,
            SenderInput(
                name="Shop phone",
                channel="whatsapp_web",
                timezone="Asia/Kolkata",
                pacing={"min_delay_seconds": 1, "max_delay_seconds": 1, "daily_cap": 100},
            ),
        )
        assert warmup.skipped(sender)
        with pytest.raises(Conflict):
            set_warmup(session, None, sender_id, skip=True)
    campaign_id = campaign_now(db, list_id, sender_id, START, "Spring sale")
    clock = FakeClock(START)
    the_lane = lane(db, sender_id, tmp_path, clock)
    # Day 1 at its own cap; the ramp back on from day 2 (40), then day 3 (60).
    for _ in range(5000):
        wait = the_lane.step()
        if per_day(db, campaign_id) == [100]:
            break
        clock.advance(wait or 1)
    with db.session() as session:
        set_warmup(session, None, sender_id, skip=False)
    drive([the_lane], clock, db)
    assert per_day(db, campaign_id) == [100, 40, 60, 60]
    with db.session() as session:
        texts = session.scalars(
            select(Event.text).where(Event.kind.like("sender.warmup%")).order_by(Event.id)
        ).all()
    assert len(texts) == 2
    assert "skipped the warm-up of 'Shop phone'" in texts[0]
    assert "turned the warm-up of 'Shop phone' back on" in texts[1]


def test_only_web_senders_ramp(migrated_db) -> None:
    db = migrated_db
    with db.session() as session:
        dry = create_sender(session, None, SenderInput(name="Rehearsal"))
        assert warmup.status(session, dry, START) is None
        assert warmup.on_day(dry, None, START) is None
        with pytest.raises(Conflict):
            set_warmup(session, None, dry.id, skip=True)
    assert warmup.capped(Pace(daily_cap=None), warmup.Warmup(1, 20)).daily_cap == 20
    assert warmup.capped(Pace(daily_cap=10), warmup.Warmup(1, 20)).daily_cap == 10
