"""Your sheet, with results, over HTTP: the campaign page's card and download, and the API."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from python_calamine import CalamineWorkbook

from tests.campaigns_support import make_campaign, make_contacts, make_sender
from tests.importing import import_file
from tests.sheet_files import write_csv, write_xlsx
from wabulk.auth import service as users
from wabulk.db import Database
from wabulk.models import Import, Role

from ..conftest import PASSWORD, login
from .test_sheet_results import CSV_ROWS, XLSX_ROWS, _outcomes


def _client(app: Flask, db: Database, role: Role) -> FlaskClient:
    client = app.test_client()
    email = f"{role.value}@example.com"
    with db.session() as session:
        users.create_user(session, None, email, PASSWORD, role)
    assert login(client, email).status_code == 302
    return client


def _imported(app: Flask, db: Database, sheet: Path, list_id: int | None = None) -> Import:
    instance = app.extensions["wabulk.settings"].instance_path
    if list_id is None:
        return import_file(db, instance, sheet, new_list_name=sheet.stem)
    return import_file(db, instance, sheet, list_id=list_id)


def test_a_viewer_downloads_the_sheet_from_the_campaign_page(dual, tmp_path):
    app, db = dual
    imp = _imported(app, db, write_csv(tmp_path / "june.csv", CSV_ROWS, delimiter=";"))
    campaign_id = make_campaign(db, [imp.list_id], [make_sender(db)])
    _outcomes(db, campaign_id)
    viewer = _client(app, db, Role.VIEWER)
    page = viewer.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Your sheet, with results" in page
    assert f'href="/campaigns/{campaign_id}/sheet"' in page
    answer = viewer.get(f"/campaigns/{campaign_id}/sheet", buffered=True)
    answer.close()  # as a server would: send_file's open file is let go
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/csv"
    assert "filename=june-with-results.csv" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data().decode("utf-8-sig")), delimiter=";"))
    assert rows[2][:5] == CSV_ROWS[2] and rows[2][5] == "Delivered"
    assert rows[1][5:7] == ["Status", "Sent at (UTC)"]
    # The API answers the same file, to a viewer too.
    api = viewer.get(f"/api/v1/campaigns/{campaign_id}/sheet", buffered=True)
    api.close()
    assert api.status_code == 200 and api.get_data() == answer.get_data()
    assert not list((app.extensions["wabulk.settings"].instance_path / "tmp").glob("sheet-*"))


def test_a_deleted_file_and_a_campaign_without_a_sheet_are_explained(dual, tmp_path):
    app, db = dual
    imp = _imported(app, db, write_csv(tmp_path / "july.csv", CSV_ROWS))
    gone = make_campaign(db, [imp.list_id], [make_sender(db)])
    instance = app.extensions["wabulk.settings"].instance_path
    with db.session() as session:
        stored = session.get(Import, imp.id)
        assert stored is not None
        (instance / stored.stored_path).unlink()
    by_hand = make_campaign(
        db, [make_contacts(db, ["+919876500009"], "By hand")], [make_sender(db, "B")]
    )
    operator = _client(app, db, Role.OPERATOR)

    page = operator.get(f"/campaigns/{gone}").get_data(as_text=True)
    assert 'data-testid="sheet-gone"' in page and "july.csv is no longer stored" in page
    answer = operator.get(f"/campaigns/{gone}/sheet", follow_redirects=True)
    assert answer.status_code == 200
    assert "no longer stored on this server" in answer.get_data(as_text=True)
    api = operator.get(f"/api/v1/campaigns/{gone}/sheet")
    assert api.status_code == 409 and "no longer stored" in api.get_json()["error"]["message"]

    page = operator.get(f"/campaigns/{by_hand}").get_data(as_text=True)
    assert 'data-testid="no-sheet"' in page and "not filled from an imported sheet" in page
    api = operator.get(f"/api/v1/campaigns/{by_hand}/sheet")
    assert api.status_code == 409


def test_two_sheets_in_one_list_are_each_offered(dual, tmp_path):
    app, db = dual
    first = _imported(app, db, write_csv(tmp_path / "one.csv", CSV_ROWS))
    second = _imported(app, db, write_xlsx(tmp_path / "two.xlsx", XLSX_ROWS), first.list_id)
    campaign_id = make_campaign(db, [first.list_id], [make_sender(db)])
    viewer = _client(app, db, Role.VIEWER)
    page = viewer.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert f"/campaigns/{campaign_id}/sheet?import_id={second.id}" in page
    assert f"/campaigns/{campaign_id}/sheet?import_id={first.id}" in page
    assert page.index("two.xlsx") < page.index("one.csv")  # newest first
    api = viewer.get(f"/api/v1/campaigns/{campaign_id}/sheet")
    assert api.status_code == 422
    assert api.get_json()["error"]["details"][0]["field"] == "import_id"
    answer = viewer.get(
        f"/api/v1/campaigns/{campaign_id}/sheet?import_id={second.id}", buffered=True
    )
    answer.close()
    assert answer.status_code == 200 and answer.mimetype.endswith("spreadsheetml.sheet")
    workbook = CalamineWorkbook.from_filelike(io.BytesIO(answer.get_data()))
    assert workbook.get_sheet_by_index(0).to_python()[0][:6] == [*XLSX_ROWS[0], "Status"]
    wrong = viewer.get(f"/api/v1/campaigns/{campaign_id}/sheet?import_id=999999")
    assert wrong.status_code == 404
