"""Pacing with a controllable clock: delays, daily caps, active hours, round-robin."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from tests.campaigns_support import (
    FakeClock,
    assert_counters_exact,
    drive,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from wabulk.errors import ValidationError
from wabulk.models import Message, MessageStatus
from wabulk.senders.pace import Pace


def _sent(db):
    with db.session() as session:
        return session.execute(
            select(Message.sender_id, Message.sent_at, Message.phone)
            .where(Message.status == MessageStatus.SENT)
            .order_by(Message.sent_at, Message.id)
        ).all()


def test_delays_stay_within_the_range(migrated_db, tmp_path) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(40), "Customers")
    sender = make_sender(db, min_delay_seconds=8, max_delay_seconds=20)
    make_campaign(db, [lst], [sender])
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    times = [row.sent_at for row in _sent(db)]
    assert len(times) == 40
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(8 <= g <= 20 + 1e-6 for g in gaps), gaps
    assert max(gaps) - min(gaps) > 3  # random, not a fixed step


def test_long_break_every_n_messages(migrated_db, tmp_path) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(10), "Customers")
    sender = make_sender(
        db, min_delay_seconds=5, max_delay_seconds=5, break_every=4, break_seconds=600
    )
    make_campaign(db, [lst], [sender])
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    times = [row.sent_at for row in _sent(db)]
    gaps = [round((b - a).total_seconds()) for a, b in itertools.pairwise(times)]
    assert gaps == [5, 5, 5, 605, 5, 5, 5, 605, 5]


def test_daily_cap_is_counted_in_the_senders_timezone(migrated_db, tmp_path) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(12), "Customers")
    sender = make_sender(
        db, min_delay_seconds=1, max_delay_seconds=2, daily_cap=5, timezone="Asia/Kolkata"
    )
    campaign_id = make_campaign(db, [lst], [sender])
    # 22:00 in Kolkata: the day ends in two hours.
    clock = FakeClock(datetime(2030, 3, 1, 16, 30, tzinfo=UTC))
    with db.session() as session:
        session.execute(
            Message.__table__.update()
            .where(Message.campaign_id == campaign_id)
            .values(next_attempt_at=clock.now())
        )
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    kolkata = Pace(timezone="Asia/Kolkata")
    days = [kolkata.day_start(row.sent_at) for row in _sent(db)]
    per_day = {d: days.count(d) for d in days}
    assert sorted(per_day.values()) == [2, 5, 5]
    first_of_day2 = min(r.sent_at for r in _sent(db) if kolkata.day_start(r.sent_at) != days[0])
    assert first_of_day2 == datetime(2030, 3, 1, 18, 30, tzinfo=UTC)  # Kolkata midnight
    assert_counters_exact(db, campaign_id)


def test_active_hours_follow_each_recipients_timezone(migrated_db, tmp_path) -> None:
    db = migrated_db
    india = make_contacts(db, phones(3, "+9198111"), "Customers", timezone="Asia/Kolkata")
    make_contacts(db, phones(3, "+1212555"), "Customers", timezone="America/New_York")
    sender = make_sender(db, max_delay_seconds=0, active_from="09:00", active_until="18:00")
    campaign_id = make_campaign(db, [india], [sender])
    # 06:00 UTC = 11:30 in Kolkata (open) and 01:00 in New York (closed).
    clock = FakeClock(datetime(2030, 3, 1, 6, 0, tzinfo=UTC))
    with db.session() as session:
        session.execute(
            Message.__table__.update()
            .where(Message.campaign_id == campaign_id)
            .values(next_attempt_at=clock.now())
        )
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    sent = _sent(db)
    india_times = {r.sent_at for r in sent if r.phone.startswith("+91")}
    us_times = {r.sent_at for r in sent if r.phone.startswith("+1")}
    assert india_times == {datetime(2030, 3, 1, 6, 0, tzinfo=UTC)}
    # 09:00 in New York on 1 March 2030 (EST, UTC-5) is 14:00 UTC.
    assert us_times == {datetime(2030, 3, 1, 14, 0, tzinfo=UTC)}
    assert len(sent) == 6
    assert_counters_exact(db, campaign_id)


def test_window_wrapping_midnight() -> None:
    pace = Pace(active_from=time(20), active_until=time(2))
    at = datetime(2030, 1, 1, 23, 0, tzinfo=UTC)
    assert pace.window_opens(at, "UTC") is None
    assert pace.window_opens(at.replace(hour=1), "UTC") is None
    assert pace.window_opens(at.replace(hour=3), "UTC") == at.replace(hour=20)
    assert Pace().window_opens(at, "UTC") is None


def test_senders_share_recipients_round_robin_each_at_its_pace(migrated_db, tmp_path) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(20), "Customers")
    a = make_sender(db, "A", min_delay_seconds=10, max_delay_seconds=10)
    b = make_sender(db, "B", min_delay_seconds=10, max_delay_seconds=10)
    make_campaign(db, [lst], [a, b])
    clock = FakeClock()
    lanes = [
        make_lane(db, a, tmp_path, clock, owner="w:a"),
        make_lane(db, b, tmp_path, clock, owner="w:b"),
    ]
    drive(lanes, clock, db)
    order = [row.sender_id for row in _sent(db)]
    assert len(order) == 20
    assert order.count(a) == order.count(b) == 10
    assert all(x != y for x, y in itertools.pairwise(order))  # alternating


def test_a_faster_sender_takes_more(migrated_db, tmp_path) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(30), "Customers")
    fast = make_sender(db, "Fast", min_delay_seconds=5, max_delay_seconds=5)
    slow = make_sender(db, "Slow", min_delay_seconds=20, max_delay_seconds=20)
    make_campaign(db, [lst], [fast, slow])
    clock = FakeClock()
    lanes = [
        make_lane(db, fast, tmp_path, clock, owner="w:f"),
        make_lane(db, slow, tmp_path, clock, owner="w:s"),
    ]
    drive(lanes, clock, db)
    order = [row.sender_id for row in _sent(db)]
    assert len(order) == 30
    assert order.count(fast) > 3 * order.count(slow) > 0


def test_campaign_overrides_replace_the_senders_pacing(migrated_db, tmp_path) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(5), "Customers")
    sender = make_sender(db, min_delay_seconds=30, max_delay_seconds=60)
    make_campaign(db, [lst], [sender], pacing={"min_delay_seconds": 1, "max_delay_seconds": 2})
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    times = [r.sent_at for r in _sent(db)]
    assert (times[-1] - times[0]) <= timedelta(seconds=8)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_delay_seconds": 9, "max_delay_seconds": 3}, "shortest delay cannot be longer"),
        ({"daily_cap": 0}, "whole number of 1 or more"),
        ({"active_from": "25:00", "active_until": "18:00"}, "time like 09:00"),
        ({"active_from": "09:00"}, "both ends"),
        ({"speed": 3}, "Unknown pacing setting"),
    ],
)
def test_bad_pacing_is_refused_with_a_reason(overrides, message) -> None:
    with pytest.raises(ValidationError, match=message):
        Pace().with_overrides(overrides)
