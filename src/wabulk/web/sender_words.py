"""A sender's state in a shop owner's words, per channel: every page that shows a sender's
state (senders list, sender page, campaign wizard and page, dashboard) asks here.

A Cloud API sender is never "linked" by scanning a code: it is connected to Meta by its
token, and what fixes it is checking that connection.
"""

from __future__ import annotations

from ..models import Channel, SenderState

STATE_LABELS = {
    SenderState.LINKED: "linked",
    SenderState.NEEDS_LINK: "needs linking",
    SenderState.LIMITED: "limited",
    SenderState.IN_USE: "in use elsewhere",
    SenderState.BROWSER_FAILED: "browser failed",
    SenderState.DISABLED: "disabled",
}
CLOUD_STATE_LABELS = {
    **STATE_LABELS,
    SenderState.LINKED: "connected",
    SenderState.NEEDS_LINK: "check the connection",
}


def state_words(state: SenderState | str, channel: Channel | str | None) -> str:
    """The badge words for a sender in `state` on `channel` (a value or its string)."""
    try:
        known = SenderState(state)
    except ValueError:
        return str(state).replace("_", " ")
    labels = CLOUD_STATE_LABELS if channel == Channel.CLOUD_API else STATE_LABELS
    return labels[known]
