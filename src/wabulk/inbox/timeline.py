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

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from ..errors import NotFound, ValidationError
from ..models import Answer, Campaign, Conversation, ConversationNote, Inbound, Message, User

MAX_TIMELINE = 200
_RANK = {"out": 0, "in": 1, "note": 2}  # order of items at the very same moment


@dataclass(frozen=True)
class Item:
    """One line of a conversation: `kind` out (a campaign message or an answer), in (the
    customer's message) or note (the team's, never sent)."""

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
            "That is not a place in this conversation; use an item's key.", field="before"
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
        raise NotFound(f"There is no conversation #{conversation_id}.")
    limit = max(1, min(limit, MAX_TIMELINE))
    cursor = _cursor(session, conversation, before_id) if before_id else None
    items = (
        _outgoing(session, conversation, cursor, limit)
        + _incoming(session, conversation, cursor, limit)
        + _notes(session, conversation, cursor, limit)
    )
    items.sort(key=lambda i: (i.at, _RANK[i.kind], i.id), reverse=True)
    return items[:limit][::-1]


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
            "That is not a place in this conversation; use an item's key.", field="before"
        )
    return at, _RANK[kind], item_id


def _outgoing(session: Session, conversation: Conversation, cursor: Any, limit: int) -> list[Item]:
    # ix_messages_contact_id: a contact's messages are a handful per campaign they were in.
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
            Message.sender_id == conversation.sender_id,
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
