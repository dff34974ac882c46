"""A campaign's page and the campaigns list in Hindi, in real Chromium: what campaign.js writes
from each poll (the status badge, the counters, the funnel's shares, the list's summary) stays
in the reader's language and number format."""

from __future__ import annotations

import pytest

from ..support import running_server
from .conftest import sign_in
from .i18n_support import hindi_shop
from .test_analytics_charts import EMAIL, PASSWORD, _watch

# About 45 s each: the live pages are watched through several polls (make test-slow).
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_campaign_pages_live_figures_stay_in_hindi(browser, tmp_path) -> None:
    from playwright.sync_api import expect

    instance, campaign = hindi_shop(tmp_path)

    with running_server(instance, "--no-worker") as server:
        page = browser.new_page()
        problems = _watch(page)
        sign_in(page, server.url, EMAIL, PASSWORD)
        page.goto(f"{server.url}/campaigns/{campaign}")
        expect(page.get_by_test_id("status")).to_have_text("चल रहा है")
        # Wiped here, so that what follows is what the next poll wrote.
        page.evaluate(
            """() => {
              document.querySelector('[data-field="status"]').textContent = "?";
              document.querySelector('[data-field="total"]').textContent = "?";
              document.querySelector('[data-count="queued"]').textContent = "?";
              document.querySelector('[data-funnel-percent="delivered"]').textContent = "?";
            }"""
        )
        expect(page.get_by_test_id("status")).to_have_text("चल रहा है")
        expect(page.locator('[data-field="total"]')).to_have_text("1,200")
        expect(page.locator('[data-count="queued"]')).to_have_text("1,200")
        expect(page.locator('[data-funnel-percent="delivered"]')).to_have_text("भेजे गए का —")

        page.goto(f"{server.url}/campaigns")
        row = page.locator(f'tr[data-campaign="{campaign}"]')
        row.locator('[data-field="summary"]').evaluate('(el) => { el.textContent = "?"; }')
        expect(row.locator('[data-field="summary"]')).to_have_text("1,200 में से 0 · 0 भेजे गए")
        expect(row.locator('[data-field="status"]')).to_have_text("चल रहा है")
        assert problems == []
