"""A shared sender's pace holds for all workers together (issue 21).

- Four real `wabulk worker` processes on one PostgreSQL schema send one Cloud API campaign
  through one number with a ceiling of 20 messages a second: every recipient gets exactly
  one message, and the fake Cloud API never sees more than 20 requests in any one-second
  window (a window starting at each request's arrival).
- Two workers share a dry-run sender with a daily cap: together they send exactly the cap
  (slow; tests/integration/test_shared_senders.py has the same with two lanes in-process).
- `slots.reserve` from many threads at once hands out slots that never overlap and leave
  no gap, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import select, update

from tests.campaigns_support import status_counts
from tests.cloud_support import (
    PHONE_NUMBER_ID,
    add_sender,
    cloud_settings,
    customers,
    launch,
    spring_template,
)
from tests.scale_support import add_contacts, add_dry_run_sender, draft_campaign
from tests.scale_support import launch as launch_drafted
from wabulk.channels.dry_run import log_path, read_log
from wabulk.db import Database
from wabulk.models import Campaign, Message, MessageStatus, Sender, utcnow
from wabulk.senders import slots
from wabulk.senders.service import SenderInput, create_sender

WABULK = str(Path(sys.executable).parent / "wabulk")
RATE = 20


@contextmanager
def started_workers(n: int, instance: Path, url: str, **env: str) -> Iterator[list]:
    """n `wabulk worker` processes on one database and instance folder; stopped after."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("WABULK_")}
    base.update(
        WABULK_INSTANCE_PATH=str(instance),
        WABULK_DATABASE_URL=url,
        WABULK_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        **env,
    )
    procs: list[tuple[subprocess.Popen[bytes], Path, IO[bytes]]] = []
    try:
        for i in range(n):
            out = instance.parent / f"worker-{i + 1}.log"
            handle = out.open("ab")
            proc = subprocess.Popen(
                [WABULK, "worker"],
                env=base | {"WABULK_WORKER_NAME": f"worker-{i + 1}"},
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
            procs.append((proc, out, handle))
        yield procs
    finally:
        for proc, _out, _handle in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, _out, handle in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            handle.close()


def wait_for(what: str, check, procs: list, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        for proc, out, handle in procs:
            if proc.poll() is not None:
                handle.flush()
                raise AssertionError(
                    f"a worker ended on its own ({proc.returncode}):\n"
                    + out.read_text(errors="replace")[-3000:]
                )
        if time.monotonic() > deadline:
            tails = "\n".join(out.read_text(errors="replace")[-1500:] for _p, out, _h in procs)
            raise AssertionError(f"waited {timeout} s for {what}\n{tails}")
        time.sleep(0.2)


def busiest_second(arrivals: list[float]) -> int:
    """The most arrivals in any window [t, t + 1) starting at an arrival."""
    times = sorted(arrivals)
    most, end = 0, 0
    for start, t in enumerate(times):
        end = max(end, start)
        while end < len(times) and times[end] < t + 1.0:
            end += 1
        most = max(most, end - start)
    return most


# --- four workers, one Cloud API number ---------------------------------------------------


# Slow (make test-slow), and not only for its time: it measures the rate where the issue asks,
# at the fake's arrival times, and a starved machine can stall the fake's own event loop
# until requests the workers spaced out are taken in together (21 in one second was seen once
# with the suite and several other runs on two cores). test_shared_senders.py and the slot
# reservation tests below hold the same rules in `make test`.
@pytest.mark.slow
@pytest.mark.postgres
def test_four_workers_share_one_cloud_api_number_within_its_rate(
    migrated_postgres_schema: str, settings, fake_cloud
) -> None:
    url, fake = migrated_postgres_schema, fake_cloud
    settings = cloud_settings(replace(settings, database_url=url), fake)
    db = Database(url)
    try:
        sender_id = add_sender(db, settings, fake, tier="TIER_10K")
        with db.session() as session:
            session.execute(
                update(Sender).where(Sender.id == sender_id).values(max_per_second=RATE)
            )
        template_id = spring_template(db, settings)
        n = 300
        list_id = customers(db, n, "Everyone", prefix="+9198220")
        phones = {f"+9198220{i:05d}" for i in range(n)}
        with started_workers(
            4,
            Path(settings.instance_path),
            url,
            WABULK_SECRET_KEY=settings.secret_key,
            WABULK_CLOUD_API_URL=fake.base_url,
            WABULK_LEASE_SECONDS="30",
        ) as procs:
            campaign_id = launch(db, "Spring sale", list_id, sender_id, template_id)
            holders: set[str] = set()

            def all_sent() -> bool:
                holders.update(_holders(db, campaign_id))
                return status_counts(db, campaign_id)[MessageStatus.SENT] == n

            wait_for(f"{n} messages sent", all_sent, procs, timeout=180)
        arrivals = [t for pnid, t in fake.arrivals if pnid == PHONE_NUMBER_ID]
        to = Counter("+" + s["to"].lstrip("+") for s in fake.sent if s["endpoint"] == "messages")
        assert set(to) == phones and set(to.values()) == {1}, "every recipient exactly once"
        assert len(arrivals) == n, "no request was refused and sent again"
        assert status_counts(db, campaign_id) == {MessageStatus.SENT: n}
        # The point of sharing: the campaign spread over the workers.
        workers = {h.split(":")[1] for h in holders if h}
        assert len(workers) >= 2, f"only these workers held messages: {holders}"
        assert busiest_second(arrivals) <= RATE, (
            f"{busiest_second(arrivals)} requests within one second at the fake; the "
            f"number's ceiling is {RATE}"
        )
    finally:
        db.dispose()


def _holders(db: Database, campaign_id: int) -> set[str]:
    """The processes holding the campaign's messages in flight now (host:pid:random)."""
    with db.session() as session:
        return set(
            session.scalars(
                select(Message.lease_owner)
                .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.SENDING)
                .distinct()
            )
        )


# --- two workers, one dry-run sender with a daily cap -------------------------------------


# About 40 s (two workers starting, then a look that the count stays put); its in-process
# twin, two lanes of one sender, is in test_shared_senders.py.
@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_together_send_exactly_the_daily_cap(
    migrated_postgres_schema: str, tmp_path: Path
) -> None:
    url, cap = migrated_postgres_schema, 30
    db = Database(url)
    instance = tmp_path / "instance"
    instance.mkdir()
    try:
        list_id = add_contacts(db, 120)
        sender_id = add_dry_run_sender(db, "Rehearsal", latency_seconds=0.02)
        with db.session() as session:
            session.execute(update(Sender).where(Sender.id == sender_id).values(daily_cap=cap))
        campaign_id = draft_campaign(db, list_id, [sender_id], "Capped")
        with started_workers(2, instance, url, WABULK_LEASE_SECONDS="30") as procs:
            launch_drafted(db, campaign_id)

            def settled_at_cap() -> bool:
                now = status_counts(db, campaign_id)
                return now[MessageStatus.SENT] >= cap and not now[MessageStatus.SENDING]

            wait_for(f"{cap} messages sent", settled_at_cap, procs)
            # Both lanes look again (a lane whose cap others hold in flight looks every few
            # seconds): the count must stay at the cap meanwhile.
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                assert status_counts(db, campaign_id)[MessageStatus.SENT] == cap
                time.sleep(0.5)
        delivered = read_log(log_path(instance, "Rehearsal"))
        assert len(delivered) == cap, f"{len(delivered)} delivered; the daily cap is {cap}"
        assert len({d["message_id"] for d in delivered}) == cap
        with db.session() as session:
            left = session.get(Campaign, campaign_id)
            assert left is not None and left.n_queued == 120 - cap
    finally:
        db.dispose()


# --- slots.reserve from many threads --------------------------------------------------------


def test_reservations_from_many_threads_never_overlap(migrated_db: Database) -> None:
    db = migrated_db
    with db.session() as session:
        sender_id = create_sender(
            session, None, SenderInput(name="Shared", channel="dry_run", timezone="UTC")
        ).id
    now = utcnow()
    got: list[tuple[datetime, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def reserve_many(k: int) -> None:
        try:
            for i in range(15):
                n = 1 + (k + i) % 4
                with db.session() as session:
                    start = slots.reserve(session, sender_id, n, 50.0, now)
                with lock:
                    got.append((start, n))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reserve_many, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    got.sort()
    # Back to back from `now`: no slot handed out twice, none skipped.
    assert got[0][0] == now
    for (start, n), (following, _m) in itertools.pairwise(got):
        assert following == start + timedelta(seconds=n / 50.0), (start, n, following)
    with db.session() as session:
        free = session.scalar(select(Sender.pace_next_at).where(Sender.id == sender_id))
    last, n = got[-1]
    assert free == last + timedelta(seconds=n / 50.0)


def test_a_reservation_starts_now_when_the_account_was_idle(migrated_db: Database) -> None:
    db = migrated_db
    with db.session() as session:
        sender_id = create_sender(
            session, None, SenderInput(name="Idle", channel="dry_run", timezone="UTC")
        ).id
    earlier = utcnow() - timedelta(minutes=5)
    with db.session() as session:
        first = slots.reserve(session, sender_id, 10, 10.0, earlier)
    now = utcnow()
    with db.session() as session:
        second = slots.reserve(session, sender_id, 2, 10.0, now)
        third = slots.reserve(session, sender_id, 1, 10.0, now)
    assert first == earlier  # its slots ended long before now
    assert second == now and third == now + timedelta(seconds=0.2)
