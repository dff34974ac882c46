"""`message_stats` stays equal to a rebuild from the messages table, whatever happens.

Random sequences of what the engine and people do to campaigns (claims, every kind of
settle, settles from a worker that lost its lease, recovery, cancel, completion, retry of
the failed) run against the real database, and after each step the incrementally kept rows
must equal `rebuild()`'s.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.campaigns_support import (
    FakeClock,
    drive,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from tests.inbound_support import stats_rebuilt, stats_snapshot
from wabulk import inbound
from wabulk.analytics import stats
from wabulk.campaigns import lifecycle
from wabulk.channels.base import OutgoingMessage, Reconciled
from wabulk.channels.heard import Heard, HeardError, Reply, StatusUpdate
from wabulk.db import Database
from wabulk.dispatch import queue, recovery
from wabulk.errors import Conflict
from wabulk.models import Campaign, CampaignStatus, Contact, Message, MessageStat, utcnow
from wabulk.senders.pace import Pace

LEASE = timedelta(minutes=5)
CODES = ("not_on_whatsapp", "send_failed", "dry_run_failure")


class RandomAnswers:
    """A channel that only reconciles, answering at random (any answer is possible)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def reconcile(self, message: OutgoingMessage) -> Reconciled:
        return self.rng.choice(("sent", "not_sent", "unknown"))


def test_slot_of_floors_to_the_quarter_hour_in_utc() -> None:
    kolkata = datetime(2026, 3, 1, 5, 44, 59, 999_999, tzinfo=UTC).astimezone()
    assert stats.slot_of(kolkata) == datetime(2026, 3, 1, 5, 30, tzinfo=UTC)
    assert stats.slot_of(datetime(2026, 3, 1, 5, 45, tzinfo=UTC)) == datetime(
        2026, 3, 1, 5, 45, tzinfo=UTC
    )
    assert stats.slot_of(datetime(2026, 3, 1, 23, 59, 59)).tzinfo == UTC


@pytest.mark.parametrize("seed", [1, 2])
def test_random_campaign_operations_keep_stats_equal_to_a_rebuild(migrated_db, seed) -> None:
    db = migrated_db
    rng = random.Random(seed)
    list_id = make_contacts(db, phones(24), "Customers")
    senders = [make_sender(db, "Lane A"), make_sender(db, "Lane B")]
    campaigns = [
        make_campaign(db, [list_id], senders, name=f"Campaign {i}", body="Hi {{ name }}")
        for i in range(2)
    ]
    clock = FakeClock(utcnow() + timedelta(seconds=1))
    # Claimed and not yet settled, by (owner, sender): "dead" ones are left for recovery.
    held: dict[tuple[str, int], list[queue.Claimed]] = {}
    done_ops: Counter = Counter()

    def claim() -> None:
        owner = rng.choice(("lane:1", "lane:2", "dead:1"))
        sender_id = rng.choice(senders)
        # Now and then a body that cannot be written: the claim fails those messages.
        body = "Hi {{ name " if rng.random() < 0.1 else "Hi {{ name }}"
        with db.session() as session:
            got = queue.claim(
                session,
                campaign_id=rng.choice(campaigns),
                body=body,
                sender_id=sender_id,
                owner=owner,
                limit=rng.randint(1, 6),
                now=clock.now(),
                lease_until=clock.now() + LEASE,
                pace=Pace(),
            )
        held.setdefault((owner, sender_id), []).extend(got)
        done_ops["claim"] += bool(got)

    def settle() -> None:
        live = [k for k, v in held.items() if v and not k[0].startswith("dead")]
        if not live:
            return
        owner, sender_id = rng.choice(live)
        batch = held[(owner, sender_id)]
        take = batch[: rng.randint(1, len(batch))]
        outcomes = []
        for c in take:
            kind = rng.choice(("sent", "sent", "failed", "failed", "retry", "requeue", "unknown"))
            outcomes.append(
                queue.Outcome(
                    c.id,
                    c.campaign_id,
                    kind,
                    provider_message_id=f"p-{c.id}" if kind == "sent" else None,
                    error_code=rng.choice(CODES) if kind != "sent" else None,
                    error_detail="it went wrong" if kind != "sent" else None,
                    next_attempt_at=clock.now() if kind == "retry" else None,
                )
            )
        with db.session() as session:
            queue.settle(session, owner, outcomes, clock.now(), sender_id=sender_id)
        # A stale lane settles messages recovery already moved on: nothing may count.
        if rng.random() < 0.5:
            del batch[: len(take)]
        done_ops["settle"] += 1

    def recover() -> None:
        clock.advance(LEASE.total_seconds() + 1)
        for _ in ("take", "ask"):  # recovery's two rounds, the hold apart
            with db.session() as session:
                for sender_id in senders:
                    n = recovery.reconcile_sender(
                        session,
                        sender_id,
                        RandomAnswers(rng),
                        "recovery:1",
                        clock.now(),
                        hold=timedelta(0),
                    )
                    done_ops["recovered"] += n
            clock.advance(1)
        for key in [k for k in held if k[0].startswith("dead")]:
            held.pop(key)

    def finish_or_cancel() -> None:
        campaign_id = rng.choice(campaigns)
        with db.session() as session:
            lifecycle.complete_finished(session, clock.now())
            status = session.get(Campaign, campaign_id).status
            if status in (CampaignStatus.RUNNING, CampaignStatus.PAUSED) and rng.random() < 0.3:
                lifecycle.cancel(session, None, campaign_id)
                done_ops["cancel"] += 1

    def retry() -> None:
        try:
            with db.session() as session:
                lifecycle.retry_failed(session, None, rng.choice(campaigns))
        except Conflict:
            return
        done_ops["retry"] += 1

    heard_ids = iter(range(1, 10**6))

    def hear() -> None:
        # What the channels hear back (webhook statuses, replies), at random, out of order,
        # repeated, about messages in any state: `inbound` keeps the stats exact.
        with db.session() as session:
            known = session.execute(
                select(Message.id, Message.sender_id, Contact.phone)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Message.sender_id.is_not(None))
            ).all()
        if not known:
            return
        heard: dict[int, Heard] = {}
        for mid, sender_id, phone in rng.sample(known, min(len(known), rng.randint(1, 8))):
            h = heard.setdefault(sender_id, Heard())
            state = rng.choice(("sent", "delivered", "read", "read", "failed"))
            at = clock.now() - timedelta(seconds=rng.choice((0, 40, 950, 4000)))
            h.statuses.append(
                StatusUpdate(
                    status=state,
                    at=at,
                    message_id=mid,
                    billed_category=rng.choice((None, "marketing", "utility"))
                    if state != "failed"
                    else None,
                    errors=(HeardError(code=rng.choice(CODES)),) if state == "failed" else (),
                )
            )
            if rng.random() < 0.3:
                h.replies.append(Reply(at, f"r{next(heard_ids)}", phone, text="thanks"))
        with db.session() as session:
            for sender_id, h in heard.items():
                inbound.apply(session, sender_id, h, clock.now(), keywords=("STOP",))
        done_ops["heard"] += 1

    ops = [claim] * 5 + [settle] * 5 + [recover, finish_or_cancel, retry, hear, hear]
    kinds_seen: set[str] = set()
    for step in range(160):
        # Minutes to hours apart: slots, hours and days are crossed, at odd seconds.
        clock.advance(rng.choice((0.5, 37.3, 301.7, 911.1, 3 * 3600 + 0.25)))
        rng.choice(ops)()
        incremental = stats_snapshot(db)
        assert incremental == stats_rebuilt(db), f"seed {seed}, step {step}"
        kinds_seen |= {key[3] for key in incremental}

    assert done_ops["claim"] and done_ops["settle"] and done_ops["retry"], done_ops
    assert done_ops["heard"], done_ops
    assert done_ops["recovered"], done_ops
    assert kinds_seen == set(stats.KINDS)
    # A rebuild of one campaign leaves the other's rows alone.
    with db.session() as session:
        stats.rebuild(session, [campaigns[0]])
    assert stats_snapshot(db) == stats_rebuilt(db)


def test_a_dispatched_campaign_counts_sends_and_failures_per_sender(migrated_db, tmp_path) -> None:
    db = migrated_db
    list_id = make_contacts(db, phones(40), "Everyone")
    # Paced, so both lanes take turns instead of one claiming everything in a batch.
    pace = {"min_delay_seconds": 60, "max_delay_seconds": 120}
    senders = [
        make_sender(db, "Flaky", settings={"failure_rate": 0.3, "transient_rate": 0.2}, **pace),
        make_sender(db, "Steady", **pace),
    ]
    campaign_id = make_campaign(db, [list_id], senders, max_attempts=2)
    clock = FakeClock()
    lanes = [make_lane(db, s, tmp_path, clock, owner=f"test:{s}") for s in senders]
    drive(lanes, clock, db)
    for lane in lanes:
        lane.close()

    incremental = stats_snapshot(db)
    assert incremental == stats_rebuilt(db)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        failed_codes = Counter(
            session.scalars(select(Message.error_code).where(Message.status == "failed")).all()
        )
    by_kind: Counter = Counter()
    by_code: Counter = Counter()
    senders_seen = set()
    for (_slot, _campaign, sender_id, kind, code), n in incremental.items():
        by_kind[kind] += n
        senders_seen.add(sender_id)
        if kind == "failed":
            by_code[code] += n
    assert by_kind["sent"] == campaign.n_sent > 0
    assert by_kind["failed"] == campaign.n_failed > 0
    assert by_code == failed_codes
    assert senders_seen == set(senders)


def test_the_cli_rebuilds_the_figures(tmp_path) -> None:
    from tests.support import run_wabulk

    instance = tmp_path / "instance"
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        list_id = make_contacts(db, phones(3), "Few")
        sender = make_sender(db)
        campaign_id = make_campaign(db, [list_id], [sender])
        clock = FakeClock()
        lane = make_lane(db, sender, tmp_path, clock)
        drive([lane], clock, db)
        lane.close()
        expected = stats_snapshot(db)
        with db.session() as session:
            session.execute(MessageStat.__table__.delete())
        assert stats_snapshot(db) == Counter()
        done = run_wabulk(instance, "analytics", "rebuild", "--campaign", str(campaign_id))
        assert done.returncode == 0, done.stderr
        assert f"campaign(s) {campaign_id}: {len(expected)} row(s)" in done.stdout
        assert stats_snapshot(db) == expected and sum(expected.values()) == 3
    finally:
        db.dispose()
