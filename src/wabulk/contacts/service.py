"""Contacts: search, one contact's record, opt-outs and list membership.

- Opt-outs are absolute: an opted-out contact stays in its lists (so nothing is lost) but
  every audience excludes it; opting back in needs a recorded reason.
- Bulk actions take explicit contact ids (a page selection) and run set-based.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Select, String, and_, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..errors import Conflict, NotFound, ValidationError
from ..models import (
    Answer,
    Campaign,
    Contact,
    ContactList,
    Event,
    Import,
    ImportIssue,
    Inbound,
    Message,
    Role,
    User,
    list_members,
    utcnow,
)
from ..outbox import causes as events_out
from ..words import N_, said
from . import tallies
from .bulk import add_members as _add_members
from .bulk import insert_contacts
from .mapping import attribute_key
from .phone_rules import LANDLINE_NOTE
from .phones import PhoneResult, clean_cell, is_region, normalise, phone_problem

OPT_STATUSES = ("all", "subscribed", "opted_out", "not_on_whatsapp")


@dataclass(frozen=True)
class ContactFilter:
    q: str = ""
    list_id: int | None = None
    status: str = "all"  # all | subscribed | opted_out | not_on_whatsapp

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
    elif f.status == "not_on_whatsapp":
        query = query.where(Contact.not_on_whatsapp_at.is_not(None))
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


# A filtered count stops here: "more than 10,000" is as useful as an exact 734,112, and
# counting every match of a broad search reads a million rows on every page view.
COUNT_CAP = 10_000


class Matching(NamedTuple):
    n: int
    more: bool  # True: more than `n` match (counting stopped there)


def count(session: Session, f: ContactFilter) -> Matching:
    """How many contacts match: exact up to COUNT_CAP, else "more than COUNT_CAP".

    - A filter the maintained counters answer (only a list, only opted out or subscribed)
      is exact whatever the size, and costs a primary-key read.
    """
    if f == ContactFilter(list_id=f.list_id) and f.list_id is not None:
        members = select(ContactList.member_count).where(ContactList.id == f.list_id)
        return Matching(session.scalar(members) or 0, False)
    if f == ContactFilter(status=f.status) and f.status in ("opted_out", "subscribed"):
        everyone, opted_out = tallies.totals(session)
        return Matching(opted_out if f.status == "opted_out" else everyone - opted_out, False)
    capped = filtered(f).with_only_columns(Contact.id).order_by(None).limit(COUNT_CAP + 1)
    n = session.scalar(select(func.count()).select_from(capped.subquery())) or 0
    return Matching(COUNT_CAP, True) if n > COUNT_CAP else Matching(n, False)


def get_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(said("There is no contact #%(id)s.", id=contact_id))
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


def contact_messages(
    contact_id: int, limit: int = 50, before_id: int | None = None
) -> Select[tuple[Message, str | None, str | None]]:
    """Every message the contact received, newest first: a campaign's with its name, an
    answer written in the Inbox (no campaign) with its author's email.

    - Served by ix_messages_contact_id; `before_id` pages by id instead of OFFSET.
    """
    query = (
        select(Message, Campaign.name, User.email)
        .outerjoin(Campaign, Campaign.id == Message.campaign_id)
        .outerjoin(Answer, Answer.message_id == Message.id)
        .outerjoin(User, User.id == Answer.author_id)
        .where(Message.contact_id == contact_id)
        .order_by(Message.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(Message.id < before_id)
    return query


def contact_replies(contact_id: int, message_ids: list[int]) -> Select[tuple[Inbound]]:
    """What the contact wrote back to these messages, oldest first (ix_inbound_contact_id_…)."""
    return (
        select(Inbound)
        .where(Inbound.contact_id == contact_id, Inbound.message_id.in_(message_ids))
        .order_by(Inbound.received_at, Inbound.id)
    )


def other_replies(contact_id: int, limit: int = 20) -> Select[tuple[Inbound]]:
    """What the contact wrote that answers no campaign message we know, newest first."""
    return (
        select(Inbound)
        .where(Inbound.contact_id == contact_id, Inbound.message_id.is_(None))
        .order_by(Inbound.received_at.desc(), Inbound.id.desc())
        .limit(limit)
    )


def message_history(
    session: Session, contact_id: int, before_id: int | None = None, size: int = 50
) -> tuple[list[tuple[Message, str | None, str | None, list[Inbound]]], int | None]:
    """One page of the contact's messages, each with its campaign's name (None for an
    Inbox answer), an answer's author and the replies to it, and the cursor of the next
    older page."""
    rows = session.execute(contact_messages(contact_id, size + 1, before_id)).all()
    more = len(rows) > size
    rows = rows[:size]
    replies: dict[int, list[Inbound]] = {}
    if rows:
        ids = [m.id for m, _, _ in rows]
        for reply in session.scalars(contact_replies(contact_id, ids)):
            replies.setdefault(reply.message_id or 0, []).append(reply)
    page = [(m, name, author, replies.get(m.id, [])) for m, name, author in rows]
    return page, (rows[-1][0].id if more else None)


def _ids(contact_ids: list[int]) -> list[int]:
    ids = sorted({int(i) for i in contact_ids})
    if not ids:
        raise ValidationError(N_("Select at least one contact."), field="contact_ids")
    return ids


def opt_out(
    session: Session,
    actor: User | None,
    contact_ids: list[int],
    reason: str,
    *,
    by: str | None = None,
) -> int:
    """Mark contacts opted out; returns how many changed. Already opted-out ones are left.

    - `by` names who asked when no person did (the customer's own reply), for the Event.
    """
    require_role(actor, Role.OPERATOR)
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError(N_("Say why (for example: asked by phone to stop)."), field="reason")
    now = utcnow()
    # Conditional, so a contact opted out at the same moment by someone else counts once.
    changed = session.execute(
        update(Contact)
        .where(Contact.id.in_(_ids(contact_ids)), Contact.opted_out_at.is_(None))
        .values(opted_out_at=now, opt_out_reason=reason[:500], updated_at=now)
        .returning(Contact.id, Contact.phone)
    ).all()
    who = by or events.actor_name(actor)
    for contact_id, phone in changed:
        events.record(
            session,
            "contact.opted_out",
            said(
                "%(phone)s was opted out by %(who)s: %(reason)s",
                phone=phone,
                who=who,
                reason=reason,
            ),
            user=actor,
            data={"contact_id": contact_id},
        )
    tallies.add(session, opted_out=len(changed))
    events_out.opted_out(session, [row[0] for row in changed], reason[:500], who, now)
    return len(changed)


def opt_in(session: Session, actor: User | None, contact_id: int, reason: str) -> Contact:
    """Opt a contact back in; a reason is required and recorded."""
    require_role(actor, Role.OPERATOR)
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError(
            N_(
                "Say why this contact may be messaged again "
                "(for example: asked to rejoin on 3 May)."
            ),
            field="reason",
        )
    contact = get_contact(session, contact_id)
    # Conditional, so two people opting the same contact in move the tally once.
    back_in = session.execute(
        update(Contact)
        .where(Contact.id == contact_id, Contact.opted_out_at.is_not(None))
        .values(opted_out_at=None, opt_out_reason=None, updated_at=utcnow())
    ).rowcount
    if not back_in:
        raise Conflict(said("%(phone)s is not opted out.", phone=contact.phone))
    tallies.add(session, opted_out=-1)
    _record_said(
        session,
        actor,
        contact,
        "contact.opted_in",
        said(
            "%(who)s opted %(phone)s back in: %(reason)s",
            who=events.actor_name(actor),
            phone=contact.phone,
            reason=reason,
        ),
    )
    return contact


def clear_not_on_whatsapp(session: Session, actor: User | None, contact_id: int) -> Contact:
    """Let the next campaign try a number WhatsApp said had no account (it may have one now).

    - Only the flag goes: a campaign already past this contact does not come back to it.
    """
    require_role(actor, Role.OPERATOR)
    contact = get_contact(session, contact_id)
    if contact.not_on_whatsapp_at is None:
        raise Conflict(said("%(phone)s is not marked as not on WhatsApp.", phone=contact.phone))
    contact.not_on_whatsapp_at, contact.updated_at = None, utcnow()
    _record_said(
        session,
        actor,
        contact,
        "contact.whatsapp_cleared",
        said(
            "%(who)s asked the next campaign to try %(phone)s on WhatsApp again",
            who=events.actor_name(actor),
            phone=contact.phone,
        ),
    )
    return contact


def upsert_contact(
    session: Session,
    actor: User | None,
    *,
    phone: str,
    name: str | None = None,
    attributes: dict | None = None,
    list_ids: list[int] | None = None,
    default_country: str | None = None,
) -> tuple[Contact, bool]:
    """Create a contact, or update the one with this phone; (the contact, whether created).

    - The phone is normalised as an imported one is; a number without its country code
      takes `default_country`, else the default country under Settings.
    - Nothing is erased, as with a re-import: a name replaces the old one only when given,
      attributes merge into the old ones (empty values skipped), an opt-out stays.
    - Attribute names become placeholder names as a sheet's columns do ('Due Amount' →
      'due_amount'); values are text or numbers.
    - The lists are joined (never left); the counts move in this transaction.
    """
    require_role(actor, Role.OPERATOR)
    number = _one_phone(phone, _region(session, default_country))
    clean_name = _contact_name(name)
    attrs = _attributes(attributes)
    targets = _lists_by_id(session, list_ids)
    now = utcnow()
    assert number.e164 is not None
    row = (number.e164, clean_name, json.dumps(attrs), number.country, number.timezone)
    created = insert_contacts(session, [row], now) == 1
    # Locked: two updates of one contact must not each merge into the attributes they read.
    contact = session.scalars(
        select(Contact)
        .where(Contact.phone == number.e164)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    changed: list[str] = []
    if not created:
        if clean_name and clean_name != contact.name:
            contact.name = clean_name
            changed.append("name")
        merged = {**(contact.attributes or {}), **attrs}
        if merged != (contact.attributes or {}):
            contact.attributes = merged
            changed.append("attributes")
        if contact.country is None and number.country:
            contact.country, contact.timezone = number.country, contact.timezone or number.timezone
            changed.append("country")
        if changed:
            contact.updated_at = now
    joined = []
    for target in targets:
        added = _add_members(session, target.id, [contact.id], now)
        tallies.move_members(session, target.id, added)
        if added:
            joined.append(repr(target.name))
    session.flush()
    if created:
        tallies.add(session, contacts=1)
    what = ("added " if created else "updated ") + contact.phone
    if changed:
        what += f" ({', '.join(changed)})"
    if joined:
        what += f" and put it in {', '.join(joined)}"
    if created or changed or joined:
        kind = "contact.created" if created else "contact.updated"
        _record_contact(session, actor, contact, kind, what)
    return contact, created


def _region(session: Session, default_country: str | None) -> str:
    if default_country:
        code = default_country.strip().upper()
        if not is_region(code):
            raise ValidationError(
                said(
                    "%(code)s is not a country code such as IN or US.", code=repr(default_country)
                ),
                field="default_country",
            )
        return code
    from ..app_settings import default_country as settings_country

    return settings_country(session) or ""


def _one_phone(phone: object, region: str) -> PhoneResult:
    text = clean_cell(phone)
    if not text.strip():
        raise ValidationError(N_("Give the contact's phone number."), field="phone")
    if len(text) > 60:
        raise ValidationError(N_("A phone number has at most 60 characters."), field="phone")
    result = normalise(text, region or "ZZ")
    if result.e164 is None:
        raise ValidationError(phone_problem(text, result.error, region), field="phone")
    if result.extras:
        raise ValidationError(
            said(
                "%(phone)s holds more than one phone number; give one per contact.",
                phone=repr(text),
            ),
            field="phone",
        )
    return result


def _contact_name(name: object) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise ValidationError(N_("The name must be text."), field="name")
    clean = " ".join(name.split())
    if len(clean) > 200:
        raise ValidationError(N_("A name can have at most 200 characters."), field="name")
    return clean or None


def _attributes(attributes: object) -> dict[str, str]:
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise ValidationError(
            N_('Attributes are names with values, such as {"city": "Pune"}.'), field="attributes"
        )
    taken: set[str] = set()
    clean: dict[str, str] = {}
    for key, value in attributes.items():
        if value is None or value == "":
            continue  # as an empty cell: never erases
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError(
                said("The attribute %(key)s must be text or a number.", key=repr(key)),
                field="attributes",
            )
        text = value.strip() if isinstance(value, str) else str(value)
        if text:
            clean[attribute_key(str(key), taken)] = text
    return clean


def _lists_by_id(session: Session, list_ids: list[int] | None) -> list[ContactList]:
    try:
        ids = sorted({int(i) for i in list_ids or []})
    except (TypeError, ValueError):
        raise ValidationError(N_("List ids are whole numbers."), field="list_ids") from None
    found = list(session.scalars(select(ContactList).where(ContactList.id.in_(ids))))
    missing = sorted(set(ids) - {c.id for c in found})
    if missing:
        raise ValidationError(
            "There is no list " + ", ".join(f"#{i}" for i in missing) + ".", field="list_ids"
        )
    return sorted(found, key=lambda c: c.id)  # one lock order for the member counts


def _record_contact(
    session: Session, actor: User | None, contact: Contact, kind: str, what: str
) -> None:
    who = events.actor_name(actor)
    _record_said(session, actor, contact, kind, f"{who} {what}")


def _record_said(
    session: Session, actor: User | None, contact: Contact, kind: str, text: str
) -> None:
    """An Event about one contact, its text whole (a sentence of wabulk.words)."""
    events.record(session, kind, text, user=actor, data={"contact_id": contact.id})


def add_to_list(session: Session, actor: User | None, list_id: int, contact_ids: list[int]) -> int:
    require_role(actor, Role.OPERATOR)
    target = _list(session, list_id)
    ids = _ids(contact_ids)
    existing = set(session.scalars(select(Contact.id).where(Contact.id.in_(ids))))
    added = _add_members(session, list_id, sorted(existing), utcnow())
    tallies.move_members(session, list_id, added)
    who = events.actor_name(actor)
    events.record(
        session,
        "list.members_added",
        said(
            "%(who)s added %(n)s contact(s) to %(list)s.", who=who, n=added, list=repr(target.name)
        ),
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
    tallies.move_members(session, list_id, -removed)
    who = events.actor_name(actor)
    events.record(
        session,
        "list.members_removed",
        said(
            "%(who)s removed %(n)s contact(s) from %(list)s.",
            who=who,
            n=removed,
            list=repr(target.name),
        ),
        user=actor,
    )
    return removed


def _list(session: Session, list_id: int) -> ContactList:
    found = session.get(ContactList, list_id)
    if found is None:
        raise NotFound(said("There is no list #%(id)s.", id=list_id))
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


def import_landlines(session: Session, import_id: int, limit: int = 20) -> tuple[int, list]:
    """How many numbers an import took are landlines, and the first `limit` of their rows
    (notes of the import's report, found by their wording: no column says it)."""
    noted = select(ImportIssue).where(
        ImportIssue.import_id == import_id,
        ImportIssue.rejected.is_(False),
        ImportIssue.reason.like(f"%; {LANDLINE_NOTE}%"),
    )
    n = session.scalar(select(func.count()).select_from(noted.subquery())) or 0
    rows = session.scalars(noted.order_by(ImportIssue.row_number).limit(limit)).all() if n else []
    return n, list(rows)
