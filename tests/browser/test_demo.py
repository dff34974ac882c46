"""Demo data in real Chromium against `wabulk serve`: load it, watch it send, remove it."""

from __future__ import annotations

import time

import pytest

from wabulk.demo.service import SENDER_PACING

from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
DONE = "Number(document.querySelector('[data-field=done]').textContent.replace(/,/g, ''))"


def test_demo_data_loads_sends_live_and_goes_away(browser, artifacts, tmp_path) -> None:
    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "admin")
    with running_server(instance) as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, server.url, EMAIL, PASSWORD)
        banner = page.get_by_test_id("demo-banner")
        assert banner.count() == 0

        page.get_by_test_id("load-demo").click()
        page.wait_for_url(server.url + "/")
        assert "Demo data loaded: 150 contacts" in page.content()
        assert "You are exploring demo data." in banner.inner_text()

        # The live campaign is sent by the server's own worker, and its page follows along.
        page.goto(server.url + "/campaigns")
        page.get_by_role("link", name="Demo: Weekend flash sale (live)").click()
        assert page.get_by_test_id("status").inner_text() == "running"
        page.evaluate("window.__notReloaded = true")
        start = page.evaluate(f"() => {DONE}")
        page.wait_for_function(f"(n) => {DONE} >= n", arg=start + 2, timeout=45_000)
        assert page.evaluate("window.__notReloaded")
        page.screenshot(path=str(artifacts / "demo-live-campaign.png"), full_page=True)

        page.goto(server.url + "/campaigns")
        page.get_by_role("link", name="Demo: Festive offer").click()
        assert page.get_by_test_id("status").inner_text() == "completed"
        read = page.locator("[data-funnel=read]").inner_text()
        assert int(read.replace(",", "")) > 10

        # Removal asks first; dismissing it keeps everything.
        page.once("dialog", lambda d: d.dismiss())
        banner.get_by_role("button", name="Remove demo data").click()
        assert banner.is_visible()
        page.once("dialog", lambda d: d.accept())
        banner.get_by_role("button", name="Remove demo data").click()
        page.wait_for_url(server.url + "/")
        assert "Removed the demo data: 5 campaigns, 150 contacts" in page.content()
        assert banner.count() == 0
        assert page.get_by_test_id("load-demo").is_visible()
        assert problems == []
        page.close()
        # The worker was mid-campaign when its sender and messages went: give its lane the
        # longest pacing wait to step again, then it must have let go without an error.
        time.sleep(SENDER_PACING["max_delay_seconds"] + 1)
    assert not [line for line in server.output if "Traceback" in line or " ERROR " in line]
