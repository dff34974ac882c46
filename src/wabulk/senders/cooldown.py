"""A `limited` sender (WhatsApp showed a limit banner, Meta rated the number low or limited
it) stays out of rotation for a cool-down, then comes back by itself; a person may resume
it earlier from the Senders page (DESIGN §8)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import events
from ..models import EventLevel, Sender, SenderState
from ..words import said

COOL_DOWN = timedelta(hours=24)


def limit(
    session: Session, sender: Sender, reason: str, now: datetime, screenshot: str | None = None
) -> None:
    """Take the sender out of rotation until the cool-down ends; `screenshot`: the file name
    of what WhatsApp Web showed, linked from the Event."""
    sender.state = SenderState.LIMITED
    sender.state_reason = reason[:500]
    sender.limited_until = now + COOL_DOWN
    events.record(
        session,
        "sender.limited",
        said(
            "Sender %(name)s rests for %(hours)s hours: %(reason)s Its messages went back to "
            "the queue.",
            name=sender.name,
            hours=int(COOL_DOWN.total_seconds() // 3600),
            reason=reason.rstrip(".") + ".",
        ),
        level=EventLevel.ERROR,
        data={"screenshot": screenshot} if screenshot else None,
    )


def back_in_rotation(sender: Sender) -> None:
    sender.state = SenderState.LINKED
    sender.state_reason = None
    sender.limited_until = None


def resume_due(session: Session, now: datetime) -> int:
    """Senders whose cool-down has ended go back into rotation; returns how many."""
    due = session.scalars(
        select(Sender).where(Sender.state == SenderState.LIMITED, Sender.limited_until <= now)
    ).all()
    for sender in due:
        back_in_rotation(sender)
        events.record(
            session,
            "sender.resumed",
            said("Sender %(name)s is back in rotation after its rest.", name=sender.name),
            level=EventLevel.INFO,
        )
    return len(due)
