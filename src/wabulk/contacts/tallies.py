"""Contact counts kept up to date, so no page counts a million rows.

- `tallies` holds the number of contacts and of opted-out contacts; `contact_lists.member_count`
  the members of each list. Every write that changes them moves them in its own transaction
  (`add`, `move_members`), by the rows the statement actually changed, never by what it meant to.
- Moves are `n = n + delta` in SQL: concurrent writers queue on the row lock and none is lost.
  Call them last in a transaction: the row lock is held until commit, and a transaction that
  waited on it while holding other rows' locks could deadlock with one that holds it.
- `recount` recomputes everything from the tables (after bulk loads, or to repair).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..analytics import settled
from ..models import Contact, ContactList, Tally, list_members

CONTACTS = "contacts"
OPTED_OUT = "contacts_opted_out"


def totals(session: Session) -> tuple[int, int]:
    """(contacts, opted-out contacts), read from the tallies by primary key."""
    found = dict(
        session.execute(
            select(Tally.key, Tally.n).where(Tally.key.in_((CONTACTS, OPTED_OUT)))
        ).all()
    )
    return int(found.get(CONTACTS, 0)), int(found.get(OPTED_OUT, 0))


def _insert(session: Session) -> Callable[..., Any]:
    # INSERT … ON CONFLICT is spelt the same on both, but SQLAlchemy builds it per dialect.
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def add(session: Session, *, contacts: int = 0, opted_out: int = 0) -> None:
    """Move the tallies by these deltas (either may be negative); missing rows are created."""
    # Keys in a fixed order: two transactions moving both rows lock them in the same order.
    deltas = [(k, n) for k, n in ((CONTACTS, contacts), (OPTED_OUT, opted_out)) if n]
    if not deltas:
        return
    stmt = _insert(session)(Tally).values([{"key": k, "n": n} for k, n in deltas])
    session.execute(
        stmt.on_conflict_do_update(index_elements=["key"], set_={"n": Tally.n + stmt.excluded.n})
    )
    if opted_out < 0:
        # An opt-in takes back an opt-out of some past day: the opt-out chart changes.
        # After the tallies, so every writer takes these rows' locks in the same order.
        settled.touch(session)


def move_members(session: Session, list_id: int, delta: int) -> None:
    """Move a list's member_count by the memberships a statement inserted (+) or deleted (-)."""
    if delta:
        session.execute(
            update(ContactList)
            .where(ContactList.id == list_id)
            .values(member_count=ContactList.member_count + delta)
        )


def recount(session: Session) -> tuple[int, int]:
    """Recompute the tallies and every list's member_count from the tables; the new totals.

    - Reads every contact and membership: for `wabulk contacts recount`, the demo data and
      benchmark fills, never for a page.
    """
    contacts, opted_out = session.execute(
        select(func.count(), func.count(Contact.opted_out_at)).select_from(Contact)
    ).one()
    stmt = _insert(session)(Tally).values(
        [{"key": CONTACTS, "n": contacts}, {"key": OPTED_OUT, "n": opted_out}]
    )
    session.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"n": stmt.excluded.n}))
    members = (
        select(func.count())
        .select_from(list_members)
        .where(list_members.c.list_id == ContactList.id)
        .scalar_subquery()
    )
    session.execute(
        update(ContactList)
        .values(member_count=members)
        .execution_options(synchronize_session=False)
    )
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, ContactList):  # would otherwise show its old count
            session.expire(loaded, ["member_count"])
    settled.touch(session)  # opt-outs may have been written with past dates
    return int(contacts), int(opted_out)
