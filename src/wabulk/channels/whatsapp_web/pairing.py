"""Linking a WhatsApp Web account by phone number: the 8-character code typed on the phone.

- From the QR screen: click "Link with phone number", empty the number field (WhatsApp
  prefills a country code from the computer's location), type the number with its
  country code, press Next, and read the code WhatsApp shows.
- The code stays on screen until the phone accepts it, so later looks only read it.
- The code is read from `data-link-code` ("K7Q2M9XA", or one character per comma), else
  from the characters shown; anything that is not 8 letters and digits is not a code.
"""

from __future__ import annotations

import re
import time

from selenium.webdriver import Keys

from . import selectors
from .page import Page

CODE_LENGTH = 8

# The link by its words, when no structural hook matches.
_BY_TEXT = """
const texts = arguments[0];
for (const el of document.querySelectorAll('[role="button"], button, a')) {
  if (texts.includes((el.innerText || "").trim().toLowerCase())) return el;
}
return null;
"""

_CODE = """
for (const s of arguments[0]) {
  let el = null;
  try { el = document.querySelector(s); } catch (e) { continue; }
  if (el) return [el.getAttribute("data-link-code") || "", el.innerText || ""];
}
return null;
"""

_ERROR_TEXT = """
for (const s of arguments[0]) {
  let el = null;
  try { el = document.querySelector(s); } catch (e) { continue; }
  if (el && el.innerText.trim()) return el.innerText.trim();
}
return null;
"""


class NoPhoneLink(Exception):
    """The QR screen offers no way to link by phone number."""


class Refused(Exception):
    """WhatsApp did not take the number; the message is what it said."""


def shown_code(page: Page) -> str | None:
    """The code on screen, without dashes or commas, or None."""
    got = page.driver.execute_script(_CODE, list(page.sel["link_code"]))
    for raw in got or ():
        code = re.sub(r"[^0-9A-Za-z]", "", raw).upper()
        if len(code) == CODE_LENGTH:
            return code
    return None


def on_pairing_screens(page: Page) -> bool:
    """The number field or a code is on screen (no QR)."""
    return bool(page.present(("phone_input", "link_code")))


def asking_number(page: Page) -> bool:
    return bool(page.present(("phone_input",)))


def ask_code(page: Page, phone: str, timeout: float) -> str | None:
    """From the QR or the number screen, ask for a code for `phone` (E.164); None when
    WhatsApp has not shown one within `timeout` (the next look asks again)."""
    if not asking_number(page):
        link = page.find("link_phone", clickable=True) or page.driver.execute_script(
            _BY_TEXT, list(selectors.LINK_PHONE_TEXTS)
        )
        if link is None:
            raise NoPhoneLink()
        link.click()
    field = page.wait_find("phone_input", timeout)
    if field is None:
        return None
    field.clear()
    field.send_keys(Keys.CONTROL, "a")  # clear() alone leaves some controlled inputs as they were
    field.send_keys(Keys.BACKSPACE)
    field.send_keys(phone)
    button = page.wait_find("phone_next", 2, clickable=True)
    if button is not None:
        button.click()
    else:
        field.send_keys(Keys.ENTER)
    deadline = time.monotonic() + timeout
    while True:
        code = shown_code(page)
        if code is not None:
            return code
        said = page.driver.execute_script(_ERROR_TEXT, list(page.sel["phone_error"]))
        if said:
            raise Refused(said.splitlines()[0])
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)
