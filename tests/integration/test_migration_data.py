"""Every migration from the first to head, and back, with a shop's data in the database.

An installation upgrades with its contacts, campaigns and history in place. Rows are put
in with plain SQL at three early revisions (as the code of that time wrote them: only the
columns that existed then), the schema is upgraded step by step to head, and the rows are
read back through today's models: counts, a campaign's counters against its rows, a
sender's pacing and settings, and what the later revisions computed (list member counts,
contact tallies, per-slot message outcomes) or defaulted. Then each migration is undone
in turn down to the first (tables added later go; the rows of the tables that stay keep
their meaning, except what a downgrade documents it drops), and the schema is upgraded to
head once more. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select, text

from wabulk import migrate
from wabulk.campaigns.service import campaign_counts_by_status
from wabulk.db import Database
from wabulk.models import (
    Base,
    Campaign,
    Contact,
    ContactList,
    Message,
    MessageStatus,
    Sender,
    User,
    Worker,
)

# The data of each stage, by the revision it is written at.
FIRST, SECOND, THIRD = "0001", "0005", "0009"


def _revisions() -> list[str]:
    """Every revision, first to head (later migrations join the walk as they land)."""
    script = ScriptDirectory.from_config(migrate.alembic_config(None))  # type: ignore[arg-type]
    return [r.revision for r in reversed(list(script.walk_revisions()))]


REVISIONS = _revisions()

# Campaign 1's messages, one per status (contact id → status), with the times each had.
STATUSES = {
    1: "queued",
    2: "sending",
    3: "sent",
    4: "delivered",
    5: "read",
    6: "failed",
    7: "skipped",
    8: "unknown",
}
SENDER_SETTINGS = {"latency_seconds": 0.02, "failure_rate": 0.1}


def _at(conn: Connection, day: int, hour: int = 10, minute: int = 0) -> str:
    """A UTC time as each database's column takes it from plain SQL."""
    stamp = f"2026-11-{day:02d} {hour:02d}:{minute:02d}:00"
    return stamp + ("+00:00" if conn.dialect.name == "postgresql" else ".000000")


def _put(conn: Connection, table: str, **values: Any) -> None:
    def value(v: Any) -> Any:
        return json.dumps(v) if isinstance(v, dict | list) else v

    columns = ", ".join(values)
    marks = ", ".join(f":{name}" for name in values)
    conn.execute(
        text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"),  # noqa: S608
        {name: value(v) for name, v in values.items()},
    )


def _count(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def _counts(conn: Connection, tables: list[str]) -> dict[str, int]:
    return {table: _count(conn, table) for table in tables}


def _first_stage(conn: Connection) -> None:
    """Revision 0001: users, contacts in lists, an import, a template with a document,
    two senders, a running campaign with a message in every status, events, a reply."""
    t = _at(conn, 20)
    for uid, email, role in (
        (1, "owner@shop.example", "admin"),
        (2, "clerk@shop.example", "operator"),
    ):
        _put(conn, "users", id=uid, email=email, password_hash="$argon2id$v=19$m=8,t=1,p=1$x",
             role=role, is_active=True, timezone="Asia/Kolkata", created_at=t)  # fmt: skip
    _put(conn, "api_tokens", id=1, user_id=2, name="Shop site", token_hash="a" * 64,
         prefix="wab_abcd", created_at=t)  # fmt: skip
    _put(conn, "app_settings", key="business_country", value="IN", updated_at=t)
    _put(conn, "login_failures", id=1, key="ip:127.0.0.1", at=t)
    _put(conn, "contact_lists", id=1, name="Regulars", description="Came twice", created_at=t)
    _put(conn, "contact_lists", id=2, name="Walk-ins", created_at=t)
    for cid in range(1, 9):
        opted = (
            {"opted_out_at": _at(conn, 21), "opt_out_reason": "Asked to stop"} if cid == 8 else {}
        )
        _put(conn, "contacts", id=cid, phone=f"+91987650000{cid}", name=f"Person {cid}",
             attributes={"city": "Pune", "visits": cid}, country="IN", created_at=t,
             updated_at=t, **opted)  # fmt: skip
        _put(conn, "contact_list_members", list_id=1, contact_id=cid, added_at=t)
    for cid in (6, 7, 8):
        _put(conn, "contact_list_members", list_id=2, contact_id=cid, added_at=t)
    _put(conn, "imports", id=1, kind="contacts", status="completed", original_name="regulars.csv",
         stored_path="imports/1.csv", sha256="b" * 64, list_id=1, mapping={"phone": "Mobile"},
         default_country="IN", rows_done=9, rows_total=9, rows_read=9, created_count=8,
         updated_count=0, unchanged_count=0, invalid_count=1, duplicate_count=0,
         opted_out_count=0, created_by_id=2, created_at=t, finished_at=t)  # fmt: skip
    _put(conn, "import_issues", id=1, import_id=1, row_number=7, rejected=True,
         reason="Not a phone number", cells={"Mobile": "12"})  # fmt: skip
    _put(conn, "media", id=1, sha256="c" * 64, original_name="menu.pdf", size=48213,
         mime_type="application/pdf", stored_path="media/c.pdf", created_at=t)  # fmt: skip
    _put(conn, "templates", id=1, name="Diwali", body="Hi {{ name }}, our menu:", media_id=1,
         cloud_parameters=[], created_at=t, updated_at=t)  # fmt: skip
    _put(conn, "senders", id=1, name="Rehearsal", channel="dry_run", settings=SENDER_SETTINGS,
         state="linked", min_delay_seconds=1.0, max_delay_seconds=3.0, max_per_second=2.5,
         daily_cap=500, active_from="09:00:00", active_until="20:00:00", break_every=50,
         break_seconds=60, timezone="Asia/Kolkata", created_at=t, updated_at=t)  # fmt: skip
    _put(conn, "senders", id=2, name="Shop phone", channel="whatsapp_web", settings={},
         state="needs_link", state_reason="Scan the QR code", min_delay_seconds=5.0,
         max_delay_seconds=12.0, timezone="UTC", created_at=t, updated_at=t)  # fmt: skip
    counters = {f"n_{s}": n for s, n in Counter(STATUSES.values()).items()}
    _put(conn, "campaigns", id=1, name="Diwali offer", status="running", template_id=1,
         body="Hi {{ name }}, our menu:", media_id=1, pacing={"per_second": 1}, max_attempts=3,
         total=8, n_replied=1, created_by_id=2, created_at=t, launched_at=_at(conn, 22),
         **counters)  # fmt: skip
    _put(conn, "campaigns", id=2, name="New year", status="draft", body="Happy new year",
         pacing={}, max_attempts=3, total=0, n_queued=0, n_sending=0, n_sent=0, n_delivered=0,
         n_read=0, n_failed=0, n_skipped=0, n_unknown=0, n_replied=0, created_at=t)  # fmt: skip
    _put(conn, "campaign_lists", campaign_id=1, list_id=1)
    _put(conn, "campaign_senders", campaign_id=1, sender_id=1)
    _put(conn, "campaign_senders", campaign_id=1, sender_id=2)
    for cid, status in STATUSES.items():
        times: dict[str, Any] = {}
        if status in ("sent", "delivered", "read", "unknown", "sending"):
            times["sending_at"] = _at(conn, 22, 10, cid)
        if status in ("sent", "delivered", "read"):
            times["sent_at"] = _at(conn, 22, 10, cid)
            times["provider_message_id"] = f"dry-{cid}"
        if status in ("delivered", "read"):
            times["delivered_at"] = _at(conn, 22, 10, 20 + cid)
        if status == "read":
            times["read_at"] = _at(conn, 22, 11)
            times["replied_at"] = _at(conn, 22, 11, 5)
        if status == "failed":
            times.update(failed_at=_at(conn, 22, 10, 6), error_code="not_on_whatsapp",
                         error_detail="This number is not on WhatsApp")  # fmt: skip
        if status == "sending":
            times.update(lease_owner="shop-pc:4242:abcd", lease_until=_at(conn, 22, 10, 4))
        _put(conn, "messages", id=cid, campaign_id=1, contact_id=cid,
             phone=f"+91987650000{cid}", body=f"Hi Person {cid}, our menu:", status=status,
             sender_id=None if status in ("queued", "skipped") else 1,
             attempts=0 if status == "queued" else 1, next_attempt_at=_at(conn, 22),
             queued_at=_at(conn, 22), updated_at=_at(conn, 22, 12), **times)  # fmt: skip
    _put(conn, "events", id=1, at=_at(conn, 22), level="info", kind="campaign.launched",
         text="Diwali offer launched.", user_id=2, campaign_id=1,
         data={"recipients": 8})  # fmt: skip
    _put(conn, "events", id=2, at=_at(conn, 22, 10, 6), level="warning", kind="message.failed",
         text="Not on WhatsApp.", campaign_id=1, message_id=6, data={})  # fmt: skip
    _put(conn, "events", id=3, at=t, level="info", kind="user.login", text="Signed in.",
         user_id=1, data={})  # fmt: skip
    _put(conn, "inbound", id=1, phone="+919876500005", contact_id=5, campaign_id=1,
         message_id=5, sender_id=1, provider_message_id="in-1", kind="text",
         body="Yes please", received_at=_at(conn, 22, 11, 5))  # fmt: skip


def _second_stage(conn: Connection) -> None:
    """Revision 0005: a server-side session, a Web sender in use, a number found not on
    WhatsApp, a campaign with its text before the document, a demo contact."""
    t = _at(conn, 25)
    _put(conn, "user_sessions", id=1, user_id=1, key_hash="d" * 64, created_at=t,
         last_seen_at=t, user_agent="Firefox")  # fmt: skip
    _put(conn, "senders", id=3, name="Back office", channel="whatsapp_web", settings={},
         state="in_use", state_reason="Open on another computer", min_delay_seconds=5.0,
         max_delay_seconds=12.0, timezone="UTC", link_takeover=True, created_at=t,
         updated_at=t)  # fmt: skip
    _put(conn, "contacts", id=9, phone="+919876500009", name="Person 9", attributes={},
         not_on_whatsapp_at=t, is_demo=True, created_at=t, updated_at=t)  # fmt: skip
    conn.execute(
        text("UPDATE campaigns SET text_before_document = :yes WHERE id = 2"), {"yes": True}
    )
    conn.execute(text("UPDATE tallies SET n = n + 1 WHERE key = 'contacts'"))


def _third_stage(conn: Connection) -> None:
    """Revision 0009: a Cloud API sender (limited) with a template, a webhook receipt, a
    finish-by campaign, a remembered sheet, the Inbox (a conversation, an answer, a note,
    a quick reply), a webhook endpoint with a delivery, a reply known only by WhatsApp id."""
    t = _at(conn, 28)
    _put(conn, "senders", id=4, name="Cloud line", channel="cloud_api",
         settings={"phone_number_id": "1055", "waba_id": "2077"}, state="limited",
         limited_until=_at(conn, 29), health={"quality": "YELLOW"}, min_delay_seconds=0.0,
         max_delay_seconds=0.0, max_per_second=20.0, timezone="UTC", created_at=t,
         updated_at=t)  # fmt: skip
    _put(conn, "cloud_templates", id=1, sender_id=4, provider_id="tpl-1", name="diwali_offer",
         language="en", category="MARKETING", status="APPROVED", parameter_format="POSITIONAL",
         components=[{"type": "BODY", "text": "Hi {{1}}"}], synced_at=t)  # fmt: skip
    _put(conn, "webhook_receipts", id=1, sender_id=4, body=b'{"entry": []}',
         body_sha256="e" * 64, received_at=t, processed_at=t, attempts=1)  # fmt: skip
    _put(conn, "campaigns", id=3, name="Weekend", status="scheduled", body="",
         cloud_template={"name": "diwali_offer", "language": "en"}, pacing={}, max_attempts=3,
         scheduled_at=_at(conn, 29), ends_at=_at(conn, 30), total=0, n_queued=0, n_sending=0,
         n_sent=0, n_delivered=0, n_read=0, n_failed=0, n_skipped=0, n_unknown=0, n_replied=0,
         created_at=t)  # fmt: skip
    _put(conn, "sheet_mappings", id=1, kind="contacts", header_sha256="f" * 64,
         mapping={"phone": "Mobile", "name": "Name"}, updated_at=t)  # fmt: skip
    _put(conn, "quick_replies", id=1, name="Opening hours", body="We open at 9.",
         created_by_id=2, created_at=t, updated_at=t)  # fmt: skip
    _put(conn, "conversations", id=1, contact_id=5, sender_id=1, campaign_id=1, assignee_id=2,
         state="open", unread=0, last_activity_at=t, last_inbound_at=_at(conn, 22, 11, 5),
         preview="We open at 9.", created_at=t, updated_at=t)  # fmt: skip
    _put(conn, "messages", id=9, campaign_id=None, contact_id=5, phone="+919876500005",
         body="We open at 9.", status="sent", sender_id=1, attempts=1, queued_at=t,
         sent_at=t, updated_at=t)  # fmt: skip
    _put(conn, "answers", message_id=9, conversation_id=1, author_id=2, quick_reply_id=1,
         created_at=t)  # fmt: skip
    _put(conn, "conversation_notes", id=1, conversation_id=1, user_id=2,
         body="Regular since 2019", at=t)  # fmt: skip
    _put(conn, "webhook_endpoints", id=1, name="Shop site", url="https://shop.example/hook",
         secret="sealed:xyz", secret_hint="wxyz", events=["message.read"], active=True,
         created_at=t, updated_at=t)  # fmt: skip
    _put(conn, "outbox_events", id=1, endpoint_id=1, event_id="evt_1", event="message.read",
         payload={"message_id": 5}, status="delivered", attempts=1, created_at=t,
         next_attempt_at=t, delivered_at=t, last_code=200)  # fmt: skip
    _put(conn, "inbound", id=2, phone=None, wa_user_id="wa-77", sender_id=4,
         provider_message_id="in-2", kind="text", body="Hello?", received_at=t)  # fmt: skip


# What each stage put in, per table, once every stage ran (the tables of 0001 first).
AT_HEAD = {
    "users": 2, "api_tokens": 1, "app_settings": 1, "login_failures": 1, "contact_lists": 2,
    "contacts": 9, "contact_list_members": 11, "imports": 1, "import_issues": 1, "media": 1,
    "templates": 1, "senders": 4, "campaigns": 3, "campaign_lists": 1, "campaign_senders": 2,
    "messages": 9, "events": 3, "inbound": 2, "user_sessions": 1, "cloud_templates": 1,
    "webhook_receipts": 1, "sheet_mappings": 1, "quick_replies": 1, "conversations": 1,
    "answers": 1, "conversation_notes": 1, "webhook_endpoints": 1, "outbox_events": 1,
}  # fmt: skip
FIRST_TABLES = list(AT_HEAD)[:18]


def _check_derived(conn: Connection) -> None:
    """What 0004 computed from the rows: member counts, contact tallies, outcome slots."""
    members: dict[str, int] = dict(
        conn.execute(text("SELECT name, member_count FROM contact_lists")).all()
    )
    assert members == {"Regulars": 8, "Walk-ins": 3}
    tallies: dict[str, int] = dict(conn.execute(text("SELECT key, n FROM tallies")).all())
    assert tallies["contacts"] >= 8 and tallies["contacts_opted_out"] == 1, tallies
    outcomes: dict[str, int] = dict(
        conn.execute(text("SELECT kind, sum(n) FROM message_stats GROUP BY kind")).all()
    )
    assert outcomes == {"sent": 3, "delivered": 2, "read": 1, "replied": 1, "failed": 1}
    failed = conn.execute(
        text("SELECT code, campaign_id, sender_id FROM message_stats WHERE kind = 'failed'")
    ).one()
    assert tuple(failed) == ("not_on_whatsapp", 1, 1)


def _check_meaning_at_head(db: Database) -> None:
    """Today's models read every row of every table, and they mean what was written."""
    with db.session() as session:
        for mapper in Base.registry.mappers:  # enums, JSON and times all parse
            session.scalars(select(mapper.class_)).all()
        assert campaign_counts_by_status(session, 1) == dict(Counter(STATUSES.values()))
        diwali = session.get(Campaign, 1)
        assert diwali is not None and diwali.status.value == "running" and diwali.total == 8
        counters = {s: getattr(diwali, f"n_{s}") for s in STATUSES.values()}
        assert counters == campaign_counts_by_status(session, 1) and diwali.n_replied == 1
        assert (diwali.segment_id, diwali.parent_campaign_id, diwali.ends_at) == (None, None, None)
        assert not diwali.text_before_document and not diwali.is_demo
        assert session.get(Campaign, 2).text_before_document  # type: ignore[union-attr]
        assert session.get(Campaign, 3).ends_at.day == 30  # type: ignore[union-attr]
        rehearsal = session.get(Sender, 1)
        assert rehearsal is not None
        assert rehearsal.settings == SENDER_SETTINGS and rehearsal.channel.value == "dry_run"
        assert (rehearsal.min_delay_seconds, rehearsal.max_delay_seconds) == (1.0, 3.0)
        assert (rehearsal.max_per_second, rehearsal.daily_cap) == (2.5, 500)
        assert str(rehearsal.active_from) == "09:00:00" and rehearsal.timezone == "Asia/Kolkata"
        assert rehearsal.health == {} and not rehearsal.link_takeover  # defaults of 0003, 0006
        assert (rehearsal.worker_label, rehearsal.pace_next_at) == (None, None)  # 0011
        states = dict(session.execute(select(Sender.name, Sender.state)).all())
        assert {k: v.value for k, v in states.items()} == {
            "Rehearsal": "linked", "Shop phone": "needs_link", "Back office": "in_use",
            "Cloud line": "limited",
        }  # fmt: skip
        person = session.get(Contact, 4)
        assert person is not None and person.attributes == {"city": "Pune", "visits": 4}
        assert person.not_on_whatsapp_at is None and person.wa_user_id is None
        failed = session.scalar(select(Message).where(Message.status == MessageStatus.FAILED))
        assert failed is not None and failed.error_code == "not_on_whatsapp"
        sending = session.scalar(select(Message).where(Message.status == MessageStatus.SENDING))
        assert sending is not None and sending.lease_owner == "shop-pc:4242:abcd"
        regulars = session.scalar(select(ContactList).where(ContactList.name == "Regulars"))
        assert regulars is not None and regulars.member_count == 8
        assert session.scalars(select(Worker)).all() == []
        owner = session.scalar(select(User).where(User.email == "owner@shop.example"))
        assert owner is not None and owner.role.value == "admin" and owner.language is None


def test_upgrade_step_by_step_with_data_then_down_to_the_first_and_up_again(
    database_url: str,
) -> None:
    db = Database(database_url)
    engine = db.engine
    try:
        migrate.upgrade(engine, FIRST)
        with engine.begin() as conn:
            _first_stage(conn)
        for revision in REVISIONS[1 : REVISIONS.index(SECOND) + 1]:
            migrate.upgrade(engine, revision)
        with engine.begin() as conn:
            _check_derived(conn)
            _second_stage(conn)
        for revision in REVISIONS[REVISIONS.index(SECOND) + 1 : REVISIONS.index(THIRD) + 1]:
            migrate.upgrade(engine, revision)
        with engine.begin() as conn:
            _third_stage(conn)
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
        with engine.connect() as conn:
            if db.is_sqlite:  # migrations turn them off to rebuild tables, and back on
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert _counts(conn, list(AT_HEAD)) == AT_HEAD
            _check_derived(conn)
        _check_meaning_at_head(db)

        # Down, one migration at a time, to the first.
        for revision in reversed(REVISIONS[:-1]):
            migrate.downgrade(engine, revision)
            assert migrate.current_revision(engine) == revision
            _check_after_downgrade(db, revision)

        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
        with engine.connect() as conn:
            back = _counts(conn, FIRST_TABLES)
            _check_derived(conn)  # computed again from the rows that stayed
        assert back == {**{t: AT_HEAD[t] for t in FIRST_TABLES}, "messages": 8, "inbound": 1}
        with db.session() as session:
            for mapper in Base.registry.mappers:
                session.scalars(select(mapper.class_)).all()
            assert campaign_counts_by_status(session, 1) == dict(Counter(STATUSES.values()))
            states = {s.name: s.state.value for s in session.scalars(select(Sender))}
            assert states["Back office"] == "needs_link" and states["Cloud line"] == "needs_link"
    finally:
        db.dispose()


def _check_after_downgrade(db: Database, revision: str) -> None:
    """The tables that remain at `revision` keep their rows, but for what the downgrades
    say they drop: answers (0009: a message with no campaign cannot exist before it) and
    replies known only by a WhatsApp id (0006: a reply had a phone before it)."""
    tables = set(inspect(db.engine).get_table_names())
    if revision < "0012":
        assert "language" not in {c["name"] for c in inspect(db.engine).get_columns("users")}
    if revision < "0011":
        assert "workers" not in tables
    if revision < "0009":
        assert not {"answers", "conversations", "outbox_events", "quick_replies"} & tables
    if revision < "0005":
        assert "user_sessions" not in tables
    if revision < "0004":
        assert "message_stats" not in tables and "tallies" not in tables
    expected = {t: AT_HEAD[t] for t in FIRST_TABLES}
    if revision < "0009":
        expected["messages"] = 8
    if revision < "0006":
        expected["inbound"] = 1
    with db.engine.connect() as conn:
        assert _counts(conn, FIRST_TABLES) == expected, revision
        # A campaign's counters still match its rows; a sender's settings are untouched.
        rows = dict(
            conn.execute(
                text("SELECT status, count(*) FROM messages WHERE campaign_id = 1 GROUP BY status")
            ).all()
        )
        assert rows == dict(Counter(STATUSES.values())), revision
        counters = conn.execute(
            text(
                "SELECT total, n_queued, n_sent, n_read, n_failed, n_replied "
                "FROM campaigns WHERE id = 1"
            )
        ).one()
        assert tuple(counters) == (8, 1, 1, 1, 1, 1), revision
        settings = conn.execute(text("SELECT settings FROM senders WHERE id = 1")).scalar_one()
        settings = json.loads(settings) if isinstance(settings, str) else settings
        assert settings == SENDER_SETTINGS, revision
        members = conn.execute(text("SELECT count(*) FROM contact_list_members WHERE list_id = 1"))
        assert members.scalar_one() == 8
        states = dict(conn.execute(text("SELECT name, state FROM senders")).all())
        if revision < "0006":  # `limited` did not exist: the account must be linked again
            assert states["Cloud line"] == "needs_link", states
        if revision < "0003":  # nor `in_use`
            assert states["Back office"] == "needs_link", states
        body = conn.execute(text("SELECT body FROM messages WHERE id = 3")).scalar_one()
        assert body == "Hi Person 3, our menu:"
