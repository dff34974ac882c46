"""Statuses heard from the Cloud API, applied through stored receipts: forward-only,
idempotent, out of order, settling messages the dispatcher had not settled yet, and the
counters and `message_stats` exact after every delivery (compared with a rebuild)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.inbound_support import (
    assert_exact,
    by_kind,
    campaign_for,
    claim_all,
    make_cloud_sender,
    settle_sent,
    status,
    statuses_body,
    wamid,
)
from wabulk.dispatch import queue, receipts
from wabulk.models import Contact, Event, Message, MessageStatus, WebhookReceipt, utcnow

S = MessageStatus


def deliver(db, body: bytes, sender_id: int, now) -> int:
    """Store a delivery as the receiver does, then let the worker process what is due."""
    with db.session() as session:
        receipts.store_receipt(session, sender_id, body, now)
    return receipts.process_receipts(db, now=now)


def rows(db, ids: list[int]) -> dict[int, Message]:
    with db.session() as session:
        return {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids))).all()}


def test_statuses_move_forward_only_whatever_the_order(migrated_db) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 5, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    claimed = claim_all(db, campaign_id, cloud, t0, "lane:1")
    settle_sent(db, claimed, cloud, t0, "lane:1")
    a, b, c, d, e = ids
    later = [t0 + timedelta(minutes=m) for m in range(1, 40, 7)]

    # One batched delivery: a delivered (billed) then read; b read with no delivered;
    # c failed at Meta after sent (131049); d delivered twice; e duplicate `sent`.
    body = statuses_body(
        [
            status(a, "delivered", later[0], category="marketing"),
            status(a, "read", later[1]),
            status(b, "read", later[2], category="marketing"),
            status(c, "failed", later[1], error_code=131049),
            status(d, "delivered", later[0]),
            status(d, "delivered", later[0]),
            status(e, "sent", t0, category="utility"),
        ]
    )
    assert deliver(db, body, cloud, later[-1]) == 1
    kept = assert_exact(db, campaign_id)
    got = rows(db, ids)
    assert [got[i].status for i in ids] == [S.READ, S.READ, S.FAILED, S.DELIVERED, S.SENT]
    assert got[b].delivered_at == got[b].read_at == later[2]  # read implies delivered
    assert got[c].error_code == "131049" and "limit of marketing messages" in got[c].error_detail
    assert got[c].sent_at is None and got[c].failed_at == later[1]
    assert got[a].billed_category == "marketing" and got[e].billed_category == "utility"
    counts = by_kind(kept)
    assert counts["sent"] == 4 and counts["delivered"] == 3 and counts["read"] == 2
    assert counts["failed:131049"] == 1
    assert counts["billed"] == 3 and counts["billed:marketing"] == 2

    # Late and repeated news changes nothing: a delivered after read, a failure after
    # delivery, the same bytes again, and new bytes repeating what was already applied.
    late = statuses_body(
        [
            status(a, "delivered", later[3], category="marketing"),
            status(d, "failed", later[4], error_code=131026),
            status(b, "delivered", later[1]),
            status(c, "read", later[4]),
        ]
    )
    assert deliver(db, late, cloud, later[-1]) == 1
    assert deliver(db, body, cloud, later[-1]) == 0  # stored once: nothing new to process
    after = rows(db, ids)
    assert [after[i].status for i in ids] == [S.READ, S.READ, S.FAILED, S.DELIVERED, S.SENT]
    assert after[b].delivered_at == later[2]
    assert assert_exact(db, campaign_id) == kept
    with db.session() as session:
        flagged = session.scalar(
            select(Contact.not_on_whatsapp_at).where(Contact.id == got[d].contact_id)
        )
    assert flagged is None


def test_a_status_settles_messages_still_sending_unknown_or_queued_for_a_retry(
    migrated_db,
) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 3, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    claimed = claim_all(db, campaign_id, cloud, t0, "lane:1")
    sending, unknown, retried = ids
    with db.session() as session:
        queue.settle(
            session,
            "lane:1",
            [
                queue.Outcome(unknown, campaign_id, "unknown", None, "timeout", "no answer"),
                queue.Outcome(retried, campaign_id, "retry", None, "timeout", "no answer", t0),
            ],
            t0,
            sender_id=cloud,
        )
    # The webhook beats the dispatcher: matched by our id alone (callback data).
    t1 = t0 + timedelta(seconds=2)
    body = statuses_body(
        [
            status(sending, "sent", t1, category="marketing"),
            status(unknown, "read", t1),
            status(retried, "delivered", t1),
        ]
    )
    assert deliver(db, body, cloud, t1) == 1
    got = rows(db, ids)
    assert [got[i].status for i in ids] == [S.SENT, S.READ, S.DELIVERED]
    for message in got.values():
        assert message.provider_message_id == wamid(message.id)
        assert message.sent_at == t1 and message.lease_owner is None
        assert message.error_code is None
    assert got[sending].attempts == 1
    kept = assert_exact(db, campaign_id)

    # The dispatcher's own settle comes afterwards and changes nothing.
    with db.session() as session:
        changed = queue.settle(
            session,
            "lane:1",
            [queue.Outcome(c.id, campaign_id, "sent", "wamid.other") for c in claimed],
            t1,
            sender_id=cloud,
        )
    assert sum(changed.values()) == 0
    assert rows(db, [sending])[sending].provider_message_id == wamid(sending)
    assert assert_exact(db, campaign_id) == kept


def test_statuses_match_by_provider_id_only_among_the_senders_own_messages(migrated_db) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    other = make_cloud_sender(db, "Other", phone_number_id="999000111")
    campaign_id, ids = campaign_for(db, 2, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    claimed = claim_all(db, campaign_id, cloud, t0, "lane:1")
    wamids = settle_sent(db, claimed, cloud, t0, "lane:1")
    # No callback data: the provider's id decides, and only for the sender that sent it.
    mine = {"id": wamids[ids[0]], "status": "delivered", "timestamp": str(int(t0.timestamp()))}
    theirs = {"id": wamids[ids[1]], "status": "delivered", "timestamp": str(int(t0.timestamp()))}
    deliver(db, statuses_body([mine]), cloud, t0)
    deliver(db, statuses_body([theirs], phone_number_id="999000111"), other, t0)
    got = rows(db, ids)
    assert got[ids[0]].status == S.DELIVERED and got[ids[1]].status == S.SENT
    assert_exact(db, campaign_id)


def test_failures_say_what_they_mean_for_the_contact(migrated_db) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 3, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    claimed = claim_all(db, campaign_id, cloud, t0, "lane:1")
    settle_sent(db, claimed, cloud, t0, "lane:1")
    stopped, absent, capped = ids
    body = statuses_body(
        [
            status(stopped, "failed", t0, error_code=131050),
            status(absent, "failed", t0, error_code=131026),
            status(capped, "failed", t0, error_code=131049),
        ]
    )
    deliver(db, body, cloud, t0 + timedelta(seconds=1))
    got = rows(db, ids)
    with db.session() as session:
        people = {
            c.id: c
            for c in session.scalars(
                select(Contact).where(Contact.id.in_([m.contact_id for m in got.values()]))
            )
        }
        logged = session.scalars(select(Event.text).where(Event.kind == "contact.opted_out")).all()
    assert people[got[stopped].contact_id].opted_out_at is not None
    assert "WhatsApp reported it" in people[got[stopped].contact_id].opt_out_reason
    assert len(logged) == 1 and "was opted out by WhatsApp" in logged[0]
    assert people[got[absent].contact_id].not_on_whatsapp_at is not None
    assert people[got[capped].contact_id].opted_out_at is None
    assert people[got[capped].contact_id].not_on_whatsapp_at is None
    assert {got[i].error_code for i in ids} == {"131050", "131026", "131049"}
    assert_exact(db, campaign_id)


def test_a_crash_between_receipt_and_processing_loses_nothing(migrated_db, database_url) -> None:
    from wabulk.db import Database

    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 2, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    settle_sent(db, claim_all(db, campaign_id, cloud, t0, "lane:1"), cloud, t0, "lane:1")
    with db.session() as session:
        receipts.store_receipt(
            session, cloud, statuses_body([status(i, "read", t0) for i in ids]), t0
        )
    db.dispose()  # the process dies after answering 200, before the worker ran

    restarted = Database(database_url)
    try:
        assert receipts.process_receipts(restarted, now=t0) == 1
        assert {m.status for m in rows(restarted, ids).values()} == {S.READ}
        with restarted.session() as session:
            receipt = session.scalars(select(WebhookReceipt)).one()
        assert receipt.processed_at is not None and receipt.error is None
        assert_exact(restarted, campaign_id)
    finally:
        restarted.dispose()


def test_a_failing_receipt_is_retried_with_backoff_then_kept_for_review(
    migrated_db, monkeypatch
) -> None:
    from wabulk import inbound

    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 1, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    settle_sent(db, claim_all(db, campaign_id, cloud, t0, "lane:1"), cloud, t0, "lane:1")
    real_apply = inbound.apply
    failures = {"left": 1}

    def flaky(*args, **kwargs):
        result = real_apply(*args, **kwargs)  # writes, then fails: all must roll back
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database went away")
        return result

    monkeypatch.setattr(inbound, "apply", flaky)
    deliver(db, statuses_body([status(ids[0], "read", t0)]), cloud, t0)
    with db.session() as session:
        receipt = session.scalars(select(WebhookReceipt)).one()
    assert receipt.processed_at is None and receipt.attempts == 1
    assert "database went away" in receipt.error and receipt.next_attempt_at > t0
    assert rows(db, ids)[ids[0]].status == S.SENT  # rolled back with the failure
    assert receipts.process_receipts(db, now=t0) == 0  # not due yet
    assert receipts.process_receipts(db, now=receipt.next_attempt_at) == 1
    assert rows(db, ids)[ids[0]].status == S.READ
    assert_exact(db, campaign_id)

    # One that never works: kept with its error after ten tries, and an Event says so.
    failures["left"] = 10**6
    deliver(db, statuses_body([status(ids[0], "read", t0 + timedelta(seconds=1))]), cloud, t0)
    at = t0
    for _ in range(receipts.MAX_ATTEMPTS + 2):
        at += receipts.MAX_BACKOFF
        receipts.process_receipts(db, now=at)
    with db.session() as session:
        stuck = session.scalars(
            select(WebhookReceipt).where(WebhookReceipt.processed_at.is_(None))
        ).one()
        logged = session.scalars(select(Event.text).where(Event.kind == "webhook.failed")).all()
    assert stuck.attempts == receipts.MAX_ATTEMPTS and stuck.next_attempt_at is None
    assert len(logged) == 1 and "failed 10 times" in logged[0]
    assert "database went away" in stuck.error


def test_a_body_that_cannot_be_read_is_kept_once_with_its_reason(migrated_db) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    now = utcnow()
    assert deliver(db, b"{" * 100 + b"}" * 100, cloud, now) == 0
    with db.session() as session:
        receipt = session.scalars(select(WebhookReceipt)).one()
    assert receipt.processed_at is None and receipt.attempts == receipts.MAX_ATTEMPTS
    assert "nested deeper" in receipt.error
    with db.session() as session:
        logged = session.scalars(select(Event.text).where(Event.kind == "webhook.failed")).all()
    assert len(logged) == 1 and "could not be read" in logged[0]


def test_a_storm_of_batched_duplicated_statuses_shared_by_two_workers_is_exact(
    migrated_db,
) -> None:
    import random
    import threading

    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 300, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    settle_sent(db, claim_all(db, campaign_id, cloud, t0, "lane:1"), cloud, t0, "lane:1")
    rng = random.Random(7)
    records = []
    for i in ids:
        records += [
            status(i, "sent", t0, category="marketing"),
            status(i, "delivered", t0 + timedelta(seconds=3), category="marketing"),
            status(i, "read", t0 + timedelta(seconds=8)),
        ]
    records += rng.sample(records, 200)  # Meta's duplicates, in other batches
    rng.shuffle(records)
    with db.session() as session:
        for start in range(0, len(records), 50):
            receipts.store_receipt(session, cloud, statuses_body(records[start : start + 50]), t0)
    applied: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while True:
                n = receipts.process_receipts(db, now=t0 + timedelta(seconds=10), limit=5)
                applied.append(n)
                if n == 0:
                    return
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert not errors and not any(w.is_alive() for w in workers)
    # A receipt that met a lock or a stale read waits for its retry: let it come due.
    receipts.process_receipts(db, now=t0 + timedelta(hours=2), limit=1000)
    with db.session() as session:
        pending = session.scalars(
            select(WebhookReceipt.error).where(WebhookReceipt.processed_at.is_(None))
        ).all()
    assert pending == []
    assert {m.status for m in rows(db, ids).values()} == {S.READ}
    counts = by_kind(assert_exact(db, campaign_id))
    assert counts["sent"] == counts["delivered"] == counts["read"] == 300
    assert counts["billed:marketing"] == 300


def test_a_failure_heard_after_the_customer_replied_changes_nothing(migrated_db) -> None:
    """A reply proves the message reached the customer: a later failure must not make it
    failed (a "send again" would then message them twice)."""
    from wabulk import inbound
    from wabulk.channels.heard import Heard, HeardError, Reply, StatusUpdate

    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 2, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    settle_sent(db, claim_all(db, campaign_id, cloud, t0, "lane:1"), cloud, t0, "lane:1")
    answered, other = ids
    with db.session() as session:
        phone = session.scalar(select(Contact.phone).join(Message).where(Message.id == answered))
    later = t0 + timedelta(minutes=2)
    with db.session() as session:
        inbound.apply(
            session, cloud, Heard(replies=[Reply(later, "r-1", phone, text="Price?")]), later
        )
        session.commit()
    failed = [
        StatusUpdate(
            status="failed",
            at=later + timedelta(minutes=1),
            message_id=m,
            errors=(HeardError(code="131026"),),
        )
        for m in ids
    ]
    with db.session() as session:
        inbound.apply(session, cloud, Heard(statuses=failed), later + timedelta(minutes=2))
        session.commit()
    got = rows(db, ids)
    assert got[answered].status == S.SENT and got[answered].replied_at == later
    assert got[other].status == S.FAILED  # the rule is about the reply, not the sender
    assert_exact(db, campaign_id)
