"""The import page: the choice for a number written twice, and the column choices offered
again for a sheet with the same header (on SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import re

from flask import Flask
from flask.testing import FlaskClient

from wabulk.auth import service as users
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.dispatch.worker import Dispatcher
from wabulk.models import Role

from ..conftest import PASSWORD, get_csrf, login
from ..importing import contacts

SHEET = (
    "Sr No,Name,Phone,City\n"
    "1,Deepa Patel,98765 43210,Pune\n"
    "2,Ravi,9876543211,Delhi\n"
    "3,Dup of row 1,+91 98765 43210,Mumbai\n"
)
A = "+919876543210"


def _client(app: Flask, db: Database) -> FlaskClient:
    with db.session() as session:
        users.create_user(session, None, "asha@example.com", PASSWORD, Role.OPERATOR)
    client = app.test_client()
    assert login(client, "asha@example.com").status_code == 302
    return client


def _upload(client: FlaskClient) -> tuple[int, str]:
    response = client.post(
        "/contacts/imports/new",
        data={
            "csrf_token": get_csrf(client, "/contacts/imports/new"),
            "kind": "contacts",
            "file": (io.BytesIO(SHEET.encode()), "customers.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    import_id = int(response.headers["Location"].rsplit("/", 1)[1])
    return import_id, client.get(f"/contacts/imports/{import_id}").get_data(as_text=True)


def _selected(page: str) -> dict[str, str]:
    """What the page preselects: each column's use and the choice for a repeated number."""
    chosen = {}
    for i in re.findall(r'name="role_(\d+)"', page):
        found = re.search(rf'name="role_{i}".*?<option value="(\w+)"[^>]*selected', page, re.S)
        chosen[f"role_{i}"] = found.group(1) if found else ""
    duplicates = re.search(r'name="duplicates"[^>]*value="(\w+)"[^>]*checked', page)
    chosen["duplicates"] = duplicates.group(1) if duplicates else ""
    return chosen


def _start(client: FlaskClient, import_id: int, form: dict[str, str]):  # type: ignore[no-untyped-def]
    data = {
        "csrf_token": get_csrf(client, f"/contacts/imports/{import_id}"),
        "default_country": "IN",
        "list_choice": "",
        **form,
    }
    return client.post(f"/contacts/imports/{import_id}/start", data=data)


def _run(db: Database, settings: Settings) -> None:
    dispatcher = Dispatcher(db, settings)
    while dispatcher.import_step():
        pass


def test_the_choices_of_an_import_are_offered_again_and_change_nothing(
    dual, settings: Settings
) -> None:
    app, db = dual
    client = _client(app, db)
    import_id, page = _upload(client)
    assert "When a number appears twice in the sheet" in page
    assert 'data-testid="remembered"' not in page
    first = _selected(page)
    assert first == {
        "role_0": "attribute",  # "Sr No", as a first look suggests
        "role_1": "name",
        "role_2": "phone",
        "role_3": "attribute",
        "duplicates": "first",
    }
    chosen = {**first, "role_0": "skip", "duplicates": "last"}
    assert _start(client, import_id, chosen).status_code == 302
    _run(db, settings)
    assert contacts(db)[A] == {
        "name": "Dup of row 1",  # the last row, as chosen
        "attributes": {"city": "Mumbai"},
        "country": "IN",
        "timezone": "Asia/Calcutta",
        "opted_out": False,
        "opt_out_reason": None,
    }
    done = client.get(f"/contacts/imports/{import_id}").get_data(as_text=True)
    assert "row 4 repeats row 2 (+919876543210); taken, as the last row wins" in done

    again_id, page = _upload(client)
    assert 'data-testid="remembered"' in page
    assert _selected(page) == chosen
    assert _start(client, again_id, _selected(page)).status_code == 302
    _run(db, settings)
    status = client.get(f"/contacts/imports/{again_id}/status.json").get_json()
    assert (status["created"], status["updated"], status["unchanged"]) == (0, 0, 2)


def test_by_default_the_first_row_of_a_number_is_kept(dual, settings: Settings) -> None:
    app, db = dual
    client = _client(app, db)
    import_id, page = _upload(client)
    form = _selected(page)
    del form["duplicates"]  # a form sent without the choice: the first row wins
    assert _start(client, import_id, form).status_code == 302
    _run(db, settings)
    assert contacts(db)[A]["name"] == "Deepa Patel"
    done = client.get(f"/contacts/imports/{import_id}").get_data(as_text=True)
    assert (
        "row 4 repeats row 2 (+919876543210); not taken: Name &#39;Dup of row 1&#39;, "
        "Sr No &#39;3&#39;, City &#39;Mumbai&#39;" in done
    )


def test_an_unknown_choice_is_refused_and_the_page_keeps_the_columns(dual) -> None:
    app, db = dual
    client = _client(app, db)
    import_id, page = _upload(client)
    form = {**_selected(page), "role_0": "skip", "duplicates": "newest"}
    response = _start(client, import_id, form)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "keep the first row or the last row" in page
    assert _selected(page)["role_0"] == "skip"
