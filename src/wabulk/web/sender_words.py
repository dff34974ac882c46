"""A sender's state and kind in a shop owner's words: every page that shows a sender's
state (senders list, sender page, campaign wizard and page, dashboard) or its kind (the
wizard, the Activity log) asks here.

A Cloud API sender is never "linked" by scanning a code: it is connected to Meta by its
token, and what fixes it is checking that connection.
"""

from __future__ import annotations

import re

from flask import has_request_context
from flask_babel import gettext

from ..models import Channel, SenderState
from ..senders.service import KIND_WORDS
from ..words import N_

STATE_LABELS = {
    SenderState.LINKED: N_("linked"),
    SenderState.NEEDS_LINK: N_("needs linking"),
    SenderState.LIMITED: N_("limited"),
    SenderState.IN_USE: N_("in use elsewhere"),
    SenderState.BROWSER_FAILED: N_("browser failed"),
    SenderState.DISABLED: N_("disabled"),
}
CLOUD_STATE_LABELS = {
    **STATE_LABELS,
    SenderState.LINKED: N_("connected"),
    SenderState.NEEDS_LINK: N_("check the connection"),
}


def _reader(words: str) -> str:
    """`words` in the reader's language on a page; English elsewhere."""
    return gettext(words) if has_request_context() else words


def state_words(state: SenderState | str, channel: Channel | str | None) -> str:
    """The badge words for a sender in `state` on `channel` (a value or its string)."""
    try:
        known = SenderState(state)
    except ValueError:
        return str(state).replace("_", " ")
    labels = CLOUD_STATE_LABELS if channel == Channel.CLOUD_API else STATE_LABELS
    return _reader(labels[known])


def channel_words(channel: Channel | str) -> str:
    """A sender's kind as people say it: "WhatsApp Web", "WhatsApp Cloud API", "dry-run"."""
    try:
        return _reader(KIND_WORDS[Channel(channel)])
    except ValueError:
        return str(channel).replace("_", " ")


def _english_kind(channel: str) -> str:
    return KIND_WORDS[Channel(channel)]


# Events recorded before the kinds had words ("added the whatsapp_web sender 'Shop'").
# Only that phrase: a path such as instance/dry_run/ in an admin's event stays as it is.
_CODE_NAMES = re.compile(r"\bthe (whatsapp_web|cloud_api|dry_run) sender\b")


def event_words(text: str) -> str:
    """A stored Event's text with a sender kind's code name put in words."""
    return _CODE_NAMES.sub(lambda m: f"the {_english_kind(m.group(1))} sender", text)
