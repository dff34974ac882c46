"""Shared senders, lane by lane: two lanes of one Cloud API or dry-run sender, as two workers
run them, on SQLite and PostgreSQL, stepped in turn under a fake clock.

- Neither takes the sender's lease, and both send.
- Together they keep the account's daily cap and Meta's tier budget, counted in the
  database when they claim (each lane alone would count only its own sends).
- A WhatsApp Web sender stays pinned: `lease.exclusive` is true for it alone.
"""

from __future__ import annotations

import random
from pathlib import Path

from sqlalchemy import func, select

from tests.campaigns_support import FakeClock, make_contacts
from tests.cloud_support import add_sender, cloud_settings, customers, launch, spring_template
from wabulk.campaigns import lifecycle
from wabulk.campaigns.service import DraftInput, save_draft
from wabulk.channels.dry_run import log_path, read_log
from wabulk.db import Database
from wabulk.dispatch.lane import Lane
from wabulk.models import Campaign, Channel, Message, MessageStatus, Sender
from wabulk.senders import lease
from wabulk.senders.service import SenderInput, create_sender


def two_lanes(db: Database, sender_id: int, settings, clock: FakeClock) -> list[Lane]:  # type: ignore[no-untyped-def]
    return [
        Lane(
            db,
            sender_id,
            f"worker-{k}:1:test",
            Path(settings.instance_path),
            lease_seconds=120,
            clock=clock,
            rng=random.Random(k),
            options=settings.channel_options(),
            secret_key=settings.secret_key,
        )
        for k in (1, 2)
    ]


def run_until_idle(lanes: list[Lane], clock: FakeClock, rounds: int = 400) -> None:
    """Step the lanes in turn until neither has anything due within an hour."""
    for _ in range(rounds):
        waits = [lane.step() for lane in lanes]
        due = [w for w in waits if w is not None]
        if not due or min(due) > 3600:
            return
        clock.advance(max(0.001, min(due)))
    raise AssertionError("the lanes never went idle")


def run_two_lanes(db: Database, sender_id: int, settings) -> None:  # type: ignore[no-untyped-def]
    """Two workers' lanes of one shared sender until idle, on a fake clock. Both claim before
    either sends: the second must count the first's claim."""
    clock = FakeClock()
    lanes = two_lanes(db, sender_id, settings, clock)
    try:
        for lane in lanes:
            lane.step()
        run_until_idle(lanes, clock)
    finally:
        for lane in lanes:
            lane.close()


def sent_by(db: Database, campaign_id: int) -> int:
    with db.session() as session:
        return session.scalar(
            select(func.count()).where(
                Message.campaign_id == campaign_id, Message.status == MessageStatus.SENT
            )
        )


def test_only_whatsapp_web_is_pinned() -> None:
    assert lease.exclusive(Channel.WHATSAPP_WEB) and lease.exclusive("whatsapp_web")
    assert not lease.exclusive(Channel.CLOUD_API) and not lease.exclusive(Channel.DRY_RUN)


def test_two_lanes_of_a_dry_run_sender_keep_its_daily_cap_together(
    migrated_db: Database, settings
) -> None:
    db, cap = migrated_db, 25
    with db.session() as session:
        sender = create_sender(
            session,
            None,
            SenderInput(
                name="Rehearsal",
                timezone="UTC",
                pacing={"min_delay_seconds": 0, "max_delay_seconds": 0, "daily_cap": cap},
            ),
        )
        sender_id = sender.id
    list_id = make_contacts(db, [f"+9198330{i:05d}" for i in range(60)], "Everyone")
    with db.session() as session:
        draft = save_draft(
            session,
            None,
            DraftInput(name="Capped", list_ids=[list_id], sender_ids=[sender_id], body="Hi"),
        )
        lifecycle.launch(session, None, draft.id)
        campaign_id = draft.id
    run_two_lanes(db, sender_id, settings)
    assert sent_by(db, campaign_id) == cap
    assert len(read_log(log_path(Path(settings.instance_path), "Rehearsal"))) == cap
    with db.session() as session:
        held = session.get(Sender, sender_id)
        assert held is not None and held.lease_owner is None  # nobody took the lease
        left = session.get(Campaign, campaign_id)
        assert left is not None and (left.n_queued, left.n_sending) == (60 - cap, 0)


def test_two_lanes_of_a_cloud_api_number_keep_its_tier_budget_together(
    migrated_db: Database, settings, fake_cloud
) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    sender_id = add_sender(db, settings, fake, tier="TIER_50")
    template_id = spring_template(db, settings)
    list_id = customers(db, 80, "Spring customers", prefix="+9198331")
    campaign_id = launch(db, "Spring sale", list_id, sender_id, template_id)
    run_two_lanes(db, sender_id, settings)
    assert sent_by(db, campaign_id) == 50
    reached = {s["to"] for s in fake.sent if s["endpoint"] == "messages"}
    assert len(reached) == 50
    with db.session() as session:
        held = session.get(Campaign, campaign_id)
        assert held is not None and held.n_queued == 30
        assert held.held_reason and "daily limit" in held.held_reason
