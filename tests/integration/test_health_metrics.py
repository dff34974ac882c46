"""/healthz, /readyz and /metrics: open without sign-in, /metrics behind its token or an
address list, values read from the database, and a fixed number of statements a scrape."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, func, select, text, update

from tests.campaigns_support import (
    FakeClock,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from tests.support import http_get, running_server
from wabulk import migrate
from wabulk.app import create_app
from wabulk.campaigns import lifecycle
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.dispatch import tally
from wabulk.models import Campaign, CampaignStatus, Message, MessageStatus, WebhookReceipt, utcnow
from wabulk.models.workers import Worker

TOKEN = "scrape-me-7c1f0e"
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


def _app(settings: Settings, database_url: str, **overrides: Any) -> Flask:
    app = create_app(replace(settings, database_url=database_url, **overrides))
    app.config["TESTING"] = True
    return app


def _configure(app: Flask, **fields: Any) -> Flask:
    app.extensions["wabulk.settings"] = replace(app.extensions["wabulk.settings"], **fields)
    return app


def _scrape(app: Flask, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one authorised scrape, parsed as Prometheus
    parses it."""
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == EXPOSITION
    out = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(scrape: dict[Any, float], name: str, **labels: object) -> float:
    key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
    assert key in scrape, f"no sample {key}; have {sorted(k for k in scrape if k[0] == name)}"
    return scrape[key]


def _names(scrape: dict[Any, float], name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample, labels in scrape if sample == name]


# --- health --------------------------------------------------------------------------------


def test_healthz_and_readyz_answer_without_sign_in_or_cookie(dual) -> None:
    app, _db = dual
    client = app.test_client()
    for url in ("/healthz", "/readyz"):
        response = client.get(url)
        assert response.status_code == 200, (url, response.get_data(as_text=True))
        assert response.get_data(as_text=True) == "ok\n"
        assert "Set-Cookie" not in response.headers
    assert client.get("/contacts/").status_code == 302  # the rest still needs signing in


def test_readyz_refuses_a_database_one_migration_behind(database_url, settings) -> None:
    db = Database(database_url)
    try:
        head = migrate.head_revision(db.engine)
        scripts = ScriptDirectory.from_config(migrate.alembic_config(db.engine))
        behind = scripts.get_revision(head).down_revision
        migrate.upgrade(db.engine, behind)
    finally:
        db.dispose()
    app = _app(settings, database_url)
    client = app.test_client()
    response = client.get("/readyz")
    body = response.get_data(as_text=True)
    assert response.status_code == 503, body
    assert body.count("\n") == 1
    assert f"at migration {behind}," in body and f"needs {head};" in body
    assert "wabulk db upgrade" in body
    assert client.get("/healthz").status_code == 200  # the process itself is fine

    migrate.upgrade(app.extensions["wabulk.db"].engine)
    assert client.get("/readyz").status_code == 200
    app.extensions["wabulk.db"].dispose()


def test_readyz_refuses_a_database_migrated_past_this_version(dual) -> None:
    """An upgrade in progress: the schema moved on, this process is the old version."""
    app, db = dual
    head = migrate.head_revision(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    try:
        response = app.test_client().get("/readyz")
        body = response.get_data(as_text=True)
        assert response.status_code == 503
        assert body == f"not ready: database: at migration 0099, newer than this version's {head}\n"
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


@pytest.mark.postgres
def test_readyz_gives_up_on_a_database_that_does_not_answer(
    migrated_postgres_schema, settings
) -> None:
    """A lock held elsewhere makes the check's query wait: /readyz answers 503 in its own
    time instead of hanging with it, and ready again once the lock is gone."""
    app = _app(settings, migrated_postgres_schema)
    engine = app.extensions["wabulk.db"].engine
    holder = engine.connect()
    try:
        holder.execute(text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.get_data(as_text=True).startswith("not ready: database: ")
    finally:
        holder.rollback()
        holder.close()
    deadline = time.monotonic() + 60
    while app.test_client().get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "still not ready a minute after the lock went"
        time.sleep(0.2)
    app.extensions["wabulk.db"].dispose()


@pytest.mark.parametrize(
    "url",
    [
        # A port nothing listens on (the discard port), with a password that must not show.
        "postgresql+psycopg://shop:hunter2-secret@127.0.0.1:9/wabulk",
        "sqlite:////nonexistent-folder/hunter2-secret/wabulk.db",
    ],
    ids=["postgres", "sqlite"],
)
def test_readyz_names_an_unreachable_database_without_its_url(settings, url) -> None:
    app = _app(settings, url)
    response = app.test_client().get("/readyz")
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert body.startswith("not ready: database: not reachable")
    assert "hunter2" not in body and "127.0.0.1" not in body and "nonexistent" not in body
    assert app.test_client().get("/healthz").status_code == 200
    app.extensions["wabulk.db"].dispose()


# --- who may read /metrics ----------------------------------------------------------------


def test_metrics_are_off_until_a_token_or_an_address_is_set(app) -> None:
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Metrics are off" in body and "WABULK_METRICS_TOKEN" in body
    assert "Set-Cookie" not in response.headers


def test_metrics_refuse_a_missing_or_wrong_token(app) -> None:
    _configure(app, metrics_token=TOKEN)
    client = app.test_client()
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "WABULK_METRICS_TOKEN" in missing.get_data(as_text=True)
    wrong = client.get("/metrics", headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
    assert wrong.status_code == 401
    assert TOKEN not in wrong.get_data(as_text=True)
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401
    for response in (missing, wrong):
        assert "Set-Cookie" not in response.headers
        assert "# TYPE" not in response.get_data(as_text=True)
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "Set-Cookie" not in ok.headers
    assert ok.headers["Content-Type"] == EXPOSITION


def test_metrics_open_to_listed_addresses_only(app) -> None:
    _configure(app, metrics_from=("10.0.0.0/8", "192.0.2.7/32"))
    for address, status in [
        ("10.20.30.40", 200),
        ("192.0.2.7", 200),
        ("::ffff:10.1.1.1", 200),  # an IPv4 client on a dual-stack socket
        ("192.0.2.8", 403),
        ("127.0.0.1", 403),
    ]:
        client = app.test_client()
        response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
        assert response.status_code == status, (address, response.get_data(as_text=True))
        assert "Set-Cookie" not in response.headers
        if status == 403:
            assert "WABULK_METRICS_FROM" in response.get_data(as_text=True)
    # A token, when both are set, opens it from anywhere.
    _configure(app, metrics_token=TOKEN)
    outside = app.test_client().get(
        "/metrics",
        headers={"Authorization": f"Bearer {TOKEN}"},
        environ_base={"REMOTE_ADDR": "203.0.113.5"},
    )
    assert outside.status_code == 200


def test_behind_a_proxy_the_forwarded_client_address_decides(app, settings) -> None:
    """With WABULK_PROXY_HOPS the client is the address our proxy saw, not the proxy, and
    not an address the client wrote into X-Forwarded-For itself."""
    proxied = _app(settings, settings.database_url, proxy_hops=1, metrics_from=("10.0.0.0/8",))
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    for forwarded, status in [
        ("10.1.2.3", 200),
        ("203.0.113.9", 403),
        ("10.1.2.3, 203.0.113.9", 403),  # the client's own claim, then what our proxy saw
    ]:
        response = proxied.test_client().get(
            "/metrics", headers={"X-Forwarded-For": forwarded}, environ_base=proxy
        )
        assert response.status_code == status, (forwarded, response.get_data(as_text=True))
    proxied.extensions["wabulk.db"].dispose()


# --- what /metrics says -------------------------------------------------------------------


def _worker(db: Database, name: str, **fields: Any) -> None:
    now = utcnow()
    values: dict[str, Any] = {
        "identity": f"host-{name}:{len(name)}:{now.timestamp()}",
        "name": name,
        "host": "host-" + name,
        "pid": 4242,
        "version": "test",
        "labels": [],
        "lease_seconds": 120,
        "started_at": now - timedelta(hours=1),
        "heartbeat_at": now,
        "per_minute": 0,
        "stats": {},
    }
    values.update(fields)
    with db.session() as session:
        session.add(Worker(**values))


def _receipt(db: Database, n: int, **fields: Any) -> None:
    with db.session() as session:
        session.add(WebhookReceipt(body=b"{}", body_sha256=f"{n:064x}", attempts=0, **fields))


def test_metrics_match_campaigns_workers_and_webhook_backlog(dual, settings, tmp_path) -> None:
    app, db = dual
    _configure(app, metrics_token=TOKEN)
    # A campaign sent in full (then completed) and one part-sent: the daily cap stops it.
    sender = make_sender(db, "Shop phone", max_delay_seconds=0, daily_cap=5)
    done = make_campaign(db, [make_contacts(db, phones(3), "First")], [sender], name="Done")
    clock = FakeClock()
    tally.reset()  # this process's counters: other tests' lanes ran in it too
    lane = make_lane(db, sender, tmp_path, clock)
    lane.step()
    lst = make_contacts(db, phones(6, "+9198110"), "Second")
    running = make_campaign(db, [lst], [sender], name='Diwali "big" sale\\50%')
    clock.current = utcnow()  # its messages are due from now
    for _ in range(20):
        wait = lane.step()
        if wait is None or wait > 3600:  # the cap's wait until tomorrow
            break
        clock.advance(wait)
    lane.close()
    with db.session() as session:
        lifecycle.complete_finished(session, utcnow())  # as the dispatcher's loop does
    snapshot = tally.snapshot()
    tally.reset()
    with db.session() as session:
        assert session.get(Campaign, done).status == CampaignStatus.COMPLETED
        campaign = session.get(Campaign, running)
        assert campaign.status == CampaignStatus.RUNNING
        assert campaign.n_sent == 2 and campaign.n_queued == 4
        sent = session.scalar(
            select(func.count()).select_from(Message).where(Message.status == MessageStatus.SENT)
        )
        counts = {s.value: getattr(campaign, f"n_{s.value}") for s in MessageStatus}
    assert sent == 5

    now = utcnow()
    _worker(db, "alpha", stats=snapshot, per_minute=5)
    # Killed, then started again under the same name: the silent one was replaced.
    _worker(db, "beta", started_at=now - timedelta(hours=2), heartbeat_at=now - timedelta(hours=1))
    _worker(db, "beta", started_at=now - timedelta(minutes=30))
    _worker(db, "gamma", heartbeat_at=now - timedelta(minutes=10))  # lost
    _worker(db, "delta", stopped_at=now - timedelta(hours=1))
    _worker(db, "epsilon", stopped_at=now - timedelta(days=3))  # long gone: not shown

    _receipt(db, 1, received_at=now - timedelta(hours=2), processed_at=now - timedelta(hours=2))
    _receipt(db, 2, received_at=now - timedelta(minutes=10), next_attempt_at=now)
    _receipt(db, 3, received_at=now - timedelta(minutes=1), next_attempt_at=now)
    _receipt(db, 4, received_at=now - timedelta(days=1), next_attempt_at=None)  # given up

    scrape = _scrape(app)
    after = utcnow()

    # Queue depth: the running campaign only, every status, its name escaped and back.
    campaigns = {d["campaign_id"] for d in _names(scrape, "wabulk_campaign_messages")}
    assert campaigns == {str(running)}
    for status, n in counts.items():
        assert (
            _value(
                scrape,
                "wabulk_campaign_messages",
                campaign_id=running,
                campaign='Diwali "big" sale\\50%',
                status=status,
            )
            == n
        )
    assert _value(scrape, "wabulk_campaigns", status="completed") == 1
    assert _value(scrape, "wabulk_campaigns", status="running") == 1
    labels = {"campaign_id": running, "campaign": 'Diwali "big" sale\\50%', "state": "running"}
    assert _value(scrape, "wabulk_campaign_state", **labels) == 1

    # Sends per sender, cluster-wide, from the aggregates.
    assert (
        _value(
            scrape,
            "wabulk_sender_messages_total",
            sender_id=sender,
            sender="Shop phone",
            outcome="sent",
        )
        == 5
    )
    assert (
        _value(
            scrape,
            "wabulk_sender_state",
            sender_id=sender,
            sender="Shop phone",
            channel="dry_run",
            state="linked",
        )
        == 1
    )

    # Workers: the one that sent, with its counters and latency histogram as written.
    assert _value(scrape, "wabulk_workers", state="running") == 2  # alpha and the new beta
    assert _value(scrape, "wabulk_workers", state="lost") == 1  # gamma
    assert _value(scrape, "wabulk_workers", state="stopped") == 1  # delta
    shown = {d["worker"] for d in _names(scrape, "wabulk_worker_heartbeat_timestamp_seconds")}
    assert shown == {"alpha", "beta", "gamma"}
    alpha = [
        d for d in _names(scrape, "wabulk_worker_messages_per_minute") if d["worker"] == "alpha"
    ]
    who = {"worker": "alpha", "identity": alpha[0]["identity"]}
    assert _value(scrape, "wabulk_worker_messages_per_minute", **who) == 5
    assert _value(scrape, "wabulk_worker_sends_total", **who, sender_id=sender, outcome="sent") == 5
    latency = snapshot["latency"][str(sender)]
    assert latency["count"] == 5
    histogram = "wabulk_worker_send_duration_seconds"
    assert _value(scrape, histogram + "_count", **who, sender_id=sender) == 5
    assert _value(scrape, histogram + "_sum", **who, sender_id=sender) == pytest.approx(
        latency["sum"]
    )
    cumulative = 0
    for bound, n in zip(snapshot["bounds"], latency["buckets"], strict=False):
        cumulative += n
        le = str(float(bound))
        assert _value(scrape, histogram + "_bucket", **who, sender_id=sender, le=le) == cumulative
    assert _value(scrape, histogram + "_bucket", **who, sender_id=sender, le="+Inf") == 5

    # Webhook receipts: two waiting, the oldest for ten minutes; one given up.
    with db.session() as session:
        highest = session.scalar(select(func.max(WebhookReceipt.id)))
    assert _value(scrape, "wabulk_webhook_receipts_received_total") == highest
    assert _value(scrape, "wabulk_webhook_receipts_processed_total") == highest - 3
    assert _value(scrape, "wabulk_webhook_receipts_pending") == 2
    assert _value(scrape, "wabulk_webhook_receipts_given_up") == 1
    lag = _value(scrape, "wabulk_webhook_receipts_lag_seconds")
    assert 600 <= lag <= 600 + (after - now).total_seconds()

    # Nothing waits once the receipts are processed: the lag falls to zero.
    with db.session() as session:
        session.execute(update(WebhookReceipt).values(processed_at=utcnow()))
    assert _value(_scrape(app), "wabulk_webhook_receipts_lag_seconds") == 0


@contextmanager
def _counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_scrape_costs_the_same_statements_however_many_campaigns_finished(dual, settings) -> None:
    app, db = dual
    _configure(app, metrics_token=TOKEN)
    sender = make_sender(db, "Shop phone")
    lst = make_contacts(db, phones(2), "Customers")
    make_campaign(db, [lst], [sender], name="Running")
    _worker(db, "alpha")
    _scrape(app)  # the first request warms the pool and the caches
    with _counting(db) as few:
        _scrape(app)

    for i in range(30):
        finished = make_campaign(db, [lst], [sender], name=f"Old {i}")
        with db.session() as session:
            session.execute(
                update(Campaign)
                .where(Campaign.id == finished)
                .values(status=CampaignStatus.COMPLETED, n_queued=0, n_sent=2)
            )
    with _counting(db) as many:
        scrape = _scrape(app)
    assert len(many) == len(few), (few, many)
    assert len(few) <= 12, few
    assert _value(scrape, "wabulk_campaigns", status="completed") == 30
    assert len({d["campaign_id"] for d in _names(scrape, "wabulk_campaign_messages")}) == 1
    assert not any("FROM messages" in s for s in many)


# --- over real HTTP -----------------------------------------------------------------------


def test_a_real_server_answers_probes_and_scrapes_without_a_cookie(migrated_db, settings) -> None:
    db = migrated_db
    instance = Path(settings.instance_path)
    with running_server(
        instance,
        "--no-worker",
        WABULK_DATABASE_URL=db.engine.url.render_as_string(hide_password=False),
        WABULK_SECRET_KEY=settings.secret_key,
        WABULK_METRICS_TOKEN=TOKEN,
    ) as server:
        for path in ("/healthz", "/readyz"):
            status, headers, body = http_get(server.url + path)
            assert (status, body) == (200, "ok\n"), path
            assert "Set-Cookie" not in headers
        status, headers, body = http_get(server.url + "/metrics")
        assert status == 401 and "Set-Cookie" not in headers
        status, headers, _body = http_get(server.url + "/contacts/")
        assert status == 302  # to sign in (or to set up the first user)
        import urllib.request

        url, auth = server.url + "/metrics", {"Authorization": f"Bearer {TOKEN}"}
        request = urllib.request.Request(url, headers=auth)  # noqa: S310 (our loopback server)
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            assert response.status == 200
            assert response.headers["Content-Type"] == EXPOSITION
            assert response.headers.get("Set-Cookie") is None
            names = {f.name for f in text_string_to_metric_families(response.read().decode())}
    assert {
        "wabulk_campaign_messages",
        "wabulk_workers",
        "wabulk_webhook_receipts_lag_seconds",
    } <= names
