"""Issue 15 as an admin walks it, in real Chromium against `wabulk serve` and its worker: add a
Cloud API sender on the Senders page, check its connection, sync its templates, map an
approved template with the live preview, launch a campaign, and watch Delivered and Read rise
on the campaign page without a reload while the fake Cloud API posts signed webhooks to the
callback URL the sender's page shows."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ..support import new_instance, run_wabulk, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
TOKEN = "EAAG-walkthrough-token-9c41"
APP_SECRET = "walkthrough-app-secret-7e20"
VERIFY_TOKEN = "walkthrough-verify-token"
# As Meta lists an approved template: a text heading, two positional blanks in the body.
WELCOME = [
    {"type": "HEADER", "format": "TEXT", "text": "Spring sale at Acme"},
    {
        "type": "BODY",
        "text": "Hi {{1}}, use code {{2}} before Sunday.",
        "example": {"body_text": [["Pablo", "CARIBE25"]]},
    },
    {"type": "FOOTER", "text": "Reply STOP to stop these messages"},
]
FORWARDED = ("Content-Type", "User-Agent", "X-Hub-Signature-256")
CUSTOMERS = [("9876500001", "Asha Rao"), ("9876500002", "Ravi Kumar"), ("9876500003", "Meera Shah")]


@contextmanager
def gated_relay(target: str) -> Iterator[tuple[str, threading.Event, list[int]]]:
    """A hop on Meta's side of the network: takes the fake's signed webhooks at once and
    forwards their bytes and headers unchanged to `target` once the gate opens, so the
    campaign page is known to be showing before anything is heard back. Yields its URL,
    the gate and the statuses `target` answered."""
    held: queue.Queue[tuple[bytes, dict[str, str]] | None] = queue.Queue()
    answers: list[int] = []
    gate = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            held.put((body, {k: self.headers[k] for k in FORWARDED if k in self.headers}))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    def forward() -> None:
        gate.wait()
        while (item := held.get()) is not None:
            body, headers = item
            answers.append(
                httpx.post(target, content=body, headers=headers, timeout=60).status_code
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threads = [
        threading.Thread(target=server.serve_forever, daemon=True),
        threading.Thread(target=forward, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", gate, answers
    finally:
        gate.set()
        held.put(None)
        server.shutdown()
        server.server_close()
        for thread in threads:
            thread.join(30)


def test_cloud_api_sender_to_delivered_and_read_without_a_reload(
    browser, fake_cloud, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    shots = tmp_path / "screenshots"
    shots.mkdir()
    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "admin")
    sheet = tmp_path / "Spring customers.csv"
    sheet.write_text("Phone,Name\n" + "".join(f"{p},{n}\n" for p, n in CUSTOMERS))
    imported = run_wabulk(
        instance, "contacts", "import", str(sheet), "--list", "Spring customers", "--country", "IN"
    )
    assert imported.returncode == 0, imported.stderr

    fake_cloud.add_number(PHONE_NUMBER_ID, WABA_ID, TOKEN, APP_SECRET, display_name="Acme Shop")
    fake_cloud.add_template(WABA_ID, "spring_welcome", "en_US", components=WELCOME)
    # Each status a couple of seconds after the last, so the page sees them arrive.
    fake_cloud.auto_statuses(PHONE_NUMBER_ID, delay=2.0)

    with ExitStack() as stack:
        server = stack.enter_context(
            running_server(instance, WABULK_CLOUD_API_URL=fake_cloud.base_url)
        )
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: d.accept())  # the launch asks for confirmation
        sign_in(page, server.url, EMAIL, PASSWORD)
        nav = page.get_by_role("navigation", name="Main navigation")

        # The sender, with what Meta's developer site shows.
        nav.get_by_role("link", name="Senders").click()
        page.goto(server.url + "/senders/new")
        page.get_by_label("WhatsApp Cloud API").check()
        cloud = page.get_by_test_id("cloud-settings")
        expect(cloud).to_be_visible()
        page.get_by_label("Name", exact=True).fill("Shop number")
        page.get_by_label("Phone number ID").fill(PHONE_NUMBER_ID)
        page.get_by_label("WhatsApp Business Account ID").fill(WABA_ID)
        page.get_by_label("Access token").fill(TOKEN)
        page.get_by_label("App secret").fill(APP_SECRET)
        assert page.get_by_label("Webhook verify token").input_value() != ""
        page.get_by_label("Webhook verify token").fill(VERIFY_TOKEN)
        page.screenshot(path=str(shots / "1-add-sender.png"), full_page=True)
        page.get_by_role("button", name="Add sender").click()
        page.wait_for_url(re.compile(r".*/senders/\d+$"))
        sender_url = page.url
        body = page.content()
        for secret in (TOKEN, APP_SECRET, VERIFY_TOKEN):
            assert secret not in body
        expect(page.get_by_test_id("token-hint")).to_have_text("…" + TOKEN[-4:])

        # The callback URL the page offers is where Meta (here the fake) posts.
        callback = page.get_by_test_id("webhook-url").input_value()
        assert callback.startswith(server.url + "/webhooks/whatsapp/")
        relay = stack.enter_context(gated_relay(callback))
        relay_url, gate, answers = relay
        fake_cloud.set_webhook(PHONE_NUMBER_ID, relay_url)

        page.get_by_test_id("check").click()
        page.wait_for_url(sender_url)
        expect(page.locator(".alert-success")).to_contain_text("Connected")
        expect(page.get_by_test_id("display-name")).to_have_text("Acme Shop")
        expect(page.get_by_test_id("state")).to_have_text("connected")
        page.get_by_test_id("sync").click()
        page.wait_for_url(sender_url + "#templates")
        table = page.get_by_test_id("template-table")
        expect(table).to_contain_text("spring_welcome")
        expect(table).to_contain_text("Approved")
        page.screenshot(path=str(shots / "2-sender-checked-and-synced.png"), full_page=True)

        # The template: the synced one chosen, its blanks mapped, the preview for real people.
        page.goto(server.url + "/templates/new")
        page.get_by_label("Name", exact=True).fill("Spring welcome")
        page.get_by_label("Approved WhatsApp template").select_option(
            label="spring_welcome · en_US · marketing"
        )
        page.locator("#preview_list").select_option(label="Spring customers (3)")
        rows = page.locator("[data-cloud-block]:visible [data-cloud-var]")
        expect(rows).to_have_count(2)
        rows.nth(0).locator("[data-cloud-field]").select_option("first_name")
        rows.nth(1).locator("[data-cloud-kind]").select_option("text")
        rows.nth(1).locator("[data-cloud-text]").fill("SPRING10")
        bubbles = page.get_by_test_id("cloud-preview").get_by_test_id("cloud-bubble")
        expect(bubbles.first).to_contain_text("Spring sale at Acme")
        expect(bubbles.first).to_contain_text("Hi Asha, use code SPRING10 before Sunday.")
        expect(page.get_by_test_id("cloud-preview")).to_contain_text("Hi Ravi, use code SPRING10")
        page.screenshot(path=str(shots / "3-template-mapped.png"), full_page=True)
        page.get_by_role("button", name="Save template").click()
        page.wait_for_url(server.url + "/templates")
        expect(page.get_by_test_id("cloud-badge")).to_contain_text("spring_welcome")

        # The campaign to the small list, on the Cloud API sender.
        nav.get_by_role("link", name="Campaigns").click()
        page.get_by_role("link", name="New campaign").click()
        page.get_by_label("Campaign name").fill("Spring 2026")
        page.get_by_label("Spring customers").check()
        page.get_by_test_id("audience").get_by_text("3", exact=True).wait_for()
        page.get_by_label("Template").select_option(label="Spring welcome")
        page.get_by_label("Shop number").check()
        expect(page.get_by_test_id("cloud-notes")).to_contain_text(
            "Shop number will send the approved WhatsApp template"
        )
        page.screenshot(path=str(shots / "4-wizard.png"), full_page=True)
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
        page.get_by_role("button", name="Launch").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))

        # From here the page follows the webhooks by itself: no reload, no navigation.
        page.evaluate("window.__marker = 1")
        funnel = page.get_by_test_id("funnel")
        expect(funnel.locator('[data-funnel="sent"]')).to_have_text("3", timeout=90_000)
        # Meta has sent its statuses, the relay holds them: the page shows none yet.
        fake_cloud.wait_for(lambda: fake_cloud.counters()["webhooks_posted"] >= 9, 90)
        expect(funnel.locator('[data-funnel="delivered"]')).to_have_text("0")
        expect(funnel.locator('[data-funnel="read"]')).to_have_text("0")
        page.screenshot(path=str(shots / "5-campaign-sent.png"), full_page=True)
        gate.set()
        expect(funnel.locator('[data-funnel="delivered"]')).to_have_text("3", timeout=90_000)
        expect(funnel.locator('[data-funnel="read"]')).to_have_text("3", timeout=90_000)
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=90_000)
        expect(page.get_by_test_id("billed")).to_contain_text("Marketing 3", timeout=60_000)
        assert page.evaluate("window.__marker") == 1
        assert answers and set(answers) == {200}
        page.screenshot(path=str(shots / "6-campaign-read.png"), full_page=True)

        # What reached Meta: the mapped template once per customer, the name from the contact.
        bodies = {m["to"]: m["body"] for m in fake_cloud.sent}
        assert len(fake_cloud.sent) == 3 and len(bodies) == 3
        first = next(b for to, b in bodies.items() if to.endswith(CUSTOMERS[0][0]))
        assert first["template"]["name"] == "spring_welcome"
        values = [
            p["text"]
            for c in first["template"]["components"]
            if c["type"] == "body"
            for p in c["parameters"]
        ]
        assert values == ["Asha", "SPRING10"]
        assert problems == []
        page.close()
