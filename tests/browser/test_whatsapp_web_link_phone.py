"""A user links a WhatsApp Web sender by phone number from the Senders page: types the
account's number beside the QR, sees the 8-character code WhatsApp gave, and the page turns
to "Linked as" once the phone has typed it, without a reload.

Everything is real except WhatsApp Web itself: `wabulk serve` with its worker, Chrome driven
by Selenium for the sender (pointed at the stand-in), and Playwright's Chromium for the user.
"""

from __future__ import annotations

import re

import pytest

from ..fakes.whatsapp_web import FakeWhatsAppWeb
from ..support import run_wabulk, running_server
from ..web_channel_support import ACCOUNT, wait_for
from .conftest import sign_in

# Slow: the same flow is tested on the page (test_senders_link_phone.py) and in the channel
# (test_whatsapp_web_pairing.py); this one walks it in a browser, kept out of `make test`'s
# fifteen minutes.
pytestmark = [pytest.mark.browser, pytest.mark.slow]
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"


def test_link_by_phone_number_in_the_dashboard(
    browser, artifacts, tmp_path, fake: FakeWhatsAppWeb
) -> None:
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    created = run_wabulk(
        instance, "user", "create", "--email", EMAIL, "--role", "admin", "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    env = {"WABULK_WHATSAPP_WEB_URL": fake.url, "WABULK_BROWSER_TIMEOUT": "20"}
    with running_server(instance, **env) as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, server.url, EMAIL, PASSWORD)
        page.goto(server.url + "/senders/new")
        page.get_by_label("Name", exact=True).fill("Shop phone")
        page.get_by_role("button", name="Add sender").click()
        page.wait_for_url(re.compile(r".*/senders/\d+/link$"))

        # Beside the QR: no camera at hand, so the number instead. A number that cannot be
        # the account's is refused on our side, before WhatsApp is asked.
        expect(page.get_by_test_id("qr")).to_have_attribute(
            "src", re.compile(r"^data:image/png;base64,"), timeout=30_000
        )
        page.locator("summary", has_text="Link with phone number instead").click()
        form = page.get_by_test_id("link-phone-form").first
        form.get_by_label("The phone's WhatsApp number").fill("12")
        form.get_by_role("button", name="Get a code").click()
        expect(page.get_by_role("alert").filter(has_text="'12'")).to_be_visible()

        page.locator("summary", has_text="Link with phone number instead").click()
        form.get_by_label("The phone's WhatsApp number").fill("+91 98765 43210")
        form.get_by_role("button", name="Get a code").click()
        code = page.get_by_test_id("link-code")
        expect(code).to_have_text(re.compile(r"^[1-9A-Z]{4}-[1-9A-Z]{4}$"), timeout=60_000)
        shown = code.inner_text().replace("-", "")
        with fake.state.lock:  # the code WhatsApp gave for that number, as WhatsApp shows it
            assert fake.state.pairings[shown]["phone"] == ACCOUNT
        panel = page.locator('[data-panel="code"]')
        expect(panel).to_contain_text(
            "On your phone: WhatsApp → Linked devices → Link a device → Link with phone "
            "number instead, then type this code."
        )
        expect(panel).to_contain_text(f"The code is for {ACCOUNT}")
        assert float(code.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 32
        page.screenshot(path=str(artifacts / "senders-link-phone-code.png"), full_page=True)
        page.evaluate("window.__notReloaded = 'same page'")

        # The phone types the code: linked, on the same page.
        wait_for(lambda: fake.accept_pairing(code=shown), what="the phone typing the code")
        expect(page.get_by_test_id("linked-as")).to_contain_text(ACCOUNT, timeout=30_000)
        assert page.evaluate("window.__notReloaded") == "same page"
        page.goto(server.url + "/senders")
        row = page.get_by_test_id("senders")
        expect(row).to_contain_text(f"Linked as {ACCOUNT}")
        assert problems == []
