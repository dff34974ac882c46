"""What of a sender's trouble each role may read.

- A sender's state reason, and the Events and campaign reasons that quote it, may hold
  server details: the path of a Chrome profile or of ChromeDriver, a setting's value, the
  browser's own error text. Admins need them to fix the machine; operators and viewers get
  a sentence that says what is wrong and who can see more.
- Applied when a page, a poll or the API shows the text, never when it is stored: the
  reason stays whole in the database for the admin.
"""

from __future__ import annotations

import re

from ..models import Role
from ..words import N_

PROFILE_MISSING = N_(
    "The browser profile for this sender cannot be found; "
    "an administrator can see the details on the Senders page."
)
PROFILE_IN_USE = N_(
    "The browser profile for this sender is open in another Chrome window; "
    "an administrator can see the details on the Senders page."
)
BROWSER_TROUBLE = N_(
    "The browser for this sender cannot start; "
    "an administrator can see the details on the Senders page."
)
HIDDEN = N_("(hidden: an administrator can see it)")

# Where our own messages quote a path whole, spaces and all (macOS's "Application Support").
_QUOTED = re.compile(
    r"(Chrome profile folder ).+?(?= does not exist)"
    r"|(The Chrome profile ).+?(?= is open in another)"
    r"|(\bWABULK_[A-Z_]+ is )(?:'[^']*'|\"[^\"]*\")"
)
# Any other absolute path (/…, ~/…, C:\…) where a word starts.
_PATH = re.compile(r"""(?:(?<=[\s'"(=])|^)(?:~?/|[A-Za-z]:\\)[^\s'"]*[^\s'".,;:)]""")
# Our reasons that carry a setting's value or the browser's own error text.
_DETAIL = re.compile(r"\bWABULK_[A-Z_]+\b|\bChrome did not start\b|\bbrowser stopped while\b")


def has_server_details(text: str) -> bool:
    return bool(_QUOTED.search(text) or _PATH.search(text) or _DETAIL.search(text))


def _sees_details(role: Role | None) -> bool:
    return role is not None and role.includes(Role.ADMIN)


def reason_for(reason: str | None, role: Role | None) -> str | None:
    """A sender's state reason as `role` may read it (Senders, Dashboard, API)."""
    if reason is None or _sees_details(role) or not has_server_details(reason):
        return reason
    if "profile folder" in reason and "does not exist" in reason:
        return PROFILE_MISSING
    if "open in another Chrome" in reason:
        return PROFILE_IN_USE
    return BROWSER_TROUBLE


def text_for(text: str, role: Role | None) -> str:
    """A longer text that may quote a reason (an Event, a campaign's pause reason), with
    its paths hidden from `role` unless an admin."""
    if _sees_details(role):
        return text
    kept = _QUOTED.sub(lambda m: "".join(g for g in m.groups() if g) + HIDDEN, text)
    return _PATH.sub(HIDDEN, kept)
