"""Contact lists: named audiences. Deleting a list never deletes its contacts."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..errors import Conflict, ValidationError
from ..models import Contact, ContactList, Role, User, list_members


def create_list(
    session: Session, actor: User | None, name: str, description: str | None = None
) -> ContactList:
    require_role(actor, Role.OPERATOR)
    name = " ".join(name.split())
    if not name:
        raise ValidationError("Give the list a name.", field="name")
    if len(name) > 120:
        raise ValidationError("A list name can have at most 120 characters.", field="name")
    exists = session.scalar(
        select(ContactList.id).where(func.lower(ContactList.name) == name.lower())
    )
    if exists is not None:
        raise Conflict(f"There is already a list called {name!r}.")
    contact_list = ContactList(name=name, description=(description or "").strip() or None)
    session.add(contact_list)
    session.flush()
    who = actor.email if actor else "The command line"
    events.record(session, "list.created", f"{who} created the list {name!r}.", user=actor)
    return contact_list


def lists_with_counts() -> Select[tuple[ContactList, int]]:
    """Every list with its number of members, by name."""
    members = (
        select(list_members.c.list_id, func.count().label("n"))
        .group_by(list_members.c.list_id)
        .subquery()
    )
    return (
        select(ContactList, func.coalesce(members.c.n, 0))
        .outerjoin(members, members.c.list_id == ContactList.id)
        .order_by(ContactList.name)
    )


def count_contacts(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Contact)) or 0
