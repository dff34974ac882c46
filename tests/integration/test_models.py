"""The data model's rules hold in the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from wabulk.db import Database
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactList,
    Message,
    MessageStatus,
    Sender,
    list_members,
)


def _campaign_with_contact(session) -> tuple[Campaign, Contact]:
    contact = Contact(phone="+919876543210", name="Asha", attributes={"city": "Pune"})
    campaign = Campaign(name="Diwali offer", body="Hi {{ name }}")
    session.add_all([contact, campaign])
    session.flush()
    return campaign, contact


def test_one_message_per_campaign_and_contact(migrated_db: Database) -> None:
    with migrated_db.session() as session:
        campaign, contact = _campaign_with_contact(session)
        session.add(
            Message(
                campaign_id=campaign.id, contact_id=contact.id, phone=contact.phone, body="Hi Asha"
            )
        )
    with pytest.raises(IntegrityError), migrated_db.session() as session:
        session.add(
            Message(
                campaign_id=campaign.id, contact_id=contact.id, phone=contact.phone, body="Hi again"
            )
        )


def test_phone_is_unique(migrated_db: Database) -> None:
    with migrated_db.session() as session:
        session.add(Contact(phone="+14155550100"))
    with pytest.raises(IntegrityError), migrated_db.session() as session:
        session.add(Contact(phone="+14155550100"))


def test_statuses_outside_the_state_machine_are_rejected_by_the_database(
    migrated_db: Database,
) -> None:
    with migrated_db.session() as session:
        campaign, contact = _campaign_with_contact(session)
    with pytest.raises(IntegrityError), migrated_db.session() as session:
        session.execute(
            text(
                "INSERT INTO messages (campaign_id, contact_id, phone, body, status, attempts,"
                " queued_at, updated_at) VALUES (:c, :k, '+1', 'x', 'lost', 0,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"c": campaign.id, "k": contact.id},
        )


def test_datetimes_come_back_timezone_aware_in_utc(migrated_db: Database) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    scheduled = datetime(2026, 11, 24, 10, 0, tzinfo=ist)
    with migrated_db.session() as session:
        session.add(Campaign(name="c", scheduled_at=scheduled))
    with migrated_db.session() as session:
        got = session.scalars(select(Campaign.scheduled_at)).one()
    assert got == scheduled
    assert got.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(migrated_db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"), migrated_db.session() as session:
        session.add(Campaign(name="c", scheduled_at=datetime(2026, 1, 1)))
        session.flush()


def test_attributes_round_trip_as_json(migrated_db: Database) -> None:
    attrs = {"city": "Pune", "due_amount": 1250.5, "tags": ["vip", "दिवाली"]}
    with migrated_db.session() as session:
        session.add(Contact(phone="+919800000001", attributes=attrs))
    with migrated_db.session() as session:
        assert session.scalars(select(Contact.attributes)).one() == attrs


def test_deleting_a_list_keeps_its_contacts(migrated_db: Database) -> None:
    with migrated_db.session() as session:
        contact = Contact(phone="+919800000002")
        vip = ContactList(name="VIP")
        session.add_all([contact, vip])
        session.flush()
        session.execute(
            insert(list_members).values(
                list_id=vip.id, contact_id=contact.id, added_at=datetime.now(UTC)
            )
        )
    with migrated_db.session() as session:
        session.execute(delete(ContactList).where(ContactList.id == vip.id))
    with migrated_db.session() as session:
        assert session.scalar(select(Contact.id).where(Contact.id == contact.id)) is not None
        assert session.execute(select(list_members)).all() == []


def test_a_contact_with_messages_cannot_be_deleted(migrated_db: Database) -> None:
    """The per-recipient record is the answer to "was this person messaged?"; keep it."""
    with migrated_db.session() as session:
        campaign, contact = _campaign_with_contact(session)
        session.add(
            Message(
                campaign_id=campaign.id,
                contact_id=contact.id,
                phone=contact.phone,
                body="x",
                status=MessageStatus.SENT,
            )
        )
    with pytest.raises(IntegrityError), migrated_db.session() as session:
        session.execute(delete(Contact).where(Contact.id == contact.id))


def test_sender_delay_range_is_checked(migrated_db: Database) -> None:
    with pytest.raises(IntegrityError), migrated_db.session() as session:
        session.add(Sender(name="s", channel="dry_run", min_delay_seconds=30, max_delay_seconds=5))


def test_campaign_defaults(migrated_db: Database) -> None:
    with migrated_db.session() as session:
        session.add(Campaign(name="c"))
    with migrated_db.session() as session:
        c = session.scalars(select(Campaign)).one()
        assert c.status is CampaignStatus.DRAFT
        assert (c.total, c.n_sent, c.max_attempts) == (0, 0, 3)
        assert c.created_at.tzinfo is not None
