"""A new user links a WhatsApp Web sender by scanning the QR shown in our Senders page,
then sends a campaign with emoji, line breaks and a PDF through it.

Everything is real except WhatsApp Web itself: `wabulk serve` with its dispatcher, Chrome
driven by Selenium for the sender (pointed at the stand-in), and Playwright's Chromium for
the user's browser.
"""

from __future__ import annotations

import re

import pytest

from ..fakes.whatsapp_web import FakeWhatsAppWeb
from ..support import run_wabulk, running_server
from ..web_channel_support import ACCOUNT, pdf_file, wait_for
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
MESSAGE = "Hi {{ first_name }} 😀\nOur Diwali price list is attached.\nReply STOP to opt out."
CUSTOMERS = [("9876500001", "Asha Rao"), ("9876500002", "Ravi Shah"), ("9876500003", "Meera Iyer")]


def test_link_by_qr_in_the_dashboard_then_send_a_campaign_with_a_pdf(
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
    sheet = tmp_path / "customers.csv"
    sheet.write_text("Phone,Name\n" + "".join(f"{p},{n}\n" for p, n in CUSTOMERS))
    imported = run_wabulk(
        instance, "contacts", "import", str(sheet), "--list", "Regulars", "--country", "IN"
    )
    assert imported.returncode == 0, imported.stderr
    pdf = pdf_file(tmp_path)
    brochure = tmp_path / "Diwali price list.pdf"
    pdf.rename(brochure)

    env = {"WABULK_WHATSAPP_WEB_URL": fake.url, "WABULK_BROWSER_TIMEOUT": "20"}
    with running_server(instance, **env) as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: d.accept())
        sign_in(page, server.url, EMAIL, PASSWORD)

        # Add the sender: WhatsApp Web is the first kind offered.
        page.goto(server.url + "/senders/new")
        expect(page.get_by_label("WhatsApp Web")).to_be_checked()
        assert page.get_by_label("Shortest delay (s)").input_value() == "30"  # safe defaults
        page.get_by_label("Name", exact=True).fill("Shop phone")
        page.get_by_label("Shortest delay (s)").fill("0.2")
        page.get_by_label("Longest delay (s)").fill("0.5")
        page.get_by_role("button", name="Add sender").click()
        page.wait_for_url(re.compile(r".*/senders/\d+/link$"))

        # The worker opens Chrome on the stand-in; its QR appears in our page.
        qr = page.get_by_test_id("qr")
        expect(qr).to_have_attribute("src", re.compile(r"^data:image/png;base64,"), timeout=30_000)
        first_qr = qr.get_attribute("src")
        page.wait_for_function(
            "() => { const i = document.querySelector('[data-testid=qr]');"
            " return i.complete && i.naturalWidth > 100; }"
        )
        page.screenshot(path=str(artifacts / "senders-link-qr.png"), full_page=True)
        page.evaluate("window.__notReloaded = 'same page'")

        # The phone scans it: the page turns to "Linked as" without a reload.
        assert wait_for(lambda: fake.pending_qr(), what="the QR on the stand-in")
        assert fake.scan(phone=ACCOUNT)
        expect(page.get_by_test_id("linked-as")).to_contain_text(ACCOUNT, timeout=30_000)
        assert page.evaluate("window.__notReloaded") == "same page"
        assert first_qr and first_qr != "data:,"
        page.screenshot(path=str(artifacts / "senders-linked.png"), full_page=True)
        page.goto(server.url + "/senders")
        assert ACCOUNT in page.get_by_test_id("senders").inner_text()

        # A campaign with emoji, line breaks and a PDF, through that sender.
        page.goto(server.url + "/campaigns/new")
        page.get_by_label("Campaign name").fill("Diwali prices")
        page.get_by_label("Regulars").check()
        page.get_by_role("textbox", name="Message").fill(MESSAGE)
        page.get_by_label("Attachment").set_input_files(str(brochure))
        page.get_by_label("Shop phone").check()
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
        page.get_by_role("button", name="Launch").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=120_000)
        page.screenshot(path=str(artifacts / "campaign-whatsapp-web.png"), full_page=True)
        assert problems == []

    got = fake.messages()
    for phone, name in CUSTOMERS:
        mine = [(m["kind"], m["filename"], m["text"]) for m in got if m["phone"] == "91" + phone]
        first = name.split()[0]
        assert mine == [
            ("document", "Diwali price list.pdf", ""),
            ("text", None, MESSAGE.replace("{{ first_name }}", first)),
        ]
    assert {m["account"] for m in got} == {ACCOUNT}
