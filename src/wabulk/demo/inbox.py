"""The demo's Inbox: the replies' conversations in the states a team leaves them in.

The replies themselves made the conversations (history.py calls the Inbox's own hook);
here the older ones are read, one is assigned, one is done, and one has an answer and a
note, through the Inbox's own functions, so each action is in its timeline. Everything is
removed with the demo contacts and sender (ON DELETE CASCADE).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..inbox import conversations
from ..models import (
    Answer,
    Contact,
    Conversation,
    ConversationNote,
    MessageStatus,
    Role,
    Sender,
    User,
)
from ..models import Message as MessageRow

UNREAD = 3  # the newest conversations stay unread
ANSWER = "Yes, we deliver there: usually the next day. Shall I book it for you?"
NOTE = "Asked about delivery; follow up if they do not confirm by tomorrow."


def build(session: Session, actor: User | None, sender: Sender, now: datetime) -> None:
    session.flush()
    ids = list(
        session.scalars(
            select(Conversation.id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Conversation.sender_id == sender.id, Contact.opted_out_at.is_(None))
            .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        )
    )
    if not ids:
        return
    # Only the newest stay unread (opted-out contacts' conversations are read too).
    session.execute(
        update(Conversation)
        .where(Conversation.sender_id == sender.id, Conversation.id.not_in(ids[:UNREAD]))
        .values(unread=0)
    )
    session.expire_all()
    if len(ids) > UNREAD:
        _answered(session, actor, sender, ids[UNREAD], now)
    if len(ids) > UNREAD + 1 and actor is not None and actor.role.includes(Role.OPERATOR):
        conversations.assign(session, actor, ids[UNREAD + 1], actor.id)
    if len(ids) > UNREAD + 2:
        conversations.set_done(session, actor, ids[UNREAD + 2], True)


def _answered(
    session: Session, actor: User | None, sender: Sender, conversation_id: int, now: datetime
) -> None:
    """An answer the team wrote (delivered and read) and a note beside it."""
    conversation = session.get(Conversation, conversation_id)
    contact = session.get(Contact, conversation.contact_id) if conversation else None
    if conversation is None or contact is None:
        return
    at = min(now - timedelta(minutes=1), conversation.last_activity_at + timedelta(minutes=4))
    message = MessageRow(
        campaign_id=None,
        contact_id=contact.id,
        phone=contact.phone,
        body=ANSWER,
        status=MessageStatus.READ,
        sender_id=sender.id,
        attempts=1,
        queued_at=at,
        next_attempt_at=at,
        sending_at=at,
        sent_at=at,
        delivered_at=at + timedelta(seconds=5),
        read_at=at + timedelta(seconds=40),
        updated_at=at + timedelta(seconds=40),
        provider_message_id=f"demo-{uuid.uuid4().hex}",
    )
    session.add(message)
    session.flush()
    session.add(
        Answer(
            message_id=message.id,
            conversation_id=conversation.id,
            author_id=actor.id if actor else None,
            created_at=at,
        )
    )
    conversations.touch_on_answer(session, conversation.id, at, ANSWER)
    note_id = conversations.add_note(session, actor, conversation.id, NOTE)
    note = session.get(ConversationNote, note_id)
    if note is not None:
        note.at = at + timedelta(minutes=1)  # written just after the answer, in the story
