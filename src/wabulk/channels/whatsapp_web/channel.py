"""The WhatsApp Web channel: one Chrome per sender, reused for every message.

- A chat is opened with `/send?phone=&text=`: the text arrives in the compose box
  untouched (emoji, line breaks, `+ & = # %`), so only the send button needs a click.
  `prepare` loads the next chat while the pacing delay of the previous one runs.
- A message counts as sent once its new outgoing bubble has lost its clock.
- Once send has been clicked, nothing is ever clicked again for that message blindly: if
  the browser dies or hangs after the click, the chat is reopened in a fresh browser and
  read (`reconcile`); only a message proven absent is sent again, and one that cannot be
  proven either way becomes `unknown`.
- A crash or a hang restarts the browser once per message; a second one is a transient
  error, retried later by the engine.
- Anything unexpected saves a screenshot beside the error, so the operator sees what
  WhatsApp showed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver import Chrome
from selenium.webdriver.remote.webelement import WebElement

from ...words import N_, said
from ..base import (
    NOT_ON_WHATSAPP,
    ChannelConfig,
    ChannelError,
    LinkStatus,
    OutgoingMessage,
    PermanentError,
    Reconciled,
    SenderUnavailable,
    SendResult,
    TransientError,
    Unconfirmed,
)
from ..heard import Heard, Watch
from . import browser, pairing, selectors
from .hearing import Hearing
from .page import Bubble, Page, State, same_text
from .settings import web_settings

log = logging.getLogger(__name__)

LOGGED_OUT = N_(
    "WhatsApp logged this phone out (the QR code is showing). Link it again from the Senders page."
)
IN_USE = N_(
    "WhatsApp is open in another browser or window for this account (“Use here”). "
    "Close it, or take the session back from the Senders page."
)
MEDIA_MIMES = ("image/", "video/")
# Screens that answer "is this sender linked?"; anything else is still loading.
_SETTLED: set[State] = {"qr", "app", "chat", "use_here", "invalid"}
_SETTLE_SECONDS = 10.0
_QR_DATA_URL = """
for (const s of arguments[0]) {
  const el = document.querySelector(s);
  if (el) return el.toDataURL("image/png");
}
return null;
"""
# What a person calls each element the channel cannot do without, for its error message.
# What the page lacked, one whole sentence each.
MISSING = {
    "send_button": N_("WhatsApp Web showed no send button."),
    "attach_button": N_("WhatsApp Web showed no attach button."),
    "media_input": N_(
        "WhatsApp Web showed no photo and video input after opening the attach menu."
    ),
    "document_input": N_("WhatsApp Web showed no document input after opening the attach menu."),
    "caption_box": N_("WhatsApp Web showed no attachment preview (its caption box)."),
    "preview_send": N_("WhatsApp Web showed no send button in the attachment preview."),
}
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


class _BrowserLost(Exception):
    """The browser died, hung or stopped answering; the message says how."""


class WhatsAppWebChannel:
    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self.settings = web_settings(config.settings)
        options = config.options
        self.base_url = str(options.get("whatsapp_web_url") or "https://web.whatsapp.com").rstrip(
            "/"
        )
        self.timeout = float(options.get("browser_timeout") or 60)  # type: ignore[arg-type]
        own = not self.settings.user_data_dir
        self.browser_options = browser.BrowserOptions(
            user_data_dir=(
                Path(self.settings.user_data_dir).expanduser()
                if self.settings.user_data_dir
                else browser.profile_folder(config.instance_path, config.sender_name)
            ),
            profile_directory=self.settings.profile_directory or None,
            own_profile=own,
            visible=self.settings.visible,
            chrome_binary=str(options.get("chrome_binary") or "") or None,
            chromedriver=str(options.get("chromedriver") or "") or None,
            page_timeout=self.timeout,
        )
        self.selectors = selectors.load(config.instance_path)
        self.driver: Chrome | None = None
        self.page: Page | None = None
        self.prepared: tuple[int, str] | None = None  # (message id, url) loaded by prepare
        self.clicked = False  # send was clicked for the message in hand: never click blindly
        self.hearing = Hearing(self)
        self.pairing_phone: str | None = None  # the number whose pairing code is on screen

    # --- browser -------------------------------------------------------------------

    def _open(self) -> Page:
        if self.page is None:
            try:
                self.driver = browser.start(self.browser_options)
            except browser.BrowserFailed as exc:
                raise SenderUnavailable(
                    str(exc), code="browser_failed", state="browser_failed"
                ) from None
            self.page = Page(self.driver, self.selectors)
        return self.page

    def _restart(self) -> Page:
        log.warning("%s: restarting the browser", self.config.sender_name)
        self.close()
        return self._open()

    def close(self) -> None:
        browser.stop(self.driver)
        self.driver = None
        self.page = None
        self.prepared = None

    # --- navigation ----------------------------------------------------------------

    def chat_url(self, phone: str, text: str | None) -> str:
        digits = phone.lstrip("+")
        url = f"{self.base_url}/send?phone={digits}"
        return url if text is None else f"{url}&text={quote(text, safe='')}"

    def _load(self, url: str) -> Page:
        """Load `url`; a hang or a dead browser becomes _BrowserLost."""
        page = self._open()
        self.prepared = None  # whatever was prepared is no longer on screen
        try:
            page.driver.get(url)
        except WebDriverException as exc:
            if _unreachable(exc):  # the network, not the browser: restarting would not help
                raise TransientError(self._unreachable_text(exc), code="unreachable") from None
            if isinstance(exc, TimeoutException):
                raise _BrowserLost(
                    said(
                        "WhatsApp Web did not finish loading in %(seconds)s s",
                        seconds=f"{self.timeout:.0f}",
                    )
                ) from None
            raise _BrowserLost(_first_line(exc)) from None
        return page

    def _unreachable_text(self, exc: WebDriverException) -> str:
        return said(
            "WhatsApp Web (%(url)s) could not be reached from this machine (%(error)s). Check "
            "its internet connection, then try again.",
            url=self.base_url,
            error=_first_line(exc).removeprefix("unknown error: "),
        )

    def _chat(self, message: OutgoingMessage, text: str | None, use_prepared: bool) -> Page:
        """Open the chat and wait until it can be used; raise what the page says if not."""
        url = self.chat_url(message.phone, text)
        if use_prepared and self.prepared == (message.message_id, url) and self.page is not None:
            page = self.page
        else:
            page = self._load(url)
        self.prepared = None
        try:
            state = page.wait_state({"chat", "qr", "use_here", "invalid"}, self.timeout)
        except WebDriverException as exc:
            raise _BrowserLost(_first_line(exc)) from None
        if state == "chat":
            return page
        if state == "qr":
            raise SenderUnavailable(LOGGED_OUT, code="logged_out", state="needs_link")
        if state == "use_here":
            raise SenderUnavailable(IN_USE, code="in_use", state="in_use")
        if state == "invalid":
            shown = page.modal_text().strip().splitlines()
            detail = shown[0] if shown else N_("The number is invalid.")
            raise PermanentError(
                said("This number is not on WhatsApp (WhatsApp said: %(detail)s)", detail=detail),
                code=NOT_ON_WHATSAPP,
            )
        raise TransientError(
            said(
                "The chat did not open within %(seconds)s s (the page stayed %(state)s).",
                seconds=f"{self.timeout:.0f}",
                state=state,
            ),
            code="chat_not_opened",
            screenshot=self._screenshot(message, "chat-not-opened"),
        )

    # --- the channel interface -----------------------------------------------------

    def prepare(self, message: OutgoingMessage) -> None:
        """Load the next chat now, so the page load overlaps the pacing wait."""
        url = self.chat_url(message.phone, self._url_text(message))
        try:
            self._load(url)
        except (_BrowserLost, SenderUnavailable, TransientError):
            self.prepared = None  # send() tries again and reports properly
            return
        self.prepared = (message.message_id, url)

    def prepared_for(self, message_id: int) -> bool:
        """Whether the chat `prepare` loaded for this message is still on screen."""
        return self.prepared is not None and self.prepared[0] == message_id

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            return self._send_with_one_restart(message)
        finally:
            if message.media_path is not None:
                shutil.rmtree(self._upload_folder(message), ignore_errors=True)

    def _send_with_one_restart(self, message: OutgoingMessage) -> SendResult:
        restarted = False
        while True:
            self.clicked = False
            try:
                return self._send(message, use_prepared=not restarted)
            except _BrowserLost as exc:
                if restarted:
                    raise TransientError(
                        said("The browser failed twice in a row: %(error)s", error=str(exc)),
                        code="browser_error",
                    ) from None
                restarted = True
                log.warning("%s: %s; restarting the browser", self.config.sender_name, exc)
                self._restart()
                if self.clicked:
                    # Send was clicked before the browser went: look before sending again.
                    answer = self.reconcile(message)
                    if answer == "sent":
                        return SendResult(detail="confirmed after a browser restart")
                    if answer == "unknown":
                        raise Unconfirmed(
                            said(
                                "The browser failed after send was clicked (%(error)s) and the "
                                "chat could not be read afterwards.",
                                error=str(exc),
                            ),
                            code="unconfirmed",
                        ) from None

    def reconcile(self, message: OutgoingMessage) -> Reconciled:
        try:
            return self._reconcile(message)
        except (_BrowserLost, ChannelError, WebDriverException):
            return "unknown"

    def hear(self, watch: Watch) -> Heard:
        """Ticks, replies and unknown messages settled, as the page shows them now (see
        `hearing`). Raises SenderUnavailable when logged out, in use elsewhere or limited."""
        try:
            return self.hearing.look(watch)
        except (_BrowserLost, WebDriverException) as exc:
            self.close()  # the next send or look starts a fresh browser
            reason = exc if isinstance(exc, _BrowserLost) else _first_line(exc)
            raise TransientError(
                said("The browser failed while reading the chats: %(error)s", error=str(reason)),
                code="browser_error",
            ) from None

    def link_status(self, takeover: bool = False, phone: str | None = None) -> LinkStatus:
        """Open WhatsApp Web (once) and report what it shows, pressing "Use here" if asked;
        with `phone` (E.164), ask for the code to type on the phone instead of the QR."""
        page = self._open()
        try:
            fresh = not page.driver.current_url.startswith(self.base_url)
            if not fresh and phone != self.pairing_phone and pairing.on_pairing_screens(page):
                fresh = True  # a code for another number, or the QR asked for now: start over
            if fresh:
                self.pairing_phone = None
                page.driver.get(self.base_url + "/")
                # The app decides what to show only after its scripts ask the server, so
                # a page just loaded says "loading"; a short wait makes the first look
                # (and a takeover pressed from the Senders page) land on the real screen.
                state = page.wait_state(_SETTLED, min(self.timeout, _SETTLE_SECONDS))
            else:
                state = page.state()
            if state == "use_here" and takeover:
                self._press_use_here(page)
                state = page.wait_state({"app", "chat", "qr"}, 10)
            if phone is not None and state in ("qr", "loading"):
                return self._pairing_code(page, phone, state)
            if state == "qr":
                return LinkStatus("qr", qr_png=self._qr_png(page))
            if state in ("app", "chat"):
                return LinkStatus("linked", phone=self._account_phone(page))
            if state == "use_here":
                return LinkStatus("in_use")
            return LinkStatus("loading")
        except (TimeoutException, StaleElementReferenceException):
            return LinkStatus("loading")
        except WebDriverException as exc:
            self.close()
            reason = (
                self._unreachable_text(exc)
                if _unreachable(exc)
                else said("The browser stopped while linking: %(error)s", error=_first_line(exc))
            )
            raise SenderUnavailable(
                reason,
                code="browser_failed",
                state="browser_failed",
            ) from None

    def _pairing_code(self, page: Page, phone: str, state: State) -> LinkStatus:
        code = pairing.shown_code(page)
        if code is None and (state == "qr" or pairing.asking_number(page)):
            self.pairing_phone = phone
            try:
                code = pairing.ask_code(page, phone, min(self.timeout, _SETTLE_SECONDS))
            except pairing.NoPhoneLink:
                raise SenderUnavailable(
                    N_(
                        "WhatsApp Web shows no “Link with phone number” here; scan the QR code "
                        "instead."
                    ),
                    code="no_phone_link",
                    screenshot=self._screenshot(None, "no-phone-link"),
                ) from None
            except pairing.Refused as exc:
                raise SenderUnavailable(
                    said(
                        "WhatsApp did not take the number %(phone)s: %(said)s",
                        phone=phone,
                        said=str(exc),
                    ),
                    code="phone_refused",
                    screenshot=self._screenshot(None, "phone-refused"),
                ) from None
        return LinkStatus("code", code=code) if code else LinkStatus("loading")

    # --- sending -------------------------------------------------------------------

    def _url_text(self, message: OutgoingMessage) -> str | None:
        """What to prefill: the text, unless it goes as a photo's or video's caption."""
        if message.media_path is not None and _is_media(message):
            return None
        return message.text or None

    def _send(self, message: OutgoingMessage, use_prepared: bool) -> SendResult:
        try:
            page = self._chat(message, self._url_text(message), use_prepared)
            if message.media_path is None:
                return self._send_text(page, message)
            if _is_media(message):
                return self._send_file(page, message, caption=message.text)
            if message.text and not message.text_after_document:
                self._send_text(page, message)
                return self._send_file(page, message, caption="")
            result = self._send_file(page, message, caption="")
            if message.text:
                return self._send_text(page, message, provider_id=result.provider_message_id)
            return result
        except (TimeoutException, WebDriverException) as exc:
            raise _BrowserLost(_first_line(exc)) from None

    def _send_text(
        self, page: Page, message: OutgoingMessage, provider_id: str | None = None
    ) -> SendResult:
        shown = page.compose_text()
        if not same_text(shown, message.text):
            raise PermanentError(
                said(
                    "WhatsApp Web changed the text while opening the chat, so it was not sent "
                    "(it showed %(shown)s).",
                    shown=repr(shown[:80]),
                ),
                code="text_changed",
                screenshot=self._screenshot(message, "text-changed"),
            )
        if not self.clicked:  # a message's second part goes whatever shows now
            self.hearing.stop_if_limited(page)
        before, _ = page.bubbles(1)
        button = self._require(page, message, "send_button", 5, clickable=True)
        page.watch_new_bubble(before)
        self.clicked = True
        button.click()
        bubble = self._confirm(page, message, before, message.text)
        return SendResult(provider_message_id=provider_id or bubble.id)

    def _send_file(self, page: Page, message: OutgoingMessage, caption: str) -> SendResult:
        upload = self._named_copy(message)
        if not self.clicked:
            self.hearing.stop_if_limited(page)
        self._require(page, message, "attach_button", 5, clickable=True).click()
        which = "media_input" if _is_media(message) else "document_input"
        self._require(page, message, which, 5).send_keys(str(upload))
        caption_box = self._require(page, message, "caption_box", self.timeout)
        send = self._require(page, message, "preview_send", 5, clickable=True)
        if caption:
            page.type_lines(caption_box, caption)
        before, _ = page.bubbles(1)
        page.watch_new_bubble(before)
        self.clicked = True
        send.click()
        bubble = self._confirm(page, message, before, None)
        return SendResult(provider_message_id=bubble.id)

    def _confirm(
        self, page: Page, message: OutgoingMessage, before: int, text: str | None
    ) -> Bubble:
        """Wait for the new outgoing bubble to lose its clock."""
        deadline = time.monotonic() + self.timeout
        last: Bubble | None = None
        logged_out = False
        while True:
            bubble = page.new_bubble(before)
            if bubble is not None:
                last = bubble
                if last.state == "failed":
                    raise TransientError(
                        N_("WhatsApp could not send the message (red exclamation mark)."),
                        code="send_failed",
                    )
                if last.state in ("done", "none") and (text is None or same_text(last.text, text)):
                    return last
            if logged_out:
                raise Unconfirmed(
                    N_(
                        "WhatsApp logged out right after send was clicked; whether the message "
                        "left cannot be known."
                    ),
                    code="logged_out",
                )
            # Looked at after the bubble, then the bubble once more: a tick shown just
            # before the logout is in the watcher's notes by then.
            logged_out = page.state() == "qr"
            if not logged_out:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
        raise Unconfirmed(
            said(
                "WhatsApp did not confirm the message within %(seconds)s s (still waiting for "
                "the clock to go).",
                seconds=f"{self.timeout:.0f}",
            )
            if last
            else said(
                "WhatsApp did not confirm the message within %(seconds)s s (no new message "
                "appeared).",
                seconds=f"{self.timeout:.0f}",
            ),
            code="unconfirmed",
            screenshot=self._screenshot(message, "unconfirmed"),
        )

    def _require(
        self,
        page: Page,
        message: OutgoingMessage,
        name: str,
        timeout: float,
        clickable: bool = False,
    ) -> WebElement:
        """The element, or a transient error with a picture of the page that lacked it."""
        found = page.wait_find(name, timeout, clickable)
        if found is None:
            raise TransientError(
                MISSING[name],
                code=f"no_{name}"[:50],
                screenshot=self._screenshot(message, "no-" + name.replace("_", "-")),
            )
        return found

    def _upload_folder(self, message: OutgoingMessage) -> Path:
        # A leading dot: no sender's profile folder can have this name (see profile_folder).
        return self.config.instance_path / "browsers" / ".uploads" / str(message.message_id)

    def _named_copy(self, message: OutgoingMessage) -> Path:
        """The file under its original name: the recipient sees the document's name."""
        assert message.media_path is not None
        name = _UNSAFE_NAME.sub("_", message.media_name or message.media_path.name).strip(" .")
        folder = self._upload_folder(message)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (name or "attachment")
        if not target.exists():
            try:
                os.link(message.media_path, target)
            except OSError:
                shutil.copyfile(message.media_path, target)
        return target.resolve()

    # --- reconcile -----------------------------------------------------------------

    def _reconcile(self, message: OutgoingMessage) -> Reconciled:
        return self._look_for(message)[0]

    def _look_for(self, message: OutgoingMessage) -> tuple[Reconciled, Bubble | None]:
        """Reopen the chat and look for the text among the last outgoing bubbles."""
        page = self._load(self.chat_url(message.phone, None))
        state = page.wait_state({"chat", "qr", "use_here", "invalid"}, self.timeout)
        if state == "invalid":
            return "not_sent", None
        if state != "chat":
            return "unknown", None
        wanted = message.text or message.media_name
        if not wanted:
            return "unknown", None
        _, bubbles = page.bubbles(20)
        for bubble in reversed(bubbles):
            if same_text(bubble.text, wanted) or (
                message.media_name and same_text(bubble.text, f"{message.media_name}\n{wanted}")
            ):
                # A clock means WhatsApp holds it and will send it when it can.
                return ("not_sent" if bubble.state == "failed" else "sent"), bubble
        return "not_sent", None

    # --- linking helpers -----------------------------------------------------------

    def _qr_png(self, page: Page) -> str | None:
        # Found and read in one call: WhatsApp replaces the canvas as the QR refreshes.
        try:
            return page.driver.execute_script(_QR_DATA_URL, list(self.selectors["qr_canvas"]))
        except WebDriverException:  # a tainted canvas: take a picture of it instead
            canvas = page.find("qr_canvas")
            return "data:image/png;base64," + canvas.screenshot_as_base64 if canvas else None

    def _account_phone(self, page: Page) -> str | None:
        for key in selectors.ACCOUNT_KEYS:
            raw = page.driver.execute_script(
                "return window.localStorage.getItem(arguments[0])", key
            )
            digits = re.match(r'^"?\+?(\d{6,15})[:@"]', raw or "")
            if digits:
                return "+" + digits.group(1)
        return None

    def _press_use_here(self, page: Page) -> None:
        buttons = page.modal_buttons()
        for button in buttons:
            if button.text.strip().lower() in selectors.USE_HERE_TEXTS:
                button.click()
                return
        if buttons:  # the last button is the affirmative one in WhatsApp's dialogs
            buttons[-1].click()

    def _screenshot(self, message: OutgoingMessage | None, what: str) -> Path | None:
        if self.page is None:
            return None
        png = self.page.screenshot()
        if png is None:
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        folder = screenshots_folder(self.config.instance_path)
        folder.mkdir(parents=True, exist_ok=True)
        ident = f"-m{message.message_id}" if message else ""
        path = folder / f"{stamp}{ident}-{what}.png"
        path.write_bytes(png)
        return path


def screenshots_folder(instance_path: Path) -> Path:
    return instance_path / "screenshots"


def _is_media(message: OutgoingMessage) -> bool:
    return (message.media_mime or "").startswith(MEDIA_MIMES)


def _unreachable(exc: WebDriverException) -> bool:
    """Chrome could not reach the address (DNS, refused, offline): net::ERR_NAME_NOT_RESOLVED…"""
    return "net::ERR_" in (getattr(exc, "msg", None) or str(exc))


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
