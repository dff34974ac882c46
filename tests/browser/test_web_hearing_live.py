"""A WhatsApp Web campaign hears back on its page without a reload: ticks, a reply, a STOP,
and a limit banner that stops the sender before its next message.

Everything is real except WhatsApp Web itself: `wabulk serve` with its worker driving the
WhatsApp Web channel in its own headless Chromium against the stand-in, and Playwright's
Chromium for the shop owner's browser. The test moves the ticks and writes the replies on
the stand-in, as the customers' phones would.
"""

from __future__ import annotations

import re

import pytest

from ..fakes.whatsapp_web import FakeWhatsAppWeb
from ..support import new_instance, run_wabulk, running_server
from ..web_channel_support import ACCOUNT, wait_for
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
MESSAGE = "Hi {{ first_name }}, our monsoon sale starts today. Reply STOP to opt out."
CUSTOMERS = [
    ("9876500011", "Asha Rao"),
    ("9876500012", "Ravi Shah"),
    ("9876500013", "Meera Iyer"),
    ("9876500014", "Kiran Das"),
]
ASHA, RAVI = ("+91" + p for p, _ in CUSTOMERS[:2])
QUESTION = "Is the blue kurta there in size M?"
# The pacing wait is where the sender looks at its chats: one look after each send, so
# what a phone shows reaches the page after the next send. Long enough for the page to
# follow between sends; short enough for a quick test.
DELAY = ("6", "7")


def test_ticks_replies_stop_and_a_limit_banner_reach_the_campaign_page(
    browser, artifacts, tmp_path, fake: FakeWhatsAppWeb
) -> None:
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "admin")
    sheet = tmp_path / "customers.csv"
    sheet.write_text("Phone,Name\n" + "".join(f"{p},{n}\n" for p, n in CUSTOMERS))
    imported = run_wabulk(
        instance, "contacts", "import", str(sheet), "--list", "Regulars", "--country", "IN"
    )
    assert imported.returncode == 0, imported.stderr

    env = {"WABULK_WHATSAPP_WEB_URL": fake.url, "WABULK_BROWSER_TIMEOUT": "20"}
    with running_server(instance, **env) as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: d.accept())
        sign_in(page, server.url, EMAIL, PASSWORD)

        page.goto(server.url + "/senders/new")
        page.get_by_label("Name", exact=True).fill("Shop phone")
        page.get_by_label("Shortest delay (s)").fill(DELAY[0])
        page.get_by_label("Longest delay (s)").fill(DELAY[1])
        page.get_by_role("button", name="Add sender").click()
        page.wait_for_url(re.compile(r".*/senders/\d+/link$"))
        assert wait_for(lambda: fake.pending_qr(), what="the QR on the stand-in")
        assert fake.scan(phone=ACCOUNT)
        expect(page.get_by_test_id("linked-as")).to_contain_text(ACCOUNT, timeout=30_000)

        page.goto(server.url + "/campaigns/new")
        page.get_by_label("Campaign name").fill("Monsoon sale")
        page.get_by_label("Regulars").check()
        page.get_by_role("textbox", name="Message").fill(MESSAGE)
        page.get_by_label("Shop phone").check()
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
        page.get_by_role("button", name="Launch").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
        campaign_url = page.url
        funnel = page.get_by_test_id("funnel")
        expect(funnel.locator('[data-funnel="delivered"]')).to_have_text("0")
        page.evaluate("window.__marker = 'same page'")

        # Asha's phone shows the message delivered: the look after the next send sees it.
        wait_for(lambda: _sent_to(fake, ASHA), 60, what="the first message on the stand-in")
        fake.tick(phone=ASHA, status="delivered")
        expect(funnel.locator('[data-funnel="delivered"]')).to_have_text("1", timeout=30_000)
        expect(funnel.locator('[data-funnel="read"]')).to_have_text("0")

        # Asha reads it and asks a question. Ravi's phone gets his, and he answers STOP at
        # once, likely while his chat is still on screen: the page marks it read then, with
        # no unread badge, and the sender moves on to the next chat before it looks.
        fake.tick(phone=ASHA, status="read")
        fake.reply(ASHA, QUESTION)
        wait_for(lambda: _sent_to(fake, RAVI), what="the second message on the stand-in")
        fake.tick(phone=RAVI, status="delivered")
        fake.reply(RAVI, "STOP")

        expect(funnel.locator('[data-funnel="replied"]')).to_have_text("2", timeout=30_000)
        expect(funnel.locator('[data-funnel="delivered"]')).to_have_text("2")
        expect(funnel.locator('[data-funnel="read"]')).to_have_text("1")
        replies = page.get_by_test_id("replies")
        expect(replies).to_contain_text(QUESTION, timeout=30_000)
        expect(replies).to_contain_text("STOP")
        expect(replies.get_by_test_id("opted-out")).to_have_count(1)

        # A message still to go, and WhatsApp starts limiting the account.
        before_banner = len(fake.messages())
        assert before_banner < len(CUSTOMERS), "every message went before the banner showed"
        fake.banner("Too many messages")
        expect(page.get_by_test_id("status")).to_have_text("paused", timeout=30_000)
        expect(page.get_by_test_id("reason")).to_contain_text("Too many messages")
        # Those not sent yet, the one in hand back in the queue with them.
        left = str(len(CUSTOMERS) - before_banner)
        expect(page.locator('[data-count="queued"]')).to_have_text(left, timeout=30_000)
        kiran = page.get_by_test_id("recipients").get_by_role("row", name=re.compile("Kiran Das"))
        expect(kiran).to_contain_text("queued", timeout=30_000)  # back in the queue, untouched
        assert page.evaluate("window.__marker") == "same page"
        page.screenshot(path=str(artifacts / "web-hearing-campaign.png"), full_page=True)

        page.goto(server.url + "/senders")
        health = page.get_by_test_id("health")
        expect(health).to_contain_text("limited")
        expect(health).to_contain_text("Too many messages")
        expect(health.get_by_test_id("resting-until")).to_contain_text("Back in rotation")
        page.screenshot(path=str(artifacts / "web-hearing-senders.png"), full_page=True)

        page.goto(campaign_url)
        page.get_by_test_id("replies").get_by_role("link", name="Ravi Shah").click()
        expect(page.get_by_test_id("opted-out").first).to_be_visible()
        expect(page.get_by_role("status")).to_contain_text("Replied “STOP” on WhatsApp. No")
        page.screenshot(path=str(artifacts / "web-hearing-contact.png"), full_page=True)
        assert problems == []

    # The banner stopped the sender before its next message: nothing more reached WhatsApp.
    assert len(fake.messages()) == before_banner
    assert {m["account"] for m in fake.messages()} == {ACCOUNT}


def _sent_to(fake: FakeWhatsAppWeb, phone: str) -> bool:
    return any(m["phone"].lstrip("+") == phone.lstrip("+") for m in fake.messages())
