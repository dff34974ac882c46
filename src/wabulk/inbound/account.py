"""What the provider says about a sender's account: quality, tier, throughput, fatal errors.

- Kept in `sender.health` (the same keys the connection check writes) with an Event, so
  the Senders page and the activity log show it.
- A RED quality rating makes the sender `limited`; an error that says the account cannot
  send makes it `limited` (Meta is restricting it) or `needs_link` (its credentials must
  be entered again). Its running campaigns then go on with their other senders, or pause
  with the reason when none is left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .. import events
from ..campaigns import lifecycle
from ..channels.heard import AccountUpdate, HeardError
from ..models import EventLevel, Sender, SenderState
from ..words import N_, said

QUALITY_WORDS = {
    "GREEN": N_("high (green)"),
    "YELLOW": N_("medium (yellow)"),
    "RED": N_("low (red)"),
}
RED_REASON = N_(
    "Meta rated this number's quality low (red): sending stopped to protect it. "
    "Resume it once customers' blocks and reports have calmed down."
)


def _health(sender: Sender, update: AccountUpdate) -> tuple[dict[str, Any], str | None]:
    """The sender's new health and a sentence for the log (None: nothing worth saying).

    The news are joined with "; " as one sentence whose parts are each a marked sentence
    (the page translates the parts: "quality is now %(what)s; %(more)s" and so on)."""
    health = dict(sender.health or {})
    news: list[tuple[str, dict[str, str]]] = []
    if update.quality_rating:
        rating = update.quality_rating.upper()[:20]
        if health.get("quality_rating") != rating:
            news.append(("quality", {"what": QUALITY_WORDS.get(rating, rating)}))
        health["quality_rating"] = rating
    if update.messaging_tier:
        tier = update.messaging_tier.upper()[:30]
        if health.get("messaging_tier") != tier:
            news.append(("tier", {"tier": tier.removeprefix("TIER_")}))
        health["messaging_tier"] = tier
    if update.kind == "throughput" and update.event:
        level = "HIGH" if "UPGRADE" in update.event.upper() else health.get("throughput_level")
        if level and health.get("throughput_level") != level:
            news.append(("throughput", {}))
        health["throughput_level"] = level
    if update.event:
        health["last_event"] = update.event[:60]
    health["updated_from_provider_at"] = update.at.isoformat()
    return health, _news_sentence(news)


# Each piece of news: (its sentence alone, its sentence before more news). Throughput is
# always the last piece of news (see _health), so it never has more after it.
_NEWS: dict[str, tuple[str, str | None]] = {
    "quality": (N_("quality is now %(what)s"), N_("quality is now %(what)s; %(more)s")),
    "tier": (
        N_("messaging limit is now %(tier)s customers a day"),
        N_("messaging limit is now %(tier)s customers a day; %(more)s"),
    ),
    "throughput": (N_("Meta raised its messages-per-second limit"), None),
}


def _news_sentence(news: list[tuple[str, dict[str, str]]]) -> str | None:
    """The account's news as one sentence (English; each part a marked sentence)."""
    sentence: str | None = None
    for kind, values in reversed(news):
        alone, before_more = _NEWS[kind]
        if sentence is None or before_more is None:
            sentence = said(alone, **values)
        else:
            sentence = said(before_more, more=sentence, **values)
    return sentence


def _stop(sender: Sender, state: SenderState, reason: str) -> bool:
    """Take a working sender out of rotation; False when it already was."""
    if sender.state in (SenderState.DISABLED, state):
        return False
    if sender.state not in (SenderState.LINKED, SenderState.NEEDS_LINK, SenderState.LIMITED):
        return False
    sender.state = state
    sender.state_reason = reason[:500]
    if state == SenderState.LIMITED:
        sender.limited_until = None  # until a person resumes it
    return True


def apply_account(
    session: Session,
    sender_id: int,
    updates: list[AccountUpdate],
    sender_errors: list[HeardError],
    now: datetime,
) -> int:
    """Apply account news and fatal errors to one sender; returns how many were applied."""
    if not updates and not sender_errors:
        return 0
    sender = session.get(Sender, sender_id, with_for_update=True, populate_existing=True)
    if sender is None:
        return 0
    stopped = False
    for update in sorted(updates, key=lambda u: u.at):
        health, sentence = _health(sender, update)
        sender.health = health
        if sentence:
            red = (update.quality_rating or "").upper() == "RED"
            events.record(
                session,
                "sender.health",
                said(
                    "Meta says %(name)s: %(sentence)s.", name=repr(sender.name), sentence=sentence
                ),
                level=EventLevel.WARNING if red else EventLevel.INFO,
                data={"sender_id": sender.id},
            )
        if (update.quality_rating or "").upper() == "RED" and _stop(
            sender, SenderState.LIMITED, RED_REASON
        ):
            stopped = True
            events.record(
                session,
                "sender.stopped",
                said(
                    "%(name)s stopped sending: %(reason)s",
                    name=repr(sender.name),
                    reason=RED_REASON,
                ),
                level=EventLevel.ERROR,
                data={"sender_id": sender.id},
            )
        sender_errors = [*sender_errors, *(e for e in update.errors if e.kind == "sender")]
        for error in update.errors:
            if error.kind != "sender":  # about no one message: the log is where it shows
                events.record(
                    session,
                    "sender.provider_error",
                    said(
                        "Meta reported a problem for %(name)s: %(reason)s (error %(code)s).",
                        name=repr(sender.name),
                        reason=error.sentence or error.title,
                        code=error.code,
                    ),
                    level=EventLevel.WARNING,
                    data={"sender_id": sender.id, "code": error.code},
                )
    for error in sender_errors:
        state = SenderState.LIMITED if error.effect == "limited" else SenderState.NEEDS_LINK
        reason = (
            error.sentence or error.title or said("Meta reported error %(code)s.", code=error.code)
        )
        if _stop(sender, state, reason):
            stopped = True
            events.record(
                session,
                "sender.stopped",
                said("%(name)s stopped sending: %(reason)s", name=repr(sender.name), reason=reason),
                level=EventLevel.ERROR,
                data={"sender_id": sender.id, "code": error.code},
            )
    if stopped:
        session.flush()
        lifecycle.pause_orphaned(session)
    return len(updates) + len(sender_errors)
