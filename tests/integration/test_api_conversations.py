"""The Inbox over the REST API on SQLite and PostgreSQL: conversations listed and paged,
one with its timeline, team work (assign, done, reopen, notes, read, opt-out), answers
(including the refusals), quick replies for admins; roles and error codes as documented."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.campaigns_support import make_contacts, make_sender
from tests.inbound_support import campaign_for, claim_all, make_cloud_sender, settle_sent
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.channels.heard import Reply
from wabulk.db import Database
from wabulk.inbound.replies import store_replies
from wabulk.inbox import conversations as inbox
from wabulk.models import Answer, Contact, Message, Role, utcnow

from ..conftest import PASSWORD

_n = itertools.count(1)
FIRST, SECOND = "+919876500000", "+919876500001"


class Api:
    def __init__(self, app: Flask, secret: str, email: str) -> None:
        self.client, self.email = app.test_client(), email
        self.headers = {"Authorization": f"Bearer {secret}"}

    def __call__(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        response = self.client.open("/api/v1" + url, method=method, headers=self.headers, **kwargs)
        return response.status_code, response.get_json(silent=True)

    def walk(self, url: str, limit: int) -> list[int]:
        ids: list[int] = []
        cursor = ""
        sep = "&" if "?" in url else "?"
        for _ in range(100):
            status, page = self("GET", f"{url}{sep}limit={limit}&cursor={cursor}")
            assert status == 200, page
            ids += [row["id"] for row in page["data"]]
            if page["next_cursor"] is None:
                return ids
            cursor = page["next_cursor"]
        raise AssertionError("the cursor never ended")


def api_as(app: Flask, db: Database, role: Role) -> Api:
    email = f"{role.value}{next(_n)}@example.com"
    with db.session() as session:
        user = users.create_user(session, None, email, PASSWORD, role)
        secret = tokens.create_token(session, user, "tests").secret
    api = Api(app, secret, email)
    api.user_id = user.id  # type: ignore[attr-defined]
    return api


def error_of(body: dict[str, Any]) -> tuple[str, list[str | None]]:
    return body["error"]["code"], [d["field"] for d in body["error"]["details"]]


def hear(db: Database, sender_id: int, phone: str, text: str, at) -> None:
    with db.session() as session:
        store_replies(session, sender_id, [Reply(at, None, phone, text=text)], ("stop",), at)


@pytest.fixture
def seeded(dual: tuple[Flask, Database]):
    """A Cloud API campaign sent to two contacts who both replied, and six more quiet
    conversations on a WhatsApp Web (rehearsal) sender."""
    app, db = dual
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 2, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)  # after the launch
    settle_sent(db, claim_all(db, campaign_id, cloud, t0, "lane:1"), cloud, t0, "lane:1")
    hear(db, cloud, FIRST, "Price?", t0 + timedelta(seconds=1))
    hear(db, cloud, SECOND, "Do you deliver to Pune?", t0 + timedelta(seconds=2))
    web = make_sender(db, "Web")
    make_contacts(db, [f"+9198000{i:05d}" for i in range(6)], "Quiet")
    with db.session() as session:
        quiet = session.scalars(
            select(Contact.id).where(Contact.phone.like("+9198000%")).order_by(Contact.id)
        ).all()
        for contact_id in quiet:
            inbox.ensure(session, contact_id, web, t0 - timedelta(hours=1))
    return app, db, cloud, web, campaign_id, ids


def test_conversations_are_listed_paged_and_read_with_their_timeline(seeded) -> None:
    app, db, _cloud, _web, campaign_id, ids = seeded
    viewer = api_as(app, db, Role.VIEWER)
    everyone = viewer.walk("/conversations", 200)
    assert len(everyone) == 8
    assert viewer.walk("/conversations", 3) == everyone == viewer.walk("/conversations", 1)
    assert len(viewer.walk("/conversations?filter=unread", 2)) == 2
    assert viewer("GET", "/conversations/unread") == (200, {"unread": 2})
    status, page = viewer("GET", "/conversations?q=deliver")
    assert status == 200 and page["data"] == []  # names and numbers, not the words
    status, page = viewer("GET", "/conversations?q=500001")
    [row] = page["data"]
    assert row["phone"] == SECOND and row["preview"] == "Do you deliver to Pune?"
    assert (row["unread"], row["state"], row["campaign_id"]) == (1, "open", campaign_id)
    assert row["channel"] == "cloud_api" and row["campaign_name"] == "Sale"
    for bad in ("cursor=abc", "cursor=MTIz", "filter=everything", "limit=201"):
        status, body = viewer("GET", f"/conversations?{bad}")
        assert status == 422 and error_of(body)[0] == "invalid", bad
        assert error_of(body)[1] == [bad.split("=")[0]]

    status, one = viewer("GET", f"/conversations/{row['id']}")
    assert status == 200
    assert [(i["kind"], i["text"]) for i in one["timeline"]] == [
        ("out", "Hello Person 1"),
        ("in", "Do you deliver to Pune?"),
    ]
    assert one["timeline"][0]["id"] == ids[1] and one["timeline"][0]["status"] == "sent"
    assert one["window_open"] is True and one["window_closes_at"] is not None
    assert one["lists"] == [{"id": one["lists"][0]["id"], "name": "List Sale"}]
    assert one["earlier"] is None and one["unread"] == 1  # reading is not marking read
    status, older = viewer("GET", f"/conversations/{row['id']}/timeline?before=in:999999999")
    assert status == 422 and error_of(older)[1] == ["before"]
    before = one["timeline"][1]["key"]
    status, older = viewer("GET", f"/conversations/{row['id']}/timeline?before={before}")
    assert status == 200 and [i["key"] for i in older["data"]] == [one["timeline"][0]["key"]]
    assert viewer("GET", "/conversations/99999")[0] == 404
    status, body = viewer("POST", f"/conversations/{row['id']}/read")
    assert status == 403 and error_of(body)[0] == "forbidden"


def test_team_work_through_the_api(seeded) -> None:
    app, db, _cloud, _web, _campaign_id, _ids = seeded
    op = api_as(app, db, Role.OPERATOR)
    mate = api_as(app, db, Role.OPERATOR)
    viewer = api_as(app, db, Role.VIEWER)
    [first, *_] = op.walk("/conversations?filter=unread", 200)
    url = f"/conversations/{first}"

    status, row = op("POST", url + "/assign", json={"assignee_id": mate.user_id})
    assert status == 200 and row["assignee_name"] == mate.email
    assert mate.walk("/conversations?filter=mine", 50) == [first]
    assert first not in op.walk("/conversations?filter=unassigned", 50)
    status, body = op("POST", url + "/assign", json={"assignee_id": viewer.user_id})
    assert status == 422 and error_of(body) == ("invalid", ["assignee_id"])
    assert viewer("POST", url + "/assign", json={"assignee_id": None})[0] == 403

    status, note = op("POST", url + "/notes", json={"body": " Wants size 8 "})
    assert status == 201 and note["body"] == "Wants size 8" and note["author"] == op.email
    assert op("POST", url + "/notes", json={"body": ""})[0] == 422
    status, row = op("POST", url + "/read")
    assert status == 200 and row["unread"] == 0
    status, row = op("POST", url + "/done")
    assert status == 200 and row["state"] == "done"
    assert op.walk("/conversations?filter=done", 50) == [first]
    status, row = op("POST", url + "/reopen")
    assert status == 200 and row["state"] == "open"
    status, row = op("POST", url + "/opt-out")
    assert status == 200 and row["opted_out"] is True
    status, one = op("GET", url)
    assert one["opt_out_reason"].startswith("Opted out from the Inbox by " + op.email)
    assert sorted(i["kind"] for i in one["timeline"]) == ["in", "note", "out"]
    [written] = [i for i in one["timeline"] if i["kind"] == "note"]
    assert written["author"] == op.email and written["text"] == "Wants size 8"
    assert op("POST", "/conversations/99999/done")[0] == 404


def test_answers_through_the_api(seeded) -> None:
    app, db, cloud, web, _campaign_id, _ids = seeded
    op = api_as(app, db, Role.OPERATOR)
    quiet = op.walk("/conversations?q=9800000000", 50)
    assert len(quiet) == 1
    status, answer = op(
        "POST", f"/conversations/{quiet[0]}/answers", json={"text": "Hi {{ name }}!"}
    )
    assert status == 201, answer
    assert (answer["text"], answer["status"]) == ("Hi Person 0!", "queued")
    with db.session() as session:
        message = session.get(Message, answer["message_id"])
        assert message.campaign_id is None and message.sender_id == web
        assert session.get(Answer, answer["message_id"]).conversation_id == quiet[0]
    status, one = op("GET", f"/conversations/{quiet[0]}")
    assert one["timeline"][-1]["is_answer"] and one["timeline"][-1]["author"] == op.email
    assert one["window_closes_at"] is None and one["preview"] == "Hi Person 0!"

    # A Cloud API contact who never wrote: no free text, a template instead.
    with db.session() as session:
        silent = session.scalar(select(Contact.id).where(Contact.phone == "+919800000001"))
    status, started = op("POST", "/conversations", json={"contact_id": silent, "sender_id": cloud})
    assert status == 200 and started["unread"] == 0
    again = op("POST", "/conversations", json={"contact_id": silent, "sender_id": cloud})[1]
    assert again["id"] == started["id"]
    status, body = op("POST", f"/conversations/{started['id']}/answers", json={"text": "Hello"})
    assert status == 422 and error_of(body) == ("invalid", ["template"])
    assert "approved template" in body["error"]["message"]

    # An opted-out contact is refused whatever is sent.
    [replied, *_] = op.walk("/conversations?filter=unread", 50)
    op("POST", f"/conversations/{replied}/opt-out")
    status, body = op("POST", f"/conversations/{replied}/answers", json={"text": "Sorry!"})
    assert status == 422 and "opted out" in body["error"]["message"]
    assert op("POST", "/conversations/99999/answers", json={"text": "Hi"})[0] == 404
    viewer = api_as(app, db, Role.VIEWER)
    assert viewer("POST", f"/conversations/{quiet[0]}/answers", json={"text": "Hi"})[0] == 403


def test_quick_replies_are_managed_by_admins(seeded) -> None:
    app, db, *_ = seeded
    admin = api_as(app, db, Role.ADMIN)
    op = api_as(app, db, Role.OPERATOR)
    hours = {"name": "Opening hours", "body": "Hi {{ name }}, we open at 10."}
    status, body = op("POST", "/quick-replies", json=hours)
    assert status == 403 and error_of(body)[0] == "forbidden"
    status, made = admin("POST", "/quick-replies", json=hours)
    assert status == 201 and made["name"] == "Opening hours"
    status, body = admin("POST", "/quick-replies", json={**hours, "name": "opening HOURS"})
    assert status == 409 and error_of(body)[0] == "conflict"
    status, body = admin("POST", "/quick-replies", json={"name": "Typo", "body": "Hi {{ nmae }}"})
    assert status == 422 and error_of(body) == ("invalid", ["body"])
    admin("POST", "/quick-replies", json={"name": "Address", "body": "MG Road, Pune."})
    assert len(op.walk("/quick-replies", 1)) == 2
    status, edited = admin(
        "PUT", f"/quick-replies/{made['id']}", json={"name": "Hours", "body": "10 to 7."}
    )
    assert status == 200 and (edited["name"], edited["body"]) == ("Hours", "10 to 7.")

    # An operator answers with it, placeholders filled for the contact.
    quiet = op.walk("/conversations?q=9800000000", 50)[0]
    admin("PUT", f"/quick-replies/{made['id']}", json={"name": "Hours", "body": "Hi {{ name }}"})
    status, answer = op(
        "POST", f"/conversations/{quiet}/answers", json={"quick_reply_id": made["id"]}
    )
    assert status == 201 and answer["text"] == "Hi Person 0"

    assert admin("DELETE", f"/quick-replies/{made['id']}")[0] == 204
    assert op("GET", f"/quick-replies/{made['id']}")[0] == 404
    assert admin("DELETE", f"/quick-replies/{made['id']}")[0] == 404
