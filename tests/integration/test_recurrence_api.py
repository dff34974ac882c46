"""Recurring campaigns over the API: repeat a draft, list, read with runs, pause/resume/stop,
fields named in refusals, roles, and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.campaigns import recurrence
from wabulk.db import Database
from wabulk.models import Recurrence, Role

from ..conftest import PASSWORD


class Api:
    def __init__(self, client: FlaskClient, secret: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def call(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        response = self.client.open("/api/v1" + url, method=method, json=body, headers=self.headers)
        return response.status_code, response.get_json(silent=True)


def _api(app: Flask, db: Database, role: Role) -> Api:
    with db.session() as session:
        user = users.create_user(session, None, f"{role.value}@x.example", PASSWORD, role)
        secret = tokens.create_token(session, user, "tests").secret
    return Api(app.test_client(), secret)


def _draft(db: Database, name: str = "Offers") -> int:
    list_id = make_contacts(db, phones(2), "Regulars", timezone="Asia/Kolkata")
    return make_campaign(db, [list_id], [make_sender(db)], launch=False, name=name)


def test_repeat_a_draft_read_it_and_move_it(dual) -> None:
    app, db = dual
    api = _api(app, db, Role.OPERATOR)
    model_id = _draft(db)
    status, made = api.call(
        "POST",
        "/recurrences",
        {
            "campaign_id": model_id,
            "frequency": "monthly",
            "day_of_month": 31,
            "time_of_day": "09:30",
            "ends_on": "2030-03-31",
        },
    )
    assert status == 201, made
    assert made["rule"] == (
        "Every month on the 31st (or the month's last day, when it is shorter) at 09:30, "
        "each customer's local time, until 31 March 2030"
    )
    assert made["state"] == "active" and made["ends_on"] == "2030-03-31"
    assert made["model_campaign_id"] == model_id and made["recent_runs"] == []
    series_id = made["id"]

    with db.session() as session:
        series = session.get(Recurrence, series_id)
        assert series is not None and series.next_run_at is not None
        [run_id] = recurrence.run_due(session, series.next_run_at)
    status, got = api.call("GET", f"/recurrences/{series_id}")
    assert status == 200
    assert [r["id"] for r in got["recent_runs"]] == [run_id]
    assert got["recent_runs"][0]["total"] == 2 and got["runs"] == 1
    status, page = api.call("GET", "/recurrences?limit=1")
    assert status == 200 and [s["id"] for s in page["data"]] == [series_id]

    status, paused = api.call("POST", f"/recurrences/{series_id}/pause")
    assert status == 200 and paused["state"] == "paused"
    status, again = api.call("POST", f"/recurrences/{series_id}/pause")
    assert status == 409, again
    status, resumed = api.call("POST", f"/recurrences/{series_id}/resume")
    assert status == 200 and resumed["state"] == "active"
    status, stopped = api.call("POST", f"/recurrences/{series_id}/stop")
    assert status == 200 and stopped["state"] == "stopped" and stopped["next_run_at"] is None

    # The model is the series': launching it alone is refused.
    status, refused = api.call("POST", f"/campaigns/{model_id}/launch")
    assert status == 409 and "model of the recurring campaign" in refused["error"]["message"]


def test_refusals_name_the_field(dual) -> None:
    app, db = dual
    api = _api(app, db, Role.OPERATOR)
    model_id = _draft(db)
    cases = [
        ({"frequency": "weekly"}, "weekdays"),
        ({"frequency": "weekly", "weekdays": [8]}, "weekdays.0"),
        ({"frequency": "daily", "timezone": "Mars/Olympus"}, "timezone"),
        ({"frequency": "daily", "starts_on": "2001-01-01"}, "starts_on"),
        ({"frequency": "daily", "time_of_day": "24:00"}, "time_of_day"),
        ({"frequency": "hourly"}, "frequency"),
    ]
    for body, field in cases:
        status, answer = api.call("POST", "/recurrences", {"campaign_id": model_id, **body})
        assert status == 422, (body, answer)
        assert answer["error"]["details"][0]["field"] == field, answer
    status, answer = api.call("POST", "/recurrences", {"campaign_id": 999, "frequency": "daily"})
    assert status == 404, answer
    incomplete = make_campaign(db, [], [], launch=False, name="Empty")
    status, answer = api.call(
        "POST", "/recurrences", {"campaign_id": incomplete, "frequency": "daily"}
    )
    assert status == 422 and answer["error"]["details"][0]["field"] == "campaign_id"


def test_a_viewer_reads_and_cannot_change(dual) -> None:
    app, db = dual
    viewer = _api(app, db, Role.VIEWER)
    model_id = _draft(db)
    status, answer = viewer.call(
        "POST", "/recurrences", {"campaign_id": model_id, "frequency": "daily"}
    )
    assert status == 403, answer
    with db.session() as session:
        series_id = recurrence.create(session, None, model_id, recurrence.RuleInput("daily")).id
    assert viewer.call("GET", f"/recurrences/{series_id}")[0] == 200
    assert viewer.call("POST", f"/recurrences/{series_id}/stop")[0] == 403
    assert viewer.call("GET", "/recurrences/999")[0] == 404


def test_the_document_describes_the_recurrences(client, as_role) -> None:  # type: ignore[no-untyped-def]
    as_role(Role.VIEWER)
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    assert set(paths["/recurrences"]) == {"get", "post"}
    assert "/recurrences/{recurrence_id}/stop" in paths
    assert paths["/recurrences"]["post"]["tags"] == ["Recurring campaigns"]
    body = spec["components"]["schemas"]["RecurrenceIn"]
    assert {"campaign_id", "frequency", "weekdays", "day_of_month", "timezone"} <= set(
        body["properties"]
    )
