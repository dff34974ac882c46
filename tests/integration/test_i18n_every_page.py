"""Every page of the app, and the answer to every form on it, in each of our languages: no
sentence that the catalogue translates is left in English.

- Pages come from the app's URL map, filled with the demo data and a sender of each kind
  (tests/page_tour.py), so a new page is read without being listed here.
- Forms are sent as they stand (mostly refused), so validation messages and flashes, which
  services write in English and the page translates, are read too.
- English runs that are no catalogue sentence at all (a string never marked) cannot be found
  this way; they are written to tests/artifacts/english-left-<language>.txt for review.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from flask import Flask

from tests.page_tour import ADMIN_EMAIL, PASSWORD, page_urls, seed
from wabulk.config import Settings
from wabulk.models import User

from ..conftest import login
from .test_i18n_groundwork import LOCALES, english_runs, untranslated
from .test_page_words import LAST, _endpoint, _forms_of, _send

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# Words on pages that are the same in every language: product names and the demo's data.
ALLOWED = ("WhatsApp Cloud API", "WhatsApp Web", "WhatsApp Business")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A Cloud API check sent by a form must not reach Meta: nothing listens on port 9.
    return dataclasses.replace(settings, cloud_api_url="http://127.0.0.1:9")


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
    urls = page_urls(app, seeded)
    assert len(urls) > 40
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    for locale in LOCALES:
        _speak(app, locale)
        left: list[str] = []
        forms: dict[str, list] = {}
        for endpoint, url in urls:
            html = client.get(url).get_data(as_text=True)
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
                where = f"[{locale}] after sending {endpoint}"
                problems += [f"{where}: {s!r}" for s in untranslated(html, locale)]
                left += [f"{where}: {run}" for run in english_runs(html, allow=ALLOWED)]
        report = ARTIFACTS / f"english-left-{locale}.txt"
        report.write_text("\n".join(sorted(set(left))) + "\n", encoding="utf-8")
    assert not problems, f"{len(problems)} English sentences left:\n" + "\n".join(problems[:200])
