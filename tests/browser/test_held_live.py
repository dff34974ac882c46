"""Meta's daily limit holding a running campaign back shows on its page and goes away when
the limit lifts, without a reload: real Chromium against `wabulk serve`, the hold written by
`senders.budget` as the dispatcher writes it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wabulk.db import Database
from wabulk.senders import budget

from ..campaigns_support import make_campaign, make_contacts, phones
from ..campaigns_support import make_sender as new_sender
from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"


def test_the_hold_appears_and_goes_away_without_a_reload(browser, artifacts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "viewer")
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        sender = new_sender(db, "Shop phone")
        campaign_id = make_campaign(
            db, [make_contacts(db, phones(3, "+9198740"), "Customers")], [sender]
        )
        with running_server(instance, "--no-worker") as server:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            sign_in(page, server.url, EMAIL, PASSWORD)
            page.goto(f"{server.url}/campaigns/{campaign_id}")
            expect(page.get_by_test_id("status")).to_have_text("running")
            held = page.get_by_test_id("held")
            expect(held).to_be_hidden()
            page.evaluate("window.__same_page = true")

            until = datetime(2031, 3, 14, 9, 5, tzinfo=UTC)
            with db.session() as session:
                budget.hold(session, campaign_id, 1000, until)
            # The page polls a running campaign every 2 s: generous waits, no reload.
            expect(held).to_be_visible(timeout=60_000)
            expect(held).to_contain_text("Meta's daily limit for this WhatsApp account")
            expect(held).to_contain_text("Resumes about 2031-03-14 09:05 UTC")
            page.screenshot(path=str(artifacts / "campaign-held.png"), full_page=True)

            with db.session() as session:
                budget.release(session, campaign_id)
            expect(held).to_be_hidden(timeout=60_000)
            assert page.evaluate("window.__same_page") is True
            assert problems == []
            page.close()
    finally:
        db.dispose()
