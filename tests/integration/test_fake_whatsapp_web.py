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
