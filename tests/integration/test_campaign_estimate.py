"""How long a campaign takes and when it ends, before launch (campaigns/outlook.py), under
a fixed clock: the pace inside active hours, a daily cap carrying it over days, several
senders sharing the audience, the warm-up ramp of a new WhatsApp Web number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.campaigns_support import make_sender
from wabulk.campaigns import outlook
from wabulk.db import Database
from wabulk.models import Sender, SenderState
from wabulk.senders.service import SenderInput, create_sender
from wabulk.zones import zone

# Monday 4 March 2030, 09:00 UTC.
NOW = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
# 45 s on average between messages and a 300 s break every 30: 55 s a message.
PACE: dict[str, Any] = {
    "min_delay_seconds": 30,
    "max_delay_seconds": 60,
    "break_every": 30,
    "break_seconds": 300,
}


def _finish(db: Database, ids: list[int], recipients: int, **overrides: Any) -> datetime | None:
    with db.session() as session:
        senders = [session.get(Sender, i) for i in ids]
        found = outlook.finish(session, senders, overrides, recipients, NOW, NOW)  # type: ignore[arg-type]
        assert found is not None and not found.unlimited
        return found.at


def _at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2030, 3, day, hour, minute, tzinfo=UTC)


def test_the_end_falls_inside_the_active_hours_of_the_next_day(migrated_db) -> None:
    sender = make_sender(migrated_db, "Shop", **PACE, daily_cap=5000)
    hours = {"active_from": "09:00", "active_until": "18:00"}
    # 9 open hours of 55 s a message: 589 on Monday; the 11 left from 09:00 on Tuesday
    # take 605 s, so the last goes out at 09:10:05, said as 09:11.
    assert _finish(migrated_db, [sender], 600, **hours) == _at(5, 9, 11)
    # All of it fits on Monday: 100 messages take 5,500 s from 09:00.
    assert _finish(migrated_db, [sender], 100, **hours) == _at(4, 10, 32)


def test_a_daily_cap_carries_the_campaign_over_the_next_days(migrated_db) -> None:
    sender = make_sender(migrated_db, "Shop", **PACE, daily_cap=200)
    # 200 on Monday, 200 on Tuesday, and the last 100 from Wednesday's midnight: 5,500 s.
    assert _finish(migrated_db, [sender], 500) == _at(6, 1, 32)
    # A campaign's own cap overrides the sender's.
    assert _finish(migrated_db, [sender], 500, daily_cap=100) == _at(8, 1, 32)


def test_several_senders_share_the_audience(migrated_db) -> None:
    first = make_sender(migrated_db, "Shop", **PACE, daily_cap=200)
    second = make_sender(migrated_db, "Counter", **PACE, daily_cap=200)
    # 400 on Monday between them; the 100 left are 50 each on Tuesday: 2,750 s.
    assert _finish(migrated_db, [first, second], 500) == _at(5, 0, 46)
    with migrated_db.session() as session:
        off = session.get(Sender, second)
        assert off is not None
        off.state = SenderState.DISABLED
    # A disabled sender sends nothing: the first alone, as above.
    assert _finish(migrated_db, [first, second], 500) == _at(6, 1, 32)


def test_the_warm_up_holds_a_new_number_back_day_by_day(migrated_db) -> None:
    with migrated_db.session() as session:
        sender = create_sender(
            session, None, SenderInput(name="New phone", channel="whatsapp_web", timezone="UTC")
        )
        sender.state, sender.link_requested_until = SenderState.LINKED, None
        sender_id = sender.id
    # Its ramp: 20 on Monday, 40 on Tuesday, then 60; the last 40 from Wednesday's midnight
    # take 40 times 55 s (the shipped pace).
    assert _finish(migrated_db, [sender_id], 100) == _at(6, 0, 37)


def test_the_estimate_in_words_in_the_users_timezone(migrated_db) -> None:
    sender = make_sender(migrated_db, "Shop", **PACE, daily_cap=200)
    unpaced = make_sender(migrated_db, "Rehearsal")
    kolkata = zone("Asia/Kolkata")
    with migrated_db.session() as session:
        shop, rehearsal = session.get(Sender, sender), session.get(Sender, unpaced)
        assert shop is not None and rehearsal is not None
        text = outlook.estimate_text(session, [shop], {}, 500, NOW, NOW, kolkata)
        # Wednesday 01:32 UTC is 07:02 in Kolkata (UTC+05:30).
        assert text == (
            "The 500 messages take about 1 day and 17 hours at this pace, spread over 3 days "
            "by the senders' daily caps: the last should go out Wednesday 07:02 "
            "(Asia/Kolkata time)."
        )
        text = outlook.estimate_text(session, [shop], {}, 30, NOW, NOW, kolkata)
        assert text == (
            "The 30 messages take about 28 minutes at this pace: the last should go out today "
            "at 14:58 (Asia/Kolkata time)."
        )
        later = NOW + timedelta(days=1)
        text = outlook.estimate_text(session, [shop], {}, 30, later, NOW, zone("UTC"))
        assert text is not None and text.startswith("Starting tomorrow at 09:00, the 30 messages")
        assert outlook.estimate_text(session, [rehearsal], {}, 30, NOW, NOW, kolkata) == (
            "No pace holds these senders back: the 30 messages go out as fast as they can "
            "send them."
        )
        # One message: "goes" and "takes", not "go" and "take".
        assert outlook.estimate_text(session, [rehearsal], {}, 1, NOW, NOW, kolkata) == (
            "No pace holds these senders back: the 1 message goes out as fast as they can "
            "send them."
        )
        text = outlook.estimate_text(session, [shop], {}, 1, NOW, NOW, kolkata)
        assert text is not None and text.startswith("The 1 message takes ")
        # No audience or no sender: nothing to estimate.
        assert outlook.estimate_text(session, [shop], {}, 0, NOW, NOW, kolkata) is None
        assert outlook.estimate_text(session, [], {}, 30, NOW, NOW, kolkata) is None


def test_overlap_words_fit_one_contact_and_all_of_them() -> None:
    sent = NOW - timedelta(hours=1)
    utc = zone("UTC")
    texts = outlook.overlap_texts(
        [
            outlook.Overlap(1, "Diwali offer", 1, sent),
            outlook.Overlap(2, "Dues", 3, sent),
            outlook.Overlap(3, "Sale", 2, sent),
        ],
        3,
        NOW,
        utc,
    )
    assert texts == [
        "1 of these 3 contacts got 'Diwali offer' today.",
        "All 3 of these contacts got 'Dues' today.",
        "2 of these 3 contacts got 'Sale' today.",
    ]
    alone = outlook.overlap_texts([outlook.Overlap(1, "Dues", 1, sent)], 1, NOW, utc)
    assert alone == ["This contact got 'Dues' today."]
