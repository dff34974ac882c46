"""SQLite with web writes and worker settles at once: nobody sees "database is locked".

`wabulk serve` on SQLite (waitress threads, the dispatcher inside) sends an unpaced dry-run
campaign, settling hundreds of messages per transaction, while signed-in operators in
several threads sign in, opt contacts out and back in, move them between lists, and create
and rename lists through the pages. Every answer must be a redirect or a page (no 500, no
"database is locked" in any answer or in the log), every write must have landed, and every
message must end with its status recorded exactly once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from tests.campaigns_support import (
    FakeClock,
    assert_each_sent_once,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
    step_through_failures,
)
from tests.conftest import get_csrf
from tests.load_support import Answer, Client, add_user, bulk_contacts, sign_in
from tests.support import run_wabulk, running_server
from wabulk import db as wabulk_db
from wabulk import migrate
from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.models import ContactList, Role, User

PASSWORD = "a long pass phrase"
RECIPIENTS = 8_000
WRITERS = 6
OWN_CONTACTS = 5  # per writer, so writers never undo each other's changes
MAX_ROUNDS = 400  # per writer: a bound on traffic if the campaign is slow to finish
FINISH_WITHIN = 300  # seconds: a safety net for a stuck run, not a speed requirement
LOCKED = "database is locked"


def _write_round(
    client: Client, token: str, contacts: list[int], list_id: int, n: int
) -> list[Answer]:
    """One of each kind of write on the writer's own contacts and lists."""
    cid = contacts[n % len(contacts)]
    form = {"csrf_token": token}
    return [
        client.request("/contacts/bulk", {**form, "action": "opt_out", "contact_ids": str(cid),
                                          "reason": "Asked by phone"}),
        client.request(f"/contacts/{cid}/opt-in", {**form, "reason": "Asked again"}),
        client.request(f"/contacts/{cid}/lists", {**form, "list_id": str(list_id)}),
        client.request(f"/contacts/{cid}/lists", {**form, "remove": str(list_id)}),
        client.request(f"/contacts/lists/{list_id}/rename",
                       {**form, "name": f"Round {n} {list_id}"}),
    ]  # fmt: skip


# A minute of web writes beside a worker: make test-slow (the two cases below stay).
@pytest.mark.slow
def test_web_writes_beside_worker_settles_never_meet_a_locked_database(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    emails = [f"op{i}@shop.example" for i in range(WRITERS)]
    for email in emails:
        add_user(instance, email, PASSWORD, "operator")
    path = instance / "wabulk.db"
    audience = bulk_contacts(path, RECIPIENTS, "Audience")
    bulk_contacts(path, WRITERS * OWN_CONTACTS, "Bystanders", first=RECIPIENTS)
    with sqlite3.connect(path) as con:
        bystanders = [
            row[0]
            for row in con.execute(
                "SELECT contact_id FROM contact_list_members m JOIN contact_lists l "
                "ON l.id = m.list_id WHERE l.name = 'Bystanders' ORDER BY contact_id"
            )
        ]
    con.close()
    db = Database(f"sqlite:///{path}")
    try:
        sender = make_sender(db, "Rehearsal")
        campaign_id = make_campaign(db, [audience], [sender], name="Contention")
    finally:
        db.dispose()

    answers: list[Answer] = []
    rounds: Counter[int] = Counter()
    own_list: dict[int, int] = {}
    lock = threading.Lock()
    done = threading.Event()

    with running_server(instance) as server:

        def writer(i: int) -> None:
            client = sign_in(server.url, emails[i], PASSWORD)
            token = client.csrf("/contacts/")
            created = client.request("/contacts/lists", {"csrf_token": token, "name": f"W{i}"})
            with lock:
                answers.append(created)
            list_id = own_list[i] = _list_id(path, f"W{i}")
            mine = bystanders[i * OWN_CONTACTS : (i + 1) * OWN_CONTACTS]
            for n in range(MAX_ROUNDS):
                if done.is_set():
                    break
                got = _write_round(client, token, mine, list_id, n)
                with lock:
                    answers.extend(got)
                    rounds[i] += 1

        threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(WRITERS)]
        for t in threads:
            t.start()
        watcher = sign_in(server.url, emails[0], PASSWORD)
        progress: dict = {}
        writes_while_sending = 0
        deadline = time.monotonic() + FINISH_WITHIN
        try:
            while time.monotonic() < deadline:
                answer = watcher.request(f"/live/campaigns.json?ids={campaign_id}")
                assert answer.status == 200, answer
                progress = json.loads(answer.body)["campaigns"][0]
                if progress["status"] == "completed":
                    break
                with lock:
                    writes_while_sending = len(answers)
                time.sleep(0.2)
        finally:
            done.set()
            for t in threads:
                t.join(FINISH_WITHIN)
        log = "".join(server.output)

    file_log = (instance / "wabulk.log").read_text(errors="replace")
    statuses = Counter(a.status for a in answers)
    assert not [a for a in answers if a.status not in (200, 302)], statuses
    assert not [a for a in answers if LOCKED in a.body]
    assert LOCKED not in log and LOCKED not in file_log
    assert "Traceback" not in file_log, file_log[-3000:]
    # The writes overlapped the sending, and every one of them landed.
    assert writes_while_sending >= WRITERS, "the campaign finished before the writers began"
    with sqlite3.connect(path) as con:
        for i in range(WRITERS):
            assert rounds[i] > 0
            name, members = con.execute(
                "SELECT name, member_count FROM contact_lists WHERE id = ?", (own_list[i],)
            ).fetchone()
            assert (name, members) == (f"Round {rounds[i] - 1} {own_list[i]}", 0)
            mine = bystanders[i * OWN_CONTACTS : (i + 1) * OWN_CONTACTS]
            opted = con.execute(
                "SELECT count(*) FROM contacts WHERE opted_out_at IS NOT NULL "
                "AND id >= ? AND id <= ?",
                (mine[0], mine[-1]),
            ).fetchone()[0]
            assert opted == 0, i
    con.close()

    assert progress["status"] == "completed", (progress, log[-3000:])
    assert progress["sent"] == RECIPIENTS and progress["failed"] == 0
    db = Database(f"sqlite:///{path}")
    try:
        assert_each_sent_once(db, campaign_id, instance, "Rehearsal")
    finally:
        db.dispose()


def _list_id(path: Path, name: str) -> int:
    with sqlite3.connect(path) as con:
        row = con.execute("SELECT id FROM contact_lists WHERE name = ?", (name,)).fetchone()
    con.close()
    assert row, name
    return int(row[0])


def test_a_settle_that_meets_a_locked_database_is_written_at_the_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer holds SQLite's lock past the busy timeout just as the lane records what
    the channel took: that step fails, and the next writes the same outcomes, so no message
    is left `sending` (recovery skips a live worker's own messages) or sent twice."""
    monkeypatch.setattr(wabulk_db, "SQLITE_BUSY_TIMEOUT_MS", 50)  # the lock outlasts it
    path = tmp_path / "wabulk.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    blocker: list[sqlite3.Connection] = []
    try:
        list_id = make_contacts(db, phones(60), "Everyone")
        sender = make_sender(db, "Rehearsal")
        campaign_id = make_campaign(db, [list_id], [sender])

        @event.listens_for(db.engine, "before_cursor_execute")
        def lock_at_first_settle(conn, cursor, statement, params, context, many) -> None:  # type: ignore[no-untyped-def]
            if blocker or "status = 'sent'" not in statement:
                return
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            blocker.append(other)

        clock = FakeClock()
        lane = make_lane(db, sender, tmp_path, clock)
        # The other writer finishes once the lane's step has met its lock.
        failures = step_through_failures(lane, clock, lambda _exc: blocker[0].rollback())

        assert len(blocker) == 1 and len(failures) == 1 and LOCKED in str(failures[0])
        assert_each_sent_once(db, campaign_id, tmp_path, "Rehearsal")
    finally:
        for other in blocker:
            other.close()
        db.dispose()


def test_a_write_that_meets_a_locked_database_is_a_503_sentence_not_a_500(
    app: Flask,
    client: FlaskClient,
    db: Database,
    as_role: Callable[[Role], User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another writer holds SQLite's lock past the busy timeout: a page's write and an API
    call answer 503 with a sentence and Retry-After (never the driver's words), nothing
    half-done; once the lock is free the same requests succeed."""
    user = as_role(Role.OPERATOR)
    with db.session() as session:
        secret = tokens.create_token(session, session.merge(user), "tests").secret
    token = get_csrf(client, "/contacts/")
    monkeypatch.setattr(wabulk_db, "SQLITE_BUSY_TIMEOUT_MS", 50)  # the lock outlasts it
    db.engine.dispose()  # new connections take the short timeout
    api = {"Authorization": f"Bearer {secret}"}
    other = sqlite3.connect(str(db.engine.url.database), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        page = client.post("/contacts/lists", data={"csrf_token": token, "name": "Spring"})
        call = client.post("/api/v1/lists", json={"name": "Summer"}, headers=api)
    finally:
        other.rollback()
        other.close()
    text = page.get_data(as_text=True)
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "busy" in text and "nothing was changed" in text and "locked" not in text
    body = call.get_json()
    assert call.status_code == 503 and call.headers["Retry-After"]
    assert body["error"]["code"] == "busy" and "locked" not in body["error"]["message"]
    # Free again: the same requests go through.
    again = client.post("/contacts/lists", data={"csrf_token": token, "name": "Spring"})
    assert again.status_code == 302
    assert client.post("/api/v1/lists", json={"name": "Summer"}, headers=api).status_code == 201
    with db.session() as session:
        assert sorted(session.scalars(select(ContactList.name))) == ["Spring", "Summer"]
