"""The page frame, the Dashboard, Analytics, Activity and the error pages in each of our
languages, on the demo data: no sentence the catalogue translates is left in English, and the
English that services store (filter errors, failure labels, Events) is read back translated."""

from __future__ import annotations

import csv
import html
import io
import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.page_tour import ADMIN_EMAIL, PASSWORD, seed
from wabulk import events
from wabulk.analytics import dashboard as dash
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import Campaign, ContactList, EventLevel, Role, Sender, Template, User
from wabulk.web import i18n

from ..conftest import login
from .test_i18n_groundwork import LOCALES, english_runs, untranslated

PAGES = ("/", "/analytics", "/activity", "/activity?level=warning", "/no-such-page")
# Words that are the same in every language: product names, and what the demo data is called.
ALLOWED = ("WhatsApp Cloud API", "WhatsApp Web", "WhatsApp Business")


# This area's files (relative to src/wabulk): the check below reads the sentences they mark.
OURS = (
    "web/templates/base.html",
    "web/templates/_macros.html",
    "web/templates/_flashes.html",
    "web/templates/errors/",
    "web/templates/pages/",
    "web/pages.py",
    "web/activity_views.py",
    "web/forms.py",
    "web/form_state.py",
    "web/security.py",
    "web/db_errors.py",
    "events.py",
    "analytics/",
    "web/static/js/app.js",
    "web/static/js/dashboard.js",
    "web/static/js/analytics.js",
)


@cache
def _our_msgids() -> frozenset[str]:
    with (i18n.TRANSLATIONS / "messages.pot").open("rb") as fh:
        catalog = read_po(fh)
    return frozenset(
        m.id if isinstance(m.id, str) else m.id[0]
        for m in catalog
        if m.id
        and any(
            path.startswith(OURS) and not path.startswith("analytics/failures.py")
            for path, _ in m.locations
        )
    )


def _without_names(page: str, db: Database) -> str:
    """The page without what people named (campaigns, senders, lists, templates): the demo's
    names are English words ("Monthly newsletter (scheduled)") that no page translates."""
    with db.session() as session:
        names = [
            name
            for model in (Campaign, Sender, ContactList, Template)
            for name in session.scalars(select(model.name))
        ]
    for name in sorted(names, key=len, reverse=True):
        page = page.replace(str(html.escape(name)), " ").replace(name, " ")
    return page


def _ours_left(page: str, locale: str, db: Database) -> list[str]:
    """Our sentences left in English. A lone word ("draft", "%(n)s failed") is left to the
    tests of its own: it also reads as part of other areas' sentences."""
    return [
        s
        for s in untranslated(_without_names(page, db), locale)
        if s in _our_msgids() and len(re.sub(r"%\(\w+\)[sd]", "", s).split()) > 1
    ]


def _speak(db: Database, language: str | None) -> None:
    with db.session() as session:
        session.query(User).filter_by(email=ADMIN_EMAIL).one().language = language
        session.commit()


@pytest.fixture
def seeded(app: Flask, db: Database, settings: Settings) -> FlaskClient:
    seed(db, Path(settings.instance_path))
    client = app.test_client()
    assert login(client, ADMIN_EMAIL, PASSWORD).status_code == 302
    return client


def _page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code in (200, 404), (url, response.status_code)
    return response.get_data(as_text=True)


def test_the_shell_pages_are_in_the_readers_language(seeded, db) -> None:
    problems = []
    for locale in LOCALES:
        _speak(db, locale)
        for url in PAGES:
            page = _page(seeded, url)
            problems += [f"[{locale}] {url}: {s!r}" for s in _ours_left(page, locale, db)]
    assert problems == [], "\n".join(problems)


def test_a_known_sentence_reads_in_hindi_and_portuguese(seeded, db) -> None:
    _speak(db, "hi")
    page = _page(seeded, "/")
    assert "हाल की गतिविधि" in page
    assert 'data-field="status">चल रहा है</span>' in page  # a running campaign's badge
    assert "हर दिन के मैसेज" in _page(seeded, "/analytics")
    _speak(db, "pt_BR")
    assert "Atividade recente" in _page(seeded, "/")
    assert "Mensagens por dia" in _page(seeded, "/analytics")
    page = _page(seeded, "/no-such-page")
    assert "Não há nada neste endereço." in page and "Voltar ao painel" in page


def test_no_english_runs_of_ours_are_left(seeded, db) -> None:
    _speak(db, "hi")  # in Devanagari, so that any run of Latin words is English
    for url in PAGES:
        page = _page(seeded, url)
        # The demo's Events, campaign names and failure sentences are sample data (English).
        for section in ('data-testid="recent-activity"', 'data-testid="activity"'):
            if section in page:
                start = page.index(section)
                page = (
                    page[:start]
                    + page[page.index("</ul>" if "recent" in section else "</table>", start) :]
                )
        runs = [r for r in english_runs(page, least=5, allow=ALLOWED) if "Demo" not in r]
        assert runs == [], (url, runs)


def test_a_filter_error_that_a_service_writes_in_english_shows_translated(seeded, db) -> None:
    _speak(db, "hi")
    page = seeded.get("/activity?from=2026-03-05&to=2026-03-01").get_data(as_text=True)
    assert "शुरू की तारीख 2026-03-05 आख़िरी तारीख 2026-03-01 के बाद है।" in page
    page = html.unescape(seeded.get("/analytics?from=yesterday").get_data(as_text=True))
    assert "“से” एक तारीख होनी चाहिए, जैसे 2026-03-31; 'yesterday' तारीख नहीं है।" in page
    # The API keeps the English.
    answer = seeded.get("/analytics.json?from=yesterday").get_json()
    assert answer["error"].startswith("“From” must be a date")


def test_an_event_line_and_a_flash_are_shown_translated(seeded, db, app) -> None:
    with db.session() as session:
        events.record(
            session,
            "test",
            "The database is busy with other work just now; nothing was changed. "
            "Try again in a moment.",
            level=EventLevel.WARNING,
        )
        session.commit()
    _speak(db, "pt_BR")
    page = _page(seeded, "/activity?level=warning")
    assert "O banco de dados está ocupado com outro trabalho agora" in page
    assert ">aviso</span>" in page
    # A message flashed in English (as a service wrote it) is read in the reader's language.
    with seeded.session_transaction() as flask_session:
        flask_session["_flashes"] = [("danger", "There is nothing at this address.")]
    assert "Não há nada neste endereço." in _page(seeded, "/")


def test_the_analytics_download_speaks_the_downloaders_language(seeded, db) -> None:
    _speak(db, "es")
    text = seeded.get("/analytics.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert ["Mensajes por día"] in rows
    spanish = Translations.load(str(i18n.TRANSLATIONS), ["es"])
    header = [spanish.gettext(w) for w in ("Day", "Sent", "Delivered", "Read", "Replied", "Failed")]
    assert header[0] == "Día" and header in rows
    assert seeded.get("/analytics.xlsx").status_code == 200  # sheet names within Excel's rules
    assert re.search(r"\d,\d%</", _page(seeded, "/analytics"))  # shares: Spanish decimal comma
    _speak(db, None)
    rows = list(csv.reader(io.StringIO(seeded.get("/analytics.csv").get_data(as_text=True))))
    assert ["Day", "Sent", "Delivered", "Read", "Replied", "Failed"] in rows


def test_the_charts_get_their_labels_translated(seeded, db) -> None:
    _speak(db, "id")
    page = _page(seeded, "/analytics")
    data = page[page.index('id="analytics-data">') :]
    assert '"sent": "Terkirim"' in data
    # …and the page carries the chart script's own words for wabulkText.
    assert "Grafik tidak dapat ditampilkan di sini" in page


def test_the_error_pages_speak_the_readers_language(app, db, make_user, monkeypatch) -> None:
    viewer = make_user(Role.VIEWER)
    with db.session() as session:
        session.get(User, viewer.id).language = "hi"
        session.commit()
    client = app.test_client()
    assert login(client, viewer.email).status_code == 302
    # Not allowed: a viewer on an administrator's page.
    response = client.get("/senders/new")
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "इसके लिए एडमिन भूमिका चाहिए; आप दर्शक हैं।" in page and "अनुमति नहीं है" in page
    assert untranslated(page, "hi") == []

    # The database busy: the sentence made for the API in English, the page in Hindi.
    def busy(*_args: object) -> None:
        raise OperationalError("UPDATE", {}, Exception("database is locked"))

    monkeypatch.setattr(dash, "dashboard", busy)
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "डेटाबेस अभी दूसरे काम में लगा है" in page and "कृपया फिर से कोशिश करें" in page
    assert "त्रुटि 503" in page


def test_the_empty_dashboard_and_analytics_in_every_language(app, db, make_user) -> None:
    admin = make_user(Role.ADMIN)
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    for locale in LOCALES:
        with db.session() as session:
            session.get(User, admin.id).language = locale
            session.commit()
        for url in ("/", "/analytics", "/activity?campaign=x"):
            page = client.get(url).get_data(as_text=True)
            assert untranslated(page, locale) == [], (locale, url)
    page = client.get("/").get_data(as_text=True)  # Indonesian, the last
    assert "Belum ada kampanye" in page and "Muat data demo" in page
