"""Segments over the REST API on SQLite and PostgreSQL: saved, previewed, refused naming the
bad part, read-only for viewers, and a draft launched to a segment reaches exactly it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from wabulk.contacts.service import opt_out, upsert_contact
from wabulk.db import Database
from wabulk.models import Message, MessageStatus, Role, utcnow

from ..campaigns_support import make_sender
from .test_api_resources import _api, error_of

# (phone, name, city, last purchase days ago, in "Buyers")
PEOPLE = [
    ("+919812340001", "Asha", "Pune", 10, True),
    ("+919812340002", "Ravi", "pune", 200, True),
    ("+919812340003", "Meera", "Delhi", 5, True),
    ("+919812340004", "Kiran", "Pune", 30, False),
    ("+919812340005", "Sunil", "Pune", 60, True),  # opts out below
    ("+919812340006", "Divya", "Mumbai", 400, False),
]


@pytest.fixture
def shop(dual: tuple[Flask, Database]) -> Iterator[dict[str, Any]]:
    """Six contacts, a list, and an earlier campaign's outcomes; an operator's API."""
    app, db = dual
    api = _api(app, db, Role.OPERATOR)
    status, buyers = api("POST", "/lists", json={"name": "Buyers"})
    assert status == 201
    _, others = api("POST", "/lists", json={"name": "Others"})
    today = utcnow().date()
    ids: dict[str, int] = {}
    with db.session() as session:
        for phone, name, city, days, in_list in PEOPLE:
            bought = today.fromordinal(today.toordinal() - days).isoformat()
            contact, _ = upsert_contact(
                session,
                None,
                phone=phone,
                name=name,
                attributes={"city": city, "last_purchase": bought},
                list_ids=[buyers["id"] if in_list else others["id"]],
            )
            ids[name] = contact.id
    sender_id = make_sender(db, "Rehearsal")
    # An earlier campaign to everyone; then Asha and Kiran delivered but not read, Ravi
    # read, the others only queued.
    status, offer = api(
        "POST",
        "/campaigns",
        json={
            "name": "Monday offer",
            "list_ids": [buyers["id"], others["id"]],
            "sender_ids": [sender_id],
            "body": "Hi",
        },
    )
    assert status == 201, offer
    assert api("POST", f"/campaigns/{offer['id']}/launch")[0] == 200
    now = utcnow()
    with db.session() as session:
        outcome = {"Asha": "delivered", "Kiran": "delivered", "Ravi": "read"}
        for name, state in outcome.items():
            session.execute(
                update(Message)
                .where(Message.campaign_id == offer["id"], Message.contact_id == ids[name])
                .values(
                    status=MessageStatus(state),
                    sent_at=now,
                    delivered_at=now,
                    read_at=now if state == "read" else None,
                )
            )
        opt_out(session, None, [ids["Sunil"]], "asked to stop")
    yield {
        "api": api,
        "app": app,
        "db": db,
        "ids": ids,
        "buyers": buyers["id"],
        "offer": offer["id"],
        "sender": sender_id,
    }


def _pune_buyers(shop: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "Pune buyers",
        "description": "For the monsoon offer",
        "match": "all",
        "conditions": [
            {"field": "attribute", "key": "city", "op": "eq", "value": "Pune"},
            {"field": "list", "op": "in", "value": [shop["buyers"]]},
        ],
    }


def test_segment_crud_and_preview(shop: dict[str, Any]) -> None:
    api, ids = shop["api"], shop["ids"]
    status, made = api("POST", "/segments", json=_pune_buyers(shop))
    assert status == 201, made
    assert made["name"] == "Pune buyers" and made["description"] == "For the monsoon offer"
    assert made["terms"]["match"] == "all" and len(made["terms"]["conditions"]) == 2
    assert "Buyers" in made["summary"] and "Pune" in made["summary"]

    assert api("GET", f"/segments/{made['id']}")[1] == made
    assert [s["id"] for s in api.walk("/segments", limit=1)] == [made["id"]]

    # Asha and Ravi ("pune": case does not matter); Sunil opted out, Kiran is not in Buyers.
    status, seen = api("GET", f"/segments/{made['id']}/preview")
    assert status == 200, seen
    assert (seen["count"], seen["capped"]) == (2, False)
    assert sorted(c["id"] for c in seen["sample"]) == sorted([ids["Asha"], ids["Ravi"]])

    changed = {**_pune_buyers(shop), "name": "Pune, bought lately"}
    changed["conditions"] = [
        changed["conditions"][0],
        {"field": "attribute", "key": "last_purchase", "op": "within_days", "value": 90},
    ]
    status, edited = api("PUT", f"/segments/{made['id']}", json=changed)
    assert status == 200, edited
    assert edited["name"] == "Pune, bought lately"
    status, seen = api("GET", f"/segments/{made['id']}/preview")
    assert {c["name"] for c in seen["sample"]} == {"Asha", "Kiran"} and seen["count"] == 2

    assert api("DELETE", f"/segments/{made['id']}")[0] == 204
    assert api("GET", f"/segments/{made['id']}")[0] == 404
    assert api("GET", "/segments")[1]["data"] == []


def test_preview_counts_unsaved_conditions_and_an_earlier_outcome(shop: dict[str, Any]) -> None:
    api, ids = shop["api"], shop["ids"]
    status, seen = api(
        "POST",
        "/segments/preview",
        json={
            "conditions": [
                {"field": "outcome", "campaign_id": shop["offer"], "op": "delivered_not_read"}
            ]
        },
    )
    assert status == 200, seen
    assert seen["count"] == 2 and seen["cap"] >= 100_000 and not seen["capped"]
    assert sorted(c["id"] for c in seen["sample"]) == sorted([ids["Asha"], ids["Kiran"]])
    assert "Monday offer" in seen["summary"]
    # No conditions: everyone who can be messaged (five; Sunil opted out).
    status, everyone = api("POST", "/segments/preview", json={"match": "any", "conditions": []})
    assert status == 200 and everyone["count"] == 5 and len(everyone["sample"]) == 5
    assert ids["Sunil"] not in {c["id"] for c in everyone["sample"]}


def _conditions(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"name": "Bad", "conditions": list(conditions)}


PUNE = {"field": "attribute", "key": "city", "op": "eq", "value": "Pune"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            _conditions(PUNE, PUNE, {"field": "attribute", "key": "due", "op": "gt", "value": "a"}),
            "conditions.2.value",
        ),
        (_conditions({"field": "attribute", "op": "eq", "value": "Pune"}), "conditions.0.key"),
        (
            _conditions({"field": "attribute", "key": "city", "op": "in", "value": "x"}),
            "conditions.0.op",
        ),
        (_conditions({"field": "outcome", "op": "replied"}), "conditions.0.campaign_id"),
        (_conditions({"field": "list", "op": "in", "value": []}), "conditions.0.value"),
        (_conditions({"field": "country", "op": "in", "value": ["XX"]}), "conditions.0.value"),
        (
            _conditions({"field": "attribute", "key": "city", "op": "eq", "value": "a\u0000"}),
            "conditions.0.value",
        ),
        (
            _conditions({"field": "attribute", "key": "city", "op": "eq", "value": [[1]]}),
            "conditions.0.value",
        ),
        (_conditions({"field": "segment", "op": "eq"}), "conditions.0.field"),
        (_conditions({**PUNE, "typo": 1}), "conditions.0.typo"),
        (_conditions(*[PUNE] * 21), "conditions"),
        ({"conditions": []}, "name"),
        ({"name": "x", "match": "some"}, "match"),
    ],
)
def test_bad_conditions_are_refused_naming_the_part(
    shop: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    api = shop["api"]
    status, answer = api("POST", "/segments", json=body)
    assert status == 422, answer
    assert error_of(answer) == ("invalid", [field]), answer
    preview = {k: v for k, v in body.items() if k not in ("name", "description")}
    if field != "name":
        status, answer = api("POST", "/segments/preview", json=preview)
        assert status == 422 and error_of(answer)[1] == [field], answer
    assert api("GET", "/segments")[1]["data"] == []


def test_a_taken_name_and_a_segment_in_use_are_refused(shop: dict[str, Any]) -> None:
    api = shop["api"]
    _, made = api("POST", "/segments", json=_pune_buyers(shop))
    status, answer = api("POST", "/segments", json={**_pune_buyers(shop), "name": "PUNE buyers"})
    assert status == 422 and error_of(answer)[1] == ["name"], answer
    status, draft = api(
        "POST",
        "/campaigns",
        json={
            "name": "To Pune",
            "segment_id": made["id"],
            "sender_ids": [shop["sender"]],
            "body": "Hi",
        },
    )
    assert status == 201, draft
    status, answer = api("DELETE", f"/segments/{made['id']}")
    assert status == 409 and "To Pune" in answer["error"]["message"]
    assert api("GET", "/segments/4040")[0] == 404
    assert api("PUT", "/segments/4040", json=_pune_buyers(shop))[0] == 404


def test_a_viewer_reads_and_counts_saved_segments_but_changes_nothing(shop: dict[str, Any]) -> None:
    api = shop["api"]
    _, made = api("POST", "/segments", json=_pune_buyers(shop))
    viewer = _api(shop["app"], shop["db"], Role.VIEWER)
    assert viewer("GET", "/segments")[0] == 200
    assert viewer("GET", f"/segments/{made['id']}")[0] == 200
    assert viewer("GET", f"/segments/{made['id']}/preview")[1]["count"] == 2
    for method, url, body in [
        ("POST", "/segments/preview", {"conditions": [PUNE]}),
        ("POST", "/segments", {**_pune_buyers(shop), "name": "Mine"}),
        ("PUT", f"/segments/{made['id']}", {**_pune_buyers(shop), "name": "Mine"}),
        ("DELETE", f"/segments/{made['id']}", None),
    ]:
        status, answer = viewer(method, url, json=body)
        assert status == 403 and answer["error"]["code"] == "forbidden", (method, answer)
    assert api("GET", f"/segments/{made['id']}")[1]["name"] == "Pune buyers"


def test_a_draft_launched_to_a_segment_reaches_exactly_it(shop: dict[str, Any]) -> None:
    api, db, ids = shop["api"], shop["db"], shop["ids"]
    body = {
        "name": "Pune, not read",
        "conditions": [
            {"field": "attribute", "key": "city", "op": "eq", "value": "pune"},
            {"field": "outcome", "campaign_id": shop["offer"], "op": "delivered_not_read"},
        ],
    }
    _, made = api("POST", "/segments", json=body)
    status, draft = api(
        "POST",
        "/campaigns",
        json={
            "name": "Reminder",
            "segment_id": made["id"],
            "sender_ids": [shop["sender"]],
            "body": "Hi {{ name }}",
        },
    )
    assert status == 201, draft
    assert draft["segment_id"] == made["id"] and draft["list_ids"] == []
    assert draft["audience_terms"] is None
    status, launched = api("POST", f"/campaigns/{draft['id']}/launch")
    assert status == 200, launched
    assert launched["total"] == 2 and launched["segment_id"] == made["id"]
    assert launched["audience_terms"]["conditions"][1]["op"] == "delivered_not_read"
    with db.session() as session:
        reached = set(
            session.scalars(select(Message.contact_id).where(Message.campaign_id == draft["id"]))
        )
    assert reached == {ids["Asha"], ids["Kiran"]}
    # The segment changes later; the launched campaign keeps the conditions it used.
    api("PUT", f"/segments/{made['id']}", json={**body, "conditions": body["conditions"][:1]})
    assert (
        api("GET", f"/campaigns/{draft['id']}")[1]["audience_terms"] == launched["audience_terms"]
    )


def test_a_campaign_names_a_missing_segment(shop: dict[str, Any]) -> None:
    status, answer = shop["api"](
        "POST",
        "/campaigns",
        json={"name": "X", "segment_id": 4040, "sender_ids": [shop["sender"]], "body": "Hi"},
    )
    assert status == 422 and error_of(answer)[1] == ["segment_id"], answer
