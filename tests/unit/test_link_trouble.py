"""The reasons WhatsApp Web could not be opened, each told to a shop owner in its words.

- Each case is the message the WhatsApp Web channel really raises (browser.py, channel.py),
  so a reworded message that no longer maps fails here.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from selenium.common.exceptions import WebDriverException

from wabulk.channels.whatsapp_web import browser
from wabulk.channels.whatsapp_web.channel import WhatsAppWebChannel
from wabulk.senders.linking import BROWSER_TROUBLE, TROUBLES, trouble

SENTENCES = {kind: sentence for kind, _marks, sentence in TROUBLES}
INTERNAL = ("dispatcher", "whatsapp_web", "dry_run", "WABULK_", "`", "--", "Traceback", "net::")


def _raised(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(browser.BrowserFailed) as caught:
        call()
    return str(caught.value)


def test_an_unreachable_whatsapp_web_is_the_connection_firewall_or_proxy() -> None:
    shown = SimpleNamespace(base_url="https://web.whatsapp.com")
    for error in ("net::ERR_NAME_NOT_RESOLVED", "unknown error: net::ERR_PROXY_CONNECTION_FAILED"):
        text = WhatsAppWebChannel._unreachable_text(shown, WebDriverException(error))  # type: ignore[arg-type]
        assert trouble(text) == ("unreachable", SENTENCES["unreachable"])
    assert "firewall or a proxy" in SENTENCES["unreachable"]


def test_chrome_not_installed_or_not_found(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere" / "chromedriver")
    for text in (
        _raised(lambda: browser.find_chromedriver(missing)),
        _raised(lambda: browser.find_chrome(str(tmp_path / "nowhere" / "chrome"))),
        "No ChromeDriver was found. " + browser.INSTALL_HINT,
        "Chrome did not start: unknown error: cannot find Chrome binary. " + browser.INSTALL_HINT,
    ):
        assert trouble(text)[0] == "not_installed", text


def test_another_chrome_on_the_same_profile(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(browser, "_lock_owner", lambda _profile: os.getpid())
    theirs = browser.BrowserOptions(user_data_dir=tmp_path, own_profile=False)
    text = _raised(lambda: browser.free_profile(theirs))
    assert trouble(text) == ("profile_in_use", SENTENCES["profile_in_use"])


def test_a_missing_profile_and_a_window_without_a_screen(tmp_path: Path, monkeypatch) -> None:
    gone = browser.BrowserOptions(user_data_dir=tmp_path / "gone", own_profile=False)
    assert trouble(_raised(lambda: browser.start(gone)))[0] == "profile_missing"
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(browser.sys, "platform", "linux")
    shown = browser.BrowserOptions(user_data_dir=tmp_path, visible=True)
    assert trouble(_raised(lambda: browser.start(shown)))[0] == "no_desktop"


def test_anything_else_is_chrome_that_could_not_open_whatsapp_web() -> None:
    for text in (
        "Chrome did not start: session not created: DevToolsActivePort file doesn't exist. "
        + browser.INSTALL_HINT,
        "The browser stopped while linking: disconnected: not connected to DevTools",
        "",
        None,
    ):
        assert trouble(text) == ("browser", BROWSER_TROUBLE)


def test_every_sentence_is_in_a_shop_owners_words() -> None:
    for sentence in [*SENTENCES.values(), BROWSER_TROUBLE]:
        assert not any(term in sentence for term in INTERNAL), sentence
        assert sentence.endswith(".")
