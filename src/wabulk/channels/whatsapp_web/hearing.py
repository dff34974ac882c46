"""Hearing back on WhatsApp Web: ticks, replies and limit banners read from the page.

- One script call reads the whole chat list: each row's title (the number as WhatsApp
  formats it, or a saved name), the last message's tick and preview, the unread badge,
  and any banner over the list. Most looks end there: no chat is opened.
- A row is matched to a message of ours by number only: the title's digits, or for a
  saved name the number an earlier open of that chat proved (its bubbles' ids carry it).
  A tick counts only when the preview is the text we sent, so a tick on a message someone
  typed on the phone is not taken for ours; a pending clock says nothing.
- A chat is opened (by clicking its row: no page load) only for a new reply from a
  number we are hearing from, and only before the lane's deadline. While it is open the
  ticks of our own bubbles are read too. Chats of other numbers are never opened, except a
  saved name's chat with an unread badge whose number is not known yet. The chat already
  on screen (a prepared one) is read without opening anything.
- A reply that arrives while its chat is on screen never gets a badge (the phone counts it
  read at once), and the chat may leave the screen before a look reads it: the lane
  prepares the next chat right after a send, and a look opens chats one after another.
  So a row without a badge is new too when the customer wrote last (no tick of ours) and
  its preview is not the one it showed when this number's replies were last read. That
  preview is only kept in memory: after a restart such a chat is opened once more, and
  the replies it hands over again are stored once (by their ids) all the same.
- An unknown message is settled by loading its chat (`/send?phone=` without text) and
  looking for it among our last bubbles: there with a tick, sent; not there, not sent.
- Limit banners stop the sender at once; "Trying to connect" only once shown for longer
  than `connect_banner_seconds` (default 60), as the network drops for seconds often.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ...words import said
from ..base import OutgoingMessage, SenderUnavailable, TransientError
from ..heard import Heard, Reply, StatusUpdate, Watch, Watched
from . import selectors
from .page import Page, same_text

if TYPE_CHECKING:
    from .channel import WhatsAppWebChannel

log = logging.getLogger(__name__)

TICKS = ("failed", "pending", "read", "delivered", "sent")
RANK = {"sent": 1, "delivered": 2, "read": 3}
ROWS = 30  # WhatsApp renders about this many rows; the list is virtualised
BUBBLES = 80  # the newest bubbles of an open chat read at once
LONGEST = 10_000  # characters of a bubble's text kept (what a stored reply keeps)
CONNECT_SECONDS = 60.0
_OPEN_SECONDS = 15.0
_LOAD_SECONDS = 3.0  # the least a look waits for a page still loading
_REMEMBERED = 2000  # reply ids kept, so a chat left on screen is not reported every look

_JS_HELPERS = """
const all = (root, sels) => {
  for (const s of sels) {
    let found = [];
    try { found = root.querySelectorAll(s); } catch (e) { continue; }
    if (found.length) return Array.from(found);
  }
  return [];
};
const first = (root, sels, skip) => {
  for (const s of sels) {
    let found = [];
    try { found = root.querySelectorAll(s); } catch (e) { continue; }
    for (const el of found) {
      if (!skip || !(skip === el || skip.contains(el) || el.contains(skip))) return el;
    }
  }
  return null;
};
// Text as shown, emoji pictures by their alt text.
const shown = (el) => {
  if (!el) return null;
  let out = "";
  const walk = (node) => {
    if (node.nodeType === 3) out += node.nodeValue;
    else if (node.nodeName === "IMG") out += node.getAttribute("alt") || "";
    else if (node.nodeName === "BR") out += "\\n";
    else for (const child of node.childNodes) walk(child);
  };
  walk(el);
  return out;
};
const tickOf = (root, ticks) => {
  for (const [name, sels] of ticks) if (first(root, sels)) return name;
  return null;
};
const banners = (sels) => {
  const out = [];
  for (const s of sels) {
    let found = [];
    try { found = document.querySelectorAll(s); } catch (e) { continue; }
    for (const el of found) {
      const text = (el.innerText || el.textContent || "").trim();
      if (text && !out.includes(text)) out.push(text);
    }
  }
  return out;
};
const outermost = (els) => els.filter((el) => !els.some((o) => o !== el && o.contains(el)));
"""

_READ_LIST = (
    _JS_HELPERS
    + """
const [s, limit] = arguments;
const rows = outermost(all(document, s.chat_row)).slice(0, limit).map((row) => {
  const title = first(row, s.row_title);
  const preview = first(row, s.row_preview, title);
  const badge = first(row, s.row_unread);
  let unread = 0;
  if (badge) unread = parseInt((badge.innerText || "").replace(/\\D/g, ""), 10) || 1;
  return {
    title: title ? (title.getAttribute("title") || shown(title)) : null,
    preview: preview ? (preview.getAttribute("title") || shown(preview)) : null,
    tick: tickOf(row, s.ticks),
    unread: unread,
  };
});
return {rows: rows, banners: banners(s.banner)};
"""
)

_BANNERS = _JS_HELPERS + "return banners(arguments[0].banner);"

_CLICK_ROW = (
    _JS_HELPERS
    + """
const [s, wanted] = arguments;
for (const row of outermost(all(document, s.chat_row))) {
  const title = first(row, s.row_title);
  const text = title ? (title.getAttribute("title") || shown(title)) : null;
  if (text !== wanted) continue;
  const target = title || row;
  target.scrollIntoView({block: "nearest"});
  for (const type of ["mousedown", "mouseup", "click"]) {
    target.dispatchEvent(new MouseEvent(type, {bubbles: true, cancelable: true, view: window}));
  }
  return true;
}
return false;
"""
)

_READ_CHAT = (
    _JS_HELPERS
    + """
const [s, limit, longest] = arguments;
const holders = [];
const take = (els, out) => {
  for (const el of els) {
    const holder = el.closest("[data-id]") || el.querySelector("[data-id]");
    if (holder && !holders.some((h) => h.holder === holder)) holders.push({holder, el, out});
  }
};
take(all(document, s.outgoing), true);
take(all(document, s.incoming), false);
holders.sort((a, b) =>
  a.holder.compareDocumentPosition(b.holder) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1);
const kind = (el) => first(el, s.bubble_document) ? "document" : first(el, s.bubble_voice)
  ? "audio" : first(el, s.bubble_video) ? "video" : first(el, s.bubble_image) ? "image" : "text";
// A long chat keeps its scrolled history in the page: only the newest bubbles are worth
// handing to Python, each text cut to what a reply may store.
const bubbles = holders.slice(-limit).map(({holder, el, out}) => {
  const root = holder.contains(el) ? holder : el;
  const text = first(root, s.bubble_text);
  const meta = root.matches("[data-pre-plain-text]") ? root
    : root.querySelector("[data-pre-plain-text]");
  const k = kind(root);
  let body = text ? shown(text) : null;
  if (!body && k === "document") {
    const icon = first(root, s.bubble_document);
    body = icon && icon.parentElement ? icon.parentElement.innerText : null;
  }
  return {id: holder.getAttribute("data-id"), out: out,
          text: body === null ? null : body.slice(0, longest), kind: k,
          meta: meta ? meta.getAttribute("data-pre-plain-text") : null,
          tick: out ? tickOf(root, s.ticks) : null};
});
const title = first(document, s.chat_title);
return {bubbles: bubbles, title: title ? (title.getAttribute("title") || shown(title)) : null,
        offset: new Date().getTimezoneOffset()};
"""
)

_MARKS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_PHONE_TITLE = re.compile(r"\+[\d\s\-().]{6,24}")
_CHAT_ID = re.compile(r"^(?:true|false)_(\d{6,15})@c\.us(?:_|$)")
_FORMATTING = str.maketrans("", "", "*_~`")
_STAMP = re.compile(
    r"\[\s*(\d{1,2})[:.](\d{2})(?:[:.]\d{2})?\s*([ap])?\.?\s*m?\.?\s*,\s*"
    r"(\d{1,4})[./-](\d{1,2})[./-](\d{1,4})\s*\]",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Row:
    title: str
    preview: str | None
    tick: str | None  # failed | pending | read | delivered | sent | None (not ours)
    unread: int


def title_digits(title: str | None) -> str | None:
    """The digits of a row title that is a phone number ("+91 98765 43210"), else None."""
    text = _MARKS.sub("", title or "").strip()
    if not _PHONE_TITLE.fullmatch(text):
        return None
    digits = re.sub(r"\D", "", text)
    return digits if 6 <= len(digits) <= 15 else None


def chat_digits(provider_ids: list[str | None]) -> str | None:
    """The number of a one-to-one chat, from its bubbles' ids; None if they disagree."""
    found = {m.group(1) for i in provider_ids if i and (m := _CHAT_ID.match(i))}
    return found.pop() if len(found) == 1 else None


def _flat(text: str) -> str:
    text = unicodedata.normalize("NFC", _MARKS.sub("", text)).translate(_FORMATTING)
    return " ".join(text.split())


def preview_matches(preview: str | None, text: str) -> bool:
    """Whether a row's preview (first line or all of it, maybe cut with "…") shows `text`."""
    shown = _flat(preview or "")
    shown = shown.removesuffix("…").removesuffix("...").rstrip()
    return bool(shown) and _flat(text).startswith(shown)


def banner_kind(text: str) -> str | None:
    """ "limit", "connecting", or None when the banner says nothing about limits."""
    said = " ".join(unicodedata.normalize("NFC", text).casefold().split())
    for phrase, kind in selectors.LIMIT_BANNERS:
        if phrase in said:
            return kind
    return None


def bubble_time(meta: str | None, offset_minutes: int, now: datetime) -> datetime:
    """When a bubble was sent, from "[14:05, 05/12/2026] Name: " in the browser's own time
    zone (`offset_minutes` as JavaScript's getTimezoneOffset); `now` when unreadable."""
    m = _STAMP.search(meta or "")
    if m is None:
        return now
    hour, minute, half, a, b, c = m.groups()
    hour, minute = int(hour), int(minute)
    if half:
        hour = hour % 12 + (12 if half.lower() == "p" else 0)
    if len(a) == 4:
        orders = [(int(a), int(b), int(c))]  # year first
    else:
        year = int(c) + (2000 if len(c) <= 2 else 0)
        orders = [(year, int(b), int(a)), (year, int(a), int(b))]  # day or month first
    # Unread replies are recent: of the readings not in the future, the latest is right.
    best: datetime | None = None
    for year, month, day in orders:
        try:
            local = datetime(year, month, day, hour, minute)
        except ValueError:
            continue
        at = (local + timedelta(minutes=offset_minutes)).replace(tzinfo=UTC)
        if at <= now + timedelta(days=1) and (best is None or at > best):
            best = at
    if best is None:
        return now
    return min(best, now)


class Hearing:
    """The hearing half of one sender's channel; it keeps what it learnt between looks."""

    def __init__(self, channel: WhatsAppWebChannel) -> None:
        self.channel = channel
        raw = channel.config.options.get("connect_banner_seconds")
        self.connect_seconds = CONNECT_SECONDS if raw is None else float(raw)  # type: ignore[arg-type]
        self.connecting_since: float | None = None
        self.names: dict[str, str] = {}  # saved name → digits, proven by an open chat
        self.replied: dict[str, None] = {}  # ids of replies handed over, oldest first
        self.heard_up_to: dict[str, str] = {}  # digits → the row's preview when last read
        sel = channel.selectors
        self.script_selectors: dict[str, Any] = {
            name: list(sel[name])
            for name in (
                "chat_row",
                "row_title",
                "row_preview",
                "row_unread",
                "banner",
                "outgoing",
                "incoming",
                "bubble_text",
                "chat_title",
                "bubble_document",
                "bubble_voice",
                "bubble_video",
                "bubble_image",
            )
        }
        self.script_selectors["ticks"] = [[t, list(sel[f"row_tick_{t}"])] for t in TICKS]

    # --- limit banners ---------------------------------------------------------------

    def stop_if_limited(self, page: Page, texts: list[str] | None = None) -> None:
        """Raise SenderUnavailable(limited) when a banner says WhatsApp limits the account."""
        if texts is None:
            texts = page.driver.execute_script(_BANNERS, self.script_selectors) or []
        connecting = None
        for text in texts:
            kind = banner_kind(text)
            if kind == "limit":
                self._limited(said("WhatsApp shows: “%(shown)s”", shown=_words(text)))
            if kind == "connecting":
                connecting = text
        if connecting is None:
            self.connecting_since = None
            return
        now = time.monotonic()
        if self.connecting_since is None:
            self.connecting_since = now
        if now - self.connecting_since >= self.connect_seconds:
            self._limited(
                said(
                    "WhatsApp shows: “%(shown)s” for more than %(seconds)s s",
                    shown=_words(connecting),
                    seconds=f"{self.connect_seconds:.0f}",
                )
            )

    def _limited(self, words: str) -> None:
        raise SenderUnavailable(
            words,  # the sender's reason and Event: "rests for 24 hours: WhatsApp shows…"
            code="limit_banner",
            state="limited",
            screenshot=self.channel._screenshot(None, "limit-banner"),
        )

    # --- one look --------------------------------------------------------------------

    def look(self, watch: Watch) -> Heard:
        """What the page shows now about `watch`; the channel maps a browser failure."""
        page, state = self._app(watch.until)
        now = datetime.now(UTC)
        got = page.driver.execute_script(_READ_LIST, self.script_selectors, ROWS)
        self.stop_if_limited(page, got.get("banners") or [])
        rows = [
            Row(r["title"], r.get("preview"), r.get("tick"), int(r.get("unread") or 0))
            for r in got.get("rows") or []
            if r.get("title")
        ]
        heard = Heard()
        heard.statuses.extend(self.row_statuses(rows, watch.messages, now))
        if watch.read_replies and state == "chat":
            # The chat on screen (a prepared one) shows its replies without a badge.
            self._read_shown(page, rows, watch, heard)
        if watch.read_replies and state != "invalid" and time.monotonic() < watch.until:
            self._read_new(page, rows, watch, heard)
        if state != "invalid":
            for watched in watch.settle:
                if time.monotonic() >= watch.until:
                    break
                self._settle(watched, heard)
        # The same tick may show on a row and on its open chat's bubble: say it once.
        once = {(u.message_id, u.status): u for u in reversed(heard.statuses)}
        heard.statuses = [u for u in heard.statuses if once[(u.message_id, u.status)] is u]
        return heard

    def _app(self, until: float) -> tuple[Page, str]:
        """The page showing the chat list (loaded if need be), and its state; a page still
        loading is waited for only within the look's time (a send may be due after it)."""
        channel = self.channel
        page = channel._open()
        if not page.driver.current_url.startswith(channel.base_url):
            page = channel._load(channel.base_url + "/")
        budget = min(channel.timeout, max(_LOAD_SECONDS, until - time.monotonic()))
        state = page.wait_state({"app", "chat", "qr", "use_here", "invalid"}, budget)
        _unavailable(state)
        if state == "loading":
            raise TransientError(
                said(
                    "WhatsApp Web did not show the chat list within %(seconds)s s.",
                    seconds=f"{budget:.0f}",
                ),
                code="chat_list_not_shown",
            )
        return page, state

    def row_statuses(
        self, rows: list[Row], messages: tuple[Watched, ...], now: datetime
    ) -> list[StatusUpdate]:
        """Ticks of our messages as the chat list shows them, newest row per number."""
        watched: dict[str, Watched] = {}
        for each in messages:  # newest first: the first one per number is the one shown
            watched.setdefault(each.phone.lstrip("+"), each)
        seen: set[str] = set()
        out: list[StatusUpdate] = []
        for row in rows:
            digits = self._row_digits(row)
            if digits is None or digits in seen:
                continue
            seen.add(digits)
            message = watched.get(digits)
            if message is None or row.tick not in RANK:
                continue
            if not preview_matches(row.preview, message.text):
                continue  # the last message is one typed on the phone, not ours
            if RANK[row.tick] > RANK.get(message.status, 0):
                out.append(_status(row.tick, now, message))
        return out

    # --- replies ---------------------------------------------------------------------

    def _read_shown(self, page: Page, rows: list[Row], watch: Watch, heard: Heard) -> None:
        chat = page.driver.execute_script(_READ_CHAT, self.script_selectors, BUBBLES, LONGEST)
        digits = chat_digits([b["id"] for b in chat["bubbles"]])
        if digits is not None and "+" + digits in watch.reply_phones:
            self._read_chat(chat, 0, "+" + digits, _ours(watch, digits), heard)
            row = next((r for r in rows if self._row_digits(r) == digits), None)
            if row is not None:
                self._heard_up_to(digits, row)  # the list was read before the chat

    def _row_digits(self, row: Row) -> str | None:
        return title_digits(row.title) or self.names.get(row.title)

    def _is_new(self, row: Row, digits: str | None) -> bool:
        if row.unread:
            return True
        if digits is None or row.tick is not None or not row.preview:
            return False  # not known to be a number we hear from, or we wrote last
        return self.heard_up_to.get(digits) != _flat(row.preview)

    def _heard_up_to(self, digits: str, row: Row) -> None:
        """Everything up to what `row` shows of this chat was read."""
        self.heard_up_to.pop(digits, None)
        if row.tick is None and row.preview:
            self.heard_up_to[digits] = _flat(row.preview)
            while len(self.heard_up_to) > _REMEMBERED:
                del self.heard_up_to[next(iter(self.heard_up_to))]

    def _read_new(self, page: Page, rows: list[Row], watch: Watch, heard: Heard) -> None:
        """Open the chats of numbers we hear from whose rows show a reply not read yet."""
        wanted = {p.lstrip("+") for p in watch.reply_phones}
        for row in rows:
            if time.monotonic() >= watch.until:
                break
            named = title_digits(row.title) is None
            digits = self._row_digits(row)
            if digits is not None and digits not in wanted:
                continue  # a stranger's chat: never opened
            if not self._is_new(row, digits):
                continue
            chat = self._open_row(page, row, digits)
            if chat is None:
                continue
            shown_digits = chat_digits([b["id"] for b in chat["bubbles"]])
            if named:
                if shown_digits is None:
                    self.names.pop(row.title, None)
                    continue
                if self.names.get(row.title) != shown_digits:
                    log.info(
                        "%s: the chat %r is %s",
                        self.channel.config.sender_name,
                        row.title,
                        shown_digits,
                    )
                self.names[row.title] = shown_digits
                digits = shown_digits
            elif shown_digits is not None and shown_digits != digits:
                continue  # another chat came up: read nothing from it
            if digits not in wanted:
                continue
            self._read_chat(chat, row.unread, "+" + digits, _ours(watch, digits), heard)
            self._heard_up_to(digits, row)

    def _open_row(self, page: Page, row: Row, digits: str | None) -> dict[str, Any] | None:
        """Click the row and wait for its chat; None when it did not come up."""
        channel = self.channel
        before = page.driver.execute_script(_READ_CHAT, self.script_selectors, BUBBLES, LONGEST)
        before_ids = [b["id"] for b in before["bubbles"]]
        channel.prepared = None  # the prepared chat is no longer on screen
        if not page.driver.execute_script(_CLICK_ROW, self.script_selectors, row.title):
            return None
        deadline = time.monotonic() + min(channel.timeout, _OPEN_SECONDS)
        while True:
            state = page.state()
            _unavailable(state)
            chat = page.driver.execute_script(_READ_CHAT, self.script_selectors, BUBBLES, LONGEST)
            ids = [b["id"] for b in chat["bubbles"]]
            shown = chat_digits(ids)
            if chat["bubbles"] and state == "chat":
                if chat["title"] is not None and _flat(chat["title"]) == _flat(row.title):
                    return chat
                if digits is not None and shown == digits:
                    return chat
                if chat["title"] is None and shown is not None and ids != before_ids:
                    return chat
            if time.monotonic() >= deadline:
                log.info("%s: the chat %r did not open", channel.config.sender_name, row.title)
                return None
            time.sleep(0.1)

    def _read_chat(
        self,
        chat: dict[str, Any],
        unread: int,
        phone: str,
        ours: list[Watched],
        heard: Heard,
    ) -> None:
        """The unread replies of an open chat, and the ticks of our bubbles in it."""
        now = datetime.now(UTC)
        bubbles = chat["bubbles"]
        offset = int(chat.get("offset") or 0)
        # The unread ones, and whatever came after our last message; with no message of
        # ours on screen, what came after it cannot be told from older history.
        after_ours = 0
        if any(b["out"] for b in bubbles):
            for bubble in reversed(bubbles):
                if bubble["out"]:
                    break
                after_ours += bool(bubble["id"])
        incoming = [b for b in bubbles if not b["out"] and b["id"]]
        fresh = max(unread, after_ours)
        for bubble in incoming[len(incoming) - fresh :] if fresh else []:
            if bubble["id"] in self.replied:
                continue
            self.replied[bubble["id"]] = None
            while len(self.replied) > _REMEMBERED:
                del self.replied[next(iter(self.replied))]
            heard.replies.append(
                Reply(
                    at=bubble_time(bubble.get("meta"), offset, now),
                    provider_message_id=bubble["id"],
                    phone=phone,
                    kind=bubble.get("kind") or "text",
                    text=(bubble.get("text") or "").strip() or None,
                )
            )
        outgoing = [b for b in bubbles if b["out"]]
        for message in ours:
            bubble = next(
                (b for b in outgoing if message.provider_message_id == b["id"]), None
            ) or next(
                (
                    b
                    for b in reversed(outgoing)
                    if message.provider_message_id is None
                    and same_text(b.get("text") or "", message.text)
                ),
                None,
            )
            tick = bubble.get("tick") if bubble else None
            if tick in RANK and RANK[tick] > RANK.get(message.status, 0):
                heard.statuses.append(_status(tick, now, message))

    # --- unknown messages ----------------------------------------------------------

    def _settle(self, watched: Watched, heard: Heard) -> None:
        """Open the chat by number and look for the message among our last bubbles."""
        message = OutgoingMessage(
            message_id=watched.message_id, phone=watched.phone, text=watched.text
        )
        answer, bubble = self.channel._look_for(message)
        if answer == "not_sent":
            heard.not_sent.append(watched.message_id)
        elif answer == "sent" and bubble is not None and bubble.state == "done":
            heard.statuses.append(
                StatusUpdate(
                    "sent",
                    datetime.now(UTC),
                    provider_message_id=bubble.id,
                    message_id=watched.message_id,
                    recipient=watched.phone,
                )
            )


def _ours(watch: Watch, digits: str) -> list[Watched]:
    return [m for m in watch.messages if m.phone.lstrip("+") == digits]


def _status(tick: str, now: datetime, message: Watched) -> StatusUpdate:
    return StatusUpdate(
        tick,  # type: ignore[arg-type]
        now,
        provider_message_id=message.provider_message_id,
        message_id=message.message_id,
        recipient=message.phone,
    )


def _words(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= 200 else words[:199] + "…"


def _unavailable(state: str) -> None:
    """Stop on the screens that stop sending too: logged out, "Use here"."""
    from .channel import IN_USE, LOGGED_OUT  # the channel imports this module

    if state == "qr":
        raise SenderUnavailable(LOGGED_OUT, code="logged_out", state="needs_link")
    if state == "use_here":
        raise SenderUnavailable(IN_USE, code="in_use", state="in_use")
