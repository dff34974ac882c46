"""Following campaigns in each of our languages: the campaigns list, a campaign's page (live
figures, funnel, outcomes, follow-ups, log), its printable summary and report, recurring series
and the follow-up form, on the page tour's data. No sentence the catalogue translates is left
in English, and what campaigns/lifecycle and the dispatcher store in English (status reasons,
Events) is read back in the reader's language."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from tests.page_tour import Seeded
from wabulk.campaigns import lifecycle
from wabulk.db import Database
from wabulk.models import Campaign, CampaignStatus

from ..conftest import csrf_from
from ..i18n_support import page as _page
from ..i18n_support import signed_in_tour
from ..i18n_support import speak as _speak
from .test_i18n_groundwork import LOCALES, english_runs, untranslated

tour = pytest.fixture(signed_in_tour, name="tour")

# Words that read the same in every language: product names, and the tour's own data.
ALLOWED = ("WhatsApp Cloud API", "WhatsApp Web", "Dry run")
# Catalogue words that these pages show only inside what people typed or named (campaign,
# list and sender names, message texts, replies, timezone names such as Mexico/General).
USER_DATA = frozenset(
    {"name", "sender", "New", "scheduled", "Sunday", "on Sunday", "on", "off", "is", "is not"}
    | {"you", "message", "messages", "Reply", "on WhatsApp", "not on WhatsApp", "General"}
    | {"dry run", "%(zone)s time"}
)


# Runs of what people typed or named on the tour's pages, and the channels' failure sentences
# (stored by the senders' channels, translated with them).
DATA_RUNS = (
    *("Demo", "Hello", "Spring newsletter", "Summer sale", "Old offer", "Dues reminder"),
    *("Sunday", "see you soon", "festive sale", "stop these messages", "breadcrumb"),
    *("This number is not on", "did not confirm the message"),
)


def _data(run: str) -> bool:
    return any(words in run for words in DATA_RUNS)


def _ours(page: str) -> str:
    """The page without what other areas show on it: the recipients table (the campaign
    wizard's) and the demo data's own log lines (written by the demo loader)."""
    if 'id="recipients"' in page:
        start = page.index('<div class="card mb-3" id="recipients">')
        page = page[:start] + page[page.index("</main>", start) :]
    return re.sub(
        r"<li><span class=\"badge level-[^<]*</span>(?:(?!</li>).)*Demo(?:(?!</li>).)*</li>",
        "",
        page,
        flags=re.S,
    )


def _campaign(db: Database, status: CampaignStatus) -> int:
    with db.session() as session:
        found = session.scalar(
            select(Campaign.id)
            .where(Campaign.status == status, Campaign.parent_campaign_id.is_(None))
            .order_by(Campaign.id)
        )
    assert found is not None, status
    return found


def _urls(db: Database, seeded: Seeded) -> list[str]:
    draft = seeded.first("draft_id")
    paused = _campaign(db, CampaignStatus.PAUSED)
    cancelled = _campaign(db, CampaignStatus.CANCELLED)
    completed = seeded.first("completed_id")
    series = seeded.first("recurrence_id")
    urls = ["/campaigns"]
    for campaign_id in dict.fromkeys((draft, paused, cancelled, completed)):
        urls.append(f"/campaigns/{campaign_id}")
    for campaign_id in dict.fromkeys((paused, completed)):
        urls += [f"/campaigns/{campaign_id}/summary", f"/campaigns/{campaign_id}/outcomes"]
    urls += [
        f"/recurrences/{series}",
        f"/recurrences/new/{draft}",
        f"/campaigns/{draft}/followups/new",
        f"/campaigns/{draft}/followups/1",
    ]
    return urls


def test_the_campaign_pages_are_in_the_readers_language(tour, db) -> None:
    client, seeded = tour
    urls = _urls(db, seeded)
    problems = []
    for locale in LOCALES:
        _speak(db, locale)
        for url in urls:
            page = _ours(_page(client, url))
            left = [s for s in untranslated(page, locale) if s not in USER_DATA]
            problems += [f"[{locale}] {url}: {s!r}" for s in left]
    assert problems == [], "\n".join(problems)


def test_no_english_runs_of_ours_are_left(tour, db) -> None:
    client, seeded = tour
    _speak(db, "hi")  # Devanagari: any run of Latin words left is English
    for url in _urls(db, seeded):
        page = _ours(_page(client, url))
        runs = [r for r in english_runs(page, least=4, allow=ALLOWED) if not _data(r)]
        assert runs == [], (url, runs)


def test_a_known_sentence_reads_in_hindi_and_portuguese(tour, db) -> None:
    client, seeded = tour
    paused = _campaign(db, CampaignStatus.PAUSED)
    _speak(db, "hi")
    page = _page(client, f"/campaigns/{paused}")
    assert "मैसेज कहाँ तक पहुँचे" in page  # How far messages got
    assert "फिर शुरू करें" in page  # Resume
    assert "रुका हुआ" in page  # the status badge: paused
    _speak(db, "pt_BR")
    page = _page(client, f"/campaigns/{paused}")
    assert "Até onde as mensagens chegaram" in page and "Retomar" in page
    assert "Todo mês no dia 1 às 10:00" in _page(
        client, f"/recurrences/{seeded.first('recurrence_id')}"
    )


def test_an_event_and_a_status_reason_written_by_the_service_read_translated(tour, db) -> None:
    client, _seeded = tour
    paused = _campaign(db, CampaignStatus.PAUSED)
    with db.session() as session:
        campaign = session.get(Campaign, paused)
        assert campaign is not None
        # As the dispatcher pauses a campaign whose finish-by time came: a stored reason and
        # an Event, in English.
        lifecycle.resume(session, None, paused)
        campaign.ends_at = campaign.launched_at
        session.flush()
        lifecycle.pause_expired(session, campaign.launched_at.replace(year=2999))
        reason = campaign.status_reason
        session.commit()
    assert reason and reason.startswith("Paused: its finish-by time (")
    _speak(db, None)
    assert "Nothing was skipped: set a later finish-by time" in _page(
        client, f"/campaigns/{paused}"
    )
    _speak(db, "hi")
    page = _page(client, f"/campaigns/{paused}")
    assert "कुछ भी छोड़ा नहीं गया" in page  # the reason and its Event, in Hindi
    assert "Nothing was skipped" not in page
    # The Event the lifecycle wrote when the campaign was launched.
    assert "पाने वालों के लिए शुरू किया" in page
    _speak(db, "es")
    answer = client.get(f"/campaigns/{paused}/progress.json").get_json()
    assert answer["reason"].startswith("Pausada: llegó la hora límite")


def test_a_refusal_flashed_from_the_service_reads_translated(tour, db) -> None:
    client, _seeded = tour
    cancelled = _campaign(db, CampaignStatus.CANCELLED)
    _speak(db, "pt_BR")
    page = _page(client, f"/campaigns/{cancelled}")
    answer = client.post(
        f"/campaigns/{cancelled}/actions/pause",
        data={"csrf_token": csrf_from(page)},
        follow_redirects=True,
    )
    text = answer.get_data(as_text=True)
    assert "não é possível pausá-la agora" in text, text[:2000]


def test_a_finish_by_time_that_is_no_time_is_told_so_in_the_readers_language(tour, db) -> None:
    client, _seeded = tour
    paused = _campaign(db, CampaignStatus.PAUSED)
    for language, sentence in (
        (None, "The finish-by time must be a date and time like 2025-05-01 09:30."),
        ("pt_BR", "O prazo final deve ser uma data e hora como 2025-05-01 09:30."),
    ):
        _speak(db, language)
        page = _page(client, f"/campaigns/{paused}")
        answer = client.post(
            f"/campaigns/{paused}/finish-by",
            data={"csrf_token": csrf_from(page), "ends_at": "next week"},
            follow_redirects=True,
        )
        assert sentence in answer.get_data(as_text=True), language


def test_the_report_headers_are_in_the_downloaders_language(tour, db) -> None:
    client, seeded = tour
    completed = seeded.first("completed_id")
    _speak(db, "pt_BR")
    body = client.get(f"/campaigns/{completed}/report.csv").get_data(as_text=True)
    header = next(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert header[:2] == ["telefone", "nome"] and "tentativas" in header
    _speak(db, None)
    body = client.get(f"/campaigns/{completed}/report.csv").get_data(as_text=True)
    header = next(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert header[:2] == ["phone", "name"] and "attempts" in header
