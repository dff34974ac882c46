"""Contacts: search, one contact's record, opt-outs and list membership.

- Opt-outs are absolute: an opted-out contact stays in its lists (so nothing is lost) but
  every audience excludes it; opting back in needs a recorded reason.
- Bulk actions take explicit contact ids (a page selection) and run set-based.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, String, and_, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..errors import Conflict, NotFound, ValidationError
from ..models import (
    Contact,
    ContactList,
    Event,
    Import,
    Message,
    Role,
    User,
    list_members,
    utcnow,
)
from .bulk import add_members as _add_members

OPT_STATUSES = ("all", "subscribed", "opted_out")


@dataclass(frozen=True)
class ContactFilter:
    q: str = ""
    list_id: int | None = None
    status: str = "all"  # all | subscribed | opted_out

    def __post_init__(self) -> None:
        if self.status not in OPT_STATUSES:
            raise ValidationError(f"Unknown status filter {self.status!r}.", field="status")


def filtered(f: ContactFilter) -> Select[tuple[Contact]]:
    """Contacts matching a filter, newest first (callers page with `before_id`)."""
    query = select(Contact)
    if f.list_id is not None:
        query = query.join(list_members, list_members.c.contact_id == Contact.id).where(
            list_members.c.list_id == f.list_id
        )
    if f.status == "opted_out":
        query = query.where(Contact.opted_out_at.is_not(None))
    elif f.status == "subscribed":
        query = query.where(Contact.opted_out_at.is_(None))
    term = f.q.strip()
    if term:
        like = f"%{term.lower()}%"
        digits = "".join(ch for ch in term if ch.isdigit())
        conditions = [
            func.lower(Contact.name).like(like),
            # Attributes searched as JSON text: slow past a few hundred thousand contacts,
            # fine until the analytics issue adds an index for it.
            func.lower(cast(Contact.attributes, String)).like(like),
        ]
        if len(digits) >= 3:
            conditions.append(Contact.phone.like(f"%{digits}%"))
        query = query.where(or_(*conditions))
    return query.order_by(Contact.id.desc())


def page(
    session: Session, f: ContactFilter, before_id: int | None, size: int = 50
) -> tuple[list[Contact], int | None]:
    """One page and the cursor of the next (keyset on id: deep pages cost the same)."""
    query = filtered(f)
    if before_id is not None:
        query = query.where(Contact.id < before_id)
    rows = list(session.scalars(query.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def count(session: Session, f: ContactFilter) -> int:
    return (
        session.scalar(select(func.count()).select_from(filtered(f).order_by(None).subquery())) or 0
    )


def get_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"There is no contact #{contact_id}.")
    return contact


def contact_lists(session: Session, contact_id: int) -> list[ContactList]:
    return list(
        session.scalars(
            select(ContactList)
            .join(list_members, list_members.c.list_id == ContactList.id)
            .where(list_members.c.contact_id == contact_id)
            .order_by(ContactList.name)
        )
    )


def contact_history(contact_id: int, limit: int = 50) -> Select[tuple[Event, str | None]]:
    """Events about this contact (opt-outs, list changes), newest first."""
    return (
        select(Event, User.email)
        .outerjoin(User, User.id == Event.user_id)
        .where(Event.data["contact_id"].as_integer() == contact_id)
        .order_by(Event.id.desc())
        .limit(limit)
    )


def contact_messages(contact_id: int, limit: int = 50) -> Select[tuple[Message]]:
    return (
        select(Message)
        .where(Message.contact_id == contact_id)
        .order_by(Message.id.desc())
        .limit(limit)
    )


def _ids(contact_ids: list[int]) -> list[int]:
    ids = sorted({int(i) for i in contact_ids})
    if not ids:
        raise ValidationError("Select at least one contact.", field="contact_ids")
    return ids


def opt_out(session: Session, actor: User | None, contact_ids: list[int], reason: str) -> int:
    """Mark contacts opted out; returns how many changed. Already opted-out ones are left."""
    require_role(actor, Role.OPERATOR)
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError("Say why (for example: asked by phone to stop).", field="reason")
    now = utcnow()
    changed = list(
        session.scalars(
            select(Contact).where(Contact.id.in_(_ids(contact_ids)), Contact.opted_out_at.is_(None))
        )
    )
    for contact in changed:
        contact.opted_out_at, contact.opt_out_reason, contact.updated_at = now, reason[:500], now
        _record_contact(
            session, actor, contact, "contact.opted_out", f"opted out {contact.phone}: {reason}"
        )
    return len(changed)


def opt_in(session: Session, actor: User | None, contact_id: int, reason: str) -> Contact:
    """Opt a contact back in; a reason is required and recorded."""
    require_role(actor, Role.OPERATOR)
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError(
            "Say why this contact may be messaged again (for example: asked to rejoin on 3 May).",
            field="reason",
        )
    contact = get_contact(session, contact_id)
    if contact.opted_out_at is None:
        raise Conflict(f"{contact.phone} is not opted out.")
    contact.opted_out_at, contact.opt_out_reason, contact.updated_at = None, None, utcnow()
    _record_contact(
        session, actor, contact, "contact.opted_in", f"opted {contact.phone} back in: {reason}"
    )
    return contact


def clear_not_on_whatsapp(session: Session, actor: User | None, contact_id: int) -> Contact:
    """Let the next campaign try a number WhatsApp said had no account (it may have one now).

    - Only the flag goes: a campaign already past this contact does not come back to it.
    """
    require_role(actor, Role.OPERATOR)
    contact = get_contact(session, contact_id)
    if contact.not_on_whatsapp_at is None:
        raise Conflict(f"{contact.phone} is not marked as not on WhatsApp.")
    contact.not_on_whatsapp_at, contact.updated_at = None, utcnow()
    _record_contact(
        session,
        actor,
        contact,
        "contact.whatsapp_cleared",
        f"asked the next campaign to try {contact.phone} on WhatsApp again",
    )
    return contact


def _record_contact(
    session: Session, actor: User | None, contact: Contact, kind: str, what: str
) -> None:
    who = events.actor_name(actor)
    events.record(session, kind, f"{who} {what}", user=actor, data={"contact_id": contact.id})


def add_to_list(session: Session, actor: User | None, list_id: int, contact_ids: list[int]) -> int:
    require_role(actor, Role.OPERATOR)
    target = _list(session, list_id)
    ids = _ids(contact_ids)
    existing = set(session.scalars(select(Contact.id).where(Contact.id.in_(ids))))
    before = _members(session, list_id)
    _add_members(session, list_id, sorted(existing), utcnow())
    added = _members(session, list_id) - before
    who = events.actor_name(actor)
    events.record(
        session,
        "list.members_added",
        f"{who} added {added} contact(s) to {target.name!r}.",
        user=actor,
    )
    return added


def remove_from_list(
    session: Session, actor: User | None, list_id: int, contact_ids: list[int]
) -> int:
    require_role(actor, Role.OPERATOR)
    target = _list(session, list_id)
    removed = session.execute(
        delete(list_members).where(
            and_(
                list_members.c.list_id == list_id, list_members.c.contact_id.in_(_ids(contact_ids))
            )
        )
    ).rowcount
    who = events.actor_name(actor)
    events.record(
        session,
        "list.members_removed",
        f"{who} removed {removed} contact(s) from {target.name!r}.",
        user=actor,
    )
    return removed


def _members(session: Session, list_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(list_members).where(list_members.c.list_id == list_id)
        )
        or 0
    )


def _list(session: Session, list_id: int) -> ContactList:
    found = session.get(ContactList, list_id)
    if found is None:
        raise NotFound(f"There is no list #{list_id}.")
    return found


def attribute_keys(session: Session, f: ContactFilter, limit: int = 500) -> list[str]:
    """Every attribute name used by the filtered contacts, in first-seen order."""
    keys: dict[str, None] = {}
    for (attrs,) in session.execute(
        filtered(f)
        .with_only_columns(Contact.attributes)
        .order_by(None)
        .execution_options(yield_per=5000)
    ):
        for key in attrs or {}:
            if key not in keys:
                keys[key] = None
                if len(keys) >= limit:
                    return list(keys)
    return list(keys)


def placeholder_keys(session: Session, newest: int = 2000) -> list[str]:
    """Attribute names to suggest as placeholders, without reading a million contacts.

    - Every import's column mapping (small table), then the newest contacts' own keys
      (contacts added by hand or through the API).
    """
    keys: dict[str, None] = {}
    for (mapping,) in session.execute(select(Import.mapping).order_by(Import.id.desc())):
        for key in ((mapping or {}).get("attributes") or {}).values():
            keys.setdefault(key, None)
    recent = select(Contact.attributes).order_by(Contact.id.desc()).limit(newest)
    for (attrs,) in session.execute(recent):
        for key in attrs or {}:
            keys.setdefault(key, None)
    return sorted(keys)
