"""Who a campaign reaches: members of its lists, once each, or its segment's contacts;
never opted-out contacts (segments: see segments/compile.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, exists, func, insert, literal, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..models import Campaign, Contact, Message, MessageStatus, list_members, utcnow
from ..segments import compile as segment_sql
from ..segments.service import get as get_segment

contacts = Contact.__table__
messages = Message.__table__


# The columns a queued recipient's row is inserted with, by launch and by follow-ups, in
# the order their SELECTs give them.
QUEUED_COLUMNS = [
    "campaign_id",
    "contact_id",
    "phone",
    "status",
    "next_attempt_at",
    "queued_at",
    "updated_at",
    "attempts",
]


def _members(list_ids: Sequence[int]) -> Any:
    return (
        select(list_members.c.contact_id)
        .where(list_members.c.list_id.in_(list_ids))
        .distinct()
        .subquery()
    )


def audience(list_ids: Sequence[int]) -> Select[tuple[int, str]]:
    """(contact id, phone) of every reachable recipient, each contact once.

    - Opted-out contacts are left out, and so are numbers WhatsApp said have no account.

    - DISTINCT over the lists' memberships: a contact in two chosen lists gets one message
      (the unique (campaign, contact) constraint would refuse a second anyway).
    """
    members = _members(list_ids)
    return (
        select(contacts.c.id, contacts.c.phone)
        .join(members, members.c.contact_id == contacts.c.id)
        .where(contacts.c.opted_out_at.is_(None), contacts.c.not_on_whatsapp_at.is_(None))
    )


def count(session: Session, list_ids: Sequence[int]) -> int:
    if not list_ids:
        return 0
    return session.scalar(select(func.count()).select_from(audience(list_ids).subquery())) or 0


def opted_out_count(session: Session, list_ids: Sequence[int]) -> int:
    """Members left out because they opted out (shown beside the recipient count)."""
    if not list_ids:
        return 0
    members = _members(list_ids)
    return (
        session.scalar(
            select(func.count())
            .select_from(contacts)
            .join(members, members.c.contact_id == contacts.c.id)
            .where(contacts.c.opted_out_at.is_not(None))
        )
        or 0
    )


def of(
    list_ids: Sequence[int], terms: dict[str, Any] | None, now: datetime
) -> Select[tuple[int, str]] | None:
    """(contact id, phone) of an audience chosen as lists or as a segment's terms (the
    segment wins), evaluated at `now`; None when nothing is chosen. What the wizard and the
    launch both mean by "the audience"."""
    if terms is not None:
        return segment_sql.reachable(terms, now)
    return audience(list_ids) if list_ids else None


def condition(
    list_ids: Sequence[int], terms: dict[str, Any] | None, now: datetime
) -> ColumnElement[bool] | None:
    """The same audience as a WHERE on a `contacts` row already in the query (for queries
    that start elsewhere, e.g. from recent messages): a list membership probed by its
    primary key (list_id, contact_id), or the segment's conditions. None when nothing is
    chosen. Leaving out opted-out contacts and numbers not on WhatsApp is the caller's."""
    if terms is not None:
        clause = segment_sql.condition(terms, now)
        return clause if clause is not None else true()
    if not list_ids:
        return None
    return exists(
        select(list_members.c.contact_id).where(
            list_members.c.list_id.in_(list_ids), list_members.c.contact_id == contacts.c.id
        )
    )


def source(
    session: Session, campaign: Campaign, now: datetime | None = None
) -> Select[tuple[int, str]]:
    """(contact id, phone) of a campaign's recipients: its segment's reachable contacts
    when it has one (evaluated now), else its lists' (`audience`)."""
    if campaign.segment_id is not None:
        segment = get_segment(session, campaign.segment_id)
        return segment_sql.reachable(segment.terms or {}, now or utcnow())
    return audience([lst.id for lst in campaign.lists])


def insert_messages(
    session: Session,
    campaign: Campaign,
    due: datetime,
    due_by_zone: dict[str, datetime] | None = None,
    now: datetime | None = None,
) -> int:
    """Every recipient's Message row in one INSERT … SELECT; returns how many.

    - The audience is the campaign's segment (its terms are copied to
      `campaign.audience_terms`, so the report says who was chosen and how) or its lists.
    - `due_by_zone` ({"Asia/Kolkata": when, …}): a recipient whose timezone is named there
      is due then, others at `due`; one CASE in the same statement (recurring runs in
      each recipient's local time).
    - The text is rendered from the campaign's launch snapshot when first claimed (see
      dispatch/queue.py), which keeps launching a million recipients one statement.
    - Recipients are inserted in contact order, so they are sent to in that order.
    """
    if campaign.segment_id is not None:
        campaign.audience_terms = dict(get_segment(session, campaign.segment_id).terms or {})
    chosen = source(session, campaign, now).add_columns(contacts.c.timezone).subquery()
    due_at: Any = literal(due, messages.c.next_attempt_at.type)
    if due_by_zone:
        due_at = case(
            *(
                (chosen.c.timezone == zone, literal(when, messages.c.next_attempt_at.type))
                for zone, when in due_by_zone.items()
            ),
            else_=due_at,
        )
    stmt = insert(messages).from_select(
        QUEUED_COLUMNS,
        select(
            literal(campaign.id),
            chosen.c.id,
            chosen.c.phone,
            literal(MessageStatus.QUEUED.value),
            due_at,
            literal(due, messages.c.queued_at.type),
            literal(due, messages.c.updated_at.type),
            literal(0),
        )
        # Ids, and so the sending order (claims go by due time, then id), follow the
        # contacts' order: without it they followed the plan's (a hash join or DISTINCT
        # shuffles them once the tables have statistics), a different order each launch.
        .order_by(chosen.c.id),
    )
    # rowcount of an INSERT is only kept when asked for (SQLAlchemy 2.x).
    return session.execute(stmt.execution_options(preserve_rowcount=True)).rowcount
