"""Follow-ups under a fake clock: each recipient gets a step after their own previous
message's wait, never before; a reply or an opt-out in between stops it (before it is
due, and between being due and being sent); "not read" leaves readers out; active hours
hold in the recipient's timezone; the step's funnel; the first campaign's pause and
cancel carry its steps. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

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
from wabulk import inbound
from wabulk.campaigns import followup_funnel, followups, lifecycle
from wabulk.campaigns.followups import StepInput
from wabulk.channels.heard import Heard, Reply
from wabulk.contacts import service as contacts_service
from wabulk.db import Database
from wabulk.errors import Conflict, ValidationError
from wabulk.models import Campaign, CampaignStatus, Contact, Message, MessageStatus, StepCondition

S = MessageStatus
HOUR = 60
START = datetime(2030, 3, 4, 6, 0, tzinfo=UTC)  # a Monday, 11:30 in Kolkata


def _first(
    db: Database,
    clock: FakeClock,
    n: int = 3,
    steps: list[StepInput] | None = None,
    timezone: str | None = None,
    **pacing: object,
) -> tuple[int, int, int]:
    """(first campaign, its first step's campaign, sender): launched at the clock's time."""
    lst = make_contacts(db, phones(n), "Customers", timezone=timezone)
    sender = make_sender(db, **({"min_delay_seconds": 60, "max_delay_seconds": 60} | pacing))
    first = make_campaign(db, [lst], [sender], launch=False)
    with db.session() as session:
        followups.set_steps(
            session,
            None,
            first,
            steps or [StepInput(delay_minutes=24 * HOUR, body="Still interested, {{ name }}?")],
        )
    with db.session() as session:
        lifecycle.launch(session, None, first, now=clock.now())
    with db.session() as session:
        run = followups.steps_of(session, first)[0].run_campaign_id
    assert run is not None
    return first, run, sender


def _mature(db: Database, at: datetime) -> int:
    with db.session() as session:
        return followups.mature(session, at)


def _rows(db: Database, campaign_id: int) -> list[Message]:
    with db.session() as session:
        rows = list(
            session.scalars(
                select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id)
            )
        )
        session.expunge_all()
        return rows


def _campaign(db: Database, campaign_id: int) -> Campaign:
    with db.session() as session:
        c = session.get(Campaign, campaign_id)
        assert c is not None
        session.expunge(c)
        return c


def _reply(db: Database, sender: int, contact_id: int, at: datetime, text: str = "Yes") -> None:
    with db.session() as session:
        phone = session.scalar(select(Contact.phone).where(Contact.id == contact_id))
        heard = Heard(replies=[Reply(at, f"wamid.{contact_id}.{at.timestamp()}", phone, text=text)])
        inbound.apply(session, sender, heard, at, keywords=("STOP",))


def _complete(db: Database, at: datetime) -> list[int]:
    with db.session() as session:
        return lifecycle.complete_finished(session, at)


def test_each_recipient_gets_the_step_after_their_own_wait_and_not_before(
    migrated_db: Database, tmp_path
) -> None:
    db = migrated_db
    clock = FakeClock(START)
    first, run, sender = _first(db, clock)
    lane = make_lane(db, sender, tmp_path, clock)
    drive([lane], clock, db)
    sent = {m.contact_id: m.sent_at for m in _rows(db, first)}
    assert len(sent) == 3 and len(set(sent.values())) == 3  # a minute apart
    t0 = min(sent.values())
    day = timedelta(hours=24)
    assert _complete(db, clock.now()) == [first]  # the first completes; its step waits

    assert _mature(db, t0 + day - timedelta(seconds=1)) == 0
    assert _complete(db, t0 + day) == []
    assert _mature(db, t0 + day) == 1  # only the first recipient's day is over
    assert _mature(db, t0 + day) == 0  # a second look adds nobody twice
    assert _mature(db, t0 + day + timedelta(seconds=60)) == 1
    assert _complete(db, t0 + day + timedelta(seconds=60)) == []  # one still to come
    assert _mature(db, max(sent.values()) + day) == 1
    step = _campaign(db, run)
    assert (step.total, step.n_queued, step.status) == (3, 3, CampaignStatus.RUNNING)

    clock.current = max(sent.values()) + day
    drive([lane], clock, db)
    lane.close()
    followed = {m.contact_id: m for m in _rows(db, run)}
    assert {m.status for m in followed.values()} == {S.SENT}
    for contact_id, m in followed.items():
        assert m.sent_at is not None and m.sent_at - sent[contact_id] >= day
        assert m.body is not None and m.body.startswith("Still interested, Person")
    assert_counters_exact(db, run)
    assert _complete(db, clock.now()) == [run]


def test_a_reply_stops_the_step_before_and_after_it_is_due(migrated_db: Database, tmp_path) -> None:
    db = migrated_db
    clock = FakeClock(START)
    first, run, sender = _first(db, clock, n=3)
    lane = make_lane(db, sender, tmp_path, clock)
    drive([lane], clock, db)
    a, b, c = (m.contact_id for m in _rows(db, first))
    _reply(db, sender, a, clock.now() + timedelta(hours=2))  # before the step is due
    due = clock.now() + timedelta(hours=25)
    assert _mature(db, due) == 2  # a is left out
    _reply(db, sender, b, due + timedelta(seconds=1))  # due, not yet sent
    clock.current = due + timedelta(seconds=2)
    drive([lane], clock, db)
    lane.close()
    rows = {m.contact_id: m for m in _rows(db, run)}
    assert set(rows) == {b, c}
    assert (rows[b].status, rows[b].error_code, rows[b].attempts) == (S.SKIPPED, "replied", 0)
    assert "replied" in (rows[b].error_detail or "")
    assert rows[c].status == S.SENT
    assert_counters_exact(db, run)
    with db.session() as session:
        funnel = followup_funnel.step_funnels(session, first, clock.now())[0]
    assert (funnel.recipients, funnel.sent, funnel.skipped, funnel.stopped_replied) == (2, 1, 1, 1)
    assert funnel.waiting == 0


@pytest.mark.parametrize("when", ["before_due", "due_not_sent"])
def test_an_opt_out_in_between_stops_the_step(migrated_db: Database, tmp_path, when: str) -> None:
    db = migrated_db
    clock = FakeClock(START)
    first, run, sender = _first(db, clock, n=2)
    lane = make_lane(db, sender, tmp_path, clock)
    drive([lane], clock, db)
    leaving, staying = (m.contact_id for m in _rows(db, first))
    due = clock.now() + timedelta(hours=25)

    def opt_out() -> None:
        with db.session() as session:
            contacts_service.opt_out(session, None, [leaving], "Asked by phone to stop")

    if when == "before_due":
        opt_out()
    _mature(db, due)
    if when == "due_not_sent":
        opt_out()
    clock.current = due
    drive([lane], clock, db)
    lane.close()
    rows = {m.contact_id: m for m in _rows(db, run)}
    assert rows[staying].status == S.SENT
    if when == "before_due":
        assert leaving not in rows
    else:
        assert (rows[leaving].status, rows[leaving].error_code) == (S.SKIPPED, "opted_out")
    assert_counters_exact(db, run)


def test_everyone_takes_repliers_and_not_read_leaves_out_readers_and_repliers(
    migrated_db: Database, tmp_path
) -> None:
    db = migrated_db
    clock = FakeClock(START)
    steps = [
        StepInput(delay_minutes=HOUR, condition=StepCondition.EVERYONE, body="Last day today"),
        StepInput(delay_minutes=HOUR, condition=StepCondition.NOT_READ, body="Did you see it?"),
    ]
    first, run, sender = _first(db, clock, n=3, steps=steps)
    with db.session() as session:
        last = followups.steps_of(session, first)[1].run_campaign_id
    assert last is not None
    lane = make_lane(db, sender, tmp_path, clock)
    drive([lane], clock, db)
    reader, replier, silent = (m.contact_id for m in _rows(db, first))
    _reply(db, sender, replier, clock.now())
    clock.advance(2 * 3600)
    assert _mature(db, clock.now()) == 3  # everyone, the one who replied included
    drive([lane], clock, db)
    with db.session() as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == run, Message.contact_id == reader)
            .values(status=S.READ, read_at=clock.now(), delivered_at=clock.now())
        )
    clock.advance(2 * 3600)
    _mature(db, clock.now())
    # Not read (the step before) and never replied (to any message of the sequence).
    assert [m.contact_id for m in _rows(db, last)] == [silent]
    drive([lane], clock, db)
    lane.close()
    assert [m.status for m in _rows(db, last)] == [S.SENT]
    assert_counters_exact(db, last)


def test_active_hours_hold_in_each_recipients_timezone(migrated_db: Database, tmp_path) -> None:
    db = migrated_db
    clock = FakeClock(START)  # 06:00 UTC: 11:30 in Kolkata, 01:00 in New York
    lst_us = make_contacts(db, phones(2, "+1212555"), "Customers", timezone="America/New_York")
    assert lst_us
    first, run, sender = _first(
        db,
        clock,
        n=2,
        timezone="Asia/Kolkata",
        steps=[StepInput(delay_minutes=HOUR, body="One hour later")],
        min_delay_seconds=0,
        max_delay_seconds=0,
        active_from="09:00",
        active_until="18:00",
    )
    lane = make_lane(db, sender, tmp_path, clock)
    drive([lane], clock, db)
    got = _rows(db, first)
    assert len(got) == 4  # the list holds the Indian and the American customers
    india = [m for m in got if m.phone.startswith("+91")]
    us = [m for m in got if m.phone.startswith("+1")]
    assert {m.sent_at for m in india} == {START}
    # 09:00 in New York on 4 March 2030 (EST) is 14:00 UTC.
    assert {m.sent_at for m in us} == {datetime(2030, 3, 4, 14, 0, tzinfo=UTC)}
    # At 15:00 UTC both are due: 10:00 in New York (sent now), 20:30 in Kolkata (held).
    clock.current = datetime(2030, 3, 4, 15, 0, tzinfo=UTC)
    _mature(db, clock.now())
    drive([lane], clock, db)
    lane.close()
    for m in _rows(db, run):
        assert m.sent_at is not None
        zone = "Asia/Kolkata" if m.phone.startswith("+91") else "America/New_York"
        from zoneinfo import ZoneInfo

        local = m.sent_at.astimezone(ZoneInfo(zone))
        assert 9 <= local.hour < 18, (m.phone, local)
    india_step = [m for m in _rows(db, run) if m.phone.startswith("+91")]
    # Due at 15:00 UTC = 20:30 in Kolkata: held until 09:00 there the next morning.
    assert {m.sent_at for m in india_step} == {datetime(2030, 3, 5, 3, 30, tzinfo=UTC)}
    assert_counters_exact(db, run)


def test_the_first_campaigns_pause_and_cancel_carry_its_steps(migrated_db: Database) -> None:
    db = migrated_db
    clock = FakeClock(START)
    first, run, _ = _first(db, clock, n=2)
    with db.session() as session:
        lifecycle.pause(session, None, first)
    assert _campaign(db, run).status == CampaignStatus.PAUSED
    with db.session() as session:
        lifecycle.resume(session, None, first)
    assert _campaign(db, run).status == CampaignStatus.RUNNING
    with db.session() as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == first)
            .values(status=S.SENT, sent_at=START, next_attempt_at=None)
        )
        session.execute(update(Campaign).where(Campaign.id == first).values(n_queued=0, n_sent=2))
    _mature(db, START + timedelta(days=2))
    assert _campaign(db, run).n_queued == 2
    with db.session() as session:
        lifecycle.cancel(session, None, first)
    step = _campaign(db, run)
    assert (step.status, step.n_queued, step.n_skipped) == (CampaignStatus.CANCELLED, 0, 2)
    assert _mature(db, START + timedelta(days=3)) == 0
    assert_counters_exact(db, run)


def test_steps_are_validated_and_only_a_draft_changes(migrated_db: Database) -> None:
    db = migrated_db
    lst = make_contacts(db, phones(1), "Customers")
    sender = make_sender(db)
    draft = make_campaign(db, [lst], [sender], launch=False)
    bad = [
        (StepInput(delay_minutes=0, body="x"), "steps.0.delay"),
        (StepInput(delay_minutes=60, body="  "), "steps.0.body"),
        (StepInput(delay_minutes=60, condition="maybe", body="x"), "steps.0.condition"),
        (StepInput(delay_minutes=60, template_id=999_999), "steps.0.template_id"),
        (StepInput(delay_minutes=60, body="Hi {{ nmae }}"), "steps.0.body"),
        (StepInput(delay_minutes=60, body="x" * 5000), "steps.0.body"),
    ]
    for step, field in bad:
        with db.session() as session, pytest.raises(ValidationError) as caught:
            followups.set_steps(session, None, draft, [step])
        assert caught.value.field == field and str(caught.value).startswith("Follow-up 1:")
    with db.session() as session, pytest.raises(ValidationError, match="at most 5"):
        followups.set_steps(session, None, draft, [StepInput(60, body="x")] * 6)
    with db.session() as session:
        followups.set_steps(
            session, None, draft, [StepInput(60, body="a"), StepInput(120, body="b")]
        )
    with db.session() as session:
        followups.set_steps(session, None, draft, [StepInput(180, body="c")])
    with db.session() as session:
        kept = followups.steps_of(session, draft)
        assert [(s.position, s.delay_minutes, s.body) for s in kept] == [(1, 180, "c")]
    with db.session() as session:
        lifecycle.launch(session, None, draft)
    with db.session() as session, pytest.raises(Conflict, match="before launch"):
        followups.set_steps(session, None, draft, [])
    with db.session() as session:
        runs = session.scalars(select(Campaign).where(Campaign.parent_campaign_id == draft)).all()
        assert [r.name for r in runs] == ["Spring sale · follow-up 1"]
        assert runs[0].body == "c" and runs[0].status == CampaignStatus.RUNNING
    with db.session() as session:
        copy = lifecycle.duplicate(session, None, draft)
        copied = followups.steps_of(session, copy.id)
        assert [(s.position, s.delay_minutes, s.body, s.run_campaign_id) for s in copied] == [
            (1, 180, "c", None)
        ]


def test_a_segments_follow_up_goes_only_to_those_who_still_match_it(
    migrated_db: Database, tmp_path
) -> None:
    from wabulk.segments import service as segments

    db = migrated_db
    clock = FakeClock(START)
    lst = make_contacts(db, phones(3), "Customers", attributes={"city": "Pune"})
    sender = make_sender(db, max_delay_seconds=0)
    first = make_campaign(db, [lst], [sender], launch=False)
    with db.session() as session:
        terms = {
            "match": "all",
            "conditions": [{"field": "attribute", "key": "city", "op": "eq", "value": "Pune"}],
        }
        segment = segments.create(session, None, "Pune", None, terms)
        session.execute(update(Campaign).where(Campaign.id == first).values(segment_id=segment.id))
        followups.set_steps(session, None, first, [StepInput(HOUR, body="Still in Pune?")])
    with db.session() as session:
        lifecycle.launch(session, None, first, now=clock.now())
        run = followups.steps_of(session, first)[0].run_campaign_id
    lane = make_lane(db, sender, tmp_path, clock)
    drive([lane], clock, db)
    moved = _rows(db, first)[0].contact_id
    with db.session() as session:
        contact = session.get(Contact, moved)
        assert contact is not None
        contact.attributes = {"city": "Mumbai"}
    assert _mature(db, clock.now() + timedelta(hours=2)) == 2
    assert moved not in {m.contact_id for m in _rows(db, run)}
    lane.close()


def test_a_reply_while_a_claimed_follow_up_waits_for_its_slot_stops_it(
    migrated_db: Database, tmp_path
) -> None:
    from tests.integration.test_inbox_answers import _step_until

    db = migrated_db
    clock = FakeClock(START)
    _, run, sender = _first(db, clock, n=2)
    lane = make_lane(db, sender, tmp_path, clock)
    drive([lane], clock, db)
    clock.advance(25 * 3600)
    assert _mature(db, clock.now()) == 2

    def in_hand() -> list[Message]:
        return [m for m in _rows(db, run) if m.status == S.SENDING]

    try:
        # The first follow-up goes; the second is claimed for the slot a minute later…
        _step_until(lane, clock, lambda: any(m.status == S.SENT for m in _rows(db, run)))
        _step_until(lane, clock, lambda: bool(in_hand()))
        waiting = in_hand()[0]
        _reply(db, sender, waiting.contact_id, clock.now())  # …when they reply.
        _step_until(lane, clock, lambda: not in_hand())
    finally:
        lane.close()
    row = next(m for m in _rows(db, run) if m.id == waiting.id)
    assert (row.status, row.error_code, row.attempts, row.sent_at) == (
        S.SKIPPED,
        "replied",
        0,
        None,
    )
    assert_counters_exact(db, run)
