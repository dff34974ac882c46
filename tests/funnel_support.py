"""A launched campaign whose messages reached every step of the funnel, for page and API tests.

Statuses, times, error codes and billing are written to the messages the way the webhooks
leave them, then the counters and `message_stats` are brought in line the way the product's
own rebuild does it (`seed_outcomes`); replies are Inbound rows linked to their messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update

from tests.analytics_support import seed_outcomes
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.analytics import settled
from wabulk.contacts import tallies
from wabulk.db import Database
from wabulk.models import Contact, Inbound, Message, MessageStat, utcnow
from wabulk.models.stats import slot_of

LIMITED = "This customer has reached WhatsApp's limit of marketing messages from businesses today."
NOT_ON_WHATSAPP = "This number is not on WhatsApp, or the customer's app cannot receive it."


@dataclass
class Seeded:
    campaign_id: int
    sender_id: int
    contact_ids: list[int]  # in the order of `funnel_campaign`'s docstring
    at: datetime


def funnel_campaign(db: Database, name: str = "Diwali offer", prefix: str = "+9198700") -> Seeded:
    """Six recipients: read and replied; delivered; sent; failed 131049; failed 131026; read
    and replied STOP (opted out by it). Meta billed three as marketing and one as
    marketing_lite.

    Funnel: sent 4, delivered 3, read 2, replied 2, failed 2 (1 limited by Meta).
    """
    numbers = phones(6, prefix)
    list_id = make_contacts(db, numbers, f"{name} list")
    sender = make_sender(db, f"{name} phone")
    campaign_id = make_campaign(db, [list_id], [sender], name=name)
    at = utcnow().replace(microsecond=0) - timedelta(hours=2)
    minute = timedelta(minutes=1)
    with db.session() as session:
        by_phone = {
            phone: (mid, cid)
            for phone, mid, cid in session.execute(
                Message.__table__.select()
                .with_only_columns(Message.phone, Message.id, Message.contact_id)
                .where(Message.campaign_id == campaign_id)
            )
        }
    # seed_outcomes fills messages in id order: give it the outcomes in that order.
    ordered = sorted(by_phone.items(), key=lambda kv: kv[1][0])
    wanted = {
        numbers[0]: {
            "status": "read",
            "sent_at": at,
            "delivered_at": at + minute,
            "read_at": at + 2 * minute,
            "replied_at": at + 3 * minute,
            "billed_category": "marketing",
        },
        numbers[1]: {
            "status": "delivered",
            "sent_at": at,
            "delivered_at": at + minute,
            "billed_category": "marketing",
        },
        numbers[2]: {"status": "sent", "sent_at": at, "billed_category": "marketing_lite"},
        numbers[3]: {
            "status": "failed",
            "failed_at": at + minute,
            "error_code": "131049",
            "error_detail": LIMITED,
        },
        numbers[4]: {
            "status": "failed",
            "failed_at": at + minute,
            "error_code": "131026",
            "error_detail": NOT_ON_WHATSAPP,
        },
        numbers[5]: {
            "status": "read",
            "sent_at": at,
            "delivered_at": at + minute,
            "read_at": at + 2 * minute,
            "replied_at": at + 4 * minute,
            "billed_category": "marketing",
        },
    }
    seed_outcomes(db, campaign_id, sender, [wanted[phone] for phone, _ in ordered])
    with db.session() as session:
        # What Meta billed, as the status webhooks count it: whatever a rebuild made of it,
        # the rows are exactly these.
        session.execute(
            delete(MessageStat).where(
                MessageStat.campaign_id == campaign_id, MessageStat.kind == "billed"
            )
        )
        for category, n in (("marketing", 3), ("marketing_lite", 1)):
            session.add(
                MessageStat(
                    slot=slot_of(at),
                    campaign_id=campaign_id,
                    sender_id=sender,
                    kind="billed",
                    code=category,
                    n=n,
                )
            )
        settled.touch(session)
        first, stop = by_phone[numbers[0]], by_phone[numbers[5]]
        session.add_all(
            [
                Inbound(
                    phone=numbers[0],
                    contact_id=first[1],
                    campaign_id=campaign_id,
                    message_id=first[0],
                    sender_id=sender,
                    provider_message_id=f"wamid.reply-{campaign_id}-1",
                    kind="text",
                    body="Yes please, two boxes of kaju katli",
                    received_at=at + 3 * minute,
                ),
                Inbound(
                    phone=numbers[5],
                    contact_id=stop[1],
                    campaign_id=campaign_id,
                    message_id=stop[0],
                    sender_id=sender,
                    provider_message_id=f"wamid.reply-{campaign_id}-2",
                    kind="text",
                    body="STOP",
                    opted_out=True,
                    received_at=at + 4 * minute,
                ),
            ]
        )
        session.execute(
            update(Contact)
            .where(Contact.id == stop[1])
            .values(opted_out_at=at + 4 * minute, opt_out_reason="Replied “STOP”")
        )
        tallies.recount(session)
    return Seeded(campaign_id, sender, [by_phone[p][1] for p in numbers], at)


def quiet_campaign(db: Database, name: str = "Quiet launch") -> int:
    """A launched campaign where nothing has happened yet: every message waits."""
    list_id = make_contacts(db, phones(2, "+9198711"), f"{name} list")
    return make_campaign(db, [list_id], [make_sender(db, f"{name} phone")], name=name)
