"""PostgreSQL connections dropped mid-campaign: the worker and the web app reconnect, and
every message ends exactly once.

Connections are ended by the server itself (`pg_terminate_backend`), as a restart or a
failover does, and only this test's own: each test has a schema of its own and its
connections carry that schema's name as their application_name (tests/conftest.py), since
other test runs share the server.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import make_url

from tests.campaigns_support import (
    FakeClock,
    assert_counters_exact,
    assert_each_sent_once,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
    step_through_failures,
)
from tests.conftest import PASSWORD
from tests.load_support import sign_in
from tests.support import run_wabulk, running_server
from wabulk import migrate
from wabulk.app import create_app
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.channels.dry_run import log_path, read_log
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import Campaign, ContactList, Message, Role

pytestmark = pytest.mark.postgres

EMAIL = "watcher@shop.example"


def _terminate(server_url: str, *, pid: int | None = None, name: str | None = None) -> int:
    """End one backend by its pid, or every backend named `name`; how many were ended.

    An argument left out is NULL, which matches no backend (an empty name would match
    every unnamed connection on the server, other runs' included)."""
    assert pid or name
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND (pid = :pid OR application_name = :name)"
                ),
                {"pid": pid, "name": name},
            )
            return len(ended.all())
    finally:
        admin.dispose()


def _delivered(instance: Path, sender: str) -> Counter[int]:
    return Counter(int(d["message_id"]) for d in read_log(log_path(instance, sender)))  # type: ignore[call-overload]


def test_a_connection_dropped_while_settling_loses_no_outcome(
    postgres_server: str, postgres_database: str, tmp_path: Path
) -> None:
    """The lane's settle is the one write that cannot be redone by sending again: the channel
    has taken the messages. Its connection is ended just as it writes 'sent'; the lane writes
    the same outcomes at its next step instead of leaving them `sending` for good."""
    db = Database(postgres_database)
    migrate.upgrade(db.engine)
    try:
        list_id = make_contacts(db, phones(60), "Everyone")
        sender = make_sender(db, "Rehearsal")
        campaign_id = make_campaign(db, [list_id], [sender])
        dropped: list[int] = []

        @event.listens_for(db.engine, "before_cursor_execute")
        def drop_at_first_settle(conn, cursor, statement, params, context, many) -> None:  # type: ignore[no-untyped-def]
            if dropped or "status = 'sent'" not in statement:
                return
            pid = conn.connection.dbapi_connection.info.backend_pid
            dropped.append(_terminate(postgres_server, pid=pid))

        clock = FakeClock()
        failures = len(step_through_failures(make_lane(db, sender, tmp_path, clock), clock))

        assert dropped == [1], "the settle's connection was not ended"
        assert failures == 1  # the step that lost its connection, and only it
        assert_each_sent_once(db, campaign_id, tmp_path, "Rehearsal")
    finally:
        db.dispose()


def test_a_connection_dropped_after_a_claim_commits_leaves_no_message_behind(
    postgres_server: str, postgres_database: str, tmp_path: Path
) -> None:
    """A claim commits, then its texts are written in a second transaction; the connection
    is ended just then. The claimed messages were never handed to the channel: the lane's
    next step puts them back in the queue (recovery skips a live worker's own messages, so
    nothing else would until a restart), and each is then sent once."""
    db = Database(postgres_database)
    migrate.upgrade(db.engine)
    try:
        list_id = make_contacts(db, phones(60), "Everyone")
        sender = make_sender(db, "Rehearsal")
        campaign_id = make_campaign(db, [list_id], [sender])
        dropped: list[int] = []

        @event.listens_for(db.engine, "before_cursor_execute")
        def drop_at_first_texts(conn, cursor, statement, params, context, many) -> None:  # type: ignore[no-untyped-def]
            if dropped or not statement.startswith("UPDATE messages SET body"):
                return
            pid = conn.connection.dbapi_connection.info.backend_pid
            dropped.append(_terminate(postgres_server, pid=pid))

        clock = FakeClock()
        failures = len(step_through_failures(make_lane(db, sender, tmp_path, clock), clock))

        assert dropped == [1] and failures == 1
        assert_each_sent_once(db, campaign_id, tmp_path, "Rehearsal")
    finally:
        db.dispose()


# A worker and a web process through repeated drops (about 20 s): make test-slow.
@pytest.mark.slow
def test_worker_and_web_reconnect_when_postgres_drops_every_connection(
    postgres_server: str, postgres_database: str, tmp_path: Path
) -> None:
    """`wabulk serve` on PostgreSQL runs a campaign; its connections are all ended again and
    again while it sends and while pages are read. Pages keep answering, the campaign
    completes, and the channel saw each message exactly once."""
    instance = tmp_path / "instance"
    env = {"WABULK_DATABASE_URL": postgres_database}
    assert run_wabulk(instance, "db", "upgrade", **env).returncode == 0
    created = run_wabulk(
        instance, "user", "create", "--email", EMAIL, "--role", "viewer", "--password-stdin",
        input=PASSWORD + "\n", **env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    recipients = 400
    db = Database(postgres_database)
    try:
        list_id = make_contacts(db, phones(recipients), "Everyone")
        # A little latency per message, so the campaign is still sending across the drops.
        sender = make_sender(db, "Rehearsal", settings={"latency_seconds": 0.01})
        campaign_id = make_campaign(db, [list_id], [sender], name="Reconnect")
    finally:
        db.dispose()
    schema = make_url(postgres_database).query["application_name"]

    with running_server(instance, **env) as server:
        client = sign_in(server.url, EMAIL, PASSWORD)
        answers: list[int] = []
        rounds = 0
        progress: dict = {}
        deadline = time.monotonic() + 240  # a safety net for a stuck run, not a speed check
        while time.monotonic() < deadline:
            live = client.request(f"/live/campaigns.json?ids={campaign_id}")
            status, body = live.status, live.body
            answers.append(status)
            if status == 200:
                progress = json.loads(body)["campaigns"][0]
                if progress["status"] == "completed":
                    break
            if rounds < 8 and 0 < progress.get("sent", 0) < recipients:
                # Every connection of the server, the web's and the dispatcher's alike.
                if _terminate(postgres_server, name=schema):
                    rounds += 1
                for page in ("/", "/campaigns", f"/campaigns/{campaign_id}"):
                    answers.append(client.request(page).status)
            time.sleep(0.2)
        log = "".join(server.output)

    assert rounds >= 2, f"the campaign ended before its connections could be dropped: {log}"
    assert progress.get("status") == "completed", (progress, log[-3000:])
    assert progress["sent"] == recipients and progress["failed"] == 0
    assert set(answers) == {200}, Counter(answers)
    db = Database(postgres_database)
    try:
        with db.session() as session:
            ids = set(session.scalars(select(Message.id).where(Message.campaign_id == campaign_id)))
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None and campaign.n_sent == recipients
        assert_counters_exact(db, campaign_id)
    finally:
        db.dispose()
    delivered = _delivered(instance, "Rehearsal")
    assert set(delivered) == ids and set(delivered.values()) == {1}


def test_a_request_whose_connection_drops_is_a_503_sentence_and_the_next_one_works(
    postgres_server: str, postgres_database: str, settings: Settings
) -> None:
    """The server ends a page's connection in the middle of its write: that request answers
    503 with a sentence (not a 500, not the driver's words), and the next request, on a new
    connection, does the write."""
    app = create_app(settings, database_url=postgres_database)
    app.config["TESTING"] = True
    db: Database = app.extensions["wabulk.db"]
    migrate.upgrade(db.engine)
    try:
        with db.session() as session:
            user = users.create_user(session, None, "op@x.example", PASSWORD, Role.OPERATOR)
            secret = tokens.create_token(session, user, "tests").secret
        api = {"Authorization": f"Bearer {secret}"}
        dropped: list[int] = []

        @event.listens_for(db.engine, "before_cursor_execute")
        def drop_at_insert(conn, cursor, statement, params, context, many) -> None:  # type: ignore[no-untyped-def]
            if dropped or not statement.startswith("INSERT INTO contact_lists"):
                return
            pid = conn.connection.dbapi_connection.info.backend_pid
            dropped.append(_terminate(postgres_server, pid=pid))

        client = app.test_client()
        first = client.post("/api/v1/lists", json={"name": "Spring"}, headers=api)
        assert dropped == [1]
        body = first.get_json()
        assert first.status_code == 503 and first.headers["Retry-After"], body
        assert body["error"]["code"] == "unavailable"
        assert "try again" in body["error"]["message"].lower()
        assert "terminat" not in body["error"]["message"]
        again = client.post("/api/v1/lists", json={"name": "Spring"}, headers=api)
        assert again.status_code == 201, again.get_json()
        with db.session() as session:
            assert list(session.scalars(select(ContactList.name))) == ["Spring"]
    finally:
        db.dispose()
