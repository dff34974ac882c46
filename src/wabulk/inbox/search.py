"""The Inbox's search by name or number, over every conversation, open and done.

- One walk per state down ix_conversations_state_last_activity_at, each stopping after a
  page of matches, merged by the caller: the rows read grow with the matches wanted, not
  with the table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, true, union_all

from ..models import Contact, Conversation, ConversationState

c = Conversation.__table__.c


def _escaped(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def matches(q: str, max_query: int) -> Any:
    """The condition of a search by name or number; None when nothing is searched."""
    term = " ".join(q.split())[:max_query]
    if not term:
        return None
    conditions = [func.lower(Contact.name).like(f"%{_escaped(term.lower())}%", escape="\\")]
    digits = "".join(ch for ch in term if ch.isdigit())
    if len(digits) >= 3:
        conditions.append(Contact.phone.like(f"%{digits}%"))
    return or_(*conditions)


def keyset(before: tuple[datetime, int] | None) -> Any:
    if before is None:
        return true()
    at, last_id = before
    # The first bound alone is what an index range can use; the second breaks ties.
    return and_(c.last_activity_at <= at, or_(c.last_activity_at < at, c.id < last_id))


def found_ids(condition: Any, before: tuple[datetime, int] | None, limit: int) -> Any:
    """The ids of the newest `limit` conversations that match, open and done alike.

    - One walk per state down ix_conversations_state_last_activity_at, each stopping at
      `limit` matches, merged: a search then reads about as many rows at 100,000
      conversations as at 1,000 (the same share of them match), where one walk over
      both states would sort every conversation first.
    """
    walks = []
    for state in ConversationState:
        walk = (
            select(c.id, c.last_activity_at)
            .join(Contact, Contact.id == c.contact_id)
            .where(c.state == state, condition, keyset(before))
            .order_by(c.last_activity_at.desc(), c.id.desc())
            .limit(limit)
            .subquery()
        )
        walks.append(select(walk.c.id))
    return union_all(*walks).subquery()
