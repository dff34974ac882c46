"""Reading and acting on the WhatsApp Web page through the selectors module.

- One script call answers "which of these elements are present?" for every element at
  once, so waiting for the page costs one round trip per poll instead of one per selector.
- The page is read by structure: logged out when the QR is shown, the "Use here" screen
  when a modal covers an app that has no chat list, the invalid-number dialog when a
  modal sits over the chat list.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from selenium.webdriver import Chrome, Keys
from selenium.webdriver.remote.webelement import WebElement

State = Literal["qr", "use_here", "invalid", "chat", "app", "loading"]

_PROBE = """
const groups = arguments[0], out = {};
for (const [name, sels] of Object.entries(groups)) {
  for (const s of sels) {
    let el = null;
    try { el = document.querySelector(s); } catch (e) { continue; }
    if (el) { out[name] = s; break; }
  }
}
return out;
"""

_FIRST = """
for (const s of arguments[0]) {
  let el = null;
  try { el = document.querySelector(s); } catch (e) { continue; }
  if (el) return arguments[1] ? (el.closest('button, [role="button"]') || el) : el;
}
return null;
"""

_READ_BUBBLES = """
const readBubbles = (outSel, textSel, pending, failed, done, n) => {
  const first = (root, sels) => {
    for (const s of sels) {
      try { const el = root.querySelector(s); if (el) return el; } catch (e) {}
    }
    return null;
  };
  let all = [];
  for (const s of outSel) {
    try { all = document.querySelectorAll(s); } catch (e) {}
    if (all.length) break;
  }
  const list = Array.from(all).slice(-n).map(el => {
    const t = first(el, textSel);
    const state = first(el, failed) ? "failed" : first(el, pending) ? "pending"
      : first(el, done) ? "done" : "none";
    const holder = el.closest("[data-id]") || el.querySelector("[data-id]");
    return {text: t ? t.innerText : el.innerText, state: state,
            id: holder ? holder.getAttribute("data-id") : null};
  });
  return {count: all.length, last: list};
};
"""

_BUBBLES = _READ_BUBBLES + "return readBubbles(...arguments);"

# WhatsApp can confirm a message and log out (or hand the session to "Use here") within
# a few milliseconds: the tick is on screen for less than one poll, then the whole chat
# is gone. A watcher inside the page notes every state the new bubble takes as it
# happens, so a message WhatsApp did confirm is known sent, not left "unknown".
_WATCH = (
    _READ_BUBBLES
    + """
const sels = Array.from(arguments).slice(0, 5), before = arguments[5];
if (window.__wabulkWatch) window.__wabulkWatch.disconnect();
window.__wabulkSeen = null;
const look = () => {
  const got = readBubbles(...sels, 1);
  if (got.count > before && got.last.length && got.last[0].state !== "pending") {
    window.__wabulkSeen = got.last[0];
  }
};
window.__wabulkWatch = new MutationObserver(look);
window.__wabulkWatch.observe(document, {subtree: true, childList: true, attributes: true,
                                        characterData: true});
"""
)

_NEW_BUBBLE = (
    _READ_BUBBLES
    + """
const sels = Array.from(arguments).slice(0, 5), before = arguments[5];
const live = readBubbles(...sels, 1);
const fresh = live.count > before && live.last.length ? live.last[0] : null;
if (fresh && fresh.state !== "pending") return fresh;
return window.__wabulkSeen || fresh;
"""
)

# A Lexical editor (2025-26) holds a <p> per paragraph, so its innerText has blank lines
# between them that the message does not; an empty paragraph holds only a <br>, and a
# trailing <br> is the editor's placeholder for the caret.
_BOX_TEXT = """
const box = arguments[0];
const paragraphs = Array.from(box.children).filter(child => child.tagName === "P");
if (!paragraphs.length) return box.innerText;
return paragraphs.map(p => p.textContent ? p.innerText.replace(/\\n$/, "") : "").join("\\n");
"""

_MODAL_TEXT = """
for (const s of arguments[0]) {
  let el = null;
  try { el = document.querySelector(s); } catch (e) { continue; }
  if (el) return el.innerText;
}
return "";
"""


@dataclass(frozen=True)
class Bubble:
    text: str
    state: Literal["pending", "done", "failed", "none"]
    id: str | None


def same_text(a: str, b: str) -> bool:
    """Equal as WhatsApp shows them: NFC, Unix line breaks, outer whitespace trimmed."""

    def norm(s: str) -> str:
        return unicodedata.normalize("NFC", s.replace("\r\n", "\n").replace("\xa0", " ")).strip()

    return norm(a) == norm(b)


class Page:
    def __init__(self, driver: Chrome, selectors: Mapping[str, tuple[str, ...]]) -> None:
        self.driver = driver
        self.sel = selectors

    def present(self, names: Iterable[str]) -> dict[str, str]:
        return self.driver.execute_script(_PROBE, {n: list(self.sel[n]) for n in names})

    def state(self) -> State:
        found = self.present(("qr_canvas", "logged_in", "modal", "compose_box"))
        if "qr_canvas" in found:
            return "qr"
        if "modal" in found:
            return "invalid" if "logged_in" in found else "use_here"
        if "compose_box" in found and "logged_in" in found:
            return "chat"
        if "logged_in" in found:
            return "app"
        return "loading"

    def wait_state(self, wanted: set[State], timeout: float) -> State:
        """Poll until the page is in one of `wanted`; the last state seen on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.state()
            if current in wanted or time.monotonic() >= deadline:
                return current
            time.sleep(0.1)

    def find(self, name: str, clickable: bool = False) -> WebElement | None:
        return self.driver.execute_script(_FIRST, list(self.sel[name]), clickable)

    def wait_find(self, name: str, timeout: float, clickable: bool = False) -> WebElement | None:
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(name, clickable)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)

    def compose_text(self) -> str:
        box = self.find("compose_box")
        return "" if box is None else self.driver.execute_script(_BOX_TEXT, box)

    def modal_text(self) -> str:
        return self.driver.execute_script(_MODAL_TEXT, list(self.sel["modal"])) or ""

    def modal_buttons(self) -> list[WebElement]:
        for s in self.sel["modal_button"]:
            found = self.driver.find_elements("css selector", s)
            if found:
                return found
        return []

    def _bubble_selectors(self) -> list[list[str]]:
        names = ("outgoing", "bubble_text", "tick_pending", "tick_failed", "tick_done")
        return [list(self.sel[name]) for name in names]

    def bubbles(self, last: int = 20) -> tuple[int, list[Bubble]]:
        got = self.driver.execute_script(_BUBBLES, *self._bubble_selectors(), last)
        return got["count"], [Bubble(b["text"] or "", b["state"], b["id"]) for b in got["last"]]

    def watch_new_bubble(self, before: int) -> None:
        """From now on, remember the states of the bubble after the first `before`."""
        self.driver.execute_script(_WATCH, *self._bubble_selectors(), before)

    def new_bubble(self, before: int) -> Bubble | None:
        """The bubble after the first `before`: as shown now if settled there, else the
        last settled state the watcher saw (even if the chat is gone since), else as shown."""
        got = self.driver.execute_script(_NEW_BUBBLE, *self._bubble_selectors(), before)
        return None if got is None else Bubble(got["text"] or "", got["state"], got["id"])

    def type_lines(self, box: WebElement, text: str) -> None:
        """Type text where Enter would send: line breaks as Shift+Enter."""
        box.click()
        lines = text.replace("\r\n", "\n").split("\n")
        for i, line in enumerate(lines):
            if line:
                box.send_keys(line)
            if i < len(lines) - 1:
                box.send_keys(Keys.SHIFT, Keys.ENTER)

    def screenshot(self) -> bytes | None:
        try:
            return self.driver.get_screenshot_as_png()
        except Exception:
            return None
