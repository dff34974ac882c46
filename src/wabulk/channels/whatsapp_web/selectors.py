"""Every hook the channel uses on the WhatsApp Web page, in one place.

- Each element has an ordered list of CSS alternatives; the first that matches wins, so a
  markup change is usually one new line at the top of a list here (see
  `docs/whatsapp-web.md` and the DOM contract in the design notes).
- An operator can override any list without a release: `<instance>/whatsapp_web_selectors.json`
  maps an element name to its list, e.g. `{"send_button": ["span[data-icon=\\"send-v2\\"]"]}`;
  the overriding entries go first and the shipped ones stay behind them as fallbacks.
- Obfuscated class names and absolute XPaths are never used: they lasted months at most.
  Localised texts (aria labels) are only a last resort, after structural hooks.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

OVERRIDES_FILE = "whatsapp_web_selectors.json"

DEFAULTS: dict[str, tuple[str, ...]] = {
    # The chat list: the account is logged in and the app is ready.
    "logged_in": ("#side", "#pane-side"),
    # The QR shown when logged out; its parent carries the payload in data-ref.
    "qr_canvas": (
        'canvas[aria-label="Scan this QR code to link a device!"]',
        'canvas[aria-label="Scan me!"]',
        "div[data-ref] canvas",
    ),
    # Linking by phone number: the link under the QR (found by its words when no structural
    # hook matches, see LINK_PHONE_TEXTS), the number field, its Next button, the refusal
    # shown under the field, and the 8-character code ("K7Q2M9XA" or "K,7,Q,2,…").
    "link_phone": ('[data-testid="link-phone"]', '[data-testid="link-device-phone-number"]'),
    "phone_input": (
        'input[inputmode="tel"]',
        'input[type="tel"]',
        'input[aria-label="Type your phone number."]',
    ),
    "phone_next": (
        'form button[type="submit"]',
        '[role="button"][aria-label="Next"]',
        'button[aria-label="Next"]',
    ),
    "phone_error": ('input[aria-invalid="true"] ~ [role="alert"]', '[role="alert"]'),
    "link_code": ("div[data-link-code]", "[data-link-code]"),
    "chat_open": ("#main footer",),
    # A Lexical editor since 2025 (one <p> per line inside; see Page.compose_text).
    "compose_box": (
        'footer [data-lexical-editor="true"]',
        'footer div[contenteditable="true"][data-tab="10"]',
        'footer div[contenteditable="true"][role="textbox"]',
        'div[aria-placeholder="Type a message"]',
    ),
    # Icons inside the button to click; the channel clicks the closest button ancestor.
    # data-testid came back on some icons in 2025-26, without data-icon.
    "send_button": (
        'footer [data-testid="wds-ic-send-filled"]',
        'footer span[data-icon="wds-ic-send-filled"]',
        'footer span[data-icon="send"]',
        'footer button[aria-label="Send"]',
        'footer div[role="button"][aria-label="Send"]',
    ),
    "attach_button": (
        'footer span[data-icon="plus-rounded"]',
        'footer span[data-icon="attach-menu-plus"]',
        'footer span[data-icon="clip"]',
        'footer [title="Attach"]',
    ),
    "media_input": ('input[type="file"][accept="image/*,video/mp4,video/3gpp,video/quicktime"]',),
    "document_input": ('input[type="file"][accept="*"]',),
    # The 2026 caption box is a Lexical editor that may sit beside the preview dialog.
    "caption_box": (
        'div[role="dialog"] div[contenteditable="true"]',
        'div[contenteditable="true"][aria-label="Add a caption"]',
        '[data-lexical-editor="true"][data-tab="6"]',
        'div[contenteditable="true"][data-tab="6"]',
    ),
    # The preview's own send button; in 2026 it may sit outside the dialog, so the last
    # ones look anywhere except the compose footer, whose send button would send the
    # chat's prefilled text instead of the file.
    "preview_send": (
        'div[role="dialog"] [data-testid="wds-ic-send-filled"]',
        'div[role="dialog"] span[data-icon="wds-ic-send-filled"]',
        'div[role="dialog"] span[data-icon="send"]',
        'div[role="dialog"] [aria-label="Send"]',
        '[data-testid="wds-ic-send-filled"]:not(footer *)',
        'span[data-icon="wds-ic-send-filled"]:not(footer *)',
        '[role="button"][aria-label="Send"]:not(footer *)',
    ),
    # Both the invalid-number dialog and the "Use here" screen are modal popups: the
    # first sits over the chat list, the second replaces the whole app.
    "modal": ('div[data-animate-modal-popup="true"]', 'div[role="dialog"][aria-modal="true"]'),
    "modal_button": ('div[data-animate-modal-popup="true"] button',),
    # An outgoing message's id starts with true_ (2026 builds dropped the class name).
    "outgoing": ("div.message-out", '#main div[data-id^="true_"]'),
    "bubble_text": ("span.selectable-text", "span[dir]"),
    # The clock: a message WhatsApp has not taken yet. Any icon missed here would count
    # an unsent message as sent.
    "tick_pending": ('span[data-icon="msg-time"]', 'span[data-icon="msg-clock"]'),
    "tick_failed": ('span[data-icon="msg-failed"]',),
    "tick_done": (
        'span[data-icon="msg-check"]',
        'span[data-icon="msg-dblcheck"]',
        'span[data-icon="msg-dblcheck-ack"]',
        'span[data-icon="msg-dblcheck-ack-light"]',
    ),
    # --- hearing back: the chat list, an open chat's bubbles, limit banners ---------
    # A chat list row: the chat's number as WhatsApp formats it (or a saved name), the last
    # message's preview with its tick when it is ours, and an unread badge.
    "chat_row": (
        '#pane-side div[role="listitem"]',
        '#pane-side div[role="row"]',
        'div[aria-label="Chat list"] div[role="listitem"]',
        'div[aria-label="Chat list"] div[role="row"]',
    ),
    "row_title": ('span[dir="auto"][title]', "span[title]"),
    # The title element itself is never taken as the preview.
    "row_preview": ('span[dir="ltr"][title]', 'span[dir="ltr"]', "span[title]"),
    "row_unread": (
        'span[aria-label*="unread"]',
        'span[aria-label*="Unread"]',
        'span[aria-label*="não lida"]',
        'span[aria-label*="no leído"]',
    ),
    # Tick icons, read both in chat list rows and on an open chat's outgoing bubbles;
    # looked for in the order failed, pending, read, delivered, sent.
    "row_tick_failed": ('span[data-icon="msg-failed"]', 'span[data-icon="status-failed"]'),
    "row_tick_pending": (
        'span[data-icon="msg-time"]',
        'span[data-icon="msg-clock"]',
        'span[data-icon="status-time"]',
    ),
    "row_tick_read": (
        'span[data-icon="status-dblcheck-ack"]',
        'span[data-icon="msg-dblcheck-ack"]',
        'span[data-icon="msg-dblcheck-ack-light"]',
        'span[data-icon="msg-dblcheck"][aria-label*="Read"]',
        'span[data-icon="status-dblcheck"][aria-label*="Read"]',
        'span[data-icon="msg-dblcheck"][aria-label*="Lida"]',
        'span[data-icon="msg-dblcheck"][aria-label*="Leído"]',
    ),
    "row_tick_delivered": ('span[data-icon="msg-dblcheck"]', 'span[data-icon="status-dblcheck"]'),
    "row_tick_sent": ('span[data-icon="msg-check"]', 'span[data-icon="status-check"]'),
    # The open chat: its title, and the customer's bubbles (ours are "outgoing" above).
    "chat_title": ('#main header span[dir="auto"][title]', "#main header span[title]"),
    "incoming": ("div.message-in", 'div[data-id^="false_"]'),
    # What kind of message a bubble holds; none of these: text.
    "bubble_document": ('span[data-icon="document"]', 'span[data-icon^="document-"]'),
    "bubble_voice": ('span[data-icon="audio-play"]', 'span[data-icon="ptt-play"]'),
    "bubble_video": ("video", 'span[data-icon="media-play"]'),
    "bubble_image": ("img:not(.emoji)",),
    # Banners over the chat list; their words are matched against LIMIT_BANNERS.
    "banner": (
        '#side div[role="alert"]',
        '#pane-side div[role="alert"]',
        'div[data-testid="chatlist-banner"]',
        '#side [role="alert"]',
    ),
}

# localStorage keys holding the linked account, e.g. '"919876543210:12@c.us"'.
ACCOUNT_KEYS: tuple[str, ...] = ("last-wid-md", "last-wid")

# Texts of the "Use here" button in the languages our users run WhatsApp in; only used to
# pick which button of that screen to press, never to detect the screen.
USE_HERE_TEXTS: tuple[str, ...] = (
    "use here",
    "usar aquí",
    "usar aqui",
    "utiliser ici",
    "hier verwenden",
    "usa qui",
    "yahan istemal karein",
)

# Words of the banners that mean WhatsApp is limiting the account, lower case, with what
# each means: "limit" stops the sender at once; "connecting" only once it has been shown
# for longer than the channel's `connect_banner_seconds` (a short network blip is normal).
LIMIT_BANNERS: tuple[tuple[str, str], ...] = (
    ("message not sent", "limit"),
    ("messages not sent", "limit"),
    ("too many messages", "limit"),
    ("temporarily blocked", "limit"),
    ("temporarily banned", "limit"),
    ("trying to connect", "connecting"),
    # Portuguese
    ("mensagem não enviada", "limit"),
    ("mensagens não enviadas", "limit"),
    ("muitas mensagens", "limit"),
    ("temporariamente bloqueada", "limit"),
    ("temporariamente bloqueado", "limit"),
    ("bloqueada temporariamente", "limit"),
    ("tentando conectar", "connecting"),
    # Spanish
    ("mensaje no enviado", "limit"),
    ("mensajes no enviados", "limit"),
    ("demasiados mensajes", "limit"),
    ("bloqueada temporalmente", "limit"),
    ("temporalmente bloqueada", "limit"),
    ("bloqueado temporalmente", "limit"),
    ("intentando conectar", "connecting"),
    # Hindi
    ("संदेश नहीं भेजा गया", "limit"),
    ("मैसेज नहीं भेजा गया", "limit"),
    ("बहुत ज़्यादा मैसेज", "limit"),
    ("बहुत अधिक संदेश", "limit"),
    ("अस्थायी रूप से ब्लॉक", "limit"),
    ("कनेक्ट करने की कोशिश", "connecting"),
    # Indonesian
    ("pesan tidak terkirim", "limit"),
    ("terlalu banyak pesan", "limit"),
    ("diblokir sementara", "limit"),
    ("mencoba menghubungkan", "connecting"),
    ("mencoba terhubung", "connecting"),
    # French, German
    ("message non envoyé", "limit"),
    ("trop de messages", "limit"),
    ("temporairement bloqué", "limit"),
    ("connexion en cours", "connecting"),
    ("nachricht nicht gesendet", "limit"),
    ("zu viele nachrichten", "limit"),
    ("vorübergehend gesperrt", "limit"),
    ("verbindung wird hergestellt", "connecting"),
)


# Words of the "Link with phone number" link (English, as WhatsApp words it in 2024-26), for
# when no structural hook of `link_phone` matches; compared lower-cased with the text of
# the QR screen's buttons and links. Another language needs a `link_phone` override.
LINK_PHONE_TEXTS: tuple[str, ...] = (
    "link with phone number",
    "log in with phone number",
)


class SelectorFileError(ValueError):
    """The operator's override file cannot be used; the message says what to fix."""


def load(instance_path: Path) -> MappingProxyType[str, tuple[str, ...]]:
    """The shipped selectors, with the instance folder's overrides in front."""
    merged = dict(DEFAULTS)
    path = instance_path / OVERRIDES_FILE
    if not path.exists():
        return MappingProxyType(merged)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SelectorFileError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise SelectorFileError(f"{path} must hold an object of element name → list of CSS.")
    for name, value in raw.items():
        if name not in DEFAULTS:
            known = ", ".join(sorted(DEFAULTS))
            raise SelectorFileError(f"{path}: unknown element {name!r}; known: {known}.")
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise SelectorFileError(f"{path}: {name!r} must be a list of CSS selectors.")
        merged[name] = tuple(dict.fromkeys([*value, *DEFAULTS[name]]))
    return MappingProxyType(merged)
