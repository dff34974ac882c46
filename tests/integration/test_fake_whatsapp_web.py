"""The WhatsApp Web stand-in itself: its control API, and one real run in Chromium.

The channel's own tests trust this fake to behave like the real page; these check the
protocol (QR scan -> session -> message recorded) before anything is built on it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM_FLAGS
from tests.fakes.whatsapp_web import FakeWhatsAppWeb


@pytest.fixture(scope="module")
def server() -> Iterator[FakeWhatsAppWeb]:
    with FakeWhatsAppWeb() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeWhatsAppWeb) -> FakeWhatsAppWeb:
    server.reset()
    return server


def call(fake: FakeWhatsAppWeb, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET, or POST a JSON body; returns (status, decoded JSON)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(fake.url + path, data=data)  # noqa: S310 (http on loopback)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_control_api_links_a_page_and_records_its_messages(fake: FakeWhatsAppWeb) -> None:
    assert call(fake, "/_control/scan", {}) == (
        409,
        {"error": "no QR code is waiting to be scanned"},
    )
    status, answer = call(fake, "/_control/config", {"nope": 1})
    assert status == 400 and "nope" in answer["error"]
    status, config = call(fake, "/_control/config", {"ack_delay": 0, "logout_after": 2})
    assert status == 200 and config["ack_delay"] == 0

    # What a page does: show a QR, get it scanned, pick up the session from its poll.
    _, qr = call(fake, "/_api/qr", {})
    assert fake.pending_qr() == [qr["ref"]]
    status, _ = call(fake, "/_control/scan", {"phone": "+44 7700 900123"})
    assert status == 200 and fake.pending_qr() == []
    _, scanned = call(fake, f"/_api/qr/{urllib.parse.quote(qr['ref'])}")
    assert scanned["status"] == "scanned" and scanned["phone"] == "+447700900123"
    token = scanned["token"]
    _, contact = call(fake, f"/_api/contact?token={token}&phone=919800000000")
    assert contact["registered"] is False  # numbers ending in 0000 are not on WhatsApp

    for text in ("one", "two"):
        status, sent = call(
            fake, "/_api/messages", {"token": token, "phone": "4477009", "text": text}
        )
        assert status == 200 and sent["failed"] is False
    # logout_after=2 revoked the session on the second message, which still counts.
    assert call(fake, f"/_api/state?token={token}")[1] == {"logged_in": False, "use_here": False}
    _, messages = call(fake, "/_control/messages")
    assert [(m["account"], m["phone"], m["text"]) for m in messages] == [
        ("+447700900123", "4477009", "one"),
        ("+447700900123", "4477009", "two"),
    ]
    _, state = call(fake, "/_control/state")
    assert state["messages"] == 2 and state["sessions"] == []
    assert state["config"]["logout_after"] is None  # one-shot
    call(fake, "/_control/reset", {})
    assert fake.messages() == [] and fake.snapshot()["config"]["ack_delay"] == 0.2


def _chrome(profile: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail("Needs Chromium and ChromeDriver: `make browsers` installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,860"]:
        options.add_argument(flag)
    # An explicit driver path keeps Selenium Manager from trying to download one.
    return webdriver.Chrome(options=options, service=Service(driver))


@pytest.mark.browser
def test_chromium_scans_the_qr_and_sends_a_prefilled_message(fake: FakeWhatsAppWeb) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # Emoji outside the BMP, a skin-tone modifier, an accent, Arabic (right to left), a blank
    # line and the characters that break URLs unless percent-encoded.
    arabic = "\u0645\u0631\u062d\u0628\u0627"  # "marhaba", escaped for ruff's RUF001
    text = f"Hello 😀👍🏽 café\n{arabic}\n\n+ & = # % done"
    profile = tempfile.mkdtemp(prefix="wabulk-fake-wa-")
    browser = _chrome(profile)
    try:
        wait = WebDriverWait(browser, 10)

        def find(css: str) -> Any:
            return wait.until(lambda b: b.find_element(By.CSS_SELECTOR, css))

        browser.get(fake.url)
        find('div[data-ref] canvas[aria-label="Scan this QR code to link a device!"]')
        assert fake.scan(phone="+919876543210")
        find("#side #pane-side")  # linked without a reload
        stored = browser.execute_script(
            "return [localStorage['wabulk-fake-session'], localStorage['last-wid-md']]"
        )
        assert stored[0] and stored[1] == '"919876543210:12@c.us"'

        browser.get(f"{fake.url}/send?phone=447700900456&text={urllib.parse.quote(text, safe='')}")
        box = find('#main footer div[contenteditable="true"][data-tab="10"]')
        assert box.get_attribute("innerText") == text
        find('footer span[data-icon="wds-ic-send-filled"]').click()
        find(
            'div.message-out:last-child span[data-icon="msg-check"], '
            'div.message-out:last-child span[data-icon="msg-dblcheck"]'
        )
        [message] = fake.messages()
        assert (message["phone"], message["kind"], message["text"]) == (
            "447700900456",
            "text",
            text,
        )
        bubble = browser.find_element(By.CSS_SELECTOR, "div.message-out")
        assert bubble.get_attribute("data-id") == f"true_447700900456@c.us_{message['id']}"
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _linked_token(fake: FakeWhatsAppWeb, phone: str = "+919876543210") -> str:
    """What a page does to link: show a QR, get it scanned, pick up the session."""
    _, qr = call(fake, "/_api/qr", {})
    assert fake.scan(phone=phone)
    _, scanned = call(fake, f"/_api/qr/{urllib.parse.quote(qr['ref'])}")
    return scanned["token"]


def test_ticks_replies_contacts_and_banners_through_the_control_api(
    fake: FakeWhatsAppWeb,
) -> None:
    fake.set(ack_delay=0)  # auto ticks count from the single tick: at once here
    token = _linked_token(fake)
    for phone, text in (("919812300001", "Hello Asha\nsecond line"), ("447700900123", "Hi")):
        call(fake, "/_api/messages", {"token": token, "phone": phone, "text": text})
    first, second = fake.messages()
    assert first["status"] == "sent" and first["delivered_at"] is None
    assert first["data_id"] == f"true_919812300001@c.us_{first['id']}"

    # Ticks move by hand, by id or by the latest message to a number.
    assert fake.tick(message_id=first["id"], status="delivered")["status"] == "delivered"
    read = fake.tick(phone="+44 7700 900123", status="read")
    assert read["id"] == second["id"] and read["read_at"] and read["delivered_at"]
    assert call(fake, "/_control/tick", {"message_id": "nope"})[0] == 404
    assert call(fake, "/_control/tick", {"phone": "447700900123", "status": "seen"})[0] == 400

    # The customer writes: newest activity first, the number as WhatsApp prints it.
    reply = fake.reply("+919812300001", "STOP")
    assert reply["data_id"] == f"false_919812300001@c.us_{reply['id']}"
    assert reply["account"] == "+919876543210" and reply["read"] is False
    status, photo = call(fake, "/_control/reply", {"phone": "14155550123", "kind": "image"})
    assert status == 200 and photo["kind"] == "image"
    assert call(fake, "/_control/reply", {"phone": "14155550123", "kind": "sticker"})[0] == 400
    rows = fake.chats()
    assert [(r["title"], r["ours"], r["status"], r["preview"], r["unread"]) for r in rows] == [
        ("+1 (415) 555-0123", False, None, "Photo", 1),
        ("+91 98123 00001", False, None, "STOP", 1),
        ("+44 7700 900123", True, "read", "Hi", 0),
    ]

    # A saved contact shows by name; opening a chat reads it; a banner reaches every page.
    fake.save_contact("14155550123", "Asha Rao")
    fake.banner("Too many messages")
    _, shown = call(fake, f"/_api/state?token={token}")
    assert shown["banner"] == "Too many messages" and shown["rows"][0]["title"] == "Asha Rao"
    _, again = call(fake, f"/_api/state?token={token}&since={shown['version']}")
    assert "rows" not in again  # nothing moved: the poll carries no chat list
    _, chat = call(fake, f"/_api/contact?token={token}&phone=919812300001")
    assert [(m["out"], m["text"]) for m in chat["messages"]] == [
        (True, "Hello Asha\nsecond line"),
        (False, "STOP"),
    ]
    assert fake.opened_chats() == ["919812300001"]
    assert [r["unread"] for r in fake.chats()] == [1, 0, 0]
    call(fake, "/_control/banner", {"text": None})
    assert call(fake, f"/_api/state?token={token}")[1]["banner"] is None

    # Ticks that move by themselves, counted from the single tick.
    fake.set(auto_deliver_after=0, auto_read_after=600)
    call(fake, "/_api/messages", {"token": token, "phone": "919812300009", "text": "auto"})
    assert fake.messages()[-1]["status"] == "delivered"
    fake.set(auto_read_after=0)
    assert {m["status"] for m in fake.messages()} == {"read"}
    fake.reset()
    assert fake.chats() == [] and fake.opened_chats() == [] and fake.incoming() == []


VARIANT_HOOKS = {
    # variant: (row, outgoing bubble, incoming bubble, banner, delivered row icon, read icons)
    "current": (
        '#pane-side div[role="listitem"]',
        "div.message-out",
        "div.message-in",
        '#side div[role="alert"]',
        "msg-dblcheck",
        ("msg-dblcheck", " Read "),
    ),
    "older": (
        '#pane-side div[role="row"]',
        "div.message-out",
        "div.message-in",
        '#pane-side div[role="alert"]',
        "msg-dblcheck",
        ("msg-dblcheck", " Read "),
    ),
    "v2026": (
        '#pane-side div[aria-label="Chat list"] div[role="listitem"]',
        'div[data-id^="true_"]',
        'div[data-id^="false_"]',
        '#side div[data-testid="chatlist-banner"]',
        "status-dblcheck",
        ("msg-dblcheck-ack", "Read"),
    ),
}


class _Page:
    """One Chromium on the stand-in, with waits generous enough for a busy machine."""

    def __init__(self, browser: Any, hooks: tuple[str, ...]) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser, self.hooks = browser, hooks
        self.wait = WebDriverWait(browser, 30)

    def css(self, selector: str, inside: Any = None) -> list[Any]:
        return (inside or self.browser).find_elements("css selector", selector)

    def until(self, check: Any) -> Any:
        return self.wait.until(lambda _: check())

    def row(self, number: str) -> Any:
        found = self.css(f'{self.hooks[0]}[data-chat="{number}"]')
        return found[0] if found else None

    def in_row(self, number: str, selector: str) -> list[Any]:
        row = self.row(number)
        return self.css(selector, row) if row else []


def _hear_back_in(page: _Page, fake: FakeWhatsAppWeb, n: int, variant: str, pdf: Path) -> None:
    from selenium.webdriver import Keys

    _, out_sel, in_sel, banner_sel, delivered_icon, (read_icon, read_label) = page.hooks
    ours, theirs = f"91981230{n}001", f"91981230{n}002"
    fake.set(variant=variant)
    page.browser.get(f"{fake.url}/send?phone={ours}&text=Hi%20Asha")
    send = 'footer [aria-label="Send"]' if variant == "v2026" else "footer [data-icon]"
    page.until(lambda: page.css(send))[-1].click()
    sent = page.until(lambda: [m for m in fake.messages() if m["phone"] == ours])[0]
    bubble = page.until(lambda: page.css(f'{out_sel}[data-id="{sent["data_id"]}"]'))[0]
    page.until(lambda: page.css('[data-icon="msg-check"]', bubble))
    if variant == "v2026":
        assert page.css("div.message-out") == []
        assert page.css('[data-icon="wds-ic-send-filled"]') == []
    # A draft in the open chat's box survives everything the poll brings in.
    box = page.css("footer [contenteditable='true']")[0]
    box.send_keys("draft kept")

    fake.tick(phone=ours, status="delivered")
    page.until(lambda: page.in_row(ours, f'[data-icon="{delivered_icon}"]'))
    fake.tick(phone=ours, status="read")
    page.until(lambda: page.css(f'[data-icon="{read_icon}"][aria-label="{read_label}"]', bubble))

    fake.reply(theirs, "Is this still on offer?")
    fake.reply(theirs, "", kind="image")
    badge = page.until(lambda: page.in_row(theirs, 'span[aria-label*="unread"]'))[0]
    assert badge.get_attribute("aria-label") == "2 unread messages"
    assert page.css(page.hooks[0])[0].get_attribute("data-chat") == theirs  # newest first
    title = page.in_row(theirs, "span[dir='auto'][title]")[0]
    assert title.text == f"+91 98123 0{n}002"
    fake.save_contact(theirs, "Asha Rao")
    page.until(lambda: page.in_row(theirs, "span[title='Asha Rao']"))
    fake.banner("Too many messages")
    page.until(lambda: [b for b in page.css(banner_sel) if "Too many messages" in b.text])
    assert box.get_attribute("innerText").strip() == "draft kept"
    fake.banner(None)
    page.until(lambda: not page.css(banner_sel))

    # So does a caption being typed in an attachment's preview.
    page.css("footer [title='Attach']")[0].click()
    page.until(lambda: page.css('input[type="file"][accept="*"]'))[0].send_keys(str(pdf))
    caption = page.until(lambda: page.css('.media-preview [contenteditable="true"]'))[0]
    caption.send_keys("caption kept")
    fake.reply(theirs, "One more thing")
    page.until(lambda: page.in_row(theirs, 'span[aria-label="3 unread messages"]'))
    assert caption.get_attribute("innerText").strip() == "caption kept"
    caption.send_keys(Keys.ESCAPE)
    page.until(lambda: not page.css(".media-preview"))
    assert box.get_attribute("innerText").strip() == "draft kept"

    page.row(theirs).click()  # opening the chat reads it
    incoming = page.until(lambda: page.css(f'{in_sel}[data-id^="false_{theirs}@c.us_"]'))
    assert len(incoming) == 3 and page.css("img", incoming[1])
    header = page.css("div.copyable-text[data-pre-plain-text]", incoming[0])[0]
    assert header.get_attribute("data-pre-plain-text").endswith("] Asha Rao: ")
    assert page.css("span.selectable-text", incoming[0])[0].text == "Is this still on offer?"
    page.until(lambda: not page.in_row(theirs, "span[aria-label*='unread']"))
    assert theirs in fake.opened_chats()


@pytest.mark.browser
def test_chromium_sees_ticks_replies_badges_and_banners_in_every_variant(
    fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    pdf = tmp_path / "Price list.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    profile = tempfile.mkdtemp(prefix="wabulk-fake-wa-")
    browser = _chrome(profile)
    try:
        browser.get(fake.url)
        page = _Page(browser, ())
        page.until(lambda: fake.pending_qr())
        assert fake.scan()
        page.until(lambda: page.css("#pane-side"))
        # One browser, one session: each variant only needs a reload.
        for n, (variant, hooks) in enumerate(VARIANT_HOOKS.items()):
            _hear_back_in(_Page(browser, hooks), fake, n, variant, pdf)
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
