"""The printable campaign summary in real Chromium: the Print button prints, navigation is
hidden on paper, and a busy campaign still fits on one A4 page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from wabulk.db import Database
from wabulk.models import Campaign, CampaignStatus, Message, MessageStat, MessageStatus

from ..campaigns_support import make_campaign, make_contacts, make_sender, phones
from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def _busy_campaign(instance) -> int:  # type: ignore[no-untyped-def]
    """A finished campaign with a long message, many lists and senders, and five failure
    reasons with long sentences: the most a summary page has to hold."""
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        lists = [
            make_contacts(db, phones(3, f"+91987{i}"), f"Customers in city number {i}")
            for i in range(8)
        ]
        senders = [make_sender(db, f"Shop phone {i}") for i in range(6)]
        # As long as a message may be (4,089 of WhatsApp's 4,096 characters).
        body = "\n".join(
            f"Line {i}: Hi {{{{ first_name }}}}, our Diwali sale has something for you." * 2
            for i in range(30)
        )
        campaign_id = make_campaign(
            db, lists, senders, body=body, name="Diwali sale for every customer in every city"
        )
        with db.session() as session:
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(
                    status=CampaignStatus.COMPLETED,
                    finished_at=T0,
                    total=1_000_000,
                    n_queued=0,
                    n_sent=200_000,
                    n_delivered=300_000,
                    n_read=350_000,
                    n_failed=120_000,
                    n_skipped=25_000,
                    n_unknown=5_000,
                    n_replied=40_000,
                )
            )
            failed = session.scalars(
                select(Message.id).where(Message.campaign_id == campaign_id).limit(5)
            ).all()
            for i, message_id in enumerate(failed):
                session.execute(
                    update(Message)
                    .where(Message.id == message_id)
                    .values(
                        status=MessageStatus.FAILED,
                        error_code=f"error_code_{i}",
                        error_detail="The recipient's phone could not be reached. " * 6,
                    )
                )
            for i, n in enumerate((60_000, 30_000, 20_000, 6_000, 4_000)):
                session.add(
                    MessageStat(
                        slot=T0 + timedelta(minutes=15 * i),
                        campaign_id=campaign_id,
                        sender_id=1,
                        kind="failed",
                        code=f"error_code_{i}",
                        n=n,
                    )
                )
        return campaign_id
    finally:
        db.dispose()


def test_the_summary_prints_on_one_a4_page_without_navigation(browser, artifacts, tmp_path) -> None:
    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "viewer")
    campaign_id = _busy_campaign(instance)

    with running_server(instance, "--no-worker") as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        # Count calls to print instead of opening the print dialog.
        page.add_init_script("window.__printed = 0; window.print = () => { window.__printed++; };")
        sign_in(page, server.url, EMAIL, PASSWORD)
        page.goto(f"{server.url}/campaigns/{campaign_id}")
        page.get_by_role("link", name="Summary").click()
        page.wait_for_url(f"{server.url}/campaigns/{campaign_id}/summary")
        summary = page.get_by_test_id("summary")
        assert "Diwali sale for every customer in every city" in summary.inner_text()
        funnel = page.get_by_test_id("summary-funnel").inner_text()
        assert "850,000 · 85.0%" in funnel and "(76.5% of sent)" in funnel

        page.get_by_role("button", name="Print").click()
        assert page.evaluate("window.__printed") == 1

        page.emulate_media(media="print")
        assert not page.get_by_role("navigation", name="Main navigation").is_visible()
        assert not page.get_by_role("button", name="Print").is_visible()
        assert not page.get_by_test_id("user-menu").is_visible()
        failures = page.get_by_test_id("summary-failures")
        assert failures.is_visible() and "could not be reached" in failures.inner_text()
        page.screenshot(path=str(artifacts / "campaign-summary-print.png"), full_page=True)

        pdf = page.pdf(format="A4", print_background=True)
        (artifacts / "campaign-summary.pdf").write_bytes(pdf)
        pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
        assert pages == 1, f"the summary printed on {pages} pages"
        assert problems == []
        page.close()
