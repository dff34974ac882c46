"""A WhatsApp Web campaign hearing back end to end: the lane links in real Chromium against
the stand-in, sends two campaigns with pacing waits, and in those waits reads the ticks the
stand-in moves by itself and a customer's STOP, which stops the other running campaign's
message to them. Counters and `message_stats` end as a rebuild would write them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from wabulk.db import Database
from wabulk.dispatch import lane_hearing
from wabulk.models import Contact, Inbound, Message, MessageStatus
from wabulk.senders.service import SenderInput, create_sender

from ..campaigns_support import make_campaign, make_contacts
from ..fakes.whatsapp_web import FakeWhatsAppWeb
from ..inbound_support import assert_exact, by_kind
from .test_whatsapp_web_engine import campaign_row, lane_for, link_in_lane, run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Waits long enough for a look that may open a chat (a reply) before the next send.
PACED = {
    "min_delay_seconds": 5,
    "max_delay_seconds": 5.5,
    "daily_cap": "",
    "break_every": "",
    "break_seconds": "",
}


def test_ticks_and_a_stop_reply_reach_the_campaigns_while_they_send(
    migrated_db: Database, fake: FakeWhatsAppWeb, tmp_path: Path, monkeypatch
) -> None:
    db = migrated_db
    # Idle looks every two seconds, not every half minute, so the last ticks come soon.
    monkeypatch.setattr(lane_hearing, "LOOK_EVERY", timedelta(seconds=2))
    fake.set(auto_deliver_after=0.5, auto_read_after=2)
    asha, *others = [f"+91981230{i:04d}" for i in range(1, 6)]
    # The second campaign reaches Asha last, four sends after the first one reached her.
    second_list = make_contacts(db, [*others, asha], "Everyone")
    first_list = make_contacts(db, [asha], "Asha")
    with db.session() as session:
        sender_id = create_sender(
            session, None, SenderInput(name="Shop phone", channel="whatsapp_web", pacing=PACED)
        ).id
    lane = lane_for(db, sender_id, tmp_path / "instance", fake, "worker:1")
    try:
        link_in_lane(db, lane, sender_id, fake)
        first = make_campaign(db, [first_list], [sender_id], name="Asha first")
        second = make_campaign(db, [second_list], [sender_id], name="Everyone")

        def asha_answered() -> bool:
            if any(m["phone"] == asha[1:] for m in fake.messages()) and not fake.incoming():
                fake.reply(asha, "STOP")
            return False

        def finished() -> bool:
            asha_answered()
            return all(campaign_row(db, c).status.value == "completed" for c in (first, second))

        run([lane], db, finished, timeout=120)
        # All five went out; the last ticks come in the idle looks after. Asha's chat row
        # shows her STOP, not our tick: hers is read only if a look caught it before.
        run([lane], db, lambda: _read(db) >= 4, timeout=60)
    finally:
        lane.close()

    assert sorted(m["phone"] for m in fake.messages()) == sorted(p[1:] for p in [asha, *others])
    with db.session() as session:
        skipped = session.scalars(
            select(Message).where(Message.campaign_id == second, Message.phone == asha)
        ).one()
        assert (skipped.status, skipped.error_code) == (MessageStatus.SKIPPED, "opted_out")
        contact = session.scalars(select(Contact).where(Contact.phone == asha)).one()
        assert contact.opted_out_at is not None
        reply = session.scalars(select(Inbound)).one()
        answered = session.scalars(select(Message).where(Message.campaign_id == first)).one()
        assert (reply.body, reply.message_id, reply.opted_out) == ("STOP", answered.id, True)
        assert answered.replied_at is not None
    kinds = by_kind(assert_exact(db, first, second))
    assert (kinds["sent"], kinds["replied"]) == (5, 1)
    assert kinds["delivered"] >= kinds["read"] >= 4
    # Only chats of people the campaigns messaged were opened.
    assert set(fake.opened_chats()) <= {p[1:] for p in [asha, *others]}


def _read(db: Database) -> int:
    """Messages read, Asha's aside."""
    with db.session() as session:
        return len(
            session.scalars(
                select(Message.id).where(
                    Message.status == MessageStatus.READ, Message.phone != "+919812300001"
                )
            ).all()
        )
