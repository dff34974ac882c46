"""Replies, opt-outs and account news heard through stored receipts: stored once, matched
by number or WhatsApp user id, attributed to the campaign message they answer, STOP and
opt-out buttons obeyed at once, and a RED quality rating taking the sender out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from tests.inbound_support import (
    assert_exact,
    by_kind,
    campaign_for,
    claim_all,
    encode,
    envelope,
    inbound_body,
    make_cloud_sender,
    settle_sent,
    wamid,
)
from wabulk.campaigns import lifecycle
from wabulk.dispatch import queue, receipts
from wabulk.inbound import keywords
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Event,
    Inbound,
    Message,
    MessageStatus,
    Sender,
    SenderState,
    campaign_senders,
    utcnow,
)
from wabulk.senders.pace import Pace

PHONE = "919876500000"  # the first recipient of `campaign_for`, as Meta writes it


def deliver(db, body: bytes, sender_id: int, now) -> int:
    with db.session() as session:
        receipts.store_receipt(session, sender_id, body, now)
    return receipts.process_receipts(db, now=now)


def sent_campaign(db, n: int = 2):
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, n, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    settle_sent(db, claim_all(db, campaign_id, cloud, t0, "lane:1"), cloud, t0, "lane:1")
    return cloud, campaign_id, ids, t0


def contact_of(db, phone: str) -> Contact:
    with db.session() as session:
        return session.scalars(select(Contact).where(Contact.phone == phone)).one()


def replies(db) -> list[Inbound]:
    with db.session() as session:
        return list(session.scalars(select(Inbound).order_by(Inbound.id)))


def test_a_stop_reply_opts_out_at_once_and_counts_as_a_reply(migrated_db) -> None:
    db = migrated_db
    cloud, campaign_id, ids, t0 = sent_campaign(db)
    at = t0 + timedelta(minutes=3)
    body = inbound_body({"id": "wamid.in1", "type": "text", "text": {"body": " Stop! "}}, at=at)
    assert deliver(db, body, cloud, at) == 1
    assert deliver(db, body, cloud, at) == 0  # Meta's retry of the same bytes

    contact = contact_of(db, "+" + PHONE)
    assert contact.opted_out_at is not None and "Stop!" in contact.opt_out_reason
    [reply] = replies(db)
    assert reply.opted_out and reply.contact_id == contact.id
    assert reply.message_id == ids[0] and reply.campaign_id == campaign_id
    assert reply.body == " Stop! " and reply.sender_id == cloud
    with db.session() as session:
        message = session.get(Message, ids[0])
        campaign = session.get(Campaign, campaign_id)
        logged = session.scalars(select(Event.text).where(Event.kind == "contact.opted_out")).all()
    assert message.replied_at == at and campaign.n_replied == 1
    assert logged == [
        f"+{PHONE} was opted out by the customer: Replied \u201cStop!\u201d on WhatsApp."
    ]
    assert by_kind(assert_exact(db, campaign_id))["replied"] == 1

    # The same reply under a new id (a second delivery of it) is another reply, not a
    # second first reply: Replied still counts the message once.
    again = inbound_body({"id": "wamid.in2", "type": "text", "text": {"body": "STOP"}}, at=at)
    deliver(db, again, cloud, at)
    with db.session() as session:
        assert session.get(Campaign, campaign_id).n_replied == 1
    assert len(replies(db)) == 2
    assert by_kind(assert_exact(db, campaign_id))["replied"] == 1


def test_a_running_campaign_skips_a_contact_from_the_moment_they_opt_out(migrated_db) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 2, cloud)
    now = utcnow() + timedelta(seconds=1)
    body = inbound_body({"id": "wamid.in3", "type": "text", "text": {"body": "BAJA"}}, at=now)
    deliver(db, body, cloud, now)
    claimed = claim_all(db, campaign_id, cloud, now, "lane:1")
    with db.session() as session:
        first = session.get(Message, ids[0])
    assert [c.id for c in claimed] == [ids[1]]
    assert first.status == MessageStatus.SKIPPED and first.error_code == "opted_out"
    assert_exact(db, campaign_id)


def test_only_a_whole_keyword_opts_out(migrated_db) -> None:
    db = migrated_db
    cloud, campaign_id, _ids, t0 = sent_campaign(db)
    texts = ["don't stop sending", "Is the sale stopping?", "stopp", "🙂"]
    for i, text in enumerate(texts):
        body = inbound_body({"id": f"wamid.q{i}", "type": "text", "text": {"body": text}}, at=t0)
        deliver(db, body, cloud, t0)
    assert contact_of(db, "+" + PHONE).opted_out_at is None
    assert [r.opted_out for r in replies(db)] == [False] * len(texts)
    with db.session() as session:
        assert session.get(Campaign, campaign_id).n_replied == 1


def test_the_opt_out_button_and_whatsapps_own_stop_opt_out(migrated_db) -> None:
    db = migrated_db
    cloud, campaign_id, ids, t0 = sent_campaign(db, 3)
    tap = inbound_body(
        {
            "id": "wamid.tap",
            "type": "button",
            "button": {"payload": keywords.OPT_OUT_PAYLOAD, "text": "No more offers"},
            "context": {"from": "15550783881", "id": wamid(ids[0])},
        },
        at=t0,
    )
    deliver(db, tap, cloud, t0)
    second = "919876500001"
    preference = envelope(
        "user_preferences",
        {
            "contacts": [{"profile": {"name": "Asha"}, "wa_id": second}],
            "user_preferences": [
                {
                    "wa_id": second,
                    "detail": "User requested to stop marketing messages",
                    "category": "marketing_messages",
                    "value": "stop",
                    "timestamp": int(t0.timestamp()),
                }
            ],
        },
    )
    deliver(db, encode(preference), cloud, t0)
    # A button that is not marked as opt-out is just an answer.
    other = inbound_body(
        {
            "id": "wamid.tap2",
            "type": "button",
            "button": {"payload": "MORE_INFO", "text": "Tell me more"},
            "context": {"id": wamid(ids[2])},
        },
        phone="919876500002",
        at=t0,
    )
    deliver(db, other, cloud, t0)

    tapped, stopped, curious = (contact_of(db, f"+{p}") for p in (PHONE, second, "919876500002"))
    assert "No more offers" in tapped.opt_out_reason
    assert "in WhatsApp itself" in stopped.opt_out_reason
    assert curious.opted_out_at is None
    stored = replies(db)
    assert [(r.kind, r.payload, r.opted_out, r.message_id) for r in stored] == [
        ("button", keywords.OPT_OUT_PAYLOAD, True, ids[0]),
        ("button", "MORE_INFO", False, ids[2]),
    ]
    assert by_kind(assert_exact(db, campaign_id))["replied"] == 2


def test_a_reply_with_only_a_user_id_is_kept_and_later_matched(migrated_db) -> None:
    db = migrated_db
    cloud, campaign_id, ids, t0 = sent_campaign(db)
    user = "IN.1349851234567890"
    # Unknown id, no number: kept with no contact, never dropped.
    lonely = inbound_body(
        {"id": "wamid.u1", "type": "text", "text": {"body": "hello?"}}, phone=None, user_id=user
    )
    deliver(db, lonely, cloud, t0)
    [kept] = replies(db)
    assert kept.contact_id is None and kept.phone is None and kept.wa_user_id == user
    # Number and id together: the id is kept on the contact...
    both = inbound_body(
        {"id": "wamid.u2", "type": "text", "text": {"body": "Price?"}}, user_id=user, at=t0
    )
    deliver(db, both, cloud, t0)
    assert contact_of(db, "+" + PHONE).wa_user_id == user
    # ...so the id alone finds them, and a STOP by id opts them out.
    by_id = inbound_body(
        {"id": "wamid.u3", "type": "text", "text": {"body": "PARAR"}}, phone=None, user_id=user
    )
    deliver(db, by_id, cloud, t0 + timedelta(minutes=1))
    contact = contact_of(db, "+" + PHONE)
    stored = replies(db)
    assert [r.contact_id for r in stored] == [None, contact.id, contact.id]
    assert stored[2].opted_out and contact.opted_out_at is not None
    assert stored[1].message_id == ids[0]  # the last campaign message to them, within 72 h
    assert_exact(db, campaign_id)


def test_replies_are_attributed_by_quote_else_within_72_hours(migrated_db) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 1, cloud)
    old_campaign, old_ids = campaign_for(db, 1, cloud, name="Older")
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    for cid in (old_campaign, campaign_id):
        settle_sent(db, claim_all(db, cid, cloud, t0, "lane:1"), cloud, t0, "lane:1")
    with db.session() as session:  # the older campaign's message went out 4 days ago
        session.execute(
            update(Message).where(Message.id == old_ids[0]).values(sent_at=t0 - timedelta(days=4))
        )
        from wabulk.analytics import stats

        stats.rebuild(session)
    quoted = inbound_body(
        {
            "id": "wamid.r1",
            "type": "text",
            "text": {"body": "yes"},
            "context": {"id": wamid(old_ids[0])},
        },
        at=t0,
    )
    recent = inbound_body({"id": "wamid.r2", "type": "text", "text": {"body": "ok"}}, at=t0)
    late = inbound_body(
        {"id": "wamid.r3", "type": "text", "text": {"body": "hi"}}, at=t0 + timedelta(hours=73)
    )
    for body in (quoted, recent, late):
        deliver(db, body, cloud, t0)
    assert [r.message_id for r in replies(db)] == [old_ids[0], ids[0], None]
    assert_exact(db, campaign_id, old_campaign)


def test_a_red_rating_limits_the_sender_and_pauses_its_campaigns(migrated_db) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, _ids = campaign_for(db, 3, cloud)
    with db.session() as session:  # the campaign sends through the Cloud API sender only
        session.execute(
            campaign_senders.delete().where(campaign_senders.c.campaign_id == campaign_id)
        )
        session.execute(campaign_senders.insert().values(campaign_id=campaign_id, sender_id=cloud))
    now = utcnow()
    tier = envelope(
        "business_capability_update",
        {"max_daily_conversations_per_business": 2000, "max_phone_numbers_per_business": 2},
        phone_number_id=None,
    )
    deliver(db, encode(tier), cloud, now)
    with db.session() as session:
        sender = session.get(Sender, cloud)
        assert sender.health["messaging_tier"] == "TIER_2K" and sender.state == SenderState.LINKED
    quality = envelope(
        "phone_number_quality_update",
        {"display_phone_number": "15550783881", "event": "FLAGGED", "current_limit": "TIER_2K"},
        phone_number_id=None,
    )
    deliver(db, encode(quality), cloud, now)
    with db.session() as session:
        sender = session.get(Sender, cloud)
        campaign = session.get(Campaign, campaign_id)
        logged = session.scalars(select(Event.kind).order_by(Event.id)).all()
    assert sender.state == SenderState.LIMITED and "low (red)" in sender.state_reason
    assert sender.health["quality_rating"] == "RED"
    assert campaign.status == CampaignStatus.PAUSED and "low (red)" in campaign.status_reason
    assert {"sender.health", "sender.stopped", "campaign.paused"} <= set(logged)


def test_a_sender_error_on_a_status_takes_the_sender_out(migrated_db) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    campaign_id, ids = campaign_for(db, 2, cloud)
    t0 = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    with db.session() as session:
        claimed = queue.claim(
            session,
            campaign_id=campaign_id,
            body="Hi",
            sender_id=cloud,
            owner="lane:1",
            limit=1,
            now=t0,
            lease_until=t0 + timedelta(minutes=5),
            pace=Pace(),
        )
    settle_sent(db, claimed, cloud, t0, "lane:1")
    from tests.inbound_support import status, statuses_body

    deliver(db, statuses_body([status(ids[0], "failed", t0, error_code=131042)]), cloud, t0)
    with db.session() as session:
        sender = session.get(Sender, cloud)
        campaign = session.get(Campaign, campaign_id)
    assert sender.state == SenderState.NEEDS_LINK and "payment" in sender.state_reason
    # Its campaign still has the rehearsal sender: it goes on there.
    assert campaign.status == CampaignStatus.RUNNING
    with db.session() as session:
        lifecycle.pause_orphaned(session)
    assert_exact(db, campaign_id)


def test_errors_about_the_whole_account_are_logged_or_stop_the_sender(migrated_db) -> None:
    db = migrated_db
    cloud = make_cloud_sender(db)
    now = utcnow()
    errors = [{"code": 131000, "title": "Something went wrong"}, {"code": 190, "title": "Expired"}]
    deliver(db, encode(envelope("messages", {"errors": errors})), cloud, now)
    with db.session() as session:
        sender = session.get(Sender, cloud)
        logged = dict(session.execute(select(Event.kind, Event.text)).all())
    assert sender.state == SenderState.NEEDS_LINK and "access token" in sender.state_reason
    assert "error 131000" in logged["sender.provider_error"]
    assert "access token" in logged["sender.stopped"]
