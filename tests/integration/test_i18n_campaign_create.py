"""Writing a campaign in each of our languages: the new-campaign wizard (a fresh one, one opened
for a template or a segment, a draft edited, a form sent back with its errors), the plan it
foresees, and the campaign page's parts the wizard's area owns (recipients, "your sheet", the
recurring series), on the page tour's data. No sentence the catalogue translates is left in
English, and what the campaigns' services say in English (a ValidationError, the sheet's
reasons) is read back in the reader's language."""

from __future__ import annotations

import io
import re

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook

from tests.page_tour import Seeded

from ..conftest import csrf_from
from ..i18n_support import page as _page
from ..i18n_support import signed_in_tour
from ..i18n_support import speak as _speak
from .test_i18n_groundwork import LOCALES, english_runs, untranslated

tour = pytest.fixture(signed_in_tour, name="tour")

# Product names, and the tour's own data (names, messages and segments people wrote).
ALLOWED = ("WhatsApp Cloud API", "WhatsApp Web", "Dry run")
# Catalogue entries of a word or two that the tour's data (or a word of the translation, as
# Portuguese "no") happens to contain: "Back office phone", "Demo sender", "New arrivals",
# {{ city | default("your city") }}, the admin's name.
DATA_WORDS = frozenset(
    {
        *("Back", "New", "admin", "is", "phone", "sender", "name", "dry run", "no", " or "),
        *("your %(field)s", "%(more)s and %(next)s", "%(zone)s time"),
    }
)
# What other areas show on the wizard (the senders' stored reasons, the fields' keys).
OTHERS = ("could not start", "limit banner", "could not be reached", "customer since")


def _urls(seeded: Seeded) -> list[str]:
    draft = seeded.first("draft_id")
    return [
        "/campaigns/new",
        f"/campaigns/new?template_id={seeded.first('template_id')}",
        f"/campaigns/new?segment_id={seeded.first('segment_id')}",
        f"/campaigns/{draft}/edit",
    ]


def _ours(client: FlaskClient, seeded: Seeded) -> list[str]:
    """The campaign page's parts of this area: "your sheet", the recipients, the series."""
    page = _page(client, f"/campaigns/{seeded.first('completed_id')}")
    sheet = page.index('id="your-sheet"')
    recipients = page.index('data-testid="recipients"')
    # The Error column shows what the dispatcher stored (the campaign page's own test).
    table = re.sub(
        r'<td class="small error-cell">.*?</td>', "", page[recipients - 2000 :], flags=re.S
    )
    parts = [page[sheet : page.index("</div></div>", sheet)], table]
    draft = _page(client, f"/campaigns/{seeded.first('draft_id')}")
    start = draft.find('data-testid="series-')
    if start < 0:
        start = draft.index('data-testid="repeat-link"')
    return [*parts, draft[start : draft.index("</p>", start) + 4]]


def _left(page: str, locale: str) -> list[str]:
    return [s for s in untranslated(page, locale) if s not in DATA_WORDS]


def _refused(client: FlaskClient, **fields: str) -> str:
    """The wizard sent back with errors (nothing saved)."""
    form = {
        "name": "",
        "audience": "lists",
        "template_id": "",
        "body": "Hello {{ nmae }}",
        "schedule": "later",
        "scheduled_at": "",
        "max_attempts": "x",
        "retry_seconds": "60",
        "csrf_token": csrf_from(_page(client, "/campaigns/new")),
    }
    form.update(fields)
    response = client.post("/campaigns/new", data=form, content_type="multipart/form-data")
    assert response.status_code == 400
    return response.get_data(as_text=True)


def test_the_wizard_and_its_parts_are_in_the_readers_language(tour, db) -> None:
    client, seeded = tour
    problems = []
    for locale in LOCALES:
        _speak(db, locale)
        for url in _urls(seeded):
            page = _page(client, url)
            problems += [f"[{locale}] {url}: {s!r}" for s in _left(page, locale)]
        for part in _ours(client, seeded):
            problems += [f"[{locale}] campaign page: {s!r}" for s in _left(part, locale)]
        page = _refused(client)
        problems += [f"[{locale}] refused: {s!r}" for s in _left(page, locale)]
    assert problems == []


def test_no_english_runs_of_ours_are_left_on_the_wizard(tour, db) -> None:
    client, seeded = tour
    _speak(db, "hi")  # Devanagari: any run of English words is one left over
    for url in _urls(seeded):
        page = _page(client, url)
        # What people typed (messages, names, segments) and the demo's data stay as they are.
        runs = [
            r
            for r in english_runs(page, least=4, allow=ALLOWED)
            if "Demo" not in r and "{{" not in r and not any(o in r for o in OTHERS)
        ]
        assert runs == [], (url, runs)


def test_a_known_sentence_reads_in_hindi_and_portuguese(tour, db) -> None:
    client, _seeded = tour
    _speak(db, "hi")
    page = _page(client, "/campaigns/new")
    assert "नया अभियान" in page  # New campaign
    assert "ड्राफ़्ट सेव करें" in page  # Save draft
    assert "लॉन्च करते ही" in page  # As soon as I launch
    _speak(db, "pt_BR")
    page = _page(client, "/campaigns/new")
    assert "Nova campanha" in page and "Salvar rascunho" in page
    assert "Tentativas por mensagem" in page


# A draft whose only fault is a start time gone by (said by campaigns/service.py).
PASSED = {
    "name": "Sale",
    "body": "Hello {{ name }}",
    "scheduled_at": "2025-05-01 09:30",
    "max_attempts": "3",
}


def test_a_refusal_from_the_service_reads_translated_next_to_its_box(tour, db) -> None:
    client, _seeded = tour
    _speak(db, None)
    page = _refused(client, **PASSED)
    assert "That start time has already passed" in page
    _speak(db, "pt_BR")
    page = _refused(client, scheduled_at="soon")
    # The form's own sentence (no name given) and a box's, in Portuguese.
    assert "Dê um nome à campanha." in page or "O horário de início deve ser" in page
    assert "O horário de início deve ser uma data e hora como 2025-05-01 09:30." in page
    page = _refused(client, **PASSED)
    assert "Esse horário de início já passou" in page  # said by campaigns/service.py
    assert "That start time has already passed" not in page
    _speak(db, "hi")
    page = _refused(client, name="Sale", schedule="now", max_attempts="3")
    # campaigns/fields.py: a misspelt field, with its line, in Hindi.
    assert "लाइन 1: &#34;nmae&#34; कोई फ़ील्ड नहीं है" in page or (
        "लाइन 1: &quot;nmae&quot; कोई फ़ील्ड नहीं है" in page
    ), page[page.find("data-error-for") - 200 : page.find("data-error-for") + 400]


def test_the_plan_reads_in_the_readers_language(tour, db) -> None:
    client, seeded = tour
    _speak(db, "es")
    query = (
        f"list_ids={seeded.first('list_id')}&sender_ids={seeded.first('web_sender_id')}"
        "&min_delay_seconds=1&max_delay_seconds=2"
    )
    plan = client.get(f"/campaigns/plan.json?{query}").get_json()
    assert plan["warnings"], plan
    assert "enviaría más rápido de lo seguro" in plan["warnings"][0]
    if plan["estimate"]:
        assert "a este ritmo" in plan["estimate"]
    _speak(db, None)
    plan = client.get(f"/campaigns/plan.json?{query}").get_json()
    assert "would send faster than is safe" in plan["warnings"][0]


def test_your_sheet_with_results_is_in_the_downloaders_language(tour, db) -> None:
    client, seeded = tour
    completed = seeded.first("completed_id")
    _speak(db, "id")
    page = _page(client, f"/campaigns/{completed}")
    assert "Sheet Anda, beserta hasilnya" in page
    response = client.get(f"/campaigns/{completed}/sheet")
    if response.status_code == 302:  # no sheet to give back: the reason, flashed, in Indonesian
        text = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "sheet" in text
        return
    assert response.status_code == 200
    if response.mimetype == "text/csv":
        header = response.get_data(as_text=True).lstrip("\ufeff").splitlines()[0]
    else:
        sheet = load_workbook(io.BytesIO(response.data), read_only=True).active
        header = ",".join(str(c) for c in next(sheet.iter_rows(values_only=True)))
    assert "Alasan gagal" in header and "Balasan" in header
