"""Crash safety of follow-ups: a real `wabulk worker` SIGKILLed while it adds recipients to
a step and sends it, six times.

The first campaign "went out" a day ago, its recipients' messages a few milliseconds apart,
so they become due for the follow-up one after another while the worker runs and is
killed. Afterwards every eligible recipient (not opted out, never replied) has exactly one
follow-up message, sent once by the dry-run channel (or `unknown`), and nobody else has
one; the step's counters match its rows.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.campaigns_support import assert_counters_exact, make_contacts, make_sender, phones
from tests.support import WABULK, wabulk_env
from wabulk import migrate
from wabulk.campaigns import followups, lifecycle
from wabulk.campaigns.followups import StepInput
from wabulk.campaigns.service import DraftInput, save_draft
from wabulk.channels.dry_run import log_path, read_log
from wabulk.db import Database
from wabulk.models import Campaign, CampaignStatus, Contact, Message, MessageStatus, utcnow

RECIPIENTS = 1000
LEASE_SECONDS = "2"
SPREAD_SECONDS = 8.0  # the first messages' due times for the step spread over this long
STUCK_SECONDS = 300  # only a bound for a worker that never moves (a bug)


def _worker(instance: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [WABULK, "worker"],
        env=wabulk_env(instance, WABULK_LEASE_SECONDS=LEASE_SECONDS, WABULK_LOG_LEVEL="WARNING"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _step(db: Database, run_id: int) -> Campaign:
    with db.session() as session:
        c = session.get(Campaign, run_id)
        assert c is not None
        session.expunge(c)
        return c


def _delivered(instance: Path) -> int:
    path = log_path(instance, "Rehearsal")
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_for(what: str, proc: subprocess.Popen[bytes], condition) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + STUCK_SECONDS
    while not condition():
        assert proc.poll() is None, "the worker died on its own"
        assert time.monotonic() < deadline, f"the worker never got to: {what}"
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_while_maturing_and_sending_a_step_skips_and_doubles_nobody(
    tmp_path: Path,
) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    migrate.upgrade(db.engine)
    lst = make_contacts(db, phones(RECIPIENTS), "Customers")
    sender = make_sender(db, "Rehearsal", max_delay_seconds=0, settings={"latency_seconds": 0.01})
    with db.session() as session:
        draft = save_draft(
            session,
            None,
            DraftInput(name="Kill test", list_ids=[lst], sender_ids=[sender], body="Hi {{ name }}"),
        )
        first = draft.id
        followups.set_steps(
            session,
            None,
            first,
            [StepInput(delay_minutes=24 * 60, body="Still there, {{ name }}?")],
        )
    with db.session() as session:
        lifecycle.launch(session, None, first)
    with db.session() as session:
        run = followups.steps_of(session, first)[0].run_campaign_id
        assert run is not None
        ids = session.scalars(
            select(Message.id).where(Message.campaign_id == first).order_by(Message.id)
        ).all()
        # The first campaign went out a day ago, its messages spread so that the follow-up
        # becomes due for them one after another over the next seconds.
        base = utcnow() - timedelta(days=1) + timedelta(seconds=2)
        step = SPREAD_SECONDS / len(ids)
        for i, mid in enumerate(ids):
            at = base + timedelta(seconds=i * step)
            session.execute(
                update(Message)
                .where(Message.id == mid)
                .values(status=MessageStatus.SENT, sent_at=at, next_attempt_at=None)
            )
        last_sent = base + timedelta(seconds=(len(ids) - 1) * step)
        session.execute(
            update(Campaign)
            .where(Campaign.id == first)
            .values(
                status=CampaignStatus.COMPLETED,
                n_queued=0,
                n_sent=len(ids),
                finished_at=last_sent,
            )
        )
        contacts = session.scalars(
            select(Message.contact_id).where(Message.campaign_id == first).order_by(Message.id)
        ).all()
        replied = set(contacts[::10])  # answered the first message: no follow-up
        opted_out = set(contacts[5::20])  # opted out since: no follow-up
        session.execute(
            update(Message)
            .where(Message.campaign_id == first, Message.contact_id.in_(replied))
            .values(replied_at=base)
        )
        session.execute(update(Contact).where(Contact.id.in_(opted_out)).values(opted_out_at=base))
    eligible = set(contacts) - replied - opted_out

    progress = [0]
    for k in range(6):
        proc = _worker(instance)
        try:
            _wait_for("more sent follow-ups", proc, lambda: _step(db, run).n_sent > progress[-1])
            if k % 2:
                # Killed with follow-ups sent but not yet settled: recovery must not resend.
                _wait_for(
                    "a batch in flight", proc, lambda: _delivered(instance) > _step(db, run).n_sent
                )
        finally:
            proc.kill()
            proc.wait()
        progress.append(_step(db, run).n_sent)
    assert progress[-1] < len(eligible), "the step ended before the last kill; slow it down"

    proc = _worker(instance)
    try:
        deadline = time.monotonic() + 180
        while _step(db, run).status == CampaignStatus.RUNNING:
            assert proc.poll() is None, "the worker died on its own"
            assert time.monotonic() < deadline, f"not finished: {_step(db, run).n_sent}"
            time.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    with db.session() as session:
        rows = session.execute(
            select(Message.id, Message.contact_id, Message.status).where(Message.campaign_id == run)
        ).all()
    by_contact = Counter(r.contact_id for r in rows)
    assert set(by_contact) == eligible, "a follow-up went to the wrong people, or was missed"
    assert max(by_contact.values()) == 1
    deliveries = Counter(line["message_id"] for line in read_log(log_path(instance, "Rehearsal")))
    assert not {mid: n for mid, n in deliveries.items() if n > 1}, "sent more than once"
    for r in rows:
        if r.status is MessageStatus.UNKNOWN:
            continue
        assert r.status is MessageStatus.SENT, r
        assert deliveries[r.id] == 1, f"follow-up {r.id} is sent but the channel never got it"
    assert set(deliveries) <= {r.id for r in rows}
    assert _step(db, run).status == CampaignStatus.COMPLETED
    assert_counters_exact(db, run)
    assert progress == sorted(set(progress)), progress
