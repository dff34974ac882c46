"""Follow-ups over the API, SQLite and PostgreSQL: set a draft's steps, read them with their
funnels after launch, bad input named by field, 409 once launched, viewers only read."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from tests.integration.test_api_resources import _api
from wabulk.campaigns import lifecycle
from wabulk.db import Database
from wabulk.models import Role


def test_steps_are_set_on_a_draft_and_read_with_their_funnels(
    dual: tuple[Flask, Database],
) -> None:
    app, db = dual
    api = _api(app, db, Role.OPERATOR)
    viewer = _api(app, db, Role.VIEWER)
    lst = make_contacts(db, phones(3), "Customers")
    sender = make_sender(db)
    draft = make_campaign(db, [lst], [sender], launch=False)
    steps: list[dict[str, Any]] = [
        {"delay_minutes": 2880, "body": "Still interested, {{ name }}?"},
        {"delay_minutes": 360, "condition": "not_read", "body": "Last call"},
    ]
    status, out = api("PUT", f"/campaigns/{draft}/steps", json={"steps": steps})
    assert status == 200, out
    assert [(s["position"], s["condition"], s["status"]) for s in out["steps"]] == [
        (1, "not_replied", None),
        (2, "not_read", None),
    ]
    status, bad = api(
        "PUT", f"/campaigns/{draft}/steps", json={"steps": [{"delay_minutes": 60, "body": " "}]}
    )
    assert status == 422 and "steps.0.body" in str(bad), bad
    status, bad = api(
        "PUT", f"/campaigns/{draft}/steps", json={"steps": [{"delay_minutes": 0, "body": "x"}]}
    )
    assert status == 422 and "delay_minutes" in str(bad), bad
    status, _ = viewer("PUT", f"/campaigns/{draft}/steps", json={"steps": []})
    assert status == 403

    with db.session() as session:
        lifecycle.launch(session, None, draft)
    status, out = viewer("GET", f"/campaigns/{draft}/steps")
    assert status == 200
    first = out["steps"][0]
    assert first["status"] == "running" and first["run_campaign_id"]
    assert (first["recipients"], first["sent"], first["waiting"]) == (0, 0, 0)
    status, run = viewer("GET", f"/campaigns/{first['run_campaign_id']}")
    assert status == 200 and run["name"].endswith("follow-up 1")
    status, _ = api("PUT", f"/campaigns/{draft}/steps", json={"steps": []})
    assert status == 409
    assert api("GET", "/campaigns/999999/steps")[0] == 404
