"""The demo's customers: about 150 contacts with plausible names and fields, in two lists."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..contacts.bulk import add_members
from ..contacts.phones import normalise
from ..models import Contact, ContactList
from . import samples

RANGE_FIRST = f"{samples.PHONE_PREFIX}{samples.PHONE_RANGE[0]}"
RANGE_LAST = f"{samples.PHONE_PREFIX}{samples.PHONE_RANGE[-1]}"


@dataclass
class Person:
    """A demo contact and the part it plays in the story the finished campaigns tell."""

    contact: Contact
    lists: set[str] = field(default_factory=set)  # "retail", "due"
    # WhatsApp will say this number has no account the first time a campaign tries it.
    unknown_to_whatsapp: bool = False


@dataclass
class Cast:
    people: list[Person]
    lists: dict[str, ContactList]
    phones_skipped: int  # numbers of the range already held by the user's own contacts


def taken_phones(session: Session) -> set[str]:
    """Phones of the drama range already in use (one index range scan on contacts.phone)."""
    return set(
        session.scalars(select(Contact.phone).where(Contact.phone.between(RANGE_FIRST, RANGE_LAST)))
    )


def free_phones(session: Session, n: int) -> tuple[list[str], int]:
    """The first `n` numbers of the range nobody uses, and how many used ones were passed."""
    taken = taken_phones(session)
    phones: list[str] = []
    skipped = 0
    for number in samples.PHONE_RANGE:
        phone = f"{samples.PHONE_PREFIX}{number}"
        if phone in taken:
            skipped += 1
            continue
        phones.append(phone)
        if len(phones) == n:
            break
    return phones, skipped


def _attributes(rng: random.Random, due: bool) -> dict[str, str]:
    attributes = {
        "city": rng.choice(samples.CITIES),
        "tier": rng.choice(samples.TIERS),
        "customer_since": str(rng.randint(2015, 2024)),
    }
    if due:
        attributes["due_amount"] = f"{rng.randrange(250, 9000, 50):,}"
    return attributes


def make_cast(
    session: Session,
    rng: random.Random,
    lists: dict[str, ContactList],
    now: datetime,
) -> Cast:
    """Insert the contacts and their memberships.

    - The first ~110 are retail customers, the last ~60 have an amount due; 20 are both.
    - Two opted out before any campaign; five are not on WhatsApp (found out later).
    - A number of the range that a user's contact already has is skipped, never touched.
    """
    phones, skipped = free_phones(session, samples.CONTACT_COUNT)
    imported_at = now - timedelta(days=30)
    people: list[Person] = []
    for i, phone in enumerate(phones):
        number = normalise(phone, "")
        if number.e164 is None:  # the range is chosen to be valid; guard the assumption
            raise RuntimeError(f"demo phone {phone} does not validate: {number.error}")
        share = i / max(1, len(phones) - 1)
        in_lists = set()
        if share < 0.74:
            in_lists.add("retail")
        if share >= 0.60:
            in_lists.add("due")
        name = f"{rng.choice(samples.FIRST_NAMES)} {rng.choice(samples.LAST_NAMES)}"
        contact = Contact(
            phone=number.e164,
            name=name,
            attributes=_attributes(rng, "due" in in_lists),
            country=number.country,
            timezone=number.timezone,
            created_at=imported_at,
            updated_at=imported_at,
            is_demo=True,
        )
        people.append(Person(contact, in_lists))
    session.add_all([p.contact for p in people])
    session.flush()
    for person in rng.sample(people, min(2, len(people))):
        person.contact.opted_out_at = imported_at + timedelta(days=2)
        person.contact.opt_out_reason = "Asked in the store not to get messages"
    reachable = [p for p in people if p.contact.opted_out_at is None]
    for person in rng.sample(reachable, min(5, len(reachable))):
        person.unknown_to_whatsapp = True
    for key, contact_list in lists.items():
        ids = [p.contact.id for p in people if key in p.lists]
        add_members(session, contact_list.id, ids, imported_at)
    return Cast(people, lists, skipped)
