"""Real customers to show a message for: found by a search, picked at random, or the one a
campaign's message went to.

Every query here is bounded: a search stops at `limit` rows, a random pick is a few index
seeks (never ORDER BY random() over a million contacts), and a campaign's sample is one
message rendered on the budget a sent message has.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..contacts.service import ContactFilter, filtered
from ..models import Campaign, CampaignStatus, Contact, Message, Segment, list_members, utcnow
from ..segments import compile as segment_sql
from .rendering import TemplateError, compile_body, context_for

MAX_QUERY = 60  # characters of a search: a name or a number
MAX_FOUND = 8
MAX_LISTS = 20


@dataclass(frozen=True)
class Found:
    id: int
    name: str | None
    phone: str


def find_contacts(session: Session, query: str, limit: int = 5) -> list[Found]:
    """Subscribed contacts whose name, number or fields contain `query`, newest first."""
    term = " ".join(query.split())[:MAX_QUERY]
    if not term:
        return []
    rows = session.scalars(
        filtered(ContactFilter(q=term, status="subscribed")).limit(min(limit, MAX_FOUND))
    )
    return [Found(c.id, c.name, c.phone) for c in rows]


def random_contacts(
    session: Session, list_ids: list[int], n: int = 3, rng: random.Random | None = None
) -> list[int]:
    """Up to `n` different subscribed contacts of the lists (or of everyone), at random.

    - Each pick jumps to a random id between the lists' first and last member and takes the
      next subscribed member from there (wrapping around): an index seek per list, never a
      sort of the whole audience. Members after a long gap of ids come up more often, which
      is fine for a preview.
    """
    rng = rng or random.Random()
    list_ids = list_ids[:MAX_LISTS]
    lo = _member_from(session, list_ids, None)
    hi = _member_from(session, list_ids, None, last=True)
    if lo is None or hi is None:
        return []
    picked: list[int] = []
    for _ in range(n * 4):
        start = rng.randint(lo, hi)
        found = _member_from(session, list_ids, start)
        while found in picked:  # taken: the next one after it, at most n steps
            found = _member_from(session, list_ids, found + 1)  # type: ignore[operator]
        if found is None:
            found = next((f for f in _firsts(session, list_ids, n + 1) if f not in picked), None)
        if found is not None:
            picked.append(found)
        if len(picked) == n or found is None:
            break
    return picked


def _firsts(session: Session, list_ids: list[int], n: int) -> list[int]:
    found: list[int] = []
    start: int | None = None
    for _ in range(n):
        start = _member_from(session, list_ids, start)
        if start is None:
            break
        found.append(start)
        start += 1
    return found


def _member_from(
    session: Session, list_ids: list[int], start: int | None, last: bool = False
) -> int | None:
    """The first subscribed member id ≥ `start` of any of the lists (of everyone without
    lists); with `last`, the highest one."""
    if not list_ids:
        ids = [select(Contact.id.label("id"))]
    else:
        # One seek on the (list_id, contact_id) primary key per list.
        ids = [
            select(list_members.c.contact_id.label("id"))
            .join(Contact, Contact.id == list_members.c.contact_id)
            .where(list_members.c.list_id == list_id)
            for list_id in list_ids
        ]
    found = []
    for query in ids:
        column = query.selected_columns[0]
        query = query.where(Contact.opted_out_at.is_(None))
        if start is not None:
            query = query.where(column >= start)
        query = query.order_by(column.desc() if last else column).limit(1)
        value = session.scalar(query)
        if value is not None:
            found.append(value)
    if not found:
        return None
    return max(found) if last else min(found)


@dataclass(frozen=True)
class Sample:
    """The message as one real customer gets it (`sent`) or will get it."""

    name: str | None
    phone: str
    text: str
    sent: bool
    error: str | None = None


def campaign_sample(session: Session, campaign: Campaign, body: str, limit: int) -> Sample | None:
    """What a campaign's message looks like for a real recipient, never its template code.

    - Launched: the first message already written for its recipient, word for word; else
      the first recipient's, rendered with that message's id (the text they will get).
      "First" is by contact id, as for a draft: the launch's INSERT … SELECT gives message
      ids in whatever order the database joined the audience (PostgreSQL's hash of list
      members is not contact order), so the lowest message id names no particular customer.
      The unique (campaign_id, contact_id) index serves this order as it would the id's.
    - A draft: the first subscribed contact of its lists, as the preview renders it.
    """
    if not body.strip():
        return None
    if campaign.status != CampaignStatus.DRAFT:
        # Written ones first: the text as sent. Two seeks rather than one sort over
        # every message of a large campaign.
        mine = select(Message.id, Message.body, Contact).join(
            Contact, Contact.id == Message.contact_id
        )
        mine = mine.where(Message.campaign_id == campaign.id)
        mine = mine.order_by(Message.contact_id).limit(1)
        row = session.execute(mine.where(Message.body.is_not(None))).first()
        row = row or session.execute(mine).first()
        if row is None:
            return None
        message_id, text, contact = row
        if text is not None:
            return Sample(contact.name, contact.phone, text, sent=True)
        return _rendered(body, contact, message_id, limit)
    if campaign.segment_id is not None:
        # A draft to a segment: its first member a launch now would reach.
        first = segment_first_ids(session, campaign.segment_id, 1)
        member = session.get(Contact, first[0]) if first else None
        return _rendered(body, member, member.id, limit) if member is not None else None
    list_ids = [lst.id for lst in campaign.lists][:MAX_LISTS]
    query = select(Contact).where(Contact.opted_out_at.is_(None)).order_by(Contact.id)
    if list_ids:
        members = select(list_members.c.contact_id).where(list_members.c.list_id.in_(list_ids))
        query = query.where(Contact.id.in_(members))
    contact = session.scalars(query.limit(1)).first()
    return _rendered(body, contact, contact.id, limit) if contact is not None else None


def segment_first_ids(session: Session, segment_id: int, n: int) -> list[int]:
    """The first `n` contacts (by id) a launch to the segment would reach now."""
    segment = session.get(Segment, segment_id)
    if segment is None:
        return []
    first = segment_sql.reachable(segment.terms, utcnow()).order_by(Contact.id).limit(n)
    found: Any = session.execute(first)  # rows of (id, phone)
    return [row[0] for row in found]


def _rendered(body: str, contact: Contact, seed: int, limit: int) -> Sample:
    ctx = context_for(contact.phone, contact.name, contact.country, contact.attributes or {})
    try:
        text = compile_body(body).render(ctx, seed, limit=limit)
    except TemplateError as exc:
        return Sample(contact.name, contact.phone, "", sent=False, error=str(exc))
    return Sample(contact.name, contact.phone, text, sent=False)
