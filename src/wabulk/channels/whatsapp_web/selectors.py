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
    "chat_open": ("#main footer",),
    "compose_box": (
        'footer div[contenteditable="true"][data-tab="10"]',
        'footer div[contenteditable="true"][role="textbox"]',
        'div[aria-placeholder="Type a message"]',
    ),
    # Icons inside the button to click; the channel clicks the closest button ancestor.
    "send_button": (
        'footer span[data-icon="wds-ic-send-filled"]',
        'footer span[data-icon="send"]',
        'footer button[aria-label="Send"]',
    ),
    "attach_button": (
        'footer span[data-icon="plus-rounded"]',
        'footer span[data-icon="attach-menu-plus"]',
        'footer span[data-icon="clip"]',
        'footer [title="Attach"]',
    ),
    "media_input": ('input[type="file"][accept="image/*,video/mp4,video/3gpp,video/quicktime"]',),
    "document_input": ('input[type="file"][accept="*"]',),
    "caption_box": (
        'div[role="dialog"] div[contenteditable="true"]',
        'div[contenteditable="true"][aria-label="Add a caption"]',
    ),
    "preview_send": (
        'div[role="dialog"] span[data-icon="wds-ic-send-filled"]',
        'div[role="dialog"] span[data-icon="send"]',
        'div[role="dialog"] [aria-label="Send"]',
    ),
    # Both the invalid-number dialog and the "Use here" screen are modal popups: the
    # first sits over the chat list, the second replaces the whole app.
    "modal": ('div[data-animate-modal-popup="true"]', 'div[role="dialog"][aria-modal="true"]'),
    "modal_button": ('div[data-animate-modal-popup="true"] button',),
    "outgoing": ("div.message-out",),
    "bubble_text": ("span.selectable-text", "span[dir]"),
    "tick_pending": ('span[data-icon="msg-time"]',),
    "tick_failed": ('span[data-icon="msg-failed"]',),
    "tick_done": (
        'span[data-icon="msg-check"]',
        'span[data-icon="msg-dblcheck"]',
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
