"""Recurring campaigns' pages: repeating a draft, the form's messages, the series' page with
its runs, pause/stop, who may do what, and the campaigns list's Recurring section."""

from __future__ import annotations

import html as htmllib
import re

from flask.testing import FlaskClient
from sqlalchemy import select

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.campaigns import recurrence
from wabulk.db import Database
from wabulk.models import Recurrence, RecurrenceState, Role, utcnow

from ..conftest import get_csrf
from ..page_words import internal_terms, visible_text


def _words(page: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _draft(db: Database) -> int:
    list_id = make_contacts(db, phones(3), "Regulars", timezone="Asia/Kolkata")
    return make_campaign(db, [list_id], [make_sender(db)], launch=False, name="Offers")


def _form(**fields: object) -> dict[str, object]:
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


def _post(client: FlaskClient, url: str, data: dict[str, object]):  # type: ignore[no-untyped-def]
    data = {"csrf_token": get_csrf(client, "/campaigns"), **data}
    return client.post(url, data=data)


def _series_id(db: Database) -> int:
    with db.session() as session:
        found = session.scalar(select(Recurrence.id))
        assert found is not None
        return found


def test_an_operator_repeats_a_draft_and_the_series_sends_it(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    model_id = _draft(db)
    draft_page = client.get(f"/campaigns/{model_id}").get_data(as_text=True)
    assert 'data-testid="repeat-link"' in draft_page
    form_page = client.get(f"/recurrences/new/{model_id}")
    assert form_page.status_code == 200
    assert "Each customer's local time" in _words(form_page.get_data(as_text=True))

    response = _post(client, f"/recurrences/new/{model_id}", _form(ends_on="2030-03-31"))
    assert response.status_code == 302
    series_id = _series_id(db)
    assert response.headers["Location"].endswith(f"/recurrences/{series_id}")
    page = _words(client.get(f"/recurrences/{series_id}").get_data(as_text=True))
    assert (
        "Every month on the 1st at 10:00, each customer's local time, until 31 March 2030" in page
    )
    assert "No run yet" in page

    # The draft's own Launch is the series': hidden, and refused if posted anyway.
    draft_page = client.get(f"/campaigns/{model_id}").get_data(as_text=True)
    assert 'data-testid="series-model"' in draft_page
    assert re.search(r'data-action="launch"[^>]*hidden', draft_page)
    refused = _post(client, f"/campaigns/{model_id}/actions/launch", {})
    assert refused.status_code == 302
    assert "model of the recurring campaign" in _words(
        client.get(f"/campaigns/{model_id}").get_data(as_text=True)
    )

    # A run appears on the series' page with its figures and links; the list shows the series.
    with db.session() as session:
        series = session.get(Recurrence, series_id)
        assert series is not None
        due = series.next_run_at
    assert due is not None
    with db.session() as session:
        [run_id] = recurrence.run_due(session, due)
    page = client.get(f"/recurrences/{series_id}").get_data(as_text=True)
    assert f'href="/campaigns/{run_id}"' in page
    assert f"/campaigns/{run_id}/report.xlsx" in page
    listing = client.get("/campaigns").get_data(as_text=True)
    assert 'data-testid="recurring"' in listing
    assert f'href="/recurrences/{series_id}"' in listing
    assert f'href="/campaigns/{run_id}"' in listing  # only as the latest run, in the section
    assert listing.count(f'href="/campaigns/{model_id}"') == 0
    run_page = client.get(f"/campaigns/{run_id}").get_data(as_text=True)
    assert 'data-testid="series-run"' in run_page
    # Words for shop owners only, on every page of the series.
    for url in (f"/recurrences/{series_id}", f"/recurrences/new/{model_id}", "/campaigns"):
        shown = visible_text(client.get(url).get_data(as_text=True))
        assert internal_terms(shown) == [], url


def test_the_form_names_each_mistake_and_keeps_what_was_typed(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    model_id = _draft(db)
    cases = [
        (_form(frequency="weekly"), "weekdays", "Tick at least one day of the week."),
        (_form(day_of_month="40"), "day_of_month", "from 1 to 31"),
        (_form(time_of_day="9 am"), "time_of_day", "Give the time as HH:MM"),
        (_form(zone_mode="fixed"), "timezone", "Choose the timezone"),
        (_form(zone_mode="fixed", timezone="Nowhere/Land"), "timezone", "from the list"),
        (_form(starts_on="2020-01-01"), "starts_on", "has passed"),
        (_form(starts_on="31/12/2030"), "starts_on", "must be a date"),
        (
            _form(starts_on="2030-05-02", ends_on="2030-05-01"),
            "ends_on",
            "on or after the first run date",
        ),
    ]
    for form, field, message in cases:
        response = _post(client, f"/recurrences/new/{model_id}", {**form, "name": "Kept name"})
        assert response.status_code == 400, field
        page = response.get_data(as_text=True)
        error = re.search(rf'data-error-for="{field}">([^<]*)<', page)
        assert error is not None, field
        assert message in htmllib.unescape(error.group(1)), field
        assert 'value="Kept name"' in page
    with db.session() as session:
        assert session.scalar(select(Recurrence.id)) is None


def test_a_form_without_its_csrf_token_is_refused(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    model_id = _draft(db)
    response = client.post(f"/recurrences/new/{model_id}", data=_form())
    assert response.status_code == 400
    with db.session() as session:
        assert session.scalar(select(Recurrence.id)) is None


def test_pause_resume_and_a_confirmed_stop(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    model_id = _draft(db)
    with db.session() as session:
        series_id = recurrence.create(
            session, None, model_id, recurrence.RuleInput("daily"), now=utcnow()
        ).id
    page = client.get(f"/recurrences/{series_id}").get_data(as_text=True)
    assert re.search(r'action="/recurrences/\d+/stop"\s+data-confirm="Stop', page)
    assert _post(client, f"/recurrences/{series_id}/pause", {}).status_code == 302
    assert _post(client, f"/recurrences/{series_id}/resume", {}).status_code == 302
    assert _post(client, f"/recurrences/{series_id}/stop", {}).status_code == 302
    with db.session() as session:
        series = session.get(Recurrence, series_id)
        assert series is not None and series.state == RecurrenceState.STOPPED
    page = _words(client.get(f"/recurrences/{series_id}").get_data(as_text=True))
    assert "stopped the series" in page
    assert _post(client, f"/recurrences/{series_id}/frobnicate", {}).status_code == 404


def test_a_viewer_reads_the_series_but_changes_nothing(client, as_role, db) -> None:
    model_id = _draft(db)
    with db.session() as session:
        series_id = recurrence.create(
            session,
            None,
            model_id,
            recurrence.RuleInput("weekly", weekdays=[0, 3], timezone="Asia/Kolkata"),
            now=utcnow(),
        ).id
    as_role(Role.VIEWER)
    page = client.get(f"/recurrences/{series_id}").get_data(as_text=True)
    assert "Every Monday and Thursday at 10:00, Asia/Kolkata time" in _words(page)
    assert re.search(r"\d+ \w+ \d{4}, 10:00 Asia/Kolkata time", _words(page))
    assert 'data-testid="series-actions"' not in page
    assert client.get(f"/recurrences/new/{model_id}").status_code == 403
    token = get_csrf(client, "/campaigns")
    for action in ("pause", "stop"):
        response = client.post(f"/recurrences/{series_id}/{action}", data={"csrf_token": token})
        assert response.status_code == 403
    response = client.post(f"/recurrences/new/{model_id}", data={**_form(), "csrf_token": token})
    assert response.status_code == 403
    with db.session() as session:
        series = session.get(Recurrence, series_id)
        assert series is not None and series.state == RecurrenceState.ACTIVE
    assert 'data-testid="repeat-link"' not in client.get(f"/campaigns/{model_id}").get_data(
        as_text=True
    )


def test_repeating_an_unknown_campaign_is_not_found(client, as_role) -> None:
    as_role(Role.OPERATOR)
    assert client.get("/recurrences/new/999").status_code == 404
    assert client.get("/recurrences/999").status_code == 404
