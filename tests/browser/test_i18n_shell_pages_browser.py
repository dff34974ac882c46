"""The Dashboard's and Analytics' scripts in a translated page, in real Chromium: the charts'
own words and the live figures keep the reader's language and number format."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wabulk.models import utcnow

from ..analytics_support import failed, sent
from ..support import running_server
from .conftest import sign_in
from .i18n_support import hindi_shop
from .test_analytics_charts import EMAIL, PAINTED, PASSWORD, _watch

# About 45 s each: the live pages are watched through several polls (make test-slow).
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_charts_and_live_figures_in_the_readers_language(browser, tmp_path) -> None:
    from playwright.sync_api import expect

    now = utcnow()
    yesterday = [sent(now - timedelta(days=1)) for _ in range(3)]
    instance, _campaign = hindi_shop(tmp_path, [*yesterday, failed(now, "not_on_whatsapp")])

    with running_server(instance, "--no-worker") as server:
        page = browser.new_page()
        problems = _watch(page)
        sign_in(page, server.url, EMAIL, PASSWORD)
        # The Dashboard's poll rewrites the running campaign: its words stay Hindi and its
        # numbers keep the Indian grouping.
        item = page.locator(".live-campaign", has_text="Diwali")
        page.wait_for_function("document.querySelector('[data-live-indicator]').hidden === false")
        # Wiped here, so that what follows is what the next poll wrote.
        item.evaluate(
            """(el) => {
              for (const f of ["status", "total"]) {
                el.querySelector(`[data-field="${f}"]`).textContent = "?";
              }
              el.querySelector('[data-field="progress"]').setAttribute("aria-label", "?");
            }"""
        )
        expect(item.locator('[data-field="status"]')).to_have_text("चल रहा है")
        expect(item.locator('[data-field="total"]')).to_have_text("1,200")
        progress = item.locator('[data-field="progress"]')
        expect(progress).to_have_attribute("aria-label", "Diwali की प्रगति")

        page.goto(server.url + "/analytics")
        box = page.locator('[data-chart-box="failures"]')
        box.and_(page.locator('[data-state="ready"]')).wait_for()
        assert page.get_by_test_id("chart-failures").evaluate(PAINTED) > 500
        words = page.evaluate(
            """() => {
              const chart = (key) => Chart.getChart(document.getElementById(`chart-${key}`)).data;
              return {
                days: chart("days").datasets[0].label,
                failures: chart("failures").labels[0],
                funnel: chart("funnel").datasets[0].label,
              };
            }"""
        )
        assert words["failures"] == "नंबर WhatsApp पर नहीं है"
        assert words["days"] != "Sent" and words["funnel"] != "Messages", words
        assert problems == [], problems
        page.close()
