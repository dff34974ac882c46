"""The worker registry: registration, heartbeats, lost and stopped workers, `--check`,
pruning, which senders a worker may drive, and a real `wabulk worker` process."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, delete, select, text, update
from sqlalchemy.engine import make_url

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from tests.conftest import postgres_url
from tests.support import WABULK, run_wabulk, wabulk_env
from wabulk.db import Database
from wabulk.dispatch import registry
from wabulk.dispatch.worker import Dispatcher
from wabulk.models import Sender, Worker, utcnow

HOST = registry.this_host()


def _register(db: Database, identity: str, name: str = "w1", lease: int = 60, now=None) -> int:
    return registry.register(
        db,
        identity=identity,
        name=name,
        labels=("shop-pc",),
        only_senders=None,
        embedded=False,
        lease_seconds=lease,
        now=now,
    )


def _row(db: Database, identity: str) -> Worker:
    with db.session() as session:
        row = session.scalar(select(Worker).where(Worker.identity == identity))
        assert row is not None
        session.expunge(row)
        return row


def test_a_worker_registers_beats_goes_lost_after_its_lease_and_stops(migrated_db) -> None:
    start = utcnow()
    first = _register(migrated_db, f"{HOST}:1:a", now=start)
    # Registering again (a restart of the same identity) updates the one row.
    assert _register(migrated_db, f"{HOST}:1:a", now=start) == first
    row = _row(migrated_db, f"{HOST}:1:a")
    assert (row.name, row.host, row.labels, row.only_senders, row.lease_seconds) == (
        "w1",
        HOST,
        ["shop-pc"],
        None,
        60,
    )
    assert registry.state(row, start) == "running"

    beat_at = start + timedelta(seconds=15)
    stats = {"outcomes": {"3": {"sent": 2}}, "latency": {}, "bounds": [0.1]}
    assert registry.beat(
        migrated_db,
        f"{HOST}:1:a",
        holds={"senders": [7, 3], "campaigns": [2], "imports": []},
        per_minute=42,
        stats=stats,
        now=beat_at,
    )
    row = _row(migrated_db, f"{HOST}:1:a")
    assert row.heartbeat_at == beat_at
    assert row.holds == {"senders": [3, 7], "campaigns": [2], "imports": []}
    assert (row.per_minute, row.stats) == (42, stats)

    assert registry.state(row, beat_at + timedelta(seconds=60)) == "running"
    assert registry.state(row, beat_at + timedelta(seconds=61)) == "lost"

    registry.stopped(migrated_db, f"{HOST}:1:a", beat_at + timedelta(seconds=5))
    row = _row(migrated_db, f"{HOST}:1:a")
    assert registry.state(row, beat_at + timedelta(hours=1)) == "stopped"
    assert row.holds == {"senders": [], "campaigns": [], "imports": []}

    # A beat for a row that is gone says so, for the worker to register again.
    assert not registry.beat(
        migrated_db, "nobody:1:x", holds={}, per_minute=0, stats={}, now=beat_at
    )


def test_check_answers_healthy_only_for_a_beating_worker_of_that_name_here(migrated_db) -> None:
    now = utcnow()
    ok, message = registry.check(migrated_db, "w1", HOST, now)
    assert not ok and "No worker named 'w1'" in message

    _register(migrated_db, f"{HOST}:1:a", now=now)
    assert registry.check(migrated_db, "w1", HOST, now) == (True, "healthy")
    ok, message = registry.check(migrated_db, "w1", "another-host", now)
    assert not ok and "another-host" in message
    ok, message = registry.check(migrated_db, "w2", HOST, now)
    assert not ok and "'w2'" in message

    later = now + timedelta(seconds=125)
    ok, message = registry.check(migrated_db, "w1", HOST, later)
    assert not ok and "no heartbeat for 125 s" in message and "lease is 60 s" in message

    # A restarted worker of the same name makes the name healthy again.
    _register(migrated_db, f"{HOST}:2:b", now=later)
    assert registry.check(migrated_db, "w1", HOST, later) == (True, "healthy")
    registry.stopped(migrated_db, f"{HOST}:2:b", later)
    ok, message = registry.check(migrated_db, "w1", HOST, later)
    assert not ok and "stopped at" in message


def test_check_says_when_the_database_is_behind_or_unreachable(database_url) -> None:
    empty = Database(database_url)  # no migrations run
    try:
        ok, message = registry.check(empty, "w1", HOST)
        assert not ok and "not up to date" in message and "wabulk db upgrade" in message
    finally:
        empty.dispose()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = Database(f"postgresql+psycopg://wabulk:secret-pw@127.0.0.1:{port}/wabulk")
    try:
        ok, message = registry.check(gone, "w1", HOST)
    finally:
        gone.dispose()
    assert not ok and "not reachable" in message
    assert "secret-pw" not in message


def test_rows_stopped_or_lost_for_over_a_week_are_pruned(migrated_db) -> None:
    now = utcnow()
    ago = {
        "stopped-old": timedelta(days=8),
        "stopped-recent": timedelta(days=6),
        "lost-old": timedelta(days=8),
        "lost-recent": timedelta(days=7) - timedelta(minutes=3),  # lost 7 days minus 2 min
        "running": timedelta(seconds=1),
    }
    for identity, age in ago.items():
        _register(migrated_db, identity, name=identity, now=now - age)
        if identity.startswith("stopped"):
            registry.stopped(migrated_db, identity, now - age)
    # Each registration prunes as it goes: the week-old rows went when the newer came.
    assert _identities(migrated_db) == {"stopped-recent", "lost-recent", "running"}
    with migrated_db.session() as session:
        assert registry.prune(session, now) == 0
    with migrated_db.session() as session:
        assert registry.prune(session, now + timedelta(minutes=5)) == 1
    assert _identities(migrated_db) == {"stopped-recent", "running"}
    with migrated_db.session() as session:
        assert registry.prune(session, now + timedelta(days=2)) == 1  # lost two days only: kept
    assert _identities(migrated_db) == {"running"}


def _identities(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(Worker.identity)))


def test_may_drive_follows_labels_and_the_senders_list(tmp_path) -> None:
    from wabulk.config import Settings

    settings = Settings(instance_path=tmp_path, worker_labels=("shop-pc",)).resolved()
    db = Database(settings.database_url)
    try:
        plain = Dispatcher(db, settings)
        labelled = Dispatcher(db, settings, labels=("back-office",))
        picky = Dispatcher(db, settings, only_senders=["Shop  phone"])
        any_sender = SimpleNamespace(name="Cloud", worker_label=None)
        shop = SimpleNamespace(name="shop PHONE", worker_label="shop-pc")
        office = SimpleNamespace(name="Office", worker_label="back-office")
        assert plain.labels == ("shop-pc",)
        assert [plain.may_drive(s) for s in (any_sender, shop, office)] == [True, True, False]
        assert labelled.labels == ("shop-pc", "back-office")
        assert [labelled.may_drive(s) for s in (any_sender, shop, office)] == [True, True, True]
        assert [picky.may_drive(s) for s in (any_sender, shop, office)] == [False, True, False]
        bare = Dispatcher(db, replace(settings, worker_labels=()))
        assert [bare.may_drive(s) for s in (any_sender, shop, office)] == [True, False, False]
    finally:
        db.dispose()


def test_a_worker_starts_lanes_only_for_senders_it_may_drive(dual, settings) -> None:
    _app, db = dual
    free = make_sender(db, "Free")
    pinned = make_sender(db, "Pinned")
    with db.session() as session:
        session.execute(update(Sender).where(Sender.id == pinned).values(worker_label="shop-pc"))
    list_id = make_contacts(db, phones(4), "Customers")
    make_campaign(db, [list_id], [free, pinned])

    others = Dispatcher(db, replace(settings, worker_labels=()))
    shop = Dispatcher(db, replace(settings, worker_labels=()), labels=("shop-pc",))
    only_free = Dispatcher(db, replace(settings, worker_labels=("shop-pc",)), only_senders=["free"])
    try:
        for dispatcher, expected in ((others, {free}), (shop, {free, pinned}), (only_free, {free})):
            dispatcher.stop_event.set()  # a lane started stops at once: only its start counts
            dispatcher.campaign_step()
            assert set(dispatcher._lanes) == expected
            dispatcher.heartbeat_step()
            row = _row(db, dispatcher.identity)
            assert row.name == dispatcher.name and row.labels == list(dispatcher.labels)
    finally:
        for dispatcher in (others, shop, only_free):
            dispatcher.stop()
    assert _row(db, only_free.identity).only_senders == ["free"]
    assert registry.state(_row(db, shop.identity)) == "stopped"


@pytest.mark.postgres
def test_heartbeats_go_on_after_the_database_drops_the_connection(
    migrated_postgres_schema, settings
) -> None:
    db = Database(migrated_postgres_schema)
    name = make_url(migrated_postgres_schema).query["application_name"]
    dispatcher = Dispatcher(db, replace(settings, lease_seconds=4))  # a beat a second
    dispatcher.start_thread()
    try:
        first = _row(db, dispatcher.identity).heartbeat_at
        _wait_for("a heartbeat", lambda: _row(db, dispatcher.identity).heartbeat_at > first)
        admin = create_engine(postgres_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            cut = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            ).scalar()
        admin.dispose()
        assert cut, "the worker's connections were cut"
        after_cut = utcnow()
        _wait_for(
            "a heartbeat after the cut",
            lambda: _row(db, dispatcher.identity).heartbeat_at > after_cut,
        )
        # A row that went (pruned by hand, a restored backup) is registered again.
        with db.session() as session:
            session.execute(delete(Worker).where(Worker.identity == dispatcher.identity))
        _wait_for("the row again", lambda: _worker_named(db, dispatcher.name) is not None)
        assert dispatcher.alive
    finally:
        dispatcher.stop()
        assert registry.state(_row(db, dispatcher.identity)) == "stopped"
        db.dispose()


# --- a real `wabulk worker` process ------------------------------------------------------


def _wait_for(what: str, condition, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_wabulk_worker_registers_and_check_follows_it(migrated_db, database_url, tmp_path) -> None:
    instance = tmp_path / "instance"
    env = {
        "WABULK_DATABASE_URL": database_url,
        "WABULK_SECRET_KEY": "test-secret-key-not-for-production",
    }
    before = run_wabulk(instance, "worker", "--check", "--name", "w1", **env)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "No worker named 'w1'" in before.stdout + before.stderr

    proc = subprocess.Popen(
        [WABULK, "worker", "--name", "w1", "--label", "shop-pc"],
        env=wabulk_env(instance, **env),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for("the worker's row", lambda: _worker_named(migrated_db, "w1") is not None)
        row = _worker_named(migrated_db, "w1")
        assert row is not None and row.pid == proc.pid and row.labels == ["shop-pc"]
        healthy = run_wabulk(instance, "worker", "--check", "--name", "w1", **env)
        assert (healthy.returncode, healthy.stdout.strip()) == (0, "healthy"), healthy.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    after = run_wabulk(instance, "worker", "--check", "--name", "w1", **env)
    assert after.returncode == 1
    assert "stopped at" in after.stdout + after.stderr


def _worker_named(db: Database, name: str) -> Worker | None:
    with db.session() as session:
        row = session.scalar(select(Worker).where(Worker.name == name))
        if row is not None:
            session.expunge(row)
        return row


def test_worker_options_are_checked_before_anything_starts(
    migrated_db, database_url, tmp_path: Path
) -> None:
    instance = tmp_path / "instance"
    env = {"WABULK_DATABASE_URL": database_url}
    make_sender(migrated_db, "Shop phone")
    make_sender(migrated_db, "Cloud")
    bad_label = run_wabulk(instance, "worker", "--label", "two words", **env)
    assert bad_label.returncode == 2 and "--label" in bad_label.stderr
    unknown = run_wabulk(instance, "worker", "--senders", "Shop phone", "--senders", "Nope", **env)
    assert unknown.returncode != 0
    assert "'Nope'" in unknown.stderr and "Cloud, Shop phone" in unknown.stderr


def test_check_is_not_fooled_by_a_fresh_heartbeat_of_a_killed_worker(migrated_db) -> None:
    """Killed a moment ago, a worker's last heartbeat is still within its lease: its
    process being gone is what says it is not healthy."""
    now = utcnow()
    _register(migrated_db, f"{HOST}:1:a", now=now)
    gone = subprocess.Popen(["sleep", "0"])
    gone.wait()  # a pid that ran and ended: nobody holds it now
    with migrated_db.session() as session:
        session.execute(update(Worker).values(pid=gone.pid))
    ok, message = registry.check(migrated_db, "w1", HOST, now)
    assert not ok and "its process is gone" in message and f"pid {gone.pid}" in message


def test_a_worker_started_again_replaces_its_older_rows_on_the_page(migrated_db) -> None:
    now = utcnow()
    _register(migrated_db, f"{HOST}:1:a", now=now - timedelta(minutes=10))  # then lost
    _register(migrated_db, f"{HOST}:2:b", name="w2", now=now - timedelta(minutes=10))
    registry.stopped(migrated_db, f"{HOST}:2:b", now - timedelta(minutes=9))
    _register(migrated_db, f"{HOST}:3:c", now=now)  # w1 again
    _register(migrated_db, f"{HOST}:4:d", name="w2", now=now)  # w2 again
    _register(migrated_db, f"{HOST}:5:e", name="w3", now=now - timedelta(minutes=10))
    with migrated_db.session() as session:
        shown = [(v.worker.identity, v.state) for v in registry.overview(session, now)]
    assert sorted(shown) == [
        (f"{HOST}:3:c", "running"),
        (f"{HOST}:4:d", "running"),
        (f"{HOST}:5:e", "lost"),  # nothing replaced it: still shown, in red
    ]
