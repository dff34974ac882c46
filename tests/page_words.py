"""Words a shop owner should never meet on a page, and how to find them in what a page says.

- `visible_text` keeps what a person reads or hears: text outside <script>/<style>, and the
  attributes shown as tooltips, placeholders, confirmation dialogs or read by a screen
  reader. Attribute values that are only for the code (ids, names, values, URLs) are left
  out, so `name="dry_run"` on a radio button is fine but the label "dry_run" is not.
- `internal_terms` names each internal word found, with a little context.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Attributes whose value a person sees or hears.
SHOWN_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "data-confirm", "data-bs-title"}
# A button's value is its label.
LABEL_INPUT_TYPES = {"submit", "button", "reset"}
HIDDEN_ELEMENTS = {"script", "style"}

# (what the owner would not understand, a pattern that finds it)
TERMS: list[tuple[str, re.Pattern[str]]] = [
    ("the dispatcher", re.compile(r"\bdispatcher\b", re.I)),
    ("a worker process", re.compile(r"\bwabulk (?:worker|serve)\b|\bthe worker\b", re.I)),
    ("a command-line flag", re.compile(r"(?<![\w-])--[a-z][a-z-]+")),
    ("a channel's code name", re.compile(r"\b(?:dry_run|whatsapp_web|cloud_api)\b")),
    (
        "a state's code name",
        re.compile(r"\b(?:needs_link|in_use|browser_failed|not_on_whatsapp|opted_out)\b"),
    ),
    ("an enum's name", re.compile(r"\b[A-Z][A-Za-z]+\.[A-Z][A-Z_]+\b")),
    ("a raw backtick", re.compile(r"`")),
    ("a Python object", re.compile(r"<[\w.]+ object at 0x|\bTraceback\b|\b\w+Error\(")),
    ("a Python literal", re.compile(r"(?:^|[\s:=(])(?:None|True|False)(?=$|[,;)])")),
    ("a Python list, dict or empty text", re.compile(r"[\[{]'|'[\]}]|(?<!\w)''(?!\w)")),
    ("a database word", re.compile(r"\b(?:sqlalchemy|psycopg|sqlite3?|IntegrityError)\b", re.I)),
    ("a JavaScript blank", re.compile(r"\b(?:undefined|NaN|null)\b")),
    ("an environment variable", re.compile(r"\bWABULK_[A-Z_]+\b")),
    ("a file of the program", re.compile(r"\.(?:jsonl|py)\b")),
]

# WhatsApp's own formatting (```monospace```) is explained on the template pages: not code.
_MONOSPACE = re.compile(r"```")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_ELEMENTS:
            self._hidden += 1
        values = dict(attrs)
        for name in SHOWN_ATTRIBUTES:
            if values.get(name):
                self.parts.append(str(values[name]))
        if tag == "input" and values.get("type") in LABEL_INPUT_TYPES and values.get("value"):
            self.parts.append(str(values["value"]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in HIDDEN_ELEMENTS:
            self._hidden -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_ELEMENTS and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data)


def visible_text(html: str) -> list[str]:
    """The pieces of text a person can read on the page, each whitespace-collapsed."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return [" ".join(part.split()) for part in parser.parts]


def internal_terms(pieces: list[str] | str, allowed: tuple[str, ...] = ()) -> list[str]:
    """'<term>: «context»' for each internal word in the text; `allowed` are user data."""
    if isinstance(pieces, str):
        pieces = [pieces]
    found = []
    for piece in pieces:
        text = _MONOSPACE.sub("", piece)
        for word in allowed:
            text = text.replace(word, "")
        for label, pattern in TERMS:
            for match in pattern.finditer(text):
                start, end = max(0, match.start() - 40), match.end() + 40
                found.append(f"{label}: «{text[start:end]}»")
    return found
