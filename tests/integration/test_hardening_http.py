"""Issue 14, items 5 and 7: HSTS behind HTTPS, downloads kept out of every cache, and the
import report's column headers neutralised like every other cell a sheet brings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from tests.importing import import_file
from wabulk import migrate
from wabulk.app import create_app
from wabulk.campaigns.media import save_media
from wabulk.channels.whatsapp_web.channel import screenshots_folder
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import Role

from ..conftest import login

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture
def https_app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings, https=True)
    app.config["TESTING"] = True
    migrate.upgrade(app.extensions["wabulk.db"].engine)
    yield app
    app.extensions["wabulk.db"].dispose()


def test_hsts_is_sent_on_every_response_when_served_over_https(https_app: Flask, make_user) -> None:
    client = https_app.test_client()
    for url in ("/login", "/static/css/app.css", "/api/v1/me", "/no-such-page"):
        response = client.get(url)
        assert response.headers["Strict-Transport-Security"] == HSTS, url
        response.close()


def test_no_hsts_without_https(client: FlaskClient, as_role) -> None:
    as_role(Role.VIEWER)
    for url in ("/login", "/", "/static/css/app.css", "/api/v1/me"):
        response = client.get(url)
        assert "Strict-Transport-Security" not in response.headers, url
        response.close()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


def _pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def _downloads(db: Database, settings: Settings, tmp_path: Path) -> list[str]:
    """One URL of each kind of download, each with something to send."""
    campaign_id = make_campaign(db, [make_contacts(db, phones(2), "Buyers")], [make_sender(db)])
    sheet = tmp_path / "customers.csv"
    sheet.write_text("phone,name\n9876543210,Asha\n12345,Bad\n", encoding="utf-8")
    imp = import_file(db, settings.instance_path, sheet)
    media = []
    for data, name in ((_png(), "logo.png"), (_pdf(), "price list.pdf")):
        with db.session() as session:
            row = save_media(session, io.BytesIO(data), name, settings.instance_path, 1 << 20)
            media.append(row.id)
    shots = screenshots_folder(settings.instance_path)
    shots.mkdir(parents=True, exist_ok=True)
    shot = "20261124T101500123456-m42-unconfirmed.png"
    (shots / shot).write_bytes(_png())
    return [
        f"/campaigns/{campaign_id}/report.csv",
        f"/campaigns/{campaign_id}/report.xlsx",
        "/contacts/export.csv",
        "/contacts/export.xlsx",
        "/contacts/sample.csv",
        "/contacts/sample.xlsx",
        f"/contacts/imports/{imp.id}/report.csv",
        *[f"/templates/attachments/{media_id}" for media_id in media],
        f"/senders/screenshots/{shot}",
    ]


def test_every_download_is_sent_with_no_store_only(
    client: FlaskClient, as_role, db: Database, settings: Settings, tmp_path: Path
) -> None:
    urls = _downloads(db, settings, tmp_path)
    as_role(Role.ADMIN)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers.getlist("Cache-Control") == ["no-store"], url
        response.close()


def test_the_import_report_neutralises_the_sheets_column_headers(
    client: FlaskClient, as_role, db: Database, settings: Settings, tmp_path: Path
) -> None:
    formula = '=HYPERLINK("http://x","y")'
    sheet = tmp_path / "customers.csv"
    with sheet.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(
            [["phone", formula, "+SUM(1,2)"], ["12345", "@cmd", "-2+3"], ["9876543210", "a", "b"]]
        )
    imp = import_file(db, settings.instance_path, sheet)
    assert imp.invalid_count == 1
    as_role(Role.VIEWER)
    text = client.get(f"/contacts/imports/{imp.id}/report.csv").get_data(as_text=True)
    header, row = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert header[3:] == ["phone", "'" + formula, "'+SUM(1,2)"]
    assert row[0] == "2" and row[1] == "rejected"
    assert row[3:] == ["12345", "'@cmd", "'-2+3"]
    # Nothing a spreadsheet would run is left in any cell of the report.
    for cell in header + row:
        assert not cell.startswith(("=", "+", "-", "@")), cell


def test_the_login_page_is_not_cached_either(client: FlaskClient) -> None:
    login_page = client.get("/login")
    assert login_page.headers.getlist("Cache-Control") == ["no-store"]


def test_a_signed_in_api_answer_is_not_cached(client: FlaskClient, make_user) -> None:
    user = make_user(Role.VIEWER)
    login(client, user.email)
    assert client.get("/api/v1/me").headers.getlist("Cache-Control") == ["no-store"]
