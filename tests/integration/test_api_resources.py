"""Each REST API resource end to end on SQLite and PostgreSQL: happy paths, bad input, pages."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.campaigns import lifecycle
from wabulk.contacts import importer
from wabulk.contacts.tallies import totals
from wabulk.db import Database
from wabulk.models import Contact, ContactList, Role, utcnow

from ..campaigns_support import FakeClock, drive, make_lane, make_sender
from ..conftest import PASSWORD

_n = itertools.count(1)


class Api:
    """The test client with one user's token; answers (status, JSON)."""

    def __init__(self, client: FlaskClient, secret: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def __call__(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        response = self.client.open("/api/v1" + url, method=method, headers=self.headers, **kwargs)
        return response.status_code, response.get_json(silent=True)

    def walk(self, url: str, limit: int) -> list[dict[str, Any]]:
        """Every row of a list operation, page by page through the cursors."""
        rows: list[dict[str, Any]] = []
        cursor = ""
        sep = "&" if "?" in url else "?"
        for _ in range(1000):
            status, page = self("GET", f"{url}{sep}limit={limit}&cursor={cursor}")
            assert status == 200, page
            assert len(page["data"]) <= limit
            rows += page["data"]
            if page["next_cursor"] is None:
                return rows
            cursor = page["next_cursor"]
        raise AssertionError("the cursor never ended")


def _api(app: Flask, db: Database, role: Role) -> Api:
    with db.session() as session:
        user = users.create_user(session, None, f"{role.value}{next(_n)}@x.example", PASSWORD, role)
        secret = tokens.create_token(session, user, "tests").secret
    return Api(app.test_client(), secret)


@pytest.fixture
def api(dual: tuple[Flask, Database]) -> Iterator[Api]:
    app, db = dual
    yield _api(app, db, Role.OPERATOR)


def _db(api: Api) -> Database:
    return api.client.application.extensions["wabulk.db"]  # type: ignore[no-any-return]


def error_of(body: dict[str, Any]) -> tuple[str, list[str | None]]:
    return body["error"]["code"], [d["field"] for d in body["error"]["details"]]


# --- contacts ---------------------------------------------------------------------------


def test_contact_upsert_creates_then_updates_and_keeps_counts_exact(api: Api) -> None:
    status, gold = api("POST", "/lists", json={"name": "Gold"})
    assert status == 201
    status, created = api(
        "POST",
        "/contacts",
        json={
            "phone": "98123 45678",
            "default_country": "IN",
            "name": "Asha",
            "attributes": {"City": "Pune", "Due Amount": 1200},
            "list_ids": [gold["id"]],
        },
    )
    assert status == 201, created
    assert created["phone"] == "+919812345678"
    assert created["attributes"] == {"city": "Pune", "due_amount": "1200"}
    status, updated = api(
        "POST", "/contacts", json={"phone": "+919812345678", "attributes": {"city": "Mumbai"}}
    )
    assert status == 200
    assert updated["id"] == created["id"] and updated["name"] == "Asha"
    assert updated["attributes"] == {"city": "Mumbai", "due_amount": "1200"}
    assert api("GET", f"/lists/{gold['id']}")[1]["member_count"] == 1
    with _db(api).session() as session:
        assert totals(session) == (1, 0)
        assert session.scalar(select(func.count()).select_from(Contact)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"phone": "9812345678"}, "phone"),  # no country code and no default country
        ({"phone": "+919812345678", "list_ids": [999]}, "list_ids"),
        ({"phone": "+919812345678", "list_ids": [0]}, "list_ids.0"),
        ({"phone": "+919812345678", "default_country": "XX"}, "default_country"),
        ({"phone": "+919812345678", "attributes": {"a": [1]}}, "attributes.a"),
        ({"phone": "+919812345678", "nme": "typo"}, "nme"),
        ({"phone": "+91981234\u00005678"}, "phone"),
    ],
)
def test_contact_upsert_names_the_bad_field_and_stores_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    status, answer = api("POST", "/contacts", json=body)
    assert status == 422, answer
    code, fields = error_of(answer)
    assert code == "invalid" and field in fields, fields
    assert answer["error"]["message"]
    with _db(api).session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0


def test_body_that_is_not_json_is_a_clear_400(api: Api) -> None:
    status, answer = api("POST", "/contacts", data="phone=+919812345678")
    assert status == 400 and "application/json" in answer["error"]["message"]
    status, answer = api("POST", "/contacts", data="{", content_type="application/json")
    assert status == 400 and "not valid JSON" in answer["error"]["message"]
    status, answer = api("POST", "/contacts", data="[]", content_type="application/json")
    assert status == 422


def test_contacts_search_filters_and_opt_out(api: Api) -> None:
    _, vip = api("POST", "/lists", json={"name": "VIP"})
    for phone, name in (
        ("+919812345601", "Asha Rao"),
        ("+919812345602", "Ravi"),
        ("+14155550100", "Ann"),
    ):
        api(
            "POST",
            "/contacts",
            json={"phone": phone, "name": name, "list_ids": [vip["id"]] if name != "Ann" else []},
        )
    _, found = api("GET", "/contacts?q=asha")
    assert [c["name"] for c in found["data"]] == ["Asha Rao"]
    _, members = api("GET", f"/contacts?list_id={vip['id']}")
    assert sorted(c["name"] for c in members["data"]) == ["Asha Rao", "Ravi"]
    ravi = next(c for c in members["data"] if c["name"] == "Ravi")

    status, answer = api("POST", f"/contacts/{ravi['id']}/opt-out", json={"reason": ""})
    assert status == 422 and error_of(answer)[1] == ["reason"]
    status, out = api("POST", f"/contacts/{ravi['id']}/opt-out", json={"reason": "asked by phone"})
    assert status == 200 and out["opted_out_at"] and out["opt_out_reason"] == "asked by phone"
    again = api("POST", f"/contacts/{ravi['id']}/opt-out", json={"reason": "again"})[1]
    assert again["opt_out_reason"] == "asked by phone"  # nothing changes the second time
    _, opted = api("GET", "/contacts?status=opted_out")
    assert [c["id"] for c in opted["data"]] == [ravi["id"]]
    with _db(api).session() as session:
        assert totals(session) == (3, 1)

    status, back = api("POST", f"/contacts/{ravi['id']}/opt-in", json={"reason": "rejoined"})
    assert status == 200 and back["opted_out_at"] is None
    status, answer = api("POST", f"/contacts/{ravi['id']}/opt-in", json={"reason": "twice"})
    assert status == 409 and error_of(answer)[0] == "conflict"
    status, answer = api("GET", "/contacts?status=everyone")
    assert status == 422 and error_of(answer)[1] == ["status"]
    assert api("GET", "/contacts/999999")[0] == 404
    assert api("GET", "/contacts/99999999999")[0] == 404  # past 32 bits: not there, no crash


def test_contact_pages_walk_every_row_once_newest_first(api: Api) -> None:
    db = _db(api)
    with db.session() as session:
        session.add_all(Contact(phone=f"+9198765{i:05d}", name=f"P{i}") for i in range(23))
    rows = api.walk("/contacts", limit=5)
    ids = [r["id"] for r in rows]
    assert len(ids) == 23 and len(set(ids)) == 23
    assert ids == sorted(ids, reverse=True)
    assert [r["id"] for r in api.walk("/contacts?q=P1", limit=2)] == [
        r["id"] for r in rows if r["name"].startswith("P1")
    ]
    status, answer = api("GET", "/contacts?limit=201")
    assert status == 422 and error_of(answer)[1] == ["limit"]
    status, answer = api("GET", "/contacts?cursor=bm9wZQ")  # base64 of "nope"
    assert status == 422 and "next_cursor" in answer["error"]["details"][0]["message"]


# --- lists ------------------------------------------------------------------------------


def test_lists_create_members_delete(api: Api) -> None:
    status, gold = api("POST", "/lists", json={"name": "  Gold  club ", "description": "Top"})
    assert status == 201 and gold["name"] == "Gold club" and gold["member_count"] == 0
    status, answer = api("POST", "/lists", json={"name": "gold CLUB"})
    assert status == 409 and "already a list" in answer["error"]["message"]
    status, answer = api("POST", "/lists", json={"name": ""})
    assert status == 422 and error_of(answer)[1] == ["name"]
    ids = [api("POST", "/contacts", json={"phone": f"+91981234560{i}"})[1]["id"] for i in range(3)]
    status, added = api(
        "POST", f"/lists/{gold['id']}/members", json={"contact_ids": [*ids, 424242]}
    )
    assert status == 200 and added == {"list_id": gold["id"], "changed": 3}
    assert api("GET", f"/lists/{gold['id']}")[1]["member_count"] == 3
    status, removed = api(
        "POST", f"/lists/{gold['id']}/members/remove", json={"contact_ids": ids[:1]}
    )
    assert removed["changed"] == 1
    assert api("GET", f"/lists/{gold['id']}")[1]["member_count"] == 2
    assert api("POST", "/lists/999/members", json={"contact_ids": ids})[0] == 404
    assert api("POST", f"/lists/{gold['id']}/members", json={"contact_ids": []})[0] == 422
    status, _ = api("DELETE", f"/lists/{gold['id']}")
    assert status == 204
    assert api("GET", f"/lists/{gold['id']}")[0] == 404
    with _db(api).session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 3  # contacts stay


def test_list_pages_walk_every_row_once_oldest_first(api: Api) -> None:
    with _db(api).session() as session:
        session.add_all(ContactList(name=f"L{i:02d}") for i in range(11))
    rows = api.walk("/lists", limit=4)
    ids = [r["id"] for r in rows]
    assert ids == sorted(set(ids)) and len(ids) == 11


# --- imports ----------------------------------------------------------------------------


def test_import_upload_start_run_and_status(api: Api) -> None:
    sheet = "Mobile,Name,City\n98123 45601,Asha,Pune\n98123 45602,Ravi,Delhi\nnot a number,X,Y\n"
    status, imp = api(
        "POST",
        "/imports",
        data={"file": (io.BytesIO(sheet.encode()), "customers.csv")},
        content_type="multipart/form-data",
    )
    assert status == 201, imp
    assert imp["status"] == "draft" and imp["columns"] == ["Mobile", "Name", "City"]
    assert imp["suggested_mapping"]["phone"] == "Mobile"
    status, answer = api("POST", f"/imports/{imp['id']}/start", json={"default_country": "ZZZ"})
    assert status == 422 and error_of(answer)[1] == ["default_country"]
    status, answer = api(
        "POST",
        f"/imports/{imp['id']}/start",
        json={"default_country": "IN", "mapping": {"phone": "Phone"}},
    )
    assert status == 422 and "no column" in answer["error"]["message"]
    status, started = api(
        "POST",
        f"/imports/{imp['id']}/start",
        json={
            "default_country": "IN",
            "new_list": "From the shop",
            "mapping": {**imp["suggested_mapping"]},
        },
    )
    assert status == 200 and started["status"] == "queued", started
    db = _db(api)
    settings = api.client.application.extensions["wabulk.settings"]
    importer.run(db, imp["id"], settings.instance_path, "test")
    status, done = api("GET", f"/imports/{imp['id']}")
    assert (done["status"], done["created"], done["invalid"], done["rows_read"]) == (
        "completed",
        2,
        1,
        3,
    )
    _, listed = api("GET", f"/lists/{done['list_id']}")
    assert listed["name"] == "From the shop" and listed["member_count"] == 2
    status, answer = api("POST", f"/imports/{imp['id']}/start", json={"default_country": "IN"})
    assert status == 422 and "already started" in answer["error"]["message"]


def test_import_keeps_the_first_row_of_a_repeated_number_unless_told_and_remembers_the_choices(
    api: Api,
) -> None:
    sheet = "Sr No,Mobile,Name\n1,98123 45601,Deepa Patel\n2,98123 45601,Dup of row 1\n"
    db = _db(api)
    settings = api.client.application.extensions["wabulk.settings"]

    def upload() -> dict[str, Any]:
        status, imp = api(
            "POST",
            "/imports",
            data={"file": (io.BytesIO(sheet.encode()), "customers.csv")},
            content_type="multipart/form-data",
        )
        assert status == 201, imp
        return imp

    imp = upload()
    assert imp["suggested_mapping"]["duplicates"] == "first"
    assert "Sr No" in imp["suggested_mapping"]["attributes"]
    mapping = {"phone": "Mobile", "name": ["Name"], "duplicates": "newest"}
    status, answer = api(
        "POST", f"/imports/{imp['id']}/start", json={"default_country": "IN", "mapping": mapping}
    )
    assert status == 422 and error_of(answer)[1] == ["mapping.duplicates"]
    del mapping["duplicates"]  # "Sr No" left out: skipped
    status, _ = api(
        "POST", f"/imports/{imp['id']}/start", json={"default_country": "IN", "mapping": mapping}
    )
    assert status == 200
    importer.run(db, imp["id"], settings.instance_path, "test")
    with db.session() as session:
        assert session.scalar(select(Contact.name)) == "Deepa Patel"
        assert session.scalar(select(Contact.attributes)) == {}

    again = upload()  # the same header: the choices of last time are suggested
    assert again["suggested_mapping"] == {**mapping, "attributes": {}, "duplicates": "first"}
    status, _ = api("POST", f"/imports/{again['id']}/start", json={"default_country": "IN"})
    assert status == 200
    importer.run(db, again["id"], settings.instance_path, "test")
    status, done = api("GET", f"/imports/{again['id']}")
    assert (done["created"], done["updated"], done["unchanged"], done["duplicates"]) == (0, 0, 1, 1)


def test_import_refuses_an_unreadable_or_missing_file(api: Api) -> None:
    status, answer = api(
        "POST",
        "/imports",
        data={"file": (io.BytesIO(b"%PDF-1.7 not a sheet"), "scan.pdf")},
        content_type="multipart/form-data",
    )
    assert status == 422 and "PDF" in answer["error"]["message"]
    status, answer = api(
        "POST", "/imports", data={"kind": "contacts"}, content_type="multipart/form-data"
    )
    assert status == 422 and error_of(answer)[1] == ["file"]
    status, answer = api("POST", "/imports", json={"file": "x"})
    assert status == 400
    assert api("GET", "/imports/77")[0] == 404


# --- templates and campaigns --------------------------------------------------------------


def test_templates_create_update_delete(api: Api) -> None:
    status, t = api("POST", "/templates", json={"name": "Welcome", "body": "Hi {{ name }}"})
    assert status == 201 and t["body"] == "Hi {{ name }}"
    status, answer = api(
        "POST", "/templates", json={"name": "Broken", "body": "Hi {{ name | nosuch }}"}
    )
    assert status == 422 and "nosuch" in answer["error"]["message"]
    status, answer = api("POST", "/templates", json={"name": "welcome", "body": "x"})
    assert status == 409
    status, t2 = api("PUT", f"/templates/{t['id']}", json={"name": "Welcome", "body": "Hello"})
    assert status == 200 and t2["body"] == "Hello"
    assert [r["name"] for r in api.walk("/templates", limit=1)] == ["Welcome"]
    assert api("DELETE", f"/templates/{t['id']}")[0] == 204
    assert api("GET", f"/templates/{t['id']}")[0] == 404


def test_campaign_from_draft_to_finish_through_the_lifecycle(api: Api, tmp_path) -> None:
    db = _db(api)
    _, lst = api("POST", "/lists", json={"name": "Buyers"})
    for i in range(7):
        api(
            "POST",
            "/contacts",
            json={"phone": f"+9198123456{i:02d}", "name": f"P{i}", "list_ids": [lst["id"]]},
        )
    sender_id = make_sender(db, "Rehearsal")
    draft = {
        "name": "Diwali",
        "list_ids": [lst["id"]],
        "sender_ids": [sender_id],
        "body": "Hi {{ name }}",
    }

    status, answer = api(
        "POST",
        "/campaigns",
        json={**draft, "pacing": {"min_delay_seconds": 9, "max_delay_seconds": 3}},
    )
    assert status == 422 and "shortest delay" in answer["error"]["message"]
    status, answer = api(
        "POST", "/campaigns", json={**draft, "scheduled_at": "2030-01-01T10:00:00"}
    )
    assert status == 422 and error_of(answer)[1] == ["scheduled_at"]  # no offset
    status, answer = api("POST", "/campaigns", json={**draft, "list_ids": [4040]})
    assert status == 422 and error_of(answer)[1] == ["list_ids"]

    status, c = api(
        "POST",
        "/campaigns",
        json={**draft, "pacing": {"active_from": "09:00", "active_until": "21:00"}},
    )
    assert status == 201 and c["status"] == "draft" and c["actions"] == ["launch"]
    assert api("POST", f"/campaigns/{c['id']}/pause")[0] == 409
    status, edited = api("PUT", f"/campaigns/{c['id']}", json={**draft, "name": "Diwali 2030"})
    assert (
        status == 200
        and edited["name"] == "Diwali 2030"
        and edited["pacing"] == {"retry_seconds": 60}
    )

    status, launched = api("POST", f"/campaigns/{c['id']}/launch")
    assert status == 200, launched
    assert launched["status"] == "running" and launched["total"] == 7
    assert launched["counts"]["queued"] == 7 and set(launched["actions"]) == {"pause", "cancel"}
    assert api("PUT", f"/campaigns/{c['id']}", json=draft)[0] == 409
    assert api("DELETE", f"/campaigns/{c['id']}")[0] == 409
    assert api("POST", f"/campaigns/{c['id']}/pause")[1]["status"] == "paused"
    assert api("POST", f"/campaigns/{c['id']}/resume")[1]["status"] == "running"

    recipients = api.walk(f"/campaigns/{c['id']}/recipients", limit=3)
    assert len({r["id"] for r in recipients}) == 7 and {r["status"] for r in recipients} == {
        "queued"
    }

    clock = FakeClock()
    drive([make_lane(db, sender_id, tmp_path, clock)], clock, db)
    with db.session() as session:  # the dispatcher's own move once nothing is left
        assert lifecycle.complete_finished(session, utcnow()) == [c["id"]]
    status, done = api("GET", f"/campaigns/{c['id']}")
    assert done["status"] == "completed" and done["percent"] == 100.0
    sent = api.walk(f"/campaigns/{c['id']}/recipients?status=sent", limit=50)
    assert len(sent) == done["counts"]["sent"] == 7
    assert all(r["body"].startswith("Hi P") for r in sent)
    assert api("GET", "/campaigns?limit=1")[1]["data"][0]["counts"]["sent"] == 7

    _, again = api("POST", "/campaigns", json={**draft, "name": "Second"})
    assert api("POST", f"/campaigns/{again['id']}/launch")[1]["status"] == "running"
    assert api("POST", f"/campaigns/{again['id']}/cancel")[1]["counts"]["skipped"] == 7
    assert [r["name"] for r in api.walk("/campaigns", limit=1)] == ["Second", "Diwali 2030"]

    status, answer = api(
        "POST", "/campaigns", json={**draft, "scheduled_at": "0001-01-01T00:00:00+14:00"}
    )
    assert status == 422 and error_of(answer)[1] == ["scheduled_at"]
    _, later = api(
        "POST",
        "/campaigns",
        json={**draft, "name": "Later", "scheduled_at": "2099-01-01T09:00:00+05:30"},
    )
    assert later["scheduled_at"] == "2099-01-01T03:30:00Z"
    _, later = api("POST", f"/campaigns/{later['id']}/launch")
    assert later["status"] == "scheduled" and later["eta"] >= later["scheduled_at"]

    status, stats = api("GET", "/analytics")
    assert status == 200
    assert stats["totals"]["sent"] == 7 and stats["funnel"]["sent"] == 7
    assert sum(d["sent"] for d in stats["days"]) == 7 and len(stats["hours"]) == 24
    assert [c["name"] for c in stats["campaigns"]] == ["Diwali 2030"]
    only = api("GET", f"/analytics?campaign_id={again['id']}")[1]
    assert only["totals"]["sent"] == 0 and only["campaign_id"] == again["id"]
    status, answer = api("GET", "/analytics?from=2030-02-01&to=2030-01-01")
    assert status == 422 and error_of(answer)[1] == ["from"]
    status, answer = api("GET", "/analytics?from=0001-01-01")
    assert status == 422 and error_of(answer)[1] == ["from"]
    status, answer = api("GET", "/analytics?sender_id=31337")
    assert status == 422


def test_senders_show_their_state_but_never_their_settings(api: Api) -> None:
    sender_id = make_sender(
        _db(api), "Front desk", daily_cap=150, active_from="09:00", active_until="18:30"
    )
    status, sender = api("GET", f"/senders/{sender_id}")
    assert status == 200
    assert sender["state"] == "linked" and sender["channel"] == "dry_run"
    assert (sender["daily_cap"], sender["active_from"], sender["active_until"]) == (
        150,
        "09:00",
        "18:30",
    )
    assert "settings" not in sender and "link_qr" not in sender
    assert [s["id"] for s in api.walk("/senders", limit=1)] == [sender_id]
    assert api("GET", "/senders/2")[0] == 404


def test_summary_and_me(api: Api) -> None:
    api("POST", "/contacts", json={"phone": "+919812345601"})
    status, summary = api("GET", "/summary")
    assert status == 200 and summary["contacts"] == 1 and summary["campaigns"] == 0
    assert api("GET", "/me")[1]["role"] == "operator"
