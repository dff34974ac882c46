"""Recurring campaigns against the real databases: runs at their time, each a campaign of its
own, in each customer's local time, waiting for the previous run, ending, never doubled."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.auth import service as users
from wabulk.campaigns import followups, lifecycle, recurrence
from wabulk.campaigns.recurrence import RuleInput
from wabulk.db import Database
from wabulk.dispatch.worker import Dispatcher
from wabulk.errors import Conflict, ValidationError
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Event,
    Message,
    MessageStatus,
    Recurrence,
    RecurrenceState,
    Role,
    SenderState,
    utcnow,
)
from wabulk.segments import service as segments

from ..conftest import PASSWORD

# Sunday 6 December 2026, 08:00 UTC.
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def _draft(db: Database, n: int = 3, timezone: str | None = "Asia/Kolkata", **extra) -> int:  # type: ignore[no-untyped-def]
    list_id = make_contacts(db, phones(n), "Regulars", timezone=timezone)
    return make_campaign(db, [list_id], [make_sender(db)], launch=False, name="Offers", **extra)


def _series(db: Database, campaign_id: int, now: datetime = NOW, **rule) -> int:  # type: ignore[no-untyped-def]
    rule.setdefault("frequency", "weekly")
    rule.setdefault("weekdays", [0])
    rule.setdefault("timezone", "UTC")
    with db.session() as session:
        return recurrence.create(session, None, campaign_id, RuleInput(**rule), now=now).id


def _run_due(db: Database, now: datetime) -> list[int]:
    with db.session() as session:
        return recurrence.run_due(session, now)


def _finish(db: Database, campaign_id: int, now: datetime) -> None:
    """Everything of a run sent, and the run completed as the dispatcher would."""
    with db.session() as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == campaign_id)
            .values(status=MessageStatus.SENT, sent_at=now)
        )
        run = session.get(Campaign, campaign_id)
        assert run is not None
        run.n_sent, run.n_queued = run.total, 0
        session.flush()
        lifecycle.complete_finished(session, now)


def _series_row(db: Database, series_id: int) -> Recurrence:
    with db.session() as session:
        found = session.get(Recurrence, series_id)
        assert found is not None
        return found


def _texts(db: Database, campaign_id: int) -> list[str]:
    with db.session() as session:
        return list(
            session.scalars(
                select(Event.text).where(Event.campaign_id == campaign_id).order_by(Event.id)
            )
        )


def test_each_run_is_its_own_campaign_with_its_own_recipients_at_its_time(migrated_db) -> None:
    db = migrated_db
    model_id = _draft(db)
    series_id = _series(db, model_id, time_of_day="10:00")
    monday = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert _series_row(db, series_id).next_run_at == monday

    assert _run_due(db, monday - timedelta(seconds=1)) == []
    [first] = _run_due(db, monday)
    assert _run_due(db, monday + timedelta(seconds=5)) == []  # a repeated call: no second run
    _finish(db, first, monday + timedelta(hours=1))
    [second] = _run_due(db, monday + timedelta(days=7))

    with db.session() as session:
        runs = session.scalars(select(Campaign).where(Campaign.recurrence_id == series_id)).all()
        assert sorted(r.id for r in runs) == sorted([first, second])
        names = {r.id: r.name for r in runs}
        assert names[first] == "Offers · 7 Dec 2026"
        assert names[second] == "Offers · 14 Dec 2026"
        for run in runs:
            n = session.scalar(
                select(func.count()).select_from(Message).where(Message.campaign_id == run.id)
            )
            assert run.total == n == 3
        model = session.get(Campaign, model_id)
        assert model is not None and model.status == CampaignStatus.DRAFT
        series = session.get(Recurrence, series_id)
        assert series is not None and series.runs == 2
        assert series.next_run_at == monday + timedelta(days=14)
    assert "The recurring campaign 'Offers' launched" in " ".join(_texts(db, second))


def test_in_customers_local_time_each_zone_gets_its_own_ten_oclock(migrated_db) -> None:
    db = migrated_db
    make_contacts(db, phones(2, "+9198111"), "Mixed", timezone="Asia/Kolkata")
    make_contacts(db, phones(2, "+1212555"), "Mixed", timezone="America/New_York")
    list_id = make_contacts(db, ["+441632960001"], "Mixed", timezone=None)
    with db.session() as session:
        owner = users.create_user(session, None, "owner@example.com", PASSWORD, Role.OPERATOR)
        owner.timezone = "Europe/Berlin"
    with db.session() as session:
        owner = session.scalar(select(type(owner)).where(type(owner).email == "owner@example.com"))
        model_id = make_campaign(db, [list_id], [make_sender(db)], launch=False, name="Monthly")
        series = recurrence.create(
            session,
            owner,
            model_id,
            RuleInput("monthly", "10:00", day_of_month=1, timezone=None),
            now=NOW,
        )
        series_id = series.id
    occurrence = _series_row(db, series_id).next_run_at
    assert occurrence == datetime(2026, 12, 31, 20, 0, tzinfo=UTC)  # 1 January at UTC+14

    [run_id] = _run_due(db, occurrence)
    with db.session() as session:
        run = session.get(Campaign, run_id)
        assert run is not None
        assert run.name == "Monthly · 1 Jan 2027"
        assert run.status == CampaignStatus.SCHEDULED
        assert run.scheduled_at == datetime(2027, 1, 1, 4, 30, tzinfo=UTC)
        due = dict(
            session.execute(
                select(Contact.timezone, Message.next_attempt_at)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Message.campaign_id == run_id)
            ).all()
        )
    assert due == {
        "Asia/Kolkata": datetime(2027, 1, 1, 4, 30, tzinfo=UTC),
        "America/New_York": datetime(2027, 1, 1, 15, 0, tzinfo=UTC),
        None: datetime(2027, 1, 1, 9, 0, tzinfo=UTC),  # the owner's 10:00 in Berlin
    }
    assert "The recurring campaign 'Monthly' launched" in " ".join(_texts(db, run_id))


def test_a_late_run_never_gives_a_zone_a_time_already_past(migrated_db) -> None:
    db = migrated_db
    model_id = _draft(db, 2, timezone="Asia/Kolkata")
    series_id = _series(db, model_id, frequency="monthly", day_of_month=1, timezone=None)
    late = datetime(2027, 1, 1, 6, 0, tzinfo=UTC)  # Kolkata's 10:00 passed 90 minutes ago
    [run_id] = _run_due(db, late)
    with db.session() as session:
        run = session.get(Campaign, run_id)
        assert run is not None and run.status == CampaignStatus.RUNNING
        dues = set(
            session.scalars(select(Message.next_attempt_at).where(Message.campaign_id == run_id))
        )
    assert dues == {late}
    assert _series_row(db, series_id).runs == 1


def test_a_run_waits_for_the_previous_one_and_is_skipped_when_the_next_comes(migrated_db) -> None:
    db = migrated_db
    model_id = _draft(db)
    series_id = _series(db, model_id, frequency="daily", time_of_day="10:00")
    day1 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    [first] = _run_due(db, day1)
    day2 = day1 + timedelta(days=1)
    assert _run_due(db, day2) == []
    assert _run_due(db, day2 + timedelta(minutes=1)) == []
    waiting = "The 7 December 2026 run waits: the previous run is still sending."
    assert _series_row(db, series_id).state_reason == waiting
    assert _texts(db, model_id).count(waiting) == 1  # said once, not every second

    assert _run_due(db, day2 + timedelta(days=1)) == []  # the 8th came: the 7th is skipped
    texts = _texts(db, model_id)
    assert any(t.startswith("The 7 December 2026 run was skipped") for t in texts)
    assert _series_row(db, series_id).next_run_at == day2 + timedelta(days=1)

    _finish(db, first, day2 + timedelta(days=1, hours=2))
    [third] = _run_due(db, day2 + timedelta(days=1, hours=2))
    with db.session() as session:
        run = session.get(Campaign, third)
        assert run is not None and run.name == "Offers · 8 Dec 2026"
    assert _series_row(db, series_id).state_reason is None


def test_the_end_date_stops_the_series_after_its_last_run(migrated_db) -> None:
    db = migrated_db
    model_id = _draft(db)
    series_id = _series(db, model_id, frequency="daily", ends_on=date(2026, 12, 7))
    [first] = _run_due(db, datetime(2026, 12, 6, 10, tzinfo=UTC))
    _finish(db, first, datetime(2026, 12, 6, 11, tzinfo=UTC))
    assert _run_due(db, datetime(2026, 12, 7, 10, tzinfo=UTC))
    series = _series_row(db, series_id)
    assert series.state == RecurrenceState.STOPPED
    assert series.next_run_at is None
    assert series.state_reason == "Ended: its end date (7 December 2026) has passed."
    assert _run_due(db, datetime(2026, 12, 9, 10, tzinfo=UTC)) == []


def test_pause_resume_and_stop(migrated_db) -> None:
    db = migrated_db
    model_id = _draft(db)
    series_id = _series(db, model_id, frequency="daily")
    with db.session() as session:
        recurrence.pause(session, None, series_id)
    assert _run_due(db, datetime(2026, 12, 8, 10, tzinfo=UTC)) == []
    with db.session() as session:
        with pytest.raises(Conflict):
            recurrence.pause(session, None, series_id)
        # Runs missed while paused are not sent late: the next one after now.
        resumed = recurrence.resume(
            session, None, series_id, now=datetime(2026, 12, 8, 11, tzinfo=UTC)
        )
        assert resumed.next_run_at == datetime(2026, 12, 9, 10, tzinfo=UTC)
    with db.session() as session:
        recurrence.stop(session, None, series_id)
    assert _run_due(db, datetime(2026, 12, 10, 10, tzinfo=UTC)) == []
    with db.session() as session:
        with pytest.raises(Conflict):
            recurrence.resume(session, None, series_id)
        assert (
            session.scalar(
                select(func.count())
                .select_from(Campaign)
                .where(Campaign.recurrence_id == series_id)
            )
            == 0
        )


def test_a_killed_worker_neither_skips_nor_doubles_a_run(migrated_db) -> None:
    db = migrated_db
    model_id = _draft(db)
    series_id = _series(db, model_id, frequency="daily")
    at = datetime(2026, 12, 6, 10, tzinfo=UTC)
    with db.sessionmaker() as session:
        assert recurrence.run_due(session, at)
        session.rollback()  # killed before its commit
    [run_id] = _run_due(db, at + timedelta(seconds=30))
    assert _run_due(db, at + timedelta(seconds=31)) == []
    with db.session() as session:
        ids = session.scalars(select(Campaign.id).where(Campaign.recurrence_id == series_id)).all()
        assert ids == [run_id]
        series = session.get(Recurrence, series_id)
        assert series is not None
        # A worker that read the occurrence before the other moved it claims nothing.
        assert not recurrence._claim(session, series, at, at + timedelta(days=1))


@pytest.mark.postgres
def test_two_workers_at_once_make_one_run(migrated_db) -> None:
    db = migrated_db
    if db.is_sqlite:
        pytest.skip("PostgreSQL's row locks; SQLite has one writer at a time")
    model_id = _draft(db)
    series_id = _series(db, model_id, frequency="daily")
    at = datetime(2026, 12, 6, 10, tzinfo=UTC)
    with db.sessionmaker() as first, db.sessionmaker() as second:
        assert len(recurrence.run_due(first, at)) == 1
        assert recurrence.run_due(second, at) == []  # locked by the first: skipped at once
        first.commit()
        assert recurrence.run_due(second, at) == []
        second.commit()
    with db.session() as session:
        n = session.scalar(
            select(func.count()).select_from(Campaign).where(Campaign.recurrence_id == series_id)
        )
    assert n == 1


def test_the_model_is_the_series_own(migrated_db) -> None:
    db = migrated_db
    model_id = _draft(db)
    _series(db, model_id)
    owned = "model of the recurring campaign"
    with db.session() as session, pytest.raises(Conflict, match=owned):
        lifecycle.launch(session, None, model_id)
    with db.session() as session, pytest.raises(Conflict, match=owned):
        lifecycle.delete_draft(session, None, model_id)
    with db.session() as session:
        model = session.get(Campaign, model_id)
        assert model is not None
        assert "launch" not in lifecycle.actions_for(model)
        with pytest.raises(Conflict, match="already repeats"):
            recurrence.create(session, None, model_id, RuleInput("daily"), now=NOW)


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"frequency": "hourly"}, "frequency"),
        ({"frequency": "weekly", "weekdays": []}, "weekdays"),
        ({"frequency": "weekly", "weekdays": [7]}, "weekdays"),
        ({"frequency": "monthly", "day_of_month": 32}, "day_of_month"),
        ({"frequency": "daily", "time_of_day": "25:00"}, "time_of_day"),
        ({"frequency": "daily", "timezone": "Mars/Olympus"}, "timezone"),
        ({"frequency": "daily", "starts_on": date(2026, 12, 1)}, "starts_on"),
        (
            {"frequency": "daily", "starts_on": date(2026, 12, 9), "ends_on": date(2026, 12, 8)},
            "ends_on",
        ),
        ({"frequency": "daily", "name": "x" * 201}, "name"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_field(migrated_db, rule, field) -> None:  # type: ignore[no-untyped-def]
    db = migrated_db
    model_id = _draft(db)
    with db.session() as session, pytest.raises(ValidationError) as refused:
        recurrence.create(session, None, model_id, RuleInput(**rule), now=NOW)
    assert refused.value.field == field


def test_a_run_that_cannot_start_is_skipped_saying_why(migrated_db) -> None:
    db = migrated_db
    model_id = _draft(db)
    series_id = _series(db, model_id, frequency="daily")
    with db.session() as session:
        model = session.get(Campaign, model_id)
        assert model is not None
        for sender in model.senders:
            sender.state = SenderState.DISABLED
    assert _run_due(db, datetime(2026, 12, 6, 10, tzinfo=UTC)) == []
    series = _series_row(db, series_id)
    assert series.state_reason is not None
    assert series.state_reason.startswith("The 6 December 2026 run could not start: None of")
    assert series.next_run_at == datetime(2026, 12, 7, 10, tzinfo=UTC)
    assert series.runs == 0
    with db.session() as session:
        n = session.scalar(
            select(func.count()).select_from(Campaign).where(Campaign.recurrence_id == series_id)
        )
    assert n == 0


def test_the_worker_step_starts_a_due_run(migrated_db, settings) -> None:
    db = migrated_db
    model_id = _draft(db)
    series_id = _series(db, model_id, now=utcnow(), frequency="daily")
    with db.session() as session:
        session.execute(
            update(Recurrence)
            .where(Recurrence.id == series_id)
            .values(next_run_at=utcnow() - timedelta(minutes=1))
        )
    dispatcher = Dispatcher(db, settings)
    try:
        dispatcher.campaign_step()
    finally:
        dispatcher.stop()
    with db.session() as session:
        runs = session.scalars(select(Campaign).where(Campaign.recurrence_id == series_id)).all()
        assert len(runs) == 1 and runs[0].total == 3


def test_a_run_to_a_segment_reaches_who_matches_on_its_day(migrated_db) -> None:
    db = migrated_db
    make_contacts(db, phones(2, "+9198222"), "Everyone", timezone="Asia/Kolkata")
    make_contacts(db, phones(1, "+1212777"), "Everyone", timezone="America/New_York")
    sender_id = make_sender(db)
    with db.session() as session:
        segment = segments.create(
            session,
            None,
            "In India",
            None,
            {
                "match": "all",
                "conditions": [{"field": "timezone", "op": "in", "value": ["Asia/Kolkata"]}],
            },
        )
        segment_id = segment.id
    model_id = make_campaign(
        db, [], [sender_id], launch=False, name="Weekly", segment_id=segment_id
    )
    series_id = _series(db, model_id, frequency="weekly", weekdays=[0], timezone=None)
    occurrence = _series_row(db, series_id).next_run_at
    assert occurrence is not None
    [first] = _run_due(db, occurrence)
    make_contacts(db, phones(1, "+9198333"), "Everyone", timezone="Asia/Kolkata")
    _finish(db, first, occurrence + timedelta(days=1))
    [second] = _run_due(db, occurrence + timedelta(days=7))
    with db.session() as session:
        totals = [session.get(Campaign, i).total for i in (first, second)]  # type: ignore[union-attr]
        dues = set(
            session.scalars(select(Message.next_attempt_at).where(Message.campaign_id == second))
        )
    assert totals == [2, 3]  # the segment as it is on each run's day
    assert dues == {datetime(2026, 12, 14, 4, 30, tzinfo=UTC)}  # Monday 10:00 in Kolkata


def test_each_run_has_the_model_s_follow_ups_and_the_next_waits_for_them(migrated_db) -> None:
    db = migrated_db
    model_id = _draft(db)
    with db.session() as session:
        followups.set_steps(
            session, None, model_id, [followups.StepInput(2 * 24 * 60, body="Still interested?")]
        )
    series_id = _series(db, model_id, frequency="daily")
    day1 = datetime(2026, 12, 6, 10, tzinfo=UTC)
    [first] = _run_due(db, day1)
    with db.session() as session:
        step_run = session.scalar(select(Campaign).where(Campaign.parent_campaign_id == first))
        assert step_run is not None and step_run.name == "Offers · 6 Dec 2026 · follow-up 1"
        assert len(followups.steps_of(session, model_id)) == 1  # the model keeps its own
        step_id = step_run.id
    _finish(db, first, day1 + timedelta(hours=1))
    with db.session() as session:  # the follow-up has customers on their way
        session.execute(update(Campaign).where(Campaign.id == step_id).values(n_queued=2))
    assert _run_due(db, day1 + timedelta(days=1)) == []
    assert "waits" in (_series_row(db, series_id).state_reason or "")
