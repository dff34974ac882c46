"""WhatsApp's text formatting, parsed once for every place that shows a message.

- `*bold*`, `_italic_`, `~strike~` on one line, and ```` ```monospace``` ```` (which may span
  lines and is never formatted inside: monospace wins).
- A marker opens only before a non-space character, at the start or after a character that is
  not a letter or digit, and closes after a non-space character, at the end or before one that
  is not a letter or digit; empty content is not formatting. A marker that does not pair is
  plain text, as WhatsApp shows it.
- The result is a tree of plain strings and `Styled` nodes, so the text is never treated as
  HTML: `to_html` escapes every string, and `to_json` hands the tree to the browser, which
  builds elements with `textContent`.
- Work is bounded by the text: one pass per line, a binary search per marker, and the nesting
  is at most three deep (a marker cannot pair inside a span of the same marker).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from .render_budget import MAX_SIZE

_MARKERS = {"*": "b", "_": "i", "~": "s"}
_MONO_RE = re.compile(r"```(.+?)```", re.DOTALL)
_HTML = {"b": "strong", "i": "em", "s": "del", "code": "code"}


@dataclass(frozen=True)
class Styled:
    """A span in bold (`b`), italic (`i`), strikethrough (`s`) or monospace (`code`)."""

    style: str
    children: tuple[Any, ...]


def parse(text: str) -> list[Any]:
    """The text as WhatsApp formats it; longer than any message, it is left plain."""
    if len(text) > MAX_SIZE:
        return [text]
    nodes: list[Any] = []
    last = 0
    for mono in _MONO_RE.finditer(text):
        nodes += _lines(text[last : mono.start()])
        nodes.append(Styled("code", (mono.group(1),)))
        last = mono.end()
    nodes += _lines(text[last:])
    return _merged(nodes)


def to_html(text: str) -> Markup:
    """Escaped HTML with <strong>, <em>, <del> and <code>; newlines are kept as they are
    (the page shows them with `white-space: pre-wrap`)."""
    # Every string of the tree is escaped by _html; only our four tags are written as-is.
    return Markup("".join(_html(node) for node in parse(text)))  # noqa: S704


def to_json(text: str) -> list[Any]:
    """The tree for the browser: strings, and `{"style": …, "children": […]}`."""
    return [_json(node) for node in parse(text)]


def _html(node: Any) -> str:
    if isinstance(node, str):
        return str(escape(node))
    tag = _HTML[node.style]
    return f"<{tag}>" + "".join(_html(child) for child in node.children) + f"</{tag}>"


def _json(node: Any) -> Any:
    if isinstance(node, str):
        return node
    return {"style": node.style, "children": [_json(child) for child in node.children]}


def _lines(text: str) -> list[Any]:
    nodes: list[Any] = []
    for number, line in enumerate(text.split("\n")):
        if number:
            nodes.append("\n")
        nodes += _Line(line).parse(0, len(line))
    return nodes


class _Line:
    """One line's inline markers; the positions where each marker may close are found once."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.closers: dict[str, list[int]] = {m: [] for m in _MARKERS}
        for i, char in enumerate(line):
            if char in _MARKERS and self._may_close(i):
                self.closers[char].append(i)

    def _may_close(self, i: int) -> bool:
        line = self.line
        after = line[i + 1 : i + 2]
        return i > 0 and not line[i - 1].isspace() and not after.isalnum()

    def _may_open(self, i: int, hi: int) -> bool:
        line = self.line
        before = line[i - 1 : i] if i > 0 else ""
        return i + 1 < hi and not line[i + 1].isspace() and not before.isalnum()

    def parse(self, lo: int, hi: int) -> list[Any]:
        """The nodes of line[lo:hi]; a span never reaches past `hi`."""
        line = self.line
        nodes: list[Any] = []
        start = i = lo
        while i < hi:
            char = line[i]
            if char in _MARKERS and self._may_open(i, hi):
                closers = self.closers[char]
                k = bisect_right(closers, i + 1)  # content is at least one character
                if k < len(closers) and closers[k] < hi:
                    end = closers[k]
                    if start < i:
                        nodes.append(line[start:i])
                    inner = _merged(self.parse(i + 1, end))
                    nodes.append(Styled(_MARKERS[char], tuple(inner)))
                    start = i = end + 1
                    continue
            i += 1
        if start < hi:
            nodes.append(line[start:hi])
        return nodes


def _merged(nodes: list[Any]) -> list[Any]:
    """Adjacent strings joined, so the tree is as small as the text allows."""
    out: list[Any] = []
    for node in nodes:
        if isinstance(node, str) and out and isinstance(out[-1], str):
            out[-1] += node
        elif node != "":
            out.append(node)
    return out
