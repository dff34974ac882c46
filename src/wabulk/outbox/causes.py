"""The events, built where their causes happen: one function per cause, called in the
cause's transaction. Each does nothing beyond `emit_many`'s endpoint SELECT when no
endpoint subscribes; the fields are the ones docs/webhooks.md promises."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Campaign, Contact, Import, Inbound, Message, MessageStatus
from .emit import emit, emit_many, iso

S = MessageStatus
messages = Message.__table__
contacts = Contact.__table__
campaigns = Campaign.__table__
inbound = Inbound.__table__
CHUNK = 900  # ids per IN (…), under every driver's parameter limit
_AT = {S.SENT: "sent_at", S.DELIVERED: "delivered_at", S.READ: "read_at", S.FAILED: "failed_at"}


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def message_statuses(
    session: Session, message_ids: Iterable[int], now: datetime, settled_at: Any = None
) -> int:
    """`message.status` for these messages, with the status they now have.

    - `settled_at`: the dispatcher's own settle passes the `updated_at` it wrote, so a row
      whose lease was lost meanwhile (another writer moved it) sends nothing from here.
    """
    ids = sorted(set(message_ids))
    if not ids:
        return 0

    def build() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for chunk in _chunks(ids):
            query = (
                select(
                    messages.c.id,
                    messages.c.campaign_id,
                    messages.c.contact_id,
                    messages.c.sender_id,
                    messages.c.status,
                    messages.c.provider_message_id,
                    messages.c.sent_at,
                    messages.c.delivered_at,
                    messages.c.read_at,
                    messages.c.failed_at,
                    messages.c.error_code,
                    messages.c.error_detail,
                    contacts.c.phone,
                    contacts.c.name.label("contact_name"),
                    campaigns.c.name.label("campaign_name"),
                )
                .join(contacts, contacts.c.id == messages.c.contact_id)
                .outerjoin(campaigns, campaigns.c.id == messages.c.campaign_id)
                .where(messages.c.id.in_(chunk), messages.c.status.in_(list(_AT)))
                .order_by(messages.c.id)
            )
            if settled_at is not None:
                query = query.where(messages.c.updated_at == settled_at)
            for row in session.execute(query):
                failed = row.status == S.FAILED
                out.append(
                    {
                        "message_id": row.id,
                        "status": row.status.value,
                        "at": iso(getattr(row, _AT[row.status])),
                        "campaign_id": row.campaign_id,
                        "campaign_name": row.campaign_name,
                        "contact_id": row.contact_id,
                        "phone": row.phone,
                        "contact_name": row.contact_name,
                        "sender_id": row.sender_id,
                        "provider_message_id": row.provider_message_id,
                        "error": {"code": row.error_code, "detail": row.error_detail}
                        if failed
                        else None,
                    }
                )
        return out

    return emit_many(session, "message.status", build, now)


def replies_stored(session: Session, reply_ids: list[int], now: datetime) -> int:
    """`message.replied` for replies just stored (their `inbound` row ids)."""
    if not reply_ids:
        return 0

    def build() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for chunk in _chunks(sorted(set(reply_ids))):
            rows = session.execute(
                select(
                    inbound.c.id,
                    inbound.c.received_at,
                    inbound.c.kind,
                    inbound.c.body,
                    inbound.c.payload,
                    inbound.c.contact_id,
                    inbound.c.phone,
                    inbound.c.sender_id,
                    inbound.c.campaign_id,
                    inbound.c.message_id,
                    inbound.c.opted_out,
                    contacts.c.phone.label("contact_phone"),
                    contacts.c.name.label("contact_name"),
                    campaigns.c.name.label("campaign_name"),
                )
                .outerjoin(contacts, contacts.c.id == inbound.c.contact_id)
                .outerjoin(campaigns, campaigns.c.id == inbound.c.campaign_id)
                .where(inbound.c.id.in_(chunk))
                .order_by(inbound.c.id)
            )
            out.extend(
                {
                    "reply_id": r.id,
                    "at": iso(r.received_at),
                    "kind": r.kind,
                    "text": r.body,
                    "button_payload": r.payload,
                    "contact_id": r.contact_id,
                    "phone": r.contact_phone or r.phone,
                    "contact_name": r.contact_name,
                    "sender_id": r.sender_id,
                    "campaign_id": r.campaign_id,
                    "campaign_name": r.campaign_name,
                    "message_id": r.message_id,
                    "opted_out": bool(r.opted_out),
                }
                for r in rows
            )
        return out

    return emit_many(session, "message.replied", build, now)


def opted_out(session: Session, contact_ids: list[int], reason: str, by: str, now: datetime) -> int:
    """`contact.opted_out` for contacts just opted out."""
    if not contact_ids:
        return 0

    def build() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for chunk in _chunks(sorted(set(contact_ids))):
            rows = session.execute(
                select(contacts.c.id, contacts.c.phone, contacts.c.name)
                .where(contacts.c.id.in_(chunk))
                .order_by(contacts.c.id)
            )
            out.extend(
                {
                    "contact_id": row.id,
                    "phone": row.phone,
                    "contact_name": row.name,
                    "reason": reason,
                    "by": by,
                    "at": iso(now),
                }
                for row in rows
            )
        return out

    return emit_many(session, "contact.opted_out", build, now)


def campaign_completed(session: Session, campaign: Campaign, now: datetime) -> int:
    """`campaign.completed` with the campaign's counts as it completes."""

    def build() -> list[dict[str, Any]]:
        c = campaign
        return [
            {
                "campaign_id": c.id,
                "name": c.name,
                "launched_at": iso(c.launched_at),
                "finished_at": iso(c.finished_at or now),
                "counts": {
                    "sent": c.n_sent + c.n_delivered + c.n_read,
                    "delivered": c.n_delivered + c.n_read,
                    "read": c.n_read,
                    "failed": c.n_failed,
                    "skipped": c.n_skipped,
                    "unknown": c.n_unknown,
                    "replied": c.n_replied,
                },
            }
        ]

    return emit_many(session, "campaign.completed", build, now)


def import_completed(session: Session, imp: Import, now: datetime) -> int:
    """`import.completed` with the sheet's counts as its last chunk commits."""

    def build() -> list[dict[str, Any]]:
        return [
            {
                "import_id": imp.id,
                "kind": imp.kind.value,
                "file_name": imp.original_name,
                "list_id": imp.list_id,
                "finished_at": iso(imp.finished_at or now),
                "counts": {
                    "rows": imp.rows_read,
                    "created": imp.created_count,
                    "updated": imp.updated_count,
                    "unchanged": imp.unchanged_count,
                    "invalid": imp.invalid_count,
                    "duplicates": imp.duplicate_count,
                    "opted_out": imp.opted_out_count,
                },
            }
        ]

    return emit_many(session, "import.completed", build, now)


__all__ = [
    "campaign_completed",
    "emit",
    "import_completed",
    "message_statuses",
    "opted_out",
    "replies_stored",
]
