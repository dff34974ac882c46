"""Each event comes from its real cause, in the cause's transaction, with the documented
fields; nothing is written when no endpoint subscribes (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.campaigns_support import make_campaign, make_contacts, make_sender
from tests.hooks_support import SECRET_KEY, Receiver, add_endpoint, rows, serve, verify
from tests.importing import import_file
from tests.inbound_support import claim_all, settle_sent
from tests.sheet_files import write_csv
from wabulk import inbound
from wabulk.campaigns import lifecycle
from wabulk.channels.heard import Heard, Reply, StatusUpdate
from wabulk.contacts import service as contacts_service
from wabulk.db import Database
from wabulk.dispatch import queue
from wabulk.models import Contact, Message, MessageStatus, OutboxEvent, utcnow
from wabulk.outbox import delivery, endpoints

ALL = ["message.status", "message.replied", "contact.opted_out", "campaign.completed"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def _payloads(db: Database, event: str) -> list[dict]:
    return [r.payload for r in rows(db, event)]


def _campaign(db: Database, n: int = 2) -> tuple[int, int, list[int]]:
    list_id = make_contacts(db, [f"+91987650000{i}" for i in range(n)], "Buyers")
    sender_id = make_sender(db, "Shop phone")
    campaign_id = make_campaign(db, [list_id], [sender_id], name="Diwali")
    with db.session() as session:
        ids = list(session.scalars(select(Message.id).where(Message.campaign_id == campaign_id)))
    return campaign_id, sender_id, sorted(ids)


def test_a_campaign_sends_hears_back_and_completes(
    migrated_db: Database, receiver: Receiver
) -> None:
    db = migrated_db
    _, secret = add_endpoint(db, receiver.url, ALL)
    campaign_id, sender_id, ids = _campaign(db)
    now = utcnow()
    # The lane's own settle: sent.
    claimed = claim_all(db, campaign_id, sender_id, now, "lane:1")
    settle_sent(db, claimed, sender_id, now, "lane:1")
    sent = _payloads(db, "message.status")
    assert sorted(p["data"]["message_id"] for p in sent) == ids
    first = next(p for p in sent if p["data"]["message_id"] == ids[0])
    assert first["data"]["status"] == "sent" and first["data"]["campaign_id"] == campaign_id
    assert first["data"]["campaign_name"] == "Diwali" and first["data"]["error"] is None
    assert first["data"]["phone"].startswith("+9198765")
    assert first["data"]["provider_message_id"]
    # A status heard back: delivered, then a failure of the other one.
    with db.session() as session:
        inbound.apply(
            session,
            sender_id,
            Heard(
                statuses=[
                    StatusUpdate("delivered", now + timedelta(seconds=5), message_id=ids[0]),
                    StatusUpdate("delivered", now + timedelta(seconds=6), message_id=ids[0]),
                ]
            ),
            now,
        )
    moved = [p["data"] for p in _payloads(db, "message.status")][len(ids) :]
    assert [(d["message_id"], d["status"]) for d in moved] == [(ids[0], "delivered")]
    # A reply to it, then STOP from the other customer.
    with db.session() as session:
        phones = {cid: phone for cid, phone in session.execute(select(Contact.id, Contact.phone))}
        contact_of = {
            mid: cid
            for mid, cid in session.execute(
                select(Message.id, Message.contact_id).where(Message.id.in_(ids))
            )
        }
    a, b = phones[contact_of[ids[0]]], phones[contact_of[ids[1]]]
    later = now + timedelta(seconds=9)
    with db.session() as session:
        inbound.apply(
            session,
            sender_id,
            Heard(
                replies=[
                    Reply(later, "wamid.r1", a, text="Do you deliver to Pune?"),
                    Reply(later, "wamid.r2", b, text="STOP"),
                    Reply(later, "wamid.r1", a, text="Do you deliver to Pune?"),  # a retry
                ]
            ),
            now,
        )
    replied = [p["data"] for p in _payloads(db, "message.replied")]
    assert [(d["phone"], d["text"]) for d in replied] == [
        (a, "Do you deliver to Pune?"),
        (b, "STOP"),
    ]
    assert replied[0]["campaign_id"] == campaign_id and replied[0]["message_id"] == ids[0]
    assert replied[0]["kind"] == "text" and replied[0]["opted_out"] is False
    assert replied[1]["opted_out"] is True
    [stop] = [p["data"] for p in _payloads(db, "contact.opted_out")]
    assert stop["phone"] == b and stop["by"] == "the customer" and "STOP" in stop["reason"]
    # Nothing left to send: the campaign completes, with its counts.
    with db.session() as session:
        assert lifecycle.complete_finished(session, utcnow()) == [campaign_id]
    [done] = [p["data"] for p in _payloads(db, "campaign.completed")]
    assert done["campaign_id"] == campaign_id and done["name"] == "Diwali"
    assert done["counts"]["sent"] == 2 and done["counts"]["delivered"] == 1
    assert done["counts"]["replied"] == 2
    # Each reaches the receiver signed, once.
    while delivery.deliver_due(db, SECRET_KEY, "test:1"):
        pass
    assert len(receiver.hits) == len(rows(db)) == 7
    assert all(verify(secret, hit) for hit in receiver.hits)


def test_an_opt_out_by_a_person_and_an_import(
    migrated_db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    db = migrated_db
    add_endpoint(db, receiver.url, ["contact.opted_out", "import.completed"])
    sheet = write_csv(
        tmp_path / "shop.csv",
        [["phone", "name"], ["+919876511111", "Asha"], ["+919876522222", "Ravi"]],
    )
    imp = import_file(db, tmp_path / "instance", sheet)
    [done] = [p["data"] for p in _payloads(db, "import.completed")]
    assert done["import_id"] == imp.id and done["file_name"] == "shop.csv"
    assert done["counts"]["rows"] == 2 and done["counts"]["created"] == 2
    with db.session() as session:
        asha = session.scalar(select(Contact.id).where(Contact.phone == "+919876511111"))
        assert asha is not None
        contacts_service.opt_out(session, None, [asha], "Asked by phone to stop")
        # Already opted out: no second event.
        contacts_service.opt_out(session, None, [asha], "Again")
    [out] = [p["data"] for p in _payloads(db, "contact.opted_out")]
    assert out["contact_id"] == asha and out["contact_name"] == "Asha"
    assert out["reason"] == "Asked by phone to stop" and out["by"] == "The command line"


def test_nothing_is_written_when_no_endpoint_subscribes(migrated_db: Database) -> None:
    db = migrated_db
    campaign_id, sender_id, ids = _campaign(db)
    now = utcnow()
    settle_sent(db, claim_all(db, campaign_id, sender_id, now, "lane:1"), sender_id, now, "lane:1")
    # An endpoint for other events, and a paused one for these.
    add_endpoint(db, "https://example.com/imports", ["import.completed"])
    paused, _ = add_endpoint(db, "https://example.com/off", ALL, name="Off")
    with db.session() as session:
        endpoints.set_active(session, None, paused, False)
    with db.session() as session:
        inbound.apply(
            session,
            sender_id,
            Heard(statuses=[StatusUpdate("read", now, message_id=i) for i in ids]),
            now,
        )
        contacts_service.opt_out(
            session, None, list(session.scalars(select(Contact.id))), "Closing the shop"
        )
        lifecycle.complete_finished(session, utcnow())
    with db.session() as session:
        assert session.scalars(select(OutboxEvent.id)).all() == []


def test_an_inbox_answer_sends_its_statuses(migrated_db: Database, receiver: Receiver) -> None:
    """An answer is a message with no campaign: the lane's settle and the statuses heard
    back send `message.status` for it, with no campaign named."""
    db = migrated_db
    add_endpoint(db, receiver.url, ["message.status"])
    make_contacts(db, ["+919876500042"], "Askers")
    sender_id = make_sender(db, "Shop phone")
    now = utcnow()
    with db.session() as session:
        contact = session.scalar(select(Contact).where(Contact.phone == "+919876500042"))
        assert contact is not None
        answer = Message(
            campaign_id=None,
            contact_id=contact.id,
            phone=contact.phone,
            body="Yes, we deliver to Pune.",
            status=MessageStatus.SENDING,
            sender_id=sender_id,
            lease_owner="lane:1",
            lease_until=now + timedelta(minutes=5),
            next_attempt_at=now,
        )
        session.add(answer)
        session.flush()
        answer_id = answer.id
    with db.session() as session:
        queue.settle(
            session,
            "lane:1",
            [queue.Outcome(answer_id, None, "sent", "wamid.answer")],
            now,
            sender_id=sender_id,
        )
    with db.session() as session:
        inbound.apply(
            session,
            sender_id,
            Heard(
                statuses=[StatusUpdate("read", now + timedelta(seconds=30), message_id=answer_id)]
            ),
            now,
        )
    said = [p["data"] for p in _payloads(db, "message.status")]
    assert [(d["message_id"], d["status"], d["campaign_id"]) for d in said] == [
        (answer_id, "sent", None),
        (answer_id, "read", None),
    ]
    assert said[0]["phone"] == "+919876500042" and said[0]["campaign_name"] is None
