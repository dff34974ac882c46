"""Hostile and careless input against issue 19's segments, follow-ups, recurrences and sheet:
nothing a user or API client sends may end in a 500 or reach SQL unchecked. On SQLite and
PostgreSQL where SQL is involved."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.analytics_support import signed_in
from tests.campaigns_support import make_contacts, phones
from tests.conftest import csrf_from
from wabulk.errors import Conflict
from wabulk.models import Role, Segment
from wabulk.segments import service as segments
from wabulk.segments import terms as segment_terms

from .test_api_resources import _api


def _preview(client: FlaskClient, body: str) -> Any:
    token = csrf_from(client.get("/segments/new").get_data(as_text=True))
    return client.post(
        "/segments/preview.json",
        data=body,
        headers={"X-CSRFToken": token, "Content-Type": "application/json"},
    )


def _one(condition: dict[str, Any]) -> str:
    import json

    return json.dumps({"terms": {"match": "all", "conditions": [condition]}})


# Python's json (Flask's too) reads Infinity and integers past a float's range.
OVERFLOWING = [
    '{"terms": {"conditions": [{"field": "list", "op": "in", "value": [Infinity]}]}}',
    '{"terms": {"conditions": [{"field": "outcome", "op": "replied", "campaign_id": -Infinity}]}}',
    '{"terms": {"conditions": [{"field": "attribute", "key": "due", "op": "gt", "value": 1'
    + "0" * 400
    + "}]}}",
    '{"terms": {"conditions": [{"field": "attribute", "key": "due", "op": "within_days", '
    '"value": 1' + "0" * 400 + "}]}}",
]


@pytest.mark.parametrize("body", OVERFLOWING, ids=["list", "outcome", "number", "days"])
def test_infinite_or_huge_numbers_are_refused_not_a_crash(body: str) -> None:
    import json

    with pytest.raises(segment_terms.ValidationError):
        segment_terms.validate(json.loads(body)["terms"])


def test_live_count_with_infinity_answers_with_a_message(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR)
    for body in OVERFLOWING:
        answer = _preview(client, body)
        assert answer.status_code < 500, body[:80]
        assert answer.get_json()["ok"] is False


def test_live_count_rows_not_a_list_is_not_a_crash(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR)
    for rows in ("5", "true", '{"a": 1}', '"abc"'):
        answer = _preview(client, '{"terms": {"conditions": []}, "rows": ' + rows + "}")
        assert answer.status_code < 500, rows


BAD_TEXT = ["a\x00b", "a\ud800b"]


@pytest.mark.parametrize("text", BAD_TEXT, ids=["nul", "surrogate"])
def test_unstorable_text_values_are_refused_by_validate(text: str) -> None:
    conditions = [
        {"field": "attribute", "key": "city", "op": "eq", "value": text},
        {"field": "name", "op": "contains", "value": text},
        {"field": "outcome", "campaign_id": 1, "op": "failed", "value": text},
    ]
    for condition in conditions:
        with pytest.raises(segment_terms.ValidationError):
            segment_terms.validate({"conditions": [condition]})


@pytest.mark.parametrize("text", BAD_TEXT, ids=["nul", "surrogate"])
def test_unstorable_text_in_the_live_count_and_api_is_not_a_500(dual, text: str) -> None:
    import json

    app, db = dual
    make_contacts(db, phones(2, "+9198711"), "Pune", attributes={"city": "Pune"})
    client = signed_in(app, db, Role.OPERATOR)
    condition = {"field": "attribute", "key": "city", "op": "eq", "value": text}
    answer = _preview(client, _one(condition))
    assert answer.status_code < 500
    api = _api(app, db, Role.OPERATOR)
    body = {"name": "Bad", "match": "all", "conditions": [condition]}
    status, answer = api("POST", "/segments", json=json.loads(json.dumps(body)))
    assert "Extra inputs" not in str(answer)
    assert status == 422 or 400 <= status < 500


def test_huge_numeric_attribute_value_does_not_break_the_count(dual) -> None:
    """An imported cell of 140,000 digits is a "number" by the pattern but overflows
    PostgreSQL's NUMERIC: a count of "Due > 5" must still answer (that contact just does
    not compare), on both databases."""
    _app, db = dual
    make_contacts(db, phones(1, "+9198711"), "Big", attributes={"due": "9" * 140_000})
    make_contacts(db, phones(1, "+9198722"), "Small", attributes={"due": "10"})
    terms = {"conditions": [{"field": "attribute", "key": "due", "op": "gt", "value": 5}]}
    with db.session() as session:
        assert segments.count(session, terms) == (1, False)  # the same on both databases


def test_dotted_and_spaced_keys_match_only_their_attribute(dual) -> None:
    _app, db = dual
    make_contacts(db, phones(1, "+9198711"), "Dotted", attributes={"a.b": "x"})
    make_contacts(db, phones(1, "+9198722"), "Nested", attributes={"a": {"b": "x"}})
    make_contacts(db, phones(1, "+9198733"), "Case", attributes={"A.B": "x"})
    terms = {"conditions": [{"field": "attribute", "key": "a.b", "op": "eq", "value": "x"}]}
    with db.session() as session:
        assert segments.count(session, terms) == (1, False)


HUGE = 2**70
GETS = [
    f"/segments/{HUGE}",
    f"/campaigns/{HUGE}/followups/new",
    f"/campaigns/{HUGE}/followups/1",
    f"/campaigns/1/followups/{HUGE}",
    f"/recurrences/new/{HUGE}",
    f"/recurrences/{HUGE}",
    f"/campaigns/{HUGE}/sheet",
]


def test_huge_ids_in_new_pages_are_not_found_not_a_crash(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR)
    for url in GETS:
        assert client.get(url).status_code == 404, url


POSTS = [
    "/segments/new",
    "/segments/1",
    "/segments/1/delete",
    "/segments/preview.json",
    "/segments/retarget/1/replied",
    "/campaigns/1/followups/new",
    "/campaigns/1/followups/1",
    "/campaigns/1/followups/1/delete",
    "/recurrences/new/1",
    "/recurrences/1/pause",
]


def test_new_pages_need_sign_in_and_viewers_change_nothing(dual) -> None:
    app, db = dual
    viewer = signed_in(app, db, Role.VIEWER)  # a user exists: no first-run setup page
    anonymous = app.test_client()
    for url in [*GETS[:1], "/segments", "/segments/new", "/campaigns/1/sheet"]:
        answer = anonymous.get(url.replace(str(HUGE), "1"))
        assert answer.status_code in (302, 401), url
        assert "/login" in answer.headers.get("Location", "/login"), url
    token = csrf_from(viewer.get("/segments").get_data(as_text=True))
    for url in POSTS:
        answer = viewer.post(url, data={"csrf_token": token}, headers={"X-CSRFToken": token})
        assert answer.status_code in (403, 404), (url, answer.status_code)
        answer = anonymous.post(url, data={})
        assert answer.status_code in (302, 400, 401, 403), (url, answer.status_code)


def test_new_forms_refuse_a_post_without_csrf(dual) -> None:
    app, db = dual
    app.config["WTF_CSRF_ENABLED"] = True
    operator = signed_in(app, db, Role.OPERATOR)
    for url in POSTS:
        answer = operator.post(url, data={"name": "x"})
        assert answer.status_code == 400, (url, answer.status_code)


def test_segment_name_with_nul_is_refused_not_a_500(dual) -> None:
    app, db = dual
    api = _api(app, db, Role.OPERATOR)
    status, _ = api("POST", "/segments", json={"name": "a\x00b", "conditions": []})
    assert 400 <= status < 500
    status, _ = api("POST", "/segments", json={"name": "ok", "description": "\x00"})
    assert 400 <= status < 500


POISON = "1." + "0" * 20_000  # a number by the old pattern; overflows PostgreSQL's NUMERIC


def test_a_long_number_cell_neither_breaks_the_count_nor_the_import_once_indexed(dual) -> None:
    """Once a saved segment made the "Due" number index, saving a contact whose Due is a
    20,000-digit number must still work (the index computes the expression on write)."""
    from wabulk.contacts.service import upsert_contact

    _app, db = dual
    terms = {"conditions": [{"field": "attribute", "key": "due", "op": "gt", "value": 5}]}
    make_contacts(db, phones(1, "+9198722"), "Small", attributes={"due": "10"})
    with db.session() as session:
        segments.create(session, None, "Dues", None, terms)
    with db.session() as session:
        upsert_contact(session, None, phone="+919871100001", attributes={"due": POISON})
    with db.session() as session:
        n, _ = segments.count(session, terms)
    assert n >= 1


def test_saving_a_number_segment_replaces_the_old_overflowing_index(dual) -> None:
    from sqlalchemy import text

    from wabulk.segments import indexes

    _app, db = dual
    old = indexes.index_name("due", "number", 1)
    with db.session() as session:
        session.execute(
            text(f"CREATE INDEX {old} ON contacts ((attributes ->> 'due'))")
            if session.bind.dialect.name == "postgresql"
            else text(f"CREATE INDEX {old} ON contacts (json_extract(attributes, '$.due'))")
        )
    terms = {"conditions": [{"field": "attribute", "key": "due", "op": "gt", "value": 5}]}
    with db.session() as session:
        segments.create(session, None, "Dues", None, terms)
    with db.session() as session:
        have = indexes.existing(session.connection())
    assert old not in have and indexes.index_name("due", "number") in have


# --- recurrences ---------------------------------------------------------------------


def _recurrence_form(**fields: object) -> dict[str, object]:
    form: dict[str, object] = {
        "name": "Monthly offers",
        "frequency": "monthly",
        "day_of_month": "1",
        "time_of_day": "10:00",
        "zone_mode": "local",
        "timezone": "",
        "starts_on": "",
        "ends_on": "",
    }
    form.update(fields)
    return form


@pytest.mark.parametrize(
    "fields",
    [
        {"day_of_month": "³"},  # str.isdigit() says yes, int() says no
        {"day_of_month": "99999999999999999999"},
        {"day_of_month": "0"},
        {"weekdays": ["12"], "frequency": "weekly"},
        {"zone_mode": "fixed", "timezone": "Mars/Olympus"},
        {"zone_mode": "fixed", "timezone": "\x00"},
        {"starts_on": "2026-02-30"},
        {"starts_on": "2030-01-10", "ends_on": "2030-01-01"},
        {"time_of_day": "24:00"},
    ],
    ids=lambda f: next(iter(f)),
)
def test_recurrence_form_refuses_bad_fields_with_a_message(dual, fields) -> None:
    from tests.campaigns_support import make_campaign, make_sender

    app, db = dual
    list_id = make_contacts(db, phones(2), "Regulars")
    model_id = make_campaign(db, [list_id], [make_sender(db)], launch=False, name="Offers")
    client = signed_in(app, db, Role.OPERATOR)
    token = csrf_from(client.get(f"/recurrences/new/{model_id}").get_data(as_text=True))
    answer = client.post(
        f"/recurrences/new/{model_id}", data={"csrf_token": token, **_recurrence_form(**fields)}
    )
    assert answer.status_code in (200, 400), answer.status_code
    with db.session() as session:
        from sqlalchemy import func, select

        from wabulk.models import Recurrence

        assert session.scalar(select(func.count()).select_from(Recurrence)) == 0


# --- follow-ups ----------------------------------------------------------------------


def _followup_draft(db) -> int:  # type: ignore[no-untyped-def]
    from tests.campaigns_support import make_campaign, make_sender

    lst = make_contacts(db, phones(3), "Customers")
    return make_campaign(db, [lst], [make_sender(db)], launch=False)


@pytest.mark.parametrize(
    "fields",
    [
        {"days": "0", "hours": "0", "body": "hi"},
        {"days": "-1", "hours": "0", "body": "hi"},
        {"days": "999999", "hours": "0", "body": "hi"},
        {"days": "1", "hours": "-30", "body": "hi"},
        {"days": "²", "hours": "0", "body": "hi"},
        {"days": "1", "hours": "0", "body": "a\x00b"},
        {"days": "1", "hours": "0", "body": "hi", "condition": "frobnicate"},
    ],
    ids=["zero", "negative", "huge", "neg-hours", "superscript", "nul", "cond"],
)
def test_follow_up_form_refuses_bad_fields_with_a_message(dual, fields) -> None:
    from wabulk.campaigns import followups

    app, db = dual
    draft = _followup_draft(db)
    client = signed_in(app, db, Role.OPERATOR)
    token = csrf_from(client.get(f"/campaigns/{draft}/followups/new").get_data(as_text=True))
    data = {"csrf_token": token, "condition": "not_replied", "template_id": "", **fields}
    answer = client.post(f"/campaigns/{draft}/followups/new", data=data)
    assert answer.status_code in (200, 400), answer.status_code
    with db.session() as session:
        assert followups.steps_of(session, draft) == []


def test_follow_up_api_refuses_nul_and_huge_delays(dual) -> None:
    app, db = dual
    draft = _followup_draft(db)
    api = _api(app, db, Role.OPERATOR)
    for step in (
        {"delay_minutes": 60, "body": "a\x00b"},
        {"delay_minutes": 2**70, "body": "hi"},
        {"delay_minutes": 0, "body": "hi"},
        {"delay_minutes": 60.5, "body": "hi"},
    ):
        status, _ = api("PUT", f"/campaigns/{draft}/steps", json={"steps": [step]})
        assert 400 <= status < 500, (step, status)


def test_text_is_matches_non_ascii_capitals_on_both_databases(dual, request) -> None:
    """ "City is München" finds a contact imported as "MÜNCHEN": the value is lowered in
    Python (Unicode) and the column by the database's lower()."""
    _app, db = dual
    if db.is_sqlite:
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="SQLite's built-in lower() folds only ASCII, so 'MÜNCHEN' lowers to "
                "'mÜnchen' and never equals Python's 'münchen' (is / contains / name contains). "
                "A fix needs a Unicode lower() registered on every connection, which the "
                "expression indexes would then depend on (sqlite3 CLI could not write them).",
            )
        )
    make_contacts(db, phones(1, "+9198711"), "Upper", attributes={"city": "MÜNCHEN"})
    terms = {"conditions": [{"field": "attribute", "key": "city", "op": "eq", "value": "München"}]}
    with db.session() as session:
        assert segments.count(session, terms) == (1, False)


def test_api_refuses_infinite_and_huge_numbers_in_terms(dual) -> None:
    app, db = dual
    api = _api(app, db, Role.OPERATOR)
    for condition in (
        {"field": "list", "op": "in", "value": [float("inf")]},
        {"field": "outcome", "op": "replied", "campaign_id": float("-inf")},
        {"field": "attribute", "key": "due", "op": "gt", "value": 10**400},
        {"field": "attribute", "key": "due", "op": "gt", "value": float("nan")},
    ):
        terms = {"match": "all", "conditions": [condition]}
        status, answer = api("POST", "/segments/preview", json=terms)
        assert 400 <= status < 500 and "Extra inputs" not in str(answer), (condition, status)
        status, answer = api("POST", "/segments", json={"name": "Inf", **terms})
        assert 400 <= status < 500 and "Extra inputs" not in str(answer), (condition, status)


def test_deeply_nested_json_is_refused_not_a_crash(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR)
    deep = '{"terms": ' + "[" * 30_000 + "]" * 30_000 + "}"
    assert _preview(client, deep).status_code == 400
    api = _api(app, db, Role.OPERATOR)
    status, _ = api("POST", "/segments/preview", data=deep, content_type="application/json")
    assert 400 <= status < 500


def test_retarget_of_a_missing_campaign_or_unknown_outcome_is_not_a_crash(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR)
    token = csrf_from(client.get("/segments").get_data(as_text=True))
    for url in ("/segments/retarget/999999/replied", "/segments/retarget/1/%00%27%22"):
        answer = client.post(url, data={"csrf_token": token})
        assert answer.status_code in (302, 400, 404), (url, answer.status_code)


def test_invalid_calendar_dates_in_data_do_not_count_as_after(dual, request) -> None:
    """An imported "2026-13-45" is no date; "after 2026-01-01" must not pick it."""
    request.applymarker(
        pytest.mark.xfail(
            strict=True,
            reason="compile.py's date expression takes any text shaped NNNN-NN-NN and "
            "compares it as text, so month 13 / day 45 sorts after every real date; a "
            "fix changes the indexed expression (a new index name, as for numbers).",
        )
    )
    _app, db = dual
    make_contacts(db, phones(1, "+9198711"), "Bad", attributes={"bought": "2026-13-45"})
    terms = {
        "conditions": [
            {"field": "attribute", "key": "bought", "op": "after", "value": "2026-01-01"}
        ]
    }
    with db.session() as session:
        assert segments.count(session, terms) == (0, False)


def test_a_deleted_list_s_id_never_makes_a_segment_match_a_new_list(dual) -> None:
    """Segment "in list Pune"; Pune is deleted; a new list "Mumbai" is imported. The segment
    must not now send to Mumbai (SQLite numbers a new row from the largest id, so without
    AUTOINCREMENT the new list takes the deleted one's id)."""
    from wabulk.contacts.lists import delete_list

    _app, db = dual
    pune = make_contacts(db, phones(2, "+9198711"), "Pune")
    terms = {"conditions": [{"field": "list", "op": "in", "value": [pune]}]}
    with db.session() as session:
        segments.create(session, None, "Pune people", None, terms)
    with pytest.raises(Conflict, match="Pune people"), db.session() as session:
        delete_list(session, None, pune)  # refused: the segment would be left pointing at it
    mumbai = make_contacts(db, phones(3, "+9198722"), "Mumbai")
    with db.session() as session:
        saved = session.scalars(select(Segment)).one()
        n, _ = segments.count(session, saved.terms)
    assert (mumbai == pune and n == 3) is False, "the segment now sends to the new list"


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "list", "op": "in", "value": [424242]},
        {"field": "outcome", "op": "replied", "campaign_id": 424242},
    ],
    ids=["list", "campaign"],
)
def test_a_segment_cannot_be_saved_on_ids_that_do_not_exist(dual, condition) -> None:
    """A list or campaign that does not exist yet would be matched by whichever one later
    takes that id."""
    app, db = dual
    api = _api(app, db, Role.OPERATOR)
    terms = {"match": "all", "conditions": [condition]}
    status, answer = api("POST", "/segments", json={"name": "Ghost", **terms})
    assert 400 <= status < 500 and "Extra inputs" not in str(answer), (status, answer)


def test_a_stored_segment_that_no_longer_validates_does_not_break_the_pages(dual) -> None:
    """Terms saved under older rules (a timezone tzdata since dropped, a value now refused)
    are re-checked when counted: the list page and the API still answer."""
    app, db = dual
    stale = {
        "match": "all",
        "conditions": [{"field": "timezone", "op": "in", "value": ["Mars/Olympus"]}],
    }
    with db.session() as session:
        session.add(Segment(name="Old", terms=stale))
    client = signed_in(app, db, Role.OPERATOR)
    assert client.get("/segments").status_code == 200
    with db.session() as session:
        seg_id = session.scalars(select(Segment.id)).one()
    assert client.get(f"/segments/{seg_id}").status_code == 200
    api = _api(app, db, Role.OPERATOR)
    status, _ = api("GET", "/segments")
    assert status == 200


def test_making_an_index_leaves_no_lock_timeout_on_pooled_connections(dual) -> None:
    """indexes.ensure sets PostgreSQL's lock_timeout on an autocommit connection; the
    connection goes back to the pool, and whatever borrows it next must not inherit a
    5-second limit on its own lock waits."""
    from sqlalchemy import text

    from wabulk.segments import indexes

    _app, db = dual
    if db.is_sqlite:
        pytest.skip("PostgreSQL setting")
    with db.engine.connect() as conn:
        default = conn.execute(text("SHOW lock_timeout")).scalar()
    terms = {"conditions": [{"field": "attribute", "key": "due", "op": "gt", "value": 5}]}
    assert indexes.ensure(db.engine, segment_terms.validate(terms))
    pooled = [db.engine.connect() for _ in range(max(1, db.engine.pool.checkedin()))]
    try:
        assert {c.execute(text("SHOW lock_timeout")).scalar() for c in pooled} == {default}
    finally:
        for c in pooled:
            c.close()
