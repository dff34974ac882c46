"""Quick replies: saved answers an operator picks in the Inbox, managed by admins.

The body has the same placeholders as a template ({{ name }}, {{ city | default('there') }})
and is checked the same way when saved, so a misspelt field is refused here rather than
when a customer is waiting for the answer.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..campaigns.fields import check_fields
from ..campaigns.rendering import compile_body
from ..errors import Conflict, NotFound, ValidationError
from ..models import QuickReply, Role, User
from ..words import N_, said

MAX_NAME = 120
MAX_BODY = 4096  # WhatsApp's limit for a text message
MAX_QUICK_REPLIES = 500  # a menu to pick from, not a library


def list_all(session: Session) -> list[QuickReply]:
    """Every quick reply, by name."""
    return list(
        session.scalars(
            select(QuickReply).order_by(func.lower(QuickReply.name)).limit(MAX_QUICK_REPLIES)
        )
    )


def get(session: Session, quick_reply_id: int) -> QuickReply:
    found = session.get(QuickReply, quick_reply_id)
    if found is None:
        raise NotFound(said("There is no quick reply #%(id)s.", id=quick_reply_id))
    return found


def _checked(session: Session, name: str, body: str, except_id: int | None) -> str:
    """The tidy name; refuses an empty or long name or body, a name taken, a bad field."""
    clean = " ".join(name.split())
    if not clean:
        raise ValidationError(N_("Give the quick reply a name."), field="name")
    if len(clean) > MAX_NAME:
        raise ValidationError(
            said("A quick reply's name can have at most %(max)s characters.", max=MAX_NAME),
            field="name",
        )
    if not body.strip():
        raise ValidationError(N_("Write the answer."), field="body")
    if len(body) > MAX_BODY:
        raise ValidationError(
            said(
                "The answer has %(count)s characters; WhatsApp allows %(max)s.",
                count=f"{len(body):,}",
                max=f"{MAX_BODY:,}",
            ),
            field="body",
        )
    clash = select(QuickReply.id).where(func.lower(QuickReply.name) == clean.lower())
    if except_id is not None:
        clash = clash.where(QuickReply.id != except_id)
    if session.scalar(clash) is not None:
        raise Conflict(
            said("There is already a quick reply called \u201c%(name)s\u201d.", name=clean)
        )
    check_fields(session, compile_body(body).placeholders, body)
    return clean


def create(session: Session, actor: User | None, name: str, body: str) -> QuickReply:
    require_role(actor, Role.ADMIN)
    count = session.scalar(select(func.count()).select_from(QuickReply)) or 0
    if count >= MAX_QUICK_REPLIES:
        raise Conflict(
            said(
                "There are already %(max)s quick replies; delete some you no longer use first.",
                max=MAX_QUICK_REPLIES,
            )
        )
    clean = _checked(session, name, body, None)
    reply = QuickReply(name=clean, body=body, created_by_id=actor.id if actor else None)
    session.add(reply)
    session.flush()
    _record(
        session,
        actor,
        "quick_reply.created",
        N_("%(actor)s created the quick reply \u201c%(name)s\u201d."),
        clean,
    )
    return reply


def update(
    session: Session, actor: User | None, quick_reply_id: int, name: str, body: str
) -> QuickReply:
    require_role(actor, Role.ADMIN)
    reply = get(session, quick_reply_id)
    reply.name = _checked(session, name, body, quick_reply_id)
    reply.body = body
    _record(
        session,
        actor,
        "quick_reply.edited",
        N_("%(actor)s edited the quick reply \u201c%(name)s\u201d."),
        reply.name,
    )
    return reply


def delete(session: Session, actor: User | None, quick_reply_id: int) -> str:
    """Delete it; answers already sent with it keep their text. Returns its name."""
    require_role(actor, Role.ADMIN)
    reply = get(session, quick_reply_id)
    name = reply.name
    session.delete(reply)
    session.flush()
    _record(
        session,
        actor,
        "quick_reply.deleted",
        N_("%(actor)s deleted the quick reply \u201c%(name)s\u201d."),
        name,
    )
    return name


def _record(session: Session, actor: User | None, kind: str, msgid: str, name: str) -> None:
    text = said(msgid, actor=events.actor_name(actor), name=name)
    events.record(session, kind, text, user=actor)
