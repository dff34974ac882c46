"""Replies and opt-out signals from customers: stored once, matched, attributed, obeyed.

- A reply is stored once per provider id (providers retry deliveries), matched to a contact
  by number or by the business-scoped user id; one with only an unknown user id is kept
  with no contact, never dropped.
- It answers the campaign message it quotes, else the last campaign message this sender
  sent that contact within 72 hours. The first reply to a message sets `replied_at` and
  counts Replied (campaign counter and `message_stats`) in the same transaction.
- A reply quoting an answer written in the Inbox (a message with no campaign) is linked to
  it but counts for no campaign; an answer is never "the last campaign message", so a
  reply after one is still credited to the campaign that started the conversation.
- A reply that is an opt-out keyword, a tap on an opt-out button, or the customer telling
  WhatsApp itself to stop marketing, opts the contact out at once through
  `contacts.service.opt_out`, the one opt-out path: running campaigns skip them from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .. import events
from ..analytics import stats
from ..channels.heard import OptOutSignal, Reply
from ..contacts import service as contacts_service
from ..inbox import conversations as inbox
from ..models import Campaign, Contact, EventLevel, Inbound, Message, MessageStatus
from ..outbox import causes as events_out
from ..words import N_, said
from . import keywords as kw
from .statuses import flag_not_on_whatsapp

S = MessageStatus
messages = Message.__table__
contacts = Contact.__table__
campaigns = Campaign.__table__
inbound = Inbound.__table__

ATTRIBUTION_WINDOW = timedelta(hours=72)
WENT_OUT = (S.SENT, S.DELIVERED, S.READ)
CUSTOMER = "the customer"


@dataclass
class ReplyEffects:
    stored: int = 0
    duplicates: int = 0
    replied: int = 0  # messages answered for the first time
    opted_out: int = 0  # contacts opted out by a reply or a WhatsApp signal
    unmatched: int = 0  # stored without a contact


def find_contact(session: Session, phone: str | None, user_id: str | None) -> Any:
    """(id, phone, wa_user_id) of the contact with this number or this user id, or None.

    The number wins: it is what the shop imported. When both come together the user id is
    kept on the contact, so a later message carrying only the id still finds them.
    """
    row = None
    if phone:
        row = session.execute(
            select(contacts.c.id, contacts.c.phone, contacts.c.wa_user_id).where(
                contacts.c.phone == phone
            )
        ).first()
    if row is None and user_id:
        return session.execute(
            select(contacts.c.id, contacts.c.phone, contacts.c.wa_user_id).where(
                contacts.c.wa_user_id == user_id
            )
        ).first()
    if row is not None and user_id and row.wa_user_id != user_id:
        # The id changes when a customer changes number; another contact may hold it then.
        taken = session.scalar(
            select(contacts.c.id).where(contacts.c.wa_user_id == user_id, contacts.c.id != row.id)
        )
        if taken is None:
            session.execute(
                update(contacts).where(contacts.c.id == row.id).values(wa_user_id=user_id[:100])
            )
    return row


def _answered(
    session: Session, sender_id: int, contact_id: int | None, context_id: str | None, at: datetime
) -> Any:
    """(id, campaign_id, sender_id) of the campaign message this reply answers, or None."""
    cols = (messages.c.id, messages.c.campaign_id, messages.c.sender_id)
    if context_id:
        quoted = select(*cols).where(messages.c.provider_message_id == context_id)
        if contact_id is not None:
            quoted = quoted.where(messages.c.contact_id == contact_id)
        else:
            quoted = quoted.where(messages.c.sender_id == sender_id)
        row = session.execute(quoted.order_by(messages.c.id.desc()).limit(1)).first()
        if row is not None:
            return row
    if contact_id is None:
        return None
    return session.execute(
        select(*cols)
        .where(
            messages.c.contact_id == contact_id,
            messages.c.sender_id == sender_id,
            messages.c.campaign_id.is_not(None),
            messages.c.status.in_(WENT_OUT),
            messages.c.sent_at >= at - ATTRIBUTION_WINDOW,
            messages.c.sent_at <= at + timedelta(minutes=5),
        )
        .order_by(messages.c.sent_at.desc(), messages.c.id.desc())
        .limit(1)
    ).first()


def _insert(session: Session, values: dict[str, Any]) -> int | None:
    """The new reply's id, or None when the provider id was stored before (a retry)."""
    dialect = session.get_bind().dialect.name
    if values.get("provider_message_id") is None:
        return session.execute(inbound.insert().values(**values).returning(inbound.c.id)).scalar()
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(inbound).values(**values)
    statement = insert.on_conflict_do_nothing(index_elements=[inbound.c.provider_message_id])
    return session.execute(statement.returning(inbound.c.id)).scalar()


def _opt_out_reason(reply: Any, keyword_list: tuple[str, ...]) -> str | None:
    """Why this reply opts its sender out, in the words the contact page shows; None if not."""
    typed = " ".join((reply.text or "").split())[:100]
    if reply.kind in ("button", "interactive"):
        if kw.is_opt_out_payload(reply.payload):
            if typed:
                return said(
                    "Tapped the opt-out button \u201c%(said)s\u201d on WhatsApp.", said=typed
                )
            return N_("Tapped the opt-out button on WhatsApp.")
        if kw.matches(typed, keyword_list):
            return said("Tapped \u201c%(said)s\u201d on WhatsApp.", said=typed)
        return None
    if reply.kind == "text" and kw.matches(reply.text, keyword_list):
        return said("Replied \u201c%(said)s\u201d on WhatsApp.", said=typed)
    return None


def store_replies(
    session: Session,
    sender_id: int,
    replies: list[Reply],
    keyword_list: tuple[str, ...],
    now: datetime,
) -> ReplyEffects:
    """Store, attribute and act on these replies heard by one sender; the caller commits."""
    effects = ReplyEffects()
    stored: list[int] = []
    for reply in replies:
        at = reply.at or now
        contact = find_contact(session, reply.phone, reply.user_id)
        contact_id = contact.id if contact is not None else None
        answered = _answered(session, sender_id, contact_id, reply.context_id, at)
        reason = _opt_out_reason(reply, keyword_list)
        opted = reason is not None and contact_id is not None
        new_id = _insert(
            session,
            {
                "phone": (reply.phone or None) and reply.phone[:20],
                "wa_user_id": (reply.user_id or None) and reply.user_id[:100],
                "contact_id": contact_id,
                "campaign_id": answered.campaign_id if answered is not None else None,
                "message_id": answered.id if answered is not None else None,
                "sender_id": sender_id,
                "provider_message_id": (reply.provider_message_id or None)
                and reply.provider_message_id[:200],
                "kind": (reply.kind or "text")[:30],
                "body": _body(reply),
                "payload": (reply.payload or None) and reply.payload[:500],
                "context_id": (reply.context_id or None) and reply.context_id[:200],
                "opted_out": opted,
                "received_at": at,
            },
        )
        if new_id is None:
            effects.duplicates += 1
            continue
        effects.stored += 1
        stored.append(new_id)
        if contact_id is None:
            effects.unmatched += 1
        else:
            # The Inbox's conversation moves in the same transaction as the reply it shows.
            inbox.touch_on_reply(
                session,
                contact_id=contact_id,
                sender_id=sender_id,
                campaign_id=answered.campaign_id if answered is not None else None,
                at=at,
                preview=_body(reply) or f"[{reply.kind or 'message'}]",
            )
        credited = answered is not None and answered.campaign_id is not None
        if credited and _first_reply(session, answered, at):
            effects.replied += 1
        if opted and reason is not None and contact_id is not None:
            effects.opted_out += contacts_service.opt_out(
                session, None, [contact_id], reason, by=CUSTOMER
            )
        if any(e.effect == "not_on_whatsapp" for e in reply.errors) and contact_id is not None:
            flag_not_on_whatsapp(session, [contact_id], now)
    events_out.replies_stored(session, stored, now)
    return effects


def _body(reply: Any) -> str | None:
    text = reply.text
    if text is None and reply.errors:
        # What the customer sent cannot be shown (an unsupported kind): say so.
        text = reply.errors[0].sentence or reply.errors[0].title or None
    return text[:10_000] if text else None


def _first_reply(session: Session, answered: Any, at: datetime) -> bool:
    """Set the message's `replied_at` and count Replied, once per message."""
    first = session.execute(
        update(messages)
        .where(messages.c.id == answered.id, messages.c.replied_at.is_(None))
        .values(replied_at=at)
    ).rowcount
    if not first:
        return False
    session.execute(
        update(campaigns)
        .where(campaigns.c.id == answered.campaign_id)
        .values(n_replied=campaigns.c.n_replied + 1)
    )
    stats.bump(session, [("replied", answered.campaign_id, answered.sender_id, at, None, 1)])
    return True


def apply_opt_outs(
    session: Session, sender_name: str, signals: list[OptOutSignal], now: datetime
) -> int:
    """The customer told WhatsApp itself to stop (or resume) marketing messages from us."""
    done = 0
    for signal in signals:
        contact = find_contact(session, signal.phone, signal.user_id)
        if contact is None:
            continue  # nobody we could message: nothing to stop
        if signal.stop:
            if signal.detail:
                reason = said(
                    "Stopped marketing messages from %(sender)s in WhatsApp itself. (%(info)s)",
                    sender=sender_name,
                    info=signal.detail[:200],
                )
            else:
                reason = said(
                    "Stopped marketing messages from %(sender)s in WhatsApp itself.",
                    sender=sender_name,
                )
            done += contacts_service.opt_out(session, None, [contact.id], reason, by=CUSTOMER)
        else:
            events.record(
                session,
                "contact.resumed_in_whatsapp",
                said(
                    "%(phone)s turned marketing messages from %(sender)s back on in WhatsApp. "
                    "They stay opted out here until someone opts them back in.",
                    phone=signal.phone,
                    sender=sender_name,
                )
                if signal.phone
                else said(
                    "A customer turned marketing messages from %(sender)s back on in WhatsApp. "
                    "They stay opted out here until someone opts them back in.",
                    sender=sender_name,
                ),
                level=EventLevel.INFO,
                data={"contact_id": contact.id},
            )
    return done
