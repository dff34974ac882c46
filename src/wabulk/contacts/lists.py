"""Contact lists: named audiences. Deleting a list never deletes its contacts.

- A list's `member_count` is kept by every change of membership (see tallies); deleting a
  list takes its memberships and their count with it, so nothing else moves.
"""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..errors import Conflict, NotFound, ValidationError
from ..models import ContactList, Role, User
from ..words import N_, said
from . import tallies


def _clean_name(session: Session, name: str, except_id: int | None = None) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationError(N_("Give the list a name."), field="name")
    if len(name) > 120:
        raise ValidationError(N_("A list name can have at most 120 characters."), field="name")
    query = select(ContactList.id).where(func.lower(ContactList.name) == name.lower())
    if except_id is not None:
        query = query.where(ContactList.id != except_id)
    if session.scalar(query) is not None:
        raise Conflict(said("There is already a list called %(list)s.", list=repr(name)))
    return name


def get_list(session: Session, list_id: int) -> ContactList:
    found = session.get(ContactList, list_id)
    if found is None:
        raise NotFound(said("There is no list #%(id)s.", id=list_id))
    return found


def find_list(session: Session, name: str) -> ContactList | None:
    return session.scalar(
        select(ContactList).where(func.lower(ContactList.name) == " ".join(name.split()).lower())
    )


def rename_list(session: Session, actor: User | None, list_id: int, name: str) -> ContactList:
    require_role(actor, Role.OPERATOR)
    target = get_list(session, list_id)
    old = target.name
    target.name = _clean_name(session, name, except_id=list_id)
    who = events.actor_name(actor)
    events.record(
        session,
        "list.renamed",
        said(
            "%(who)s renamed the list %(old)s to %(list)s.",
            who=who,
            old=repr(old),
            list=repr(target.name),
        ),
        user=actor,
    )
    return target


def delete_list(session: Session, actor: User | None, list_id: int) -> str:
    """Delete a list; its contacts stay (only the memberships go)."""
    require_role(actor, Role.OPERATOR)
    target = get_list(session, list_id)
    name = target.name
    from ..models import campaign_lists

    used = session.scalar(
        select(func.count()).select_from(campaign_lists).where(campaign_lists.c.list_id == list_id)
    )
    if used:
        raise Conflict(
            said(
                "The list %(list)s is the audience of %(n)s campaign(s); it is kept so their "
                "reports stay complete.",
                list=repr(name),
                n=used,
            )
        )
    segment = _segment_using(session, list_id)
    if segment is not None:
        raise Conflict(
            said(
                "The segment %(segment)s is made from the list %(list)s; change or delete the "
                "segment first.",
                segment=repr(segment),
                list=repr(name),
            )
        )
    session.delete(target)
    who = events.actor_name(actor)
    events.record(
        session,
        "list.deleted",
        said(
            "%(who)s deleted the list %(list)s (its contacts were kept).", who=who, list=repr(name)
        ),
        user=actor,
    )
    return name


def _segment_using(session: Session, list_id: int) -> str | None:
    """The name of a segment with a condition on this list, if any. Refused rather than
    left dangling: SQLite numbers a new list from the largest id, so a later list could
    take this one's id and the segment would quietly send to it. Segments are few."""
    from ..models import Segment

    for name, terms in session.execute(select(Segment.name, Segment.terms)):
        for condition in (terms or {}).get("conditions") or []:
            if condition.get("field") == "list" and list_id in (condition.get("value") or []):
                return str(name)
    return None


def create_list(
    session: Session, actor: User | None, name: str, description: str | None = None
) -> ContactList:
    require_role(actor, Role.OPERATOR)
    name = _clean_name(session, name)
    contact_list = ContactList(name=name, description=(description or "").strip() or None)
    session.add(contact_list)
    session.flush()
    who = events.actor_name(actor)
    events.record(
        session,
        "list.created",
        said("%(who)s created the list %(list)s.", who=who, list=repr(name)),
        user=actor,
    )
    return contact_list


def lists_with_counts() -> Select[tuple[ContactList, int]]:
    """Every list with its number of members (the maintained count), by name."""
    return select(ContactList, ContactList.member_count).order_by(ContactList.name)


def count_contacts(session: Session) -> int:
    """Every contact, from the tally (a million contacts are not counted on a request)."""
    return tallies.totals(session)[0]
