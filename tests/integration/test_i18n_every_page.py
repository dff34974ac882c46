"""Every page of the app, and the answer to every form on it, in each of our languages: no
sentence that the catalogue translates is left in English.

- Pages come from the app's URL map, filled with the demo data and a sender of each kind
  (tests/page_tour.py), so a new page is read without being listed here.
- Forms are sent as they stand (mostly refused), so validation messages and flashes, which
  services write in English and the page translates, are read too.
- The API reference (/api/docs) is for programmers and stays English below its own words
  (see test_i18n_segments_api.py); the shop's own words (names, message texts) are ignored.
- English runs that are no catalogue sentence at all (a string never marked) cannot be found
  this way; they are written to tests/artifacts/english-left-<language>.txt for review.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from pathlib import Path

import pytest
from flask import Flask
from markupsafe import escape
from sqlalchemy import MetaData, Table, select

from tests.page_tour import ADMIN_EMAIL, PASSWORD, SHEET, page_urls, seed
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import User

from ..conftest import login
from .test_i18n_groundwork import LOCALES, english_runs, untranslated
from .test_page_words import LAST, TECHNICAL_PAGES, _endpoint, _forms_of, _send

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# Where the shop's own words live (names, message texts, a sheet's column names): never
# translated, so not counted when they happen to read like one of ours ("Stop", "on Sunday").
DATA_TABLES = (
    "senders",
    "campaigns",
    "templates",
    "contacts",
    "contact_lists",
    "segments",
    "inbound",
    "conversation_notes",
    "answers",
    "quick_replies",
    "webhook_endpoints",
    "imports",
    "messages",
    "cloud_templates",
    "users",
    "api_tokens",
    "recurrences",
    "campaign_steps",
)
NOT_DATA = re.compile(r"reason|error|status|state|detail|kind|channel|level|sentence|problem")
# Words on pages that are the same in every language: product names and the demo's data.
ALLOWED = ("WhatsApp Cloud API", "WhatsApp Web", "WhatsApp Business")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A Cloud API check sent by a form must not reach Meta: nothing listens on port 9.
    return dataclasses.replace(settings, cloud_api_url="http://127.0.0.1:9")


def shop_words(db: Database) -> re.Pattern[str]:
    """Every text the seeded shop typed or received, as it appears in a page's markup."""
    found: set[str] = set()
    with db.engine.connect() as connection:
        for name in DATA_TABLES:
            table = Table(name, MetaData(), autoload_with=connection)
            columns = [c for c in table.columns if not NOT_DATA.search(c.name)]
            for row in connection.execute(select(*columns)):
                for value in row:
                    if isinstance(value, str) and value.startswith(("[", "{")):
                        with contextlib.suppress(ValueError):
                            value = json.loads(value)
                    if isinstance(value, dict):  # a sheet's mapping: its column names
                        value = [*value, *value.values()]
                    values = value if isinstance(value, list) else [value]
                    found |= {v for v in values if isinstance(v, str) and len(v.strip()) > 1}
    found |= set(SHEET.splitlines()[0].split(","))  # the column names of the tour's sheet
    pieces = sorted({str(escape(v)) for v in found} | found, key=len, reverse=True)
    return re.compile("|".join(re.escape(p) for p in pieces))


def _speak(app: Flask, language: str) -> None:
    db = app.extensions["wabulk.db"]
    with db.session() as session:
        user = session.query(User).filter_by(email=ADMIN_EMAIL).one()
        user.language = language
        session.commit()


def test_every_page_and_form_answer_is_in_the_readers_language(app, db, settings) -> None:
    seeded = seed(db, Path(settings.instance_path))
    client = app.test_client()
    assert login(client, ADMIN_EMAIL, PASSWORD).status_code == 302
    urls = [(e, u) for e, u in page_urls(app, seeded) if e not in TECHNICAL_PAGES]
    assert len(urls) > 40
    shop = shop_words(db)
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    for locale in LOCALES:
        _speak(app, locale)
        left: list[str] = []
        forms: dict[str, list] = {}
        for endpoint, url in urls:
            html = shop.sub(" | ", client.get(url).get_data(as_text=True))
            problems += [f"[{locale}] {endpoint} {url}: {s!r}" for s in untranslated(html, locale)]
            left += [f"{endpoint} {url}: {run}" for run in english_runs(html, allow=ALLOWED)]
            for form in _forms_of(html, url):
                forms.setdefault(_endpoint(app, form.action), []).append(form)
        if locale in ("hi", "pt_BR"):  # two languages' answers say what the others' would
            for endpoint in sorted(forms, key=lambda e: (e in LAST, e)):
                if endpoint in LAST:
                    continue
                form = forms[endpoint][0]
                html = _send(client, form, form.buttons[0] if form.buttons else None)
                html = shop.sub(" | ", html)
                where = f"[{locale}] after sending {endpoint}"
                problems += [f"{where}: {s!r}" for s in untranslated(html, locale)]
                left += [f"{where}: {run}" for run in english_runs(html, allow=ALLOWED)]
        report = ARTIFACTS / f"english-left-{locale}.txt"
        report.write_text("\n".join(sorted(set(left))) + "\n", encoding="utf-8")
    assert not problems, f"{len(problems)} English sentences left:\n" + "\n".join(problems[:200])
