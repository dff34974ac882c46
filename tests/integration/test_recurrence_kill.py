"""Crash safety of recurring campaigns: a real `wabulk worker` SIGKILLed while it starts runs.

Forty series fall due one after another over 40 seconds; the worker is killed again and
again while it starts their runs (at a random moment just after one more run appears), then
runs to the end. Afterwards each series has exactly one run (none lost, none doubled), with
its recipients once each, and its next run moved on."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from tests.support import WABULK, wabulk_env
from wabulk import migrate
from wabulk.campaigns import recurrence
from wabulk.campaigns.recurrence import RuleInput
from wabulk.db import Database
from wabulk.models import Campaign, Message, Recurrence, utcnow

SERIES = 40
RECIPIENTS = 3
SPREAD_SECONDS = 40.0  # longer than a few restarts of the worker take
STUCK_SECONDS = 120  # only a bound for a worker that never moves (a bug)


def _worker(instance: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [WABULK, "worker"],
        env=wabulk_env(instance, WABULK_LOG_LEVEL="WARNING"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _runs(db: Database) -> int:
    with db.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Campaign)
                .where(Campaign.recurrence_id.is_not(None))
            )
            or 0
        )


def _wait_for(what: str, proc: subprocess.Popen[bytes], condition) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + STUCK_SECONDS
    while not condition():
        assert proc.poll() is None, "the worker died on its own"
        assert time.monotonic() < deadline, f"the worker never got to: {what}"
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_while_starting_runs_loses_and_doubles_none(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    migrate.upgrade(db.engine)
    list_id = make_contacts(db, phones(RECIPIENTS), "Customers", timezone="Asia/Kolkata")
    sender_id = make_sender(db, "Rehearsal", max_delay_seconds=0)
    start = utcnow() + timedelta(seconds=5)  # about when the first worker is up
    expected: dict[int, object] = {}
    for i in range(SERIES):
        model_id = make_campaign(db, [list_id], [sender_id], launch=False, name=f"Series {i}")
        with db.session() as session:
            series = recurrence.create(session, None, model_id, RuleInput("daily", "10:00"))
            due = start + timedelta(seconds=i * SPREAD_SECONDS / SERIES)
            session.execute(
                update(Recurrence).where(Recurrence.id == series.id).values(next_run_at=due)
            )
            expected[series.id] = recurrence.next_occurrence(recurrence.rule_of(series), due)

    seen, kills = 0, 0
    while seen < SERIES and kills < 8:
        proc = _worker(instance)
        try:
            _wait_for("more runs", proc, lambda: _runs(db) > seen)  # noqa: B023
            time.sleep(random.uniform(0, 0.3))  # not a wait: the kill lands at varied points
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        seen = _runs(db)
        kills += seen < SERIES  # killed with runs still to start
    assert kills >= 3, "the kills came after every run had started"
    proc = _worker(instance)
    try:
        _wait_for("every run", proc, lambda: _runs(db) == SERIES)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)

    with db.session() as session:
        for series in session.scalars(select(Recurrence)):
            runs = session.scalars(
                select(Campaign).where(Campaign.recurrence_id == series.id)
            ).all()
            assert len(runs) == 1, series.name
            assert series.runs == 1 and series.next_run_at == expected[series.id]
            n = session.scalar(
                select(func.count(func.distinct(Message.contact_id))).where(
                    Message.campaign_id == runs[0].id
                )
            )
            assert runs[0].total == n == RECIPIENTS
