"""The funnel over the REST API: campaign figures, recipients' receipts and billing, replies
per campaign and per contact, analytics billed per category. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.funnel_support import LIMITED, funnel_campaign, quiet_campaign
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.models import Inbound, Role

from ..conftest import PASSWORD


class Api:
    def __init__(self, client: FlaskClient, secret: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def get(self, url: str) -> tuple[int, Any]:
        response = self.client.get("/api/v1" + url, headers=self.headers)
        return response.status_code, response.get_json(silent=True)

    def walk(self, url: str, limit: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(100):
            status, page = self.get(f"{url}?limit={limit}&cursor={cursor}")
            assert status == 200, page
            rows += page["data"]
            if page["next_cursor"] is None:
                return rows
            cursor = page["next_cursor"]
        raise AssertionError("the cursor never ended")


def _api(app: Flask, db: Database) -> Api:
    with db.session() as session:
        user = users.create_user(session, None, "viewer@x.example", PASSWORD, Role.VIEWER)
        secret = tokens.create_token(session, user, "tests").secret
    return Api(app.test_client(), secret)


FUNNEL = {
    "sent": 4,
    "delivered": 3,
    "read": 2,
    "replied": 2,
    "failed": 2,
    "limited": 1,
    "billed": {"marketing": 3, "marketing_lite": 1},
}


def test_campaign_json_carries_the_funnel(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    quiet = quiet_campaign(db)
    api = _api(app, db)
    status, campaign = api.get(f"/campaigns/{seeded.campaign_id}")
    assert status == 200 and campaign["funnel"] == FUNNEL
    assert campaign["replied"] == 2 and campaign["counts"]["failed"] == 2
    status, page = api.get("/campaigns")
    listed = {c["id"]: c["funnel"] for c in page["data"]}
    assert listed[seeded.campaign_id] == FUNNEL
    assert listed[quiet] == {
        "sent": 0,
        "delivered": 0,
        "read": 0,
        "replied": 0,
        "failed": 0,
        "limited": 0,
        "billed": {},
    }


def test_recipients_carry_receipt_times_and_what_was_billed(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    api = _api(app, db)
    rows = api.walk(f"/campaigns/{seeded.campaign_id}/recipients", 4)
    by_contact = {r["contact_id"]: r for r in rows}
    assert len(by_contact) == 6
    first, limited, stopped = (by_contact[seeded.contact_ids[i]] for i in (0, 3, 5))
    assert first["billed_category"] == "marketing"
    assert first["delivered_at"] and first["read_at"] and first["replied_at"]
    assert limited["billed_category"] is None and limited["replied_at"] is None
    assert (limited["error_code"], limited["error_detail"]) == ("131049", LIMITED)
    assert stopped["replied_at"] and stopped["status"] == "read"
    assert by_contact[seeded.contact_ids[2]]["billed_category"] == "marketing_lite"


def test_replies_per_campaign_and_per_contact_come_in_keyset_pages(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    other = funnel_campaign(db, "Holi offer", "+9198701")  # its replies stay its own
    with db.session() as session:
        # A message from the same customer that answers no campaign message.
        session.add(
            Inbound(
                phone="+919870000005",
                contact_id=seeded.contact_ids[5],
                provider_message_id="wamid.later",
                body="Sorry, wrong chat",
                received_at=seeded.at + timedelta(hours=1),
            )
        )
    api = _api(app, db)
    replies = api.walk(f"/campaigns/{seeded.campaign_id}/replies", 1)
    assert [r["body"] for r in replies] == ["STOP", "Yes please, two boxes of kaju katli"]
    stop, yes = replies
    assert stop["opted_out"] is True and yes["opted_out"] is False
    assert stop["contact_id"] == seeded.contact_ids[5] and stop["campaign_id"] == seeded.campaign_id
    assert stop["message_id"] and stop["kind"] == "text" and stop["received_at"]
    assert all(r["campaign_id"] != other.campaign_id for r in replies)
    assert len(api.walk(f"/campaigns/{other.campaign_id}/replies", 50)) == 2

    mine = api.walk(f"/contacts/{seeded.contact_ids[5]}/replies", 1)
    assert [(r["campaign_id"], r["message_id"] is None, r["body"]) for r in mine] == [
        (None, True, "Sorry, wrong chat"),
        (seeded.campaign_id, False, "STOP"),
    ]
    assert api.walk(f"/contacts/{seeded.contact_ids[1]}/replies", 5) == []

    status, missing = api.get("/campaigns/9999/replies")
    assert status == 404 and "There is no campaign" in missing["error"]["message"]
    status, missing = api.get("/contacts/9999/replies")
    assert status == 404 and "There is no contact" in missing["error"]["message"]
    status, bad = api.get(f"/campaigns/{seeded.campaign_id}/replies?cursor=zz!")
    assert status == 422 and bad["error"]["details"][0]["field"] == "cursor"


def test_replies_need_a_token_or_a_signed_in_user(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    anonymous = app.test_client()
    for url in (
        f"/api/v1/campaigns/{seeded.campaign_id}/replies",
        f"/api/v1/contacts/{seeded.contact_ids[0]}/replies",
    ):
        assert anonymous.get(url).status_code == 401


def test_analytics_gives_billing_per_category_and_failure_meanings(dual) -> None:
    app, db = dual
    funnel_campaign(db)
    api = _api(app, db)
    status, data = api.get("/analytics")
    assert status == 200
    assert data["billed"] == [
        {"category": "marketing", "label": "Marketing", "count": 3},
        {
            "category": "marketing_lite",
            "label": "Marketing (Marketing Messages API)",
            "count": 1,
        },
    ]
    failures = {f["code"]: f for f in data["failures"]}
    assert failures["131049"]["label"] == "Limited by Meta"
    assert failures["131049"]["sentence"] == LIMITED
    assert failures["131026"]["count"] == 1
    assert data["totals"] == {"sent": 4, "delivered": 3, "read": 2, "replied": 2, "failed": 2}
