"""Decimals and percentages in the reader's numbers: a campaign's page, its summary, the
Dashboard and the Senders page write 18,5% in Portuguese where English keeps 18.5%; the
campaign report's status column is in the downloader's language, as its headers are."""

from __future__ import annotations

import csv
import html as htmllib
import io
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.analytics_support import failed, seed_outcomes, sent, signed_in
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.db import Database
from wabulk.models import Campaign, CampaignStatus, Role, User, utcnow
from wabulk.web.i18n import format_fixed, format_percent


def _words(page: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _speak(db: Database, language: str | None) -> None:
    with db.session() as session:
        user = session.scalars(select(User).where(User.email == "viewer-utc@example.com")).one()
        user.language = language


@pytest.fixture
def shop(app: Flask, db: Database) -> tuple[FlaskClient, int]:
    """A running campaign to 27 customers: 4 sent (2 of them delivered) and 1 failed, so
    18.5% done; 14.8% of the recipients sent, 50.0% of those delivered."""
    client = signed_in(app, db, Role.VIEWER)
    sender = make_sender(db, "Rehearsal", settings={"latency_seconds": 0.2, "failure_rate": 0.125})
    customers = make_contacts(db, phones(27), "Customers")
    campaign = make_campaign(db, [customers], [sender], name="Diwali offer")
    now = utcnow()
    seed_outcomes(
        db,
        campaign,
        sender,
        [
            sent(now, "delivered", delivered_at=now),
            sent(now, "delivered", delivered_at=now),
            sent(now),
            sent(now),
            failed(now, "not_on_whatsapp"),
        ],
    )
    return client, campaign


def _get(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def _percent_on_page(page: str) -> str:
    found = re.search(r'data-testid="percent">([^<]*)<', page)
    assert found, "no progress percentage"
    return found.group(1)


def _finish(db: Database, campaign: int) -> None:
    with db.session() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign)
            .values(status=CampaignStatus.COMPLETED, finished_at=utcnow() - timedelta(hours=1))
        )


def test_the_helpers_keep_english_as_python_wrote_it(app: Flask) -> None:
    for value in (18.5, 100.0, 0.0, 0.2, 1.0, 80, 12.5):
        assert format_fixed(value, locale="en") == str(value)
    assert format_fixed(7.000000000000001, 1, locale="en") == "7.0"
    assert format_fixed(18.5, 1, locale="pt_BR") == "18,5"
    assert format_fixed(0.2, locale="es") == "0,2"
    assert format_fixed(1000.0, 0, locale="id", group=False) == "1000"
    with app.test_request_context():
        assert format_percent(18.5) == "18.5%"
        assert format_percent(None) == "—"


def test_english_pages_keep_their_decimal_points(shop, db) -> None:
    client, campaign = shop
    page = _get(client, f"/campaigns/{campaign}")
    assert _percent_on_page(page) == "18.5%"
    said = _words(page)
    assert "14.8% of recipients" in said and "50.0% of sent" in said
    assert "18.5%" in _words(_get(client, "/"))
    senders = _words(_get(client, "/senders"))
    assert "0.2 s per message" in senders and "12.5% fail" in senders
    summary = _words(_get(client, f"/campaigns/{campaign}/summary"))
    assert "14.8%" in summary and "(50.0% of sent)" in summary
    _finish(db, campaign)
    card = _words(_get(client, "/"))
    assert "50.0% of sent" in card and "14.8%" in card


def test_portuguese_pages_write_decimals_with_a_comma(shop, db) -> None:
    client, campaign = shop
    _speak(db, "pt_BR")
    page = _get(client, f"/campaigns/{campaign}")
    assert _percent_on_page(page) == "18,5%"
    said = _words(page)
    assert "14,8%" in said and "50,0%" in said
    assert not re.search(r"\d\.\d%", said), re.findall(r"\S*\d\.\d%\S*", said)
    dashboard = _words(_get(client, "/"))
    assert "18,5%" in dashboard and "18.5%" not in dashboard
    senders = _words(_get(client, "/senders"))
    assert "0,2 s" in senders and "12,5%" in senders
    assert "0.2 s" not in senders and "12.5%" not in senders
    summary = _words(_get(client, f"/campaigns/{campaign}/summary"))
    assert "14,8%" in summary and "50,0%" in summary
    assert not re.search(r"\d\.\d%", summary), re.findall(r"\S*\d\.\d%\S*", summary)
    _finish(db, campaign)
    card = _words(_get(client, "/"))
    assert "50,0%" in card and "14,8%" in card
    assert not re.search(r"\d\.\d%", card)
    live = client.get("/live.json").get_json()["last_finished"]["steps"]
    assert live[0]["percent"] == "14,8%"


def _report(client: FlaskClient, campaign: int) -> list[list[str]]:
    body = _get(client, f"/campaigns/{campaign}/report.csv").lstrip("\ufeff")
    return list(csv.reader(io.StringIO(body)))


def test_the_report_status_column_is_in_the_downloaders_language(shop, db) -> None:
    client, campaign = shop
    english = _report(client, campaign)
    column = english[0].index("status")
    assert [row[column] for row in english[1:6]] == [
        "delivered",
        "delivered",
        "sent",
        "sent",
        "failed",
    ]
    assert {row[column] for row in english[6:]} == {"queued"}
    _speak(db, "pt_BR")
    portuguese = _report(client, campaign)
    assert portuguese[0] != english[0]  # the headers are in Portuguese
    assert [row[column] for row in portuguese[1:6]] == [
        "entregue",
        "entregue",
        "enviada",
        "enviada",
        "falhou",
    ]
    assert {row[column] for row in portuguese[6:]} == {"na fila"}
