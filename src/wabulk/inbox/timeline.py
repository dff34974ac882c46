"""A conversation's timeline: campaign messages and answers out, the customer's messages
in, and the team's notes, in time order.

- Three small reads, each newest first from its own index (a contact's messages, a
  contact's replies, a conversation's notes) and each bounded by the page size, merged
  here: a conversation page costs the same however big the tables are.
- The cursor is an item's `key` ("out:12", "in:7", "note:3"): items at the same moment
  are ordered out, in, note, then by id, so no page repeats or skips one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal_column, or_, select, true
from sqlalchemy.orm import Session, aliased

from ..errors import NotFound, ValidationError
from ..models import (
    Answer,
    Campaign,
    Contact,
    Conversation,
    ConversationNote,
    Event,
    Inbound,
    Message,
    User,
)
from ..words import N_, said

MAX_TIMELINE = 200
_RANK = {"out": 0, "in": 1, "note": 2}  # order of items at the very same moment
# The team's actions shown as lines of the conversation (the Events they record).
ACTION_KINDS = (
    "conversation.assigned",
    "conversation.unassigned",
    "conversation.done",
    "conversation.reopened",
)


@dataclass(frozen=True)
class Item:
    """One line of a conversation: `kind` out (a campaign message or an answer), in (the
    customer's message), note (the team's, never sent) or action (what the team did:
    assigned, done, reopened, opted out; drawn as a small line, never paged by)."""

    kind: str
    id: int
    at: datetime
    text: str
    status: str | None = None  # out: queued, sending, sent, delivered, read, failed, …
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None
    error: str | None = None  # out: what went wrong, for the shop owner
    campaign_id: int | None = None
    campaign_name: str | None = None
    author: str | None = None  # an answer's or a note's author (email)
    is_answer: bool = False
    reply_kind: str | None = None  # in: text, button, image, …
    opted_out: bool = False  # in: this message opted the contact out

    @property
    def key(self) -> str:
        """The cursor of this item: pass it as `before_id` for what came before it."""
        return f"{self.kind}:{self.id}"


def _error_sentence(code: str | None, detail: str | None) -> str | None:
    if detail:
        return detail
    return code.replace("_", " ").capitalize() if code else None


def _parse_key(key: str) -> tuple[str, int]:
    kind, _, number = key.partition(":")
    if kind not in _RANK or not number.isdigit() or len(number) > 18:
        raise ValidationError(
            N_("That is not a place in this conversation; use an item's key."), field="before"
        )
    return kind, int(number)


def _before(at_expr: Any, id_col: Any, rank: int, cursor: tuple[datetime, int, int] | None) -> Any:
    """Items strictly before the cursor in (time, kind rank, id) order."""
    if cursor is None:
        return true()
    at, c_rank, c_id = cursor
    if rank < c_rank:
        return at_expr <= at
    if rank > c_rank:
        return at_expr < at
    return and_(at_expr <= at, or_(at_expr < at, id_col < c_id))


def timeline(
    session: Session, conversation_id: int, *, before_id: str | None = None, limit: int = 100
) -> list[Item]:
    """The newest `limit` items (at most 200) before `before_id`, oldest first."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(said("There is no conversation #%(id)s.", id=conversation_id))
    limit = max(1, min(limit, MAX_TIMELINE))
    cursor = _cursor(session, conversation, before_id) if before_id else None
    items = (
        _outgoing(session, conversation, cursor, limit)
        + _incoming(session, conversation, cursor, limit)
        + _notes(session, conversation, cursor, limit)
    )
    items.sort(key=lambda i: (i.at, _RANK[i.kind], i.id), reverse=True)
    return items[:limit][::-1]


def with_actions(
    session: Session, conversation_id: int, items: list[Item], *, limit: int = 100
) -> list[Item]:
    """The newest page of `timeline` (`items`, asked with `limit`) with the team's actions
    in between.

    - Assigned (to whom, by whom), marked done and reopened come from the Events those
      actions record; "reopened by their reply" is a reply after a done; the opt-out is
      the contact's. Only actions within the page's span are added, at most as many as
      the page holds, so the page stays bounded.
    """
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(said("There is no conversation #%(id)s.", id=conversation_id))
    full = len(items) >= min(limit, MAX_TIMELINE)
    lo = items[0].at if full and items else None
    actions = _actions(session, conversation, lo, max(len(items), 20))
    actions += _reopened_by_reply(actions, items)
    contact = session.get(Contact, conversation.contact_id)
    opted = contact.opted_out_at if contact is not None else None
    if contact is not None and opted is not None and (lo is None or opted >= lo):
        reason = (contact.opt_out_reason or "").rstrip(".")
        text = said("Opted out (%(reason)s)", reason=reason) if reason else N_("Opted out")
        actions.append(Item(kind="action", id=0, at=opted, text=text))
    merged = items + actions
    merged.sort(key=lambda i: (i.at, _RANK.get(i.kind, 3), i.id))
    return merged


def _actions(
    session: Session, conversation: Conversation, lo: datetime | None, limit: int
) -> list[Item]:
    # ix_events_at from the conversation's start (or the page's); the kind and the
    # conversation id are checked on that range, like a contact's history.
    start = conversation.created_at if lo is None else lo
    rows = session.execute(
        select(Event.id, Event.at, Event.kind, Event.text, Event.data, User.email)
        .outerjoin(User, User.id == Event.user_id)
        .where(
            Event.at >= start,
            Event.kind.in_(ACTION_KINDS),
            Event.data["conversation_id"].as_integer() == conversation.id,
        )
        .order_by(Event.at.desc(), Event.id.desc())
        .limit(limit)
    ).all()
    return [
        Item(kind="action", id=r.id, at=r.at, text=_action_text(r), author=r.email) for r in rows
    ]


def _action_text(row: Any) -> str:
    by = row.email
    data = row.data if isinstance(row.data, dict) else {}
    if row.kind == "conversation.assigned":
        to = data.get("assignee")
        if not to:
            return str(row.text)
        if by:
            return said("Assigned to %(to)s by %(email)s", to=to, email=by)
        return said("Assigned to %(to)s", to=to)
    if row.kind == "conversation.unassigned":
        return said("Unassigned by %(email)s", email=by) if by else N_("Unassigned")
    if row.kind == "conversation.done":
        return said("Marked done by %(email)s", email=by) if by else N_("Marked done")
    return said("Reopened by %(email)s", email=by) if by else N_("Reopened")


def _reopened_by_reply(actions: list[Item], items: list[Item]) -> list[Item]:
    """A customer's reply after a "done" reopened the conversation (it records no Event)."""
    changes = sorted(
        (a for a in actions if a.text.startswith(("Marked done", "Reopened"))),
        key=lambda a: (a.at, a.id),
    )
    out = []
    for n, done in enumerate(changes):
        if not done.text.startswith("Marked done"):
            continue
        until = changes[n + 1].at if n + 1 < len(changes) else None
        reply = next(
            (
                i
                for i in items
                if i.kind == "in" and i.at >= done.at and (until is None or i.at < until)
            ),
            None,
        )
        if reply is not None:
            out.append(Item(kind="action", id=0, at=reply.at, text=N_("Reopened by their reply")))
    return out


def _out_at() -> Any:
    return func.coalesce(Message.sent_at, Message.queued_at)


def _cursor(session: Session, conversation: Conversation, key: str) -> tuple[datetime, int, int]:
    kind, item_id = _parse_key(key)
    if kind == "out":
        found = select(_out_at()).where(
            Message.id == item_id,
            Message.contact_id == conversation.contact_id,
            Message.sender_id == conversation.sender_id,
        )
    elif kind == "in":
        found = select(Inbound.received_at).where(
            Inbound.id == item_id,
            Inbound.contact_id == conversation.contact_id,
            Inbound.sender_id == conversation.sender_id,
        )
    else:
        found = select(ConversationNote.at).where(
            ConversationNote.id == item_id, ConversationNote.conversation_id == conversation.id
        )
    at = session.scalar(found)
    if at is None:
        raise ValidationError(
            N_("That is not a place in this conversation; use an item's key."), field="before"
        )
    return at, _RANK[kind], item_id


def _outgoing(session: Session, conversation: Conversation, cursor: Any, limit: int) -> list[Item]:
    # ix_messages_contact_id: a contact's messages are a handful per campaign they were in.
    # The sender is compared as `sender_id + 0` so that no index serves it: SQLite would
    # otherwise walk the sender's every message (ix_messages_sender_id_sent_at) and sort.
    at = _out_at()
    author = aliased(User)
    rows = session.execute(
        select(
            Message.id,
            at.label("at"),
            Message.body,
            Message.status,
            Message.sent_at,
            Message.delivered_at,
            Message.read_at,
            Message.failed_at,
            Message.error_code,
            Message.error_detail,
            Message.campaign_id,
            Campaign.name.label("campaign_name"),
            author.email.label("author"),
            Answer.message_id.label("answer_id"),
        )
        .outerjoin(Campaign, Campaign.id == Message.campaign_id)
        .outerjoin(Answer, Answer.message_id == Message.id)
        .outerjoin(author, author.id == Answer.author_id)
        .where(
            Message.contact_id == conversation.contact_id,
            Message.sender_id + literal_column("0") == conversation.sender_id,
            _before(at, Message.id, _RANK["out"], cursor),
        )
        .order_by(at.desc(), Message.id.desc())
        .limit(limit)
    ).all()
    return [
        Item(
            kind="out",
            id=r.id,
            at=r.at,
            text=r.body or "",
            status=str(r.status),
            sent_at=r.sent_at,
            delivered_at=r.delivered_at,
            read_at=r.read_at,
            failed_at=r.failed_at,
            error=_error_sentence(r.error_code, r.error_detail),
            campaign_id=r.campaign_id,
            campaign_name=r.campaign_name,
            author=r.author,
            is_answer=r.answer_id is not None,
        )
        for r in rows
    ]


def _incoming(session: Session, conversation: Conversation, cursor: Any, limit: int) -> list[Item]:
    # ix_inbound_contact_id_received_at, newest first.
    rows = session.execute(
        select(Inbound.id, Inbound.received_at, Inbound.body, Inbound.kind, Inbound.opted_out)
        .where(
            Inbound.contact_id == conversation.contact_id,
            Inbound.sender_id == conversation.sender_id,
            _before(Inbound.received_at, Inbound.id, _RANK["in"], cursor),
        )
        .order_by(Inbound.received_at.desc(), Inbound.id.desc())
        .limit(limit)
    ).all()
    return [
        Item(
            kind="in",
            id=r.id,
            at=r.received_at,
            text=r.body or "",
            reply_kind=r.kind,
            opted_out=bool(r.opted_out),
        )
        for r in rows
    ]


def _notes(session: Session, conversation: Conversation, cursor: Any, limit: int) -> list[Item]:
    # ix_conversation_notes_conversation_id_at, newest first.
    rows = session.execute(
        select(ConversationNote.id, ConversationNote.at, ConversationNote.body, User.email)
        .outerjoin(User, User.id == ConversationNote.user_id)
        .where(
            ConversationNote.conversation_id == conversation.id,
            _before(ConversationNote.at, ConversationNote.id, _RANK["note"], cursor),
        )
        .order_by(ConversationNote.at.desc(), ConversationNote.id.desc())
        .limit(limit)
    ).all()
    return [Item(kind="note", id=r.id, at=r.at, text=r.body, author=r.email) for r in rows]
