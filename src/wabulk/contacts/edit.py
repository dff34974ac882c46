"""Adding and editing one contact by hand (the Contacts page's form).

- Unlike an import or the API's upsert, the form says exactly what the contact is: an
  emptied field is removed, a list left unticked is left, and a phone that belongs to
  another contact is refused (`PhoneTaken`) rather than merged into it.
- An opt-out or a "not on WhatsApp" flag is never touched here: those have their own
  recorded actions.
- Every change is one history line naming what changed, from what to what.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..auth.permissions import require_role
from ..errors import Conflict, ValidationError
from ..models import Contact, Role, User, list_members, utcnow
from ..words import said
from . import tallies
from .bulk import add_members, insert_contacts
from .mapping import attribute_key
from .service import (
    _contact_name,
    _lists_by_id,
    _one_phone,
    _record_contact,
    _region,
    contact_lists,
    get_contact,
)

MAX_FIELDS = 60  # fields of one contact a form may send
MAX_FIELD_NAME = 60
MAX_VALUE = 1000  # characters of one field's value


class PhoneTaken(Conflict):
    """The phone is another contact's; `contact_id` names it so a page can link to it."""

    def __init__(self, phone: str, other: Contact) -> None:
        if other.name:
            text = said(
                "%(name)s (%(phone)s) is already a contact: open it to change it, or give "
                "another number.",
                name=other.name,
                phone=phone,
            )
        else:
            text = said(
                "%(phone)s is already a contact: open it to change it, or give another number.",
                phone=phone,
            )
        super().__init__(text)
        self.field = "phone"
        self.contact_id = other.id


def create_contact(
    session: Session,
    actor: User | None,
    *,
    phone: str,
    name: str | None,
    fields: Mapping[str, str],
    list_ids: list[int],
) -> Contact:
    """A new contact; PhoneTaken when the number is already someone's."""
    require_role(actor, Role.OPERATOR)
    number = _one_phone(phone, _region(session, None))
    clean_name = _contact_name(name)
    attrs = clean_fields(fields, {})
    targets = _lists_by_id(session, list_ids)
    assert number.e164 is not None
    _refuse_taken(session, number.e164, None)
    now = utcnow()
    row = (number.e164, clean_name, json.dumps(attrs), number.country, number.timezone)
    # Inserted skipping a clash, so a contact added at the same moment elsewhere is refused
    # below instead of failing the transaction.
    if insert_contacts(session, [row], now) != 1:
        _refuse_taken(session, number.e164, None)
    contact = session.scalars(select(Contact).where(Contact.phone == number.e164)).one()
    tallies.add(session, contacts=1)
    joined = [t.name for t in targets if _join(session, t.id, contact.id, now)]
    what = f"added {contact.phone}" + (f" named {clean_name!r}" if clean_name else "")
    if attrs:
        what += " with " + ", ".join(attrs)
    if joined:
        what += " and put it in " + ", ".join(repr(n) for n in joined)
    _record_contact(session, actor, contact, "contact.created", what)
    session.flush()
    return contact


def edit_contact(
    session: Session,
    actor: User | None,
    contact_id: int,
    *,
    phone: str,
    name: str | None,
    fields: Mapping[str, str],
    list_ids: list[int],
) -> list[str]:
    """Make the contact what the form says; returns what changed (empty: nothing did)."""
    require_role(actor, Role.OPERATOR)
    contact = get_contact(session, contact_id)
    number = _one_phone(phone, _region(session, None))
    clean_name = _contact_name(name)
    old_attrs = dict(contact.attributes or {})
    attrs = clean_fields(fields, old_attrs)
    targets = _lists_by_id(session, list_ids)
    assert number.e164 is not None
    changes: list[str] = []
    if number.e164 != contact.phone:
        _refuse_taken(session, number.e164, contact.id)
        changes.append(f"phone from {contact.phone} to {number.e164}")
        contact.phone = number.e164
        contact.country, contact.timezone = number.country, number.timezone
    if clean_name != contact.name:
        changes.append(f"name from {_shown(contact.name)} to {_shown(clean_name)}")
        contact.name = clean_name
    for key in sorted(old_attrs.keys() | attrs.keys()):
        before, after = old_attrs.get(key), attrs.get(key)
        if (None if before is None else str(before)) != after:
            changes.append(f"{key} from {_shown(before)} to {_shown(after)}")
    if attrs != {k: str(v) for k, v in old_attrs.items()}:
        contact.attributes = attrs
    now = utcnow()
    changes += _set_lists(session, contact.id, {t.id: t.name for t in targets}, now)
    if not changes:
        return []
    contact.updated_at = now
    session.flush()
    _record_contact(session, actor, contact, "contact.edited", "changed " + "; ".join(changes))
    return changes


def clean_fields(fields: Mapping[str, str], old: Mapping[str, object]) -> dict[str, str]:
    """A form's fields as a contact's attributes: names as placeholders ('Due Amount' →
    'due_amount', an existing name kept as is), empty values dropped, sizes bounded."""
    if len(fields) > MAX_FIELDS:
        raise ValidationError(
            said("A contact can have at most %(n)s fields.", n=MAX_FIELDS), field="fields"
        )
    taken: set[str] = set()
    clean: dict[str, str] = {}
    for raw_key, raw_value in fields.items():
        label = " ".join(str(raw_key).split())
        value = str(raw_value).strip()
        if not value:
            continue
        if not label:
            raise ValidationError(
                said("Give the field holding %(value)s a name.", value=repr(value[:40])),
                field="fields",
            )
        if len(label) > MAX_FIELD_NAME:
            raise ValidationError(
                said("A field name has at most %(n)s characters.", n=MAX_FIELD_NAME),
                field="fields",
            )
        if len(value) > MAX_VALUE and value != str(old.get(label, "")):
            raise ValidationError(
                said(
                    "The field %(field)s has more than %(n)s characters.",
                    field=repr(label),
                    n=MAX_VALUE,
                ),
                field="fields",
            )
        key = label if label in old else attribute_key(label, taken)
        taken.add(key)
        clean[key] = value
    return clean


def _refuse_taken(session: Session, phone: str, own_id: int | None) -> None:
    other = session.scalars(select(Contact).where(Contact.phone == phone)).first()
    if other is not None and other.id != own_id:
        raise PhoneTaken(phone, other)


def _join(session: Session, list_id: int, contact_id: int, now: datetime) -> int:
    added = add_members(session, list_id, [contact_id], now)
    tallies.move_members(session, list_id, added)
    return added


def _set_lists(
    session: Session, contact_id: int, wanted: dict[int, str], now: datetime
) -> list[str]:
    """Join the wanted lists and leave the others, in one lock order (by id)."""
    current = {c.id: c.name for c in contact_lists(session, contact_id)}
    changes: list[str] = []
    for list_id in sorted(current.keys() | wanted.keys()):
        if list_id in wanted and list_id not in current:
            if _join(session, list_id, contact_id, now):
                changes.append(f"joined {wanted[list_id]!r}")
        elif list_id in current and list_id not in wanted:
            left = session.execute(
                delete(list_members).where(
                    list_members.c.list_id == list_id, list_members.c.contact_id == contact_id
                )
            ).rowcount
            tallies.move_members(session, list_id, -left)
            if left:
                changes.append(f"left {current[list_id]!r}")
    return changes


def _shown(value: object) -> str:
    if value is None or value == "":
        return "(empty)"
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")
