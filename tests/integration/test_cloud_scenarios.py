"""Cloud API campaigns through the fake in the situations a shop meets: every kind of
message, every class of error Meta answers, a storm of webhooks, a forged webhook, a crash
between a send and its settle, and the tier budget holding a campaign back.

All but the last run as `wabulk serve` with its embedded worker, hearing the fake's signed
webhooks over real HTTP; the budget's day is driven in-process under a fake clock. Each
runs on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tests.campaigns_support import FakeClock, make_contacts, make_sender
from tests.cloud_support import (
    MP4_BYTES,
    PDF_BYTES,
    PHONE_NUMBER_ID,
    WABA_ID,
    Rig,
    WebhookGate,
    add_sender,
    another_number,
    by_phone,
    cloud_settings,
    counts,
    events_of,
    hold_sender,
    launch,
    let_go,
    linked_template,
    message_rows,
    numbered,
    people,
    png_bytes,
    revoke_after,
    save_file,
    sender_state,
    sends_of,
    served,
    spring_template,
    sync,
    wait_counts,
    write_first,
)
from tests.inbound_support import assert_exact, by_kind
from wabulk.dispatch.lane import Lane
from wabulk.models import (
    CampaignStatus,
    Contact,
    Inbound,
    Message,
    MessageStatus,
    Sender,
    WebhookReceipt,
)

S = MessageStatus
LIMITED = "This customer has reached WhatsApp's limit of marketing messages from businesses today."

# A utility template with a text header variable and positional body variables.
ORDER_READY = [
    {
        "type": "HEADER",
        "format": "TEXT",
        "text": "Order for {{1}}",
        "example": {"header_text": ["Pablo"]},
    },
    {
        "type": "BODY",
        "text": "Hi {{1}}, your order from our {{2}} shop is ready.",
        "example": {"body_text": [["Pablo", "Pune"]]},
    },
]
FLASH_SALE = [{"type": "BODY", "text": "Flash sale today only: everything 20% off."}]


# --- 1. every message type --------------------------------------------------------------


def test_every_kind_of_message_reaches_customers(migrated_db, settings, fake_cloud) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    sender_id = add_sender(db, settings, fake)
    rig = Rig(fake, db, settings, sender_id)
    fake.add_template(WABA_ID, "order_ready", "en_US", "UTILITY", components=ORDER_READY)
    sync(db, settings, sender_id)
    order = linked_template(
        db,
        "Order ready",
        "order_ready",
        {"header.1": "{{name}}", "body.1": "{{name}}", "body.2": "{{City}}"},
    )
    # Different customers per campaign: the pair rule spaces two messages to one customer.
    text, closed = numbered("+9198120", 2), "+919812099999"
    photo, document, video = (
        numbered("+9198121", 2),
        numbered("+9198122", 2),
        numbered("+9198123", 2),
    )
    templated = numbered("+9198124", 2)
    lists = {
        "text": people(db, [*text, closed], "Text"),
        "photo": people(db, photo, "Photo"),
        "document": people(db, document, "Document"),
        "video": people(db, video, "Video"),
        "template": people(db, templated, "Template"),
    }
    files = {
        "photo": save_file(db, settings, png_bytes(), "stock.png"),
        "document": save_file(db, settings, PDF_BYTES, "catalogue.pdf"),
        "video": save_file(db, settings, MP4_BYTES, "tour.mp4"),
    }
    fake.auto_statuses(PHONE_NUMBER_ID)

    with served(db, settings, fake, sender_id):
        write_first(rig, db, [*text, *photo, *document, *video])
        campaigns = {
            "text": launch(
                db, "Basket", lists["text"], sender_id, None, "Hello {{ name }}, your basket waits."
            ),
            "template": launch(db, "Orders", lists["template"], sender_id, order),
        }
        for kind in ("photo", "document", "video"):
            campaigns[kind] = launch(
                db,
                kind.title(),
                lists[kind],
                sender_id,
                None,
                f"New {kind} for {{{{ name }}}}",
                media_id=files[kind],
            )
        wait_counts(rig, campaigns["text"], read=2, skipped=1)
        for kind in ("photo", "document", "video", "template"):
            wait_counts(rig, campaigns[kind], read=2)

        # Free-form text: to the open windows only; the closed one skipped, saying why.
        rows = by_phone(db, campaigns["text"])
        assert rows[closed].status == S.SKIPPED
        assert rows[closed].error_detail.startswith("Outside the 24-hour window")
        sends = sends_of(fake, db, campaigns["text"])
        assert sorted(s["to"] for s in sends) == text
        assert {s["type"] for s in sends} == {"text"}
        assert {s["body"]["text"]["body"] for s in sends} == {
            "Hello Person 0, your basket waits.",
            "Hello Person 1, your basket waits.",
        }

        # Files: each uploaded once to the account, every send of a campaign by that id.
        assert len(fake.media) == 3
        kinds = {"photo": ("image", photo), "document": ("document", document)}
        kinds["video"] = ("video", video)
        used = set()
        for kind, (wire, audience) in kinds.items():
            sends = sends_of(fake, db, campaigns[kind])
            assert sorted(s["to"] for s in sends) == audience
            assert {s["type"] for s in sends} == {wire}
            (media_id,) = {s["body"][wire]["id"] for s in sends}
            assert fake.media[media_id]["kind"] == wire
            used.add(media_id)
            captions = {s["body"][wire]["caption"] for s in sends}
            assert captions == {f"New {kind} for Person 0", f"New {kind} for Person 1"}
        assert used == set(fake.media)
        assert {
            s["body"]["document"]["filename"] for s in sends_of(fake, db, campaigns["document"])
        } == {"catalogue.pdf"}

        # The template: a text header and positional body values, per contact.
        for send in sends_of(fake, db, campaigns["template"]):
            template = send["body"]["template"]
            assert (template["name"], template["language"]["code"]) == ("order_ready", "en_US")
            parts = {c["type"]: c["parameters"] for c in template["components"]}
            name = f"Person {templated.index(send['to'])}"
            assert parts["header"] == [{"type": "text", "text": name}]
            assert parts["body"] == [
                {"type": "text", "text": name},
                {"type": "text", "text": "pune"},
            ]

        kept = by_kind(assert_exact(db, *campaigns.values()))
        assert kept["sent"] == kept["delivered"] == kept["read"] == 10
        assert len(fake.sent) == 10


# --- 2. every class of error ------------------------------------------------------------


def test_each_class_of_error_ends_as_meta_means(migrated_db, settings, fake_cloud) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    sender_id = add_sender(db, settings, fake)
    rig = Rig(fake, db, settings, sender_id)
    spring = spring_template(db, settings)
    fake.add_template(WABA_ID, "flash_sale", "en_US", components=FLASH_SALE)
    sync(db, settings, sender_id)
    flash = linked_template(db, "Flash sale", "flash_sale", {})
    retried = numbered("+9198130", 4)
    gone, stopped, limited, fine = numbered("+9198131", 4)
    flashed = numbered("+9198132", 2)
    lists = [
        people(db, retried, "Retried"),
        people(db, [gone, stopped, limited, fine], "Refused"),
        people(db, flashed, "Flash"),
    ]
    fake.auto_statuses(PHONE_NUMBER_ID)

    with served(db, settings, fake, sender_id):
        # Transient: Meta's 131000 twice (HTTP 500), then its throughput error.
        fake.fail_next(2, 131000, 500)
        fake.fail_next(1, 130429, 400)
        transient = launch(db, "Retried", lists[0], sender_id, spring, retry_seconds=1)
        rig.wait("the three injected failures", lambda: fake.rejected >= 3)
        # Per recipient: refused at once (131026, 131050), or failed later by webhook (131049).
        fake.reject_recipient(gone, 131026)
        fake.reject_recipient(stopped, 131050)
        fake.fail_recipient(limited, 131049)
        refused = launch(db, "Refused", lists[1], sender_id, spring)
        # Deleted at Meta after wabulk's sync: every send names the missing template.
        with fake._lock:
            del fake.templates[WABA_ID][("flash_sale", "en_US")]
        deleted = launch(db, "Flash", lists[2], sender_id, flash)

        wait_counts(rig, refused, read=1, failed=3)
        wait_counts(rig, deleted, failed=2)
        # 131000 waits Meta's backoff (30 s) before its retry.
        wait_counts(rig, transient, timeout=180, read=4)

        rows = by_phone(db, transient)
        assert {row.status for row in rows.values()} == {S.READ}
        assert Counter(s["to"] for s in sends_of(fake, db, transient)) == Counter(retried)
        with db.session() as session:
            attempts = sorted(
                session.scalars(select(Message.attempts).where(Message.campaign_id == transient))
            )
        assert attempts == [1, 2, 2, 2], attempts

        rows = by_phone(db, refused)
        assert (rows[gone].status, rows[gone].error_code) == (S.FAILED, "131026")
        assert (rows[stopped].status, rows[stopped].error_code) == (S.FAILED, "131050")
        assert (rows[limited].status, rows[limited].error_code) == (S.FAILED, "131049")
        assert rows[limited].error_detail == LIMITED
        assert rows[fine].status == S.READ
        assert sorted(s["to"] for s in sends_of(fake, db, refused)) == sorted([limited, fine])
        with db.session() as session:
            contact = {c.phone: c for c in session.scalars(select(Contact))}
        assert contact[gone].not_on_whatsapp_at is not None
        assert contact[gone].opted_out_at is None
        assert contact[stopped].opted_out_at is not None
        assert contact[limited].opted_out_at is None and contact[limited].not_on_whatsapp_at is None
        assert contact[fine].opted_out_at is None and contact[fine].not_on_whatsapp_at is None

        for row in message_rows(db, deleted):
            assert (row.status, row.error_code) == (S.FAILED, "132001")
            assert "flash_sale (en_US)" in row.error_detail, row.error_detail
        assert sends_of(fake, db, deleted) == []
        assert sender_state(db, sender_id)[0] == "linked"

        kept = by_kind(assert_exact(db, transient, refused, deleted))
        assert kept["failed:131026"] == kept["failed:131050"] == kept["failed:131049"] == 1
        assert kept["failed:132001"] == 2
        assert kept["read"] == 5


# --- 2b. a sender-fatal error -----------------------------------------------------------


def test_a_revoked_token_stops_its_sender_and_the_campaign_moves_or_pauses(
    migrated_db, settings, fake_cloud, monkeypatch
) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    alone = add_sender(db, settings, fake)
    rig = Rig(fake, db, settings, alone)
    spring = spring_template(db, settings)
    paired = another_number(db, settings, fake, "109876543210001", "EAAG-second-1", "Second")
    backup = another_number(db, settings, fake, "109876543210002", "EAAG-backup-2", "Backup")
    beside = another_number(db, settings, fake, "109876543210003", "EAAG-third-3", "Third")
    rehearsal = make_sender(db, "Rehearsal", min_delay_seconds=0, max_delay_seconds=0)
    for pnid in (PHONE_NUMBER_ID, "109876543210001", "109876543210002", "109876543210003"):
        fake.auto_statuses(pnid)
    lists = [
        people(db, numbered(p, n), f"List {p}")
        for p, n in (("+98140", 10), ("+98141", 10), ("+98142", 6))
    ]

    with served(db, settings, fake, alone) as server:
        for pnid, sid in (
            ("109876543210001", paired),
            ("109876543210002", backup),
            ("109876543210003", beside),
        ):
            fake.set_webhook(pnid, f"{server.url}/webhooks/whatsapp/{sid}")

        # Alone: the campaign pauses, saying why; what was not sent waits untouched.
        revoke_after(fake, monkeypatch, PHONE_NUMBER_ID, 4)
        first = launch(db, "Alone", lists[0], alone, spring)
        rig.wait(
            "the campaign to pause", lambda: rig.campaign(first).status == CampaignStatus.PAUSED
        )
        state, reason = sender_state(db, alone)
        assert state == "needs_link"
        assert "access token" in reason and "Paste a new one" in reason
        assert "access token" in (rig.campaign(first).status_reason or "")
        wait_counts(rig, first, read=4, queued=6)
        for row in message_rows(db, first):
            if row.status == S.QUEUED:
                assert (row.error_code, row.provider_message_id) == (None, None)
        with db.session() as session:
            waiting = session.execute(
                select(Message.attempts, Message.sender_id, Message.body).where(
                    Message.campaign_id == first, Message.status == S.QUEUED
                )
            ).all()
        assert {(a, s) for a, s, _ in waiting} == {(0, None)}
        assert len(sends_of(fake, db, first)) == 4
        assert any("Shop number stopped" in text for text in events_of(db, "sender.unavailable"))

        # With a second Cloud API number, and with a dry-run sender: the rest goes there.
        done: list[int] = []
        for number, sid, other, list_id, k, n in (
            ("109876543210001", paired, backup, lists[1], 3, 10),
            ("109876543210003", beside, rehearsal, lists[2], 2, 6),
        ):
            hold_sender(db, other)  # so the revoked number claims the whole list first
            revoke_after(fake, monkeypatch, number, k)
            campaign = launch(db, f"Pair {number}", list_id, [sid, other], spring)
            rig.wait(
                f"sender {sid} to stop", lambda sid=sid: sender_state(db, sid)[0] == "needs_link"
            )
            wait_counts(rig, campaign, queued=n - k)
            assert rig.campaign(campaign).status == CampaignStatus.RUNNING
            let_go(db, other)
            rig.wait(
                "the campaign to finish on the other sender",
                lambda c=campaign: rig.campaign(c).status == CampaignStatus.COMPLETED,
            )
            rows = message_rows(db, campaign)
            sends = sends_of(fake, db, campaign)
            by_sender = Counter(s["pnid"] for s in sends)
            assert by_sender[number] == k
            if other == backup:
                assert by_sender["109876543210002"] == n - k
                wait_counts(rig, campaign, read=n)
                reached = Counter(s["to"] for s in sends)
            else:
                from wabulk.channels.dry_run import log_path, read_log

                logged = Counter(
                    int(d["message_id"])  # type: ignore[call-overload]
                    for d in read_log(log_path(Path(settings.instance_path), "Rehearsal"))
                )
                assert sum(by_sender.values()) == k
                assert {r.id for r in rows if r.status == S.SENT} == set(logged)
                wait_counts(rig, campaign, read=k, sent=n - k)
                phone_of = {r.id: r.phone for r in rows}
                reached = Counter(s["to"] for s in sends) + Counter(
                    {phone_of[mid]: times for mid, times in logged.items()}
                )
            # Every customer got it exactly once, from one sender or the other.
            assert reached == Counter(r.phone for r in rows) and set(reached.values()) == {1}
            assert "access token" in (sender_state(db, sid)[1] or "")
            done.append(campaign)
        assert_exact(db, first, *done)


# --- 3. a webhook storm, 4. a forged webhook --------------------------------------------


def test_a_storm_of_webhooks_leaves_exact_counters(migrated_db, settings, fake_cloud) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    sender_id = add_sender(db, settings, fake)
    rig = Rig(fake, db, settings, sender_id)
    spring = spring_template(db, settings)
    storm = people(db, numbered("+9198150", 200), "Storm")
    fake.auto_statuses(PHONE_NUMBER_ID, duplicates=True, out_of_order=True, batch=10)

    with served(db, settings, fake, sender_id):
        campaign = launch(db, "Storm", storm, sender_id, spring)
        wait_counts(rig, campaign, timeout=240, read=200)
        rig.wait("the fake to post every status", lambda: fake.counters()["statuses_pending"] == 0)

        def all_applied() -> bool:
            with db.session() as session:
                return not session.scalar(
                    select(func.count())
                    .select_from(WebhookReceipt)
                    .where(WebhookReceipt.processed_at.is_(None))
                )

        rig.wait("every receipt applied", all_applied)
        assert {row.status for row in message_rows(db, campaign)} == {S.READ}
        assert len(fake.sent) == 200 and len({s["to"] for s in fake.sent}) == 200
        assert fake.counters()["webhooks_failed"] == 0
        kept = by_kind(assert_exact(db, campaign))
        assert [kept[kind] for kind in ("sent", "delivered", "read", "billed")] == [200] * 4
        assert counts(rig, campaign, "sent", "delivered", "read", "failed") == (0, 0, 200, 0)


def test_a_forged_webhook_is_refused_and_counted(migrated_db, settings, fake_cloud) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    sender_id = add_sender(db, settings, fake)
    rig = Rig(fake, db, settings, sender_id)
    make_contacts(db, ["+919816000001"], "Forged")
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550001111",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "contacts": [{"profile": {"name": "Eve"}, "wa_id": "919816000001"}],
                            "messages": [
                                {
                                    "from": "919816000001",
                                    "id": "wamid.forged-1",
                                    "timestamp": "1764950000",
                                    "type": "text",
                                    "text": {"body": "STOP"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }

    def stored() -> tuple[int, int, Any]:
        with db.session() as session:
            receipts = session.scalar(select(func.count()).select_from(WebhookReceipt))
            inbound = session.scalar(select(func.count()).select_from(Inbound))
            opted = session.scalar(select(Contact.opted_out_at))
        return receipts, inbound, opted

    with served(db, settings, fake, sender_id):
        assert fake.post_raw(PHONE_NUMBER_ID, payload, signature="bad") == 403
        assert fake.post_raw(PHONE_NUMBER_ID, payload, signature=None) == 403
        assert stored() == (0, 0, None)
        with db.session() as session:
            sender = session.get(Sender, sender_id)
            assert sender is not None
            assert (sender.health or {}).get("webhooks_refused") == 2
        (said,) = events_of(db, "webhook.refused")
        assert "signature does not match" in said
        # The same delivery signed with the app secret is taken: the refusal was the signature.
        assert fake.post_raw(PHONE_NUMBER_ID, payload, signature="good") == 200
        rig.wait("the signed STOP to be applied", lambda: stored()[1:] != (0, None))
        assert stored()[0] == 1


# --- 5. a crash between send and settle -------------------------------------------------


def test_sends_left_in_flight_by_a_killed_server_are_settled_by_webhook(
    migrated_db, settings, fake_cloud
) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    sender_id = add_sender(db, settings, fake)
    rig = Rig(fake, db, settings, sender_id)
    spring = spring_template(db, settings)
    phones = numbered("+9198170", 5)
    list_id = people(db, phones, "Crash")
    fake.auto_statuses(PHONE_NUMBER_ID)
    # Meta retries a webhook for a long time; the gate holds them while wabulk is down.
    fake.webhook_attempts = 100_000
    gate = WebhookGate()
    # A short lease so a dead worker's messages are reconciled soon; Meta's answers hang
    # (after accepting) for far less than the channel's timeout, so nothing is retried.
    env = {"WABULK_LEASE_SECONDS": "3", "WABULK_CLOUD_API_TIMEOUT": "300"}
    fake.hang_next(len(phones), 60.0)
    try:
        with served(db, settings, fake, sender_id, **env) as server:
            fake.set_webhook(PHONE_NUMBER_ID, gate.url)
            campaign = launch(db, "Crash", list_id, sender_id, spring)
            rig.wait("the fake to accept every send", lambda: len(fake.sent) == len(phones))
            assert counts(rig, campaign, "sending") == (len(phones),)
            server.process.kill()
            server.process.wait(30)
        assert counts(rig, campaign, "sending", "sent") == (len(phones), 0)

        with served(db, settings, fake, sender_id, **env) as server:
            fake.set_webhook(PHONE_NUMBER_ID, gate.url)
            wait_counts(rig, campaign, unknown=len(phones), sending=0)
            assert {r.error_code for r in message_rows(db, campaign)} == {"lease_expired"}
            assert events_of(db, "messages.recovered", campaign)
            rig.wait("the fake to have tried the shut gate", lambda: gate.held > 0)
            gate.open(f"{server.url}/webhooks/whatsapp/{sender_id}")
            wait_counts(rig, campaign, read=len(phones), unknown=0)
            rows = message_rows(db, campaign)
            assert {r.status for r in rows} == {S.READ}
            wamids = {s["callback"]: s["wamid"] for s in fake.sent}
            assert {str(r.id): r.provider_message_id for r in rows} == wamids
            assert Counter(s["to"] for s in fake.sent) == Counter(phones)
            assert gate.passed > 0
            kept = by_kind(assert_exact(db, campaign))
            assert (kept["sent"], kept["read"]) == (len(phones), len(phones))
    finally:
        gate.close()


# --- 6. the tier budget -----------------------------------------------------------------


def test_the_tier_budget_holds_a_campaign_until_a_place_frees(
    migrated_db, settings, fake_cloud
) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    # TIER_50: the smallest limit Meta has, read from the number at the check.
    sender_id = add_sender(db, settings, fake, tier="TIER_50")
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender is not None and sender.health["messaging_tier"] == "TIER_50"
    spring = spring_template(db, settings)
    earlier = people(db, numbered("+9198180", 50), "Yesterday")
    later = people(db, numbered("+9198181", 5), "Today")
    # Fifty customers reached, the whole day's budget of a TIER_50 number.
    first = launch(db, "Yesterday", earlier, sender_id, spring)
    clock = FakeClock()
    lane = Lane(
        db,
        sender_id,
        "test:budget",
        Path(settings.instance_path),
        lease_seconds=120,
        clock=clock,
        rng=random.Random(1),
        options=settings.channel_options(),
        secret_key=settings.secret_key,
    )
    started = clock.now()

    def run(done: Any, before: Any = None) -> None:
        """Step the lane under the fake clock until `done()`; `before()` checked each step."""
        for _ in range(1000):
            if done():
                return
            wait = lane.step()
            if before is not None:
                before()
            if wait is None:
                break
            clock.advance(wait)
        assert done(), Rig(fake, db, settings, sender_id).diagnose()

    def campaign(campaign_id: int) -> Any:
        return Rig(fake, db, settings, sender_id).campaign(campaign_id)

    try:
        run(lambda: campaign(first).n_sent == 50)
        assert len(fake.sent) == 50

        # 23 hours on, a new campaign waits for the oldest of those to leave the day.
        clock.advance(23 * 3600)
        second = launch(db, "Today", later, sender_id, spring)
        run(lambda: campaign(second).held_reason is not None)
        held = campaign(second)
        assert held.n_queued == 5 and len(fake.sent) == 50
        assert "daily limit" in held.held_reason
        assert held.held_until is not None
        held_until = held.held_until.replace(tzinfo=started.tzinfo)
        assert (
            started + timedelta(hours=24) <= held_until <= started + timedelta(hours=24, minutes=2)
        )
        (waits,) = events_of(db, "campaign.held", second)
        assert "waits" in waits and "50 customers" in waits

        # Nothing goes before the hour; once the clock passes it, it sends again by itself.
        def not_early() -> None:
            assert len(fake.sent) == 50 or clock.now() >= held_until, clock.now()

        run(lambda: campaign(second).n_sent == 5, not_early)
        assert clock.now() >= held_until
        assert campaign(second).held_reason is None
        (again,) = events_of(db, "campaign.resumed", second)
        assert "sending again" in again
        assert len(fake.sent) == 55
        assert_exact(db, first, second)
    finally:
        lane.close()
