"""The campaign engine end to end on the dry-run channel: launch, claim, send, settle."""

from __future__ import annotations

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
from wabulk.campaigns import lifecycle
from wabulk.channels.dry_run import log_path, read_log
from wabulk.errors import Conflict, ValidationError
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Message,
    MessageStatus,
    Template,
    utcnow,
)


def test_launch_inserts_each_reachable_contact_once(migrated_db) -> None:
    db = migrated_db
    first = make_contacts(db, phones(30), "Customers")
    second = make_contacts(db, phones(50)[20:], "Newsletter")  # 10 overlap with the first
    with db.session() as session:
        opted = session.scalars(select(Contact).order_by(Contact.id).limit(3)).all()
        for c in opted:
            c.opted_out_at = utcnow()
    sender = make_sender(db, max_delay_seconds=0)
    campaign_id = make_campaign(db, [first, second], [sender])
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign.status == CampaignStatus.RUNNING
        assert campaign.total == 50 - 3
        rows = session.scalars(select(Message).where(Message.campaign_id == campaign_id)).all()
        assert len({m.contact_id for m in rows}) == len(rows) == 47
        assert all(m.body is None and m.status == MessageStatus.QUEUED for m in rows)
    assert_counters_exact(db, campaign_id)


def test_launch_refuses_an_empty_audience_and_keeps_the_draft(migrated_db) -> None:
    db = migrated_db
    lst = make_contacts(db, [], "Empty")
    sender = make_sender(db)
    campaign_id = make_campaign(db, [lst], [sender], launch=False)
    with pytest.raises(ValidationError, match="Nobody to send to"), db.session() as session:
        lifecycle.launch(session, None, campaign_id)
    with db.session() as session:
        assert session.get(Campaign, campaign_id).status == CampaignStatus.DRAFT


def test_a_campaign_is_sent_once_to_everyone_with_their_own_text(migrated_db, tmp_path) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(120), "Customers", attributes={"city": "Pune"})
    sender = make_sender(db, "Rehearsal", max_delay_seconds=0)
    campaign_id = make_campaign(
        db, [lst], [sender], body="{Hi|Hello} {{ name }}, see you in {{ city }}!"
    )
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)

    delivered = read_log(log_path(tmp_path, "Rehearsal"))
    assert len(delivered) == 120
    assert len({d["message_id"] for d in delivered}) == 120
    with db.session() as session:
        texts = dict(session.execute(select(Message.id, Message.body)).all())
    for line in delivered:
        assert line["text"] == texts[line["message_id"]]
        assert line["text"].endswith(", see you in Pune!")
        assert line["text"].split()[0] in ("Hi", "Hello")
    assert {d["text"].split()[0] for d in delivered} == {"Hi", "Hello"}
    assert counters(db, campaign_id)["sent"] == 120
    with db.session() as session:
        assert lifecycle.complete_finished(session, utcnow()) == [campaign_id]
        assert session.get(Campaign, campaign_id).status == CampaignStatus.COMPLETED
    assert_counters_exact(db, campaign_id)


def test_template_edits_after_launch_do_not_change_the_campaign(migrated_db, tmp_path) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(3), "Customers")
    sender = make_sender(db, "Rehearsal", max_delay_seconds=0)
    with db.session() as session:
        template = Template(name="Greeting", body="Version one for {{ name }}")
        session.add(template)
        session.flush()
        template_id = template.id
    campaign_id = make_campaign(db, [lst], [sender], body="", template_id=template_id)
    with db.session() as session:
        session.get(Template, template_id).body = "Version two"
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    texts = [d["text"] for d in read_log(log_path(tmp_path, "Rehearsal"))]
    assert texts == [
        "Version one for Person 0",
        "Version one for Person 1",
        "Version one for Person 2",
    ]
    assert counters(db, campaign_id)["sent"] == 3


def test_a_contact_opted_out_after_launch_is_skipped(migrated_db, tmp_path) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(5), "Customers")
    sender = make_sender(db, "Rehearsal", max_delay_seconds=0)
    campaign_id = make_campaign(db, [lst], [sender])
    with db.session() as session:
        late = session.scalar(select(Contact).order_by(Contact.id.desc()).limit(1))
        late.opted_out_at = utcnow()
        late_phone = late.phone
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    sent_to = {d["phone"] for d in read_log(log_path(tmp_path, "Rehearsal"))}
    assert late_phone not in sent_to and len(sent_to) == 4
    with db.session() as session:
        skipped = session.scalar(select(Message).where(Message.phone == late_phone))
        assert skipped.status == MessageStatus.SKIPPED
        assert skipped.error_detail == "Opted out"
    assert_counters_exact(db, campaign_id)


def test_transitions_follow_the_table(migrated_db) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(4), "Customers")
    sender = make_sender(db)
    campaign_id = make_campaign(db, [lst], [sender], launch=False)
    with db.session() as session, pytest.raises(Conflict, match="draft; you cannot pause"):
        lifecycle.pause(session, None, campaign_id)
    with db.session() as session:
        lifecycle.launch(session, None, campaign_id)
    with db.session() as session, pytest.raises(Conflict, match="running; you cannot launch"):
        lifecycle.launch(session, None, campaign_id)
    with db.session() as session:
        lifecycle.pause(session, None, campaign_id)
    with db.session() as session:
        lifecycle.resume(session, None, campaign_id)
    with db.session() as session:
        lifecycle.cancel(session, None, campaign_id)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign.status == CampaignStatus.CANCELLED
        assert campaign.n_skipped == 4 and campaign.n_queued == 0
        with pytest.raises(Conflict, match="no failed or unknown"):
            lifecycle.retry_failed(session, None, campaign_id)
    assert_counters_exact(db, campaign_id)
    assert lifecycle.allowed_actions(CampaignStatus.PAUSED) == ["resume", "cancel"]
    assert lifecycle.allowed_actions(CampaignStatus.COMPLETED) == ["retry"]


def test_retry_failed_requeues_failed_and_unknown_and_duplicate_makes_a_draft(
    migrated_db, tmp_path
) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(6), "Customers")
    sender = make_sender(db, "Rehearsal", max_delay_seconds=0, settings={"failure_rate": 0.5})
    campaign_id = make_campaign(db, [lst], [sender], max_attempts=1)
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    failed = counters(db, campaign_id)["failed"]
    assert 0 < failed < 6
    with db.session() as session:
        one = session.scalar(select(Message).where(Message.status == MessageStatus.SENT).limit(1))
        session.execute(update(Message).where(Message.id == one.id).values(status="unknown"))
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(n_sent=Campaign.n_sent - 1, n_unknown=1)
        )
    with db.session() as session:
        lifecycle.complete_finished(session, utcnow())
    with db.session() as session:
        assert lifecycle.retry_failed(session, None, campaign_id) == failed + 1
    assert counters(db, campaign_id)["queued"] == failed + 1
    assert_counters_exact(db, campaign_id)
    with db.session() as session:
        copy = lifecycle.duplicate(session, None, campaign_id)
        assert copy.status == CampaignStatus.DRAFT and copy.total == 0
        assert [lst_.id for lst_ in copy.lists] == [lst]


def test_concurrent_lanes_never_claim_the_same_message(migrated_db, tmp_path) -> None:
    """Four senders in four threads drain one campaign: each message goes out exactly once
    (FOR UPDATE SKIP LOCKED on PostgreSQL, serialised writes on SQLite)."""
    import threading
    from collections import Counter

    from wabulk.dispatch.lane import Lane

    db = migrated_db
    lst = make_contacts(db, phones(400), "Customers")
    senders = [make_sender(db, f"S{i}", max_delay_seconds=0) for i in range(4)]
    campaign_id = make_campaign(db, [lst], senders)
    errors: list[BaseException] = []

    def run(sender_id: int) -> None:
        lane = Lane(db, sender_id, f"worker-{sender_id}", tmp_path, lease_seconds=60)
        lane.batch = 7  # small batches: many overlapping claims
        try:
            while lane.step() is not None:
                pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            lane.close()

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    ids = Counter()
    for i in range(4):
        ids.update(line["message_id"] for line in read_log(log_path(tmp_path, f"S{i}")))
    assert len(ids) == 400 and set(ids.values()) == {1}
    assert counters(db, campaign_id)["sent"] == 400
    assert_counters_exact(db, campaign_id)


def test_contact_page_shows_a_queued_message_before_its_text_exists(client, as_role, db) -> None:
    from wabulk.models import Role

    lst = make_contacts(db, phones(1), "Customers")
    sender = make_sender(db)
    make_campaign(db, [lst], [sender])
    with db.session() as session:
        contact_id = session.scalar(select(Contact.id))
    as_role(Role.VIEWER)
    page = client.get(f"/contacts/{contact_id}")
    assert page.status_code == 200
    assert "written when its turn comes" in page.get_data(as_text=True)


def test_a_start_time_in_the_past_is_refused_and_a_future_one_schedules(migrated_db) -> None:
    from datetime import timedelta

    db = migrated_db
    lst = make_contacts(db, phones(2), "Customers")
    sender = make_sender(db)
    with pytest.raises(ValidationError, match="already passed"):
        make_campaign(db, [lst], [sender], scheduled_at=utcnow() - timedelta(hours=1))
    later = utcnow() + timedelta(hours=2)
    campaign_id = make_campaign(db, [lst], [sender], scheduled_at=later)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign.status == CampaignStatus.SCHEDULED
        assert lifecycle.actions_for(campaign) == ["cancel"]
        assert lifecycle.start_due(session, utcnow()) == []
    with db.session() as session:
        assert lifecycle.start_due(session, later + timedelta(seconds=1)) == [campaign_id]
        assert session.get(Campaign, campaign_id).status == CampaignStatus.RUNNING
