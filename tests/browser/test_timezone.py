"""The browser's timezone, as real Chromium reports it, becomes the account's at sign-in."""

from __future__ import annotations

import pytest

from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "asha@shop.example", "a long pass phrase"


def _in_zone(browser, zone: str):  # type: ignore[no-untyped-def]
    """A page whose JavaScript lives in `zone`.

    The shared browser is one persistent context, which cannot take Playwright's
    `timezone_id` per page; this is the DevTools call that option makes in Chromium.
    """
    page = browser.new_page()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setTimezoneOverride", {"timezoneId": zone})
    return page


def test_sign_in_stores_the_browsers_timezone_and_pages_use_it(browser, tmp_path) -> None:
    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "viewer")
    with running_server(instance, "--no-worker") as server:
        page = _in_zone(browser, "Asia/Kolkata")
        page.goto(server.url + "/login")
        reported = page.locator("input[name=timezone]").input_value()
        # Chromium names India by ICU's older name; the server stores today's.
        assert reported in {"Asia/Kolkata", "Asia/Calcutta"}
        assert page.evaluate("new Date(Date.UTC(2025, 0, 15, 12)).getHours()") == 17

        sign_in(page, server.url, EMAIL, PASSWORD)
        page.goto(server.url + "/settings/")
        box = page.get_by_label("Timezone")
        assert box.input_value() == "Asia/Kolkata"
        last_sign_in = page.locator("dt:text('Last sign-in') + dd").inner_text()
        assert last_sign_in.endswith(" IST")

        # Another zone typed by hand, then the browser's own taken back with the button.
        box.fill("Europe/London")
        page.get_by_role("button", name="Save timezone").click()
        page.wait_for_url(server.url + "/settings/")
        assert page.get_by_label("Timezone").input_value() == "Europe/London"
        assert page.locator("dt:text('Last sign-in') + dd").inner_text().endswith((" GMT", " BST"))
        page.get_by_role("button", name="Use my browser's timezone").click()
        assert page.get_by_label("Timezone").input_value() in {"Asia/Kolkata", "Asia/Calcutta"}
        page.get_by_role("button", name="Save timezone").click()
        page.wait_for_url(server.url + "/settings/")
        assert page.get_by_label("Timezone").input_value() == "Asia/Kolkata"
        page.close()

        # Signing in from a browser elsewhere keeps the zone already chosen.
        page = _in_zone(browser, "America/New_York")
        page.context.clear_cookies()
        sign_in(page, server.url, EMAIL, PASSWORD)
        page.goto(server.url + "/settings/")
        assert page.get_by_label("Timezone").input_value() == "Asia/Kolkata"
        page.close()
