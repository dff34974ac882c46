"""Crash safety: a real `wabulk worker` killed with SIGKILL at random moments, ten times.

At the end every recipient has exactly one delivery recorded by the dry-run channel, or
is marked `unknown`; nobody got two; the campaign's counters match its rows.

Each kill waits for the campaign to move on since the last one, as read from the database
(and, for some kills, for a batch to be in the channel's hands but not yet settled): on a
busy machine a worker may take many seconds to start, so a kill after a fixed time could
land before it sent anything.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.campaigns_support import assert_counters_exact, make_contacts, make_sender, phones
from tests.support import WABULK, wabulk_env
from wabulk import migrate
from wabulk.campaigns import lifecycle
from wabulk.campaigns.service import DraftInput, save_draft
from wabulk.channels.dry_run import log_path, read_log
from wabulk.db import Database
from wabulk.models import Campaign, CampaignStatus, Message, MessageStatus

RECIPIENTS = 2000
LEASE_SECONDS = "2"
# Only a bound for a worker that never moves (a bug), never a measure of speed.
STUCK_SECONDS = 300


def _worker(instance: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [WABULK, "worker"],
        env=wabulk_env(instance, WABULK_LEASE_SECONDS=LEASE_SECONDS, WABULK_LOG_LEVEL="WARNING"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _status(db: Database, campaign_id: int) -> tuple[CampaignStatus, int]:
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.status, campaign.n_sent


def _delivered(instance: Path) -> int:
    """Lines the dry-run channel has written, a torn last one included."""
    path = log_path(instance, "Rehearsal")
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_for(what: str, proc: subprocess.Popen[bytes], condition) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + STUCK_SECONDS
    while not condition():
        assert proc.poll() is None, "the worker died on its own"
        assert time.monotonic() < deadline, f"the worker never got to: {what}"
        time.sleep(0.02)


# Ten kills in a row (about a minute): make test-slow; a killed server is settled in make test
# (test_cloud_scenarios, test_cli_campaigns).
@pytest.mark.slow
def test_sigkill_ten_times_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    migrate.upgrade(db.engine)
    lst = make_contacts(db, phones(RECIPIENTS), "Customers")
    # A little latency per message so the campaign is still running across ten kills.
    sender = make_sender(db, "Rehearsal", max_delay_seconds=0, settings={"latency_seconds": 0.01})
    with db.session() as session:
        draft = save_draft(
            session,
            None,
            DraftInput(name="Kill test", list_ids=[lst], sender_ids=[sender], body="Hi {{ name }}"),
        )
        campaign_id = draft.id
    with db.session() as session:
        lifecycle.launch(session, None, campaign_id)

    rng = random.Random(20261124)
    progress = [0]
    for _ in range(10):
        proc = _worker(instance)
        try:
            # A restarted worker first waits out the dead one's lease on the sender (2 s).
            _wait_for(
                "more settled messages", proc, lambda: _status(db, campaign_id)[1] > progress[-1]
            )
            if rng.random() < 0.5:
                # Killed with messages sent but not yet settled: recovery must not resend.
                _wait_for(
                    "a batch in flight",
                    proc,
                    lambda: _delivered(instance) > _status(db, campaign_id)[1],
                )
        finally:
            proc.kill()
            proc.wait()
        progress.append(_status(db, campaign_id)[1])
    assert progress[-1] < RECIPIENTS, "the campaign ended before the last kill; slow it down"

    proc = _worker(instance)
    try:
        deadline = time.monotonic() + 180
        while _status(db, campaign_id)[0] == CampaignStatus.RUNNING:
            assert proc.poll() is None, "the worker died on its own"
            assert time.monotonic() < deadline, f"not finished: {_status(db, campaign_id)}"
            time.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    deliveries = Counter(line["message_id"] for line in read_log(log_path(instance, "Rehearsal")))
    with db.session() as session:
        statuses = dict(
            session.execute(
                select(Message.id, Message.status).where(Message.campaign_id == campaign_id)
            ).all()
        )
    assert len(statuses) == RECIPIENTS
    twice = {mid: n for mid, n in deliveries.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"
    for mid, status in statuses.items():
        if status is MessageStatus.UNKNOWN:
            continue
        assert status is MessageStatus.SENT, (mid, status)
        assert deliveries[mid] == 1, f"message {mid} is sent but the channel never got it"
    assert set(deliveries) <= set(statuses)
    assert _status(db, campaign_id)[0] == CampaignStatus.COMPLETED
    assert_counters_exact(db, campaign_id)
    # Every kill landed mid-campaign, after the campaign had moved on since the one before.
    assert progress == sorted(set(progress)), progress
    lines = (log_path(instance, "Rehearsal")).read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)  # no torn line survived a kill
