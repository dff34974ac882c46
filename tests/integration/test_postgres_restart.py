"""A PostgreSQL restart in the middle of a campaign, as a worker and a web process see it.

The test server is shared, so the restart is played by a proxy in front of it
(tests/pg_proxy.py): every connection through it ends at once and, for a few seconds,
nothing listens on its port; then it listens again. A real `wabulk worker` and a real
`wabulk serve --no-worker` reach the database only through the proxy; the test reads the
database directly. Twice during the campaign the proxy goes down for five seconds.

After it: the campaign completes, the channel took every message exactly once, no message
is left `sending`, the campaign's counters equal its rows, and the web process answers the
session signed in before the outages (503 with a sentence while the database is away).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from tests.campaigns_support import (
    assert_counters_exact,
    make_campaign,
    make_sender,
    phones,
    status_counts,
)
from tests.conftest import PASSWORD, login
from tests.load_support import Client, sign_in
from tests.pg_proxy import PgProxy
from tests.support import WABULK, run_wabulk, running_server, wabulk_env
from wabulk import db as wabulk_db
from wabulk import migrate
from wabulk.app import create_app
from wabulk.auth import service as users
from wabulk.channels.dry_run import log_path, read_log
from wabulk.config import Settings
from wabulk.contacts.bulk import add_members
from wabulk.db import Database
from wabulk.models import (
    Campaign,
    Contact,
    ContactList,
    Message,
    MessageStatus,
    Role,
    utcnow,
)

pytestmark = pytest.mark.postgres

EMAIL = "night-shift@shop.example"
RECIPIENTS = 3000
OUTAGE_SECONDS = 5.0
DEADLINE = 240  # seconds: a net for a stuck run, not a speed check


def _audience(db: Database, n: int) -> int:
    """n contacts in one list, inserted in one statement; the list's id."""
    now = utcnow()
    with db.session() as session:
        lst = ContactList(name="Everyone")
        session.add(lst)
        session.flush()
        rows = [
            {"phone": p, "name": f"Person {i}", "attributes": {}, "created_at": now,
             "updated_at": now}
            for i, p in enumerate(phones(n))
        ]  # fmt: skip
        session.execute(insert(Contact), rows)
        ids = list(session.scalars(select(Contact.id).order_by(Contact.id)))
        lst.member_count = add_members(session, lst.id, ids, now)
        return lst.id


@contextmanager
def _worker(instance: Path, log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [WABULK, "worker"], env=wabulk_env(instance, **env), stdout=out, stderr=out
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _progress(db: Database, campaign_id: int) -> tuple[str, int]:
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.status.value, campaign.n_sent


def _wait(condition, what: str, seconds: float = DEADLINE):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _all_alive(procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    for proc, log in zip(procs, logs, strict=True):
        assert proc.poll() is None, log.read_text()[-3000:]


def _page_answers(client: Client, campaign_id: int) -> list[int]:
    return [
        client.request(path).status for path in ("/", "/campaigns", f"/campaigns/{campaign_id}")
    ]


@pytest.mark.slow  # 40-90 s each: two outages in a 3,000-message campaign
@pytest.mark.parametrize(
    ("workers", "lease", "outage"),
    [
        pytest.param(1, 10, OUTAGE_SECONDS, id="one-worker"),
        # Longer than the leases: each worker's claimed messages are past their lease when
        # the database comes back, and the other worker's recovery may reach them first.
        pytest.param(2, 5, 8.0, id="two-workers-outage-past-the-lease"),
    ],
)
def test_workers_and_web_come_back_after_postgres_restarts_twice(
    postgres_database: str, tmp_path: Path, workers: int, lease: int, outage: float
) -> None:
    instance = tmp_path / "instance"
    direct = {"WABULK_DATABASE_URL": postgres_database}
    assert run_wabulk(instance, "db", "upgrade", **direct).returncode == 0
    created = run_wabulk(
        instance, "user", "create", "--email", EMAIL, "--role", "viewer", "--password-stdin",
        input=PASSWORD + "\n", **direct,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    db = Database(postgres_database)  # the test's own view, not through the proxy
    try:
        list_id = _audience(db, RECIPIENTS)
        # A few milliseconds per message, so the campaign is still sending across both outages.
        sender = make_sender(db, "Rehearsal", settings={"latency_seconds": 0.003})
        campaign_id = make_campaign(db, [list_id], [sender], name="Restart")

        with PgProxy() as proxy:
            env = {
                "WABULK_DATABASE_URL": proxy.url(postgres_database),
                "WABULK_SECRET_KEY": "restart-test-secret-key",
                # Short leases: a message left `sending` would be reconciled within the test.
                "WABULK_LEASE_SECONDS": str(lease),
            }
            logs = [tmp_path / f"worker-{n}.log" for n in range(workers)]
            with ExitStack() as running:
                server = running.enter_context(running_server(instance, "--no-worker", **env))
                procs = [running.enter_context(_worker(instance, log, **env)) for log in logs]
                client = sign_in(server.url, EMAIL, PASSWORD)
                assert set(_page_answers(client, campaign_id)) == {200}
                ready = client.request("/readyz").status
                has_readyz = ready != 404
                assert ready in (200, 404), ready

                cut_at: list[int] = []
                during: list[int] = []
                readyz_during: list[int] = []
                for share in (0.1, 0.5):
                    # Wait for the worker to be sending (again) before each outage.
                    _wait(
                        lambda share=share: _progress(db, campaign_id)[1] >= RECIPIENTS * share,
                        f"{share:.0%} of the campaign sent",
                    )
                    with proxy.down():
                        cut_at.append(_progress(db, campaign_id)[1])
                        reconnected_from = proxy.accepted
                        started = time.monotonic()
                        during.extend(_page_answers(client, campaign_id))
                        if has_readyz:
                            readyz_during.append(client.request("/readyz").status)
                        _all_alive(procs, logs)
                        time.sleep(max(0.0, outage - (time.monotonic() - started)))
                    # Back: the same signed-in session reads pages again.
                    _wait(
                        lambda: set(_page_answers(client, campaign_id)) == {200},
                        "the pages to answer again",
                        120,
                    )
                    if has_readyz:
                        _wait(lambda: client.request("/readyz").status == 200, "/readyz", 120)

                status = _wait(
                    lambda: _progress(db, campaign_id)[0] == "completed" or None,
                    "the campaign to complete",
                )
                assert status
                live = client.request(f"/live/campaigns.json?ids={campaign_id}")
                assert live.status == 200, live.body[:500]
                shown = json.loads(live.body)["campaigns"][0]
                _all_alive(procs, logs)
                reconnections = proxy.accepted - reconnected_from

        assert all(n < RECIPIENTS for n in cut_at), ("the campaign ended before an outage", cut_at)
        assert len(cut_at) == 2 and cut_at[0] < cut_at[1], cut_at
        # While the database is away a page is a 503 with a sentence, never a 500.
        assert set(during) == {503}, (during, "".join(server.output)[-3000:])
        if has_readyz:
            assert readyz_during == [503, 503], readyz_during
        assert reconnections > 0  # the campaign's end went over new connections

        statuses = status_counts(db, campaign_id)
        with db.session() as session:
            ids = set(session.scalars(select(Message.id).where(Message.campaign_id == campaign_id)))
        unknown = statuses.get(MessageStatus.UNKNOWN, 0)
        assert MessageStatus.SENDING not in statuses, statuses
        assert statuses == {MessageStatus.SENT: RECIPIENTS}, (f"unknown: {unknown}", statuses)
        assert shown["sent"] == RECIPIENTS and shown["status"] == "completed", shown
        assert_counters_exact(db, campaign_id)
        delivered = Counter(
            int(d["message_id"])  # type: ignore[call-overload]
            for d in read_log(log_path(instance, "Rehearsal"))
        )
        assert set(delivered) == ids, len(ids - set(delivered))
        assert set(delivered.values()) == {1}, [m for m, n in delivered.items() if n > 1][:20]
    finally:
        db.dispose()


@contextmanager
def _signed_in(proxy: PgProxy, postgres_database: str, settings: Settings) -> Iterator[FlaskClient]:
    """A test client of an app reaching the schema through the proxy, signed in as a new
    viewer; the app's engine disposed afterwards."""
    app = create_app(settings, database_url=proxy.url(postgres_database))
    app.config["TESTING"] = True
    db: Database = app.extensions["wabulk.db"]
    migrate.upgrade(db.engine)
    try:
        with db.session() as session:
            users.create_user(session, None, EMAIL, PASSWORD, Role.VIEWER)
        client = app.test_client()
        assert login(client, EMAIL).status_code == 302
        yield client
    finally:
        db.dispose()


def test_a_page_while_the_database_is_away_is_a_503_sentence_for_a_signed_in_user(
    postgres_database: str, settings: Settings
) -> None:
    """Every page first reads the signed-in user's session row. With the server away that
    read fails, and so would the error page's frame reading the user again: the answer is
    still the 503 sentence (it was a 500). Once the server is back the same session works."""
    with PgProxy() as proxy, _signed_in(proxy, postgres_database, settings) as client:
        assert client.get("/").status_code == 200
        with proxy.down():
            away = client.get("/")
            api = client.get("/api/v1/lists")
        assert away.status_code == 503 and away.headers["Retry-After"]
        assert "could not be reached" in away.get_data(as_text=True)
        assert "Connection refused" not in away.get_data(as_text=True)
        assert api.status_code == 503 and api.get_json()["error"]["code"] == "unavailable"
        assert client.get("/").status_code == 200


def test_a_server_that_takes_connections_and_never_answers_is_given_up_on(
    postgres_database: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host hung in a failover takes TCP connections and says nothing. A page then waits
    for the connection's timeout (db.py), not psycopg's two minutes, and answers the 503
    sentence; once the server answers again, the same session reads pages."""
    monkeypatch.setattr(wabulk_db, "PG_CONNECT_TIMEOUT_SECONDS", 2)  # libpq's least
    with PgProxy() as proxy, _signed_in(proxy, postgres_database, settings) as client:
        answers: list[int] = []
        with proxy.silent():
            asking = threading.Thread(
                target=lambda: answers.append(client.get("/").status_code), daemon=True
            )
            asking.start()
            # Generous next to the 2 s set here; without it, psycopg's own 130 s applied.
            asking.join(60)
            assert not asking.is_alive(), "the page still waits for a server that is silent"
        assert answers == [503]
        assert client.get("/").status_code == 200
