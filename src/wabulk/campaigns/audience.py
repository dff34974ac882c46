"""Who a campaign reaches: members of its lists, once each, minus opted-out contacts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, literal, select
from sqlalchemy.orm import Session

from ..models import Contact, Message, MessageStatus, list_members

contacts = Contact.__table__
messages = Message.__table__


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


def insert_messages(
    session: Session, campaign_id: int, list_ids: Sequence[int], due: datetime
) -> int:
    """Every recipient's Message row in one INSERT … SELECT; returns how many.

    - The text is rendered from the campaign's launch snapshot when first claimed (see
      dispatch/queue.py), which keeps launching a million recipients one statement.
    """
    source = audience(list_ids).subquery()
    stmt = insert(messages).from_select(
        [
            "campaign_id",
            "contact_id",
            "phone",
            "status",
            "next_attempt_at",
            "queued_at",
            "updated_at",
            "attempts",
        ],
        select(
            literal(campaign_id),
            source.c.id,
            source.c.phone,
            literal(MessageStatus.QUEUED.value),
            literal(due, messages.c.next_attempt_at.type),
            literal(due, messages.c.queued_at.type),
            literal(due, messages.c.updated_at.type),
            literal(0),
        ),
    )
    # rowcount of an INSERT is only kept when asked for (SQLAlchemy 2.x).
    return session.execute(stmt.execution_options(preserve_rowcount=True)).rowcount
