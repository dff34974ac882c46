"""A campaign through the (fake) Cloud API, end to end, as issue 15's "done when" states it:
an approved template whose variables and header photo come from the mapping; sent,
delivered, read, replied, failed and billed driven only by signed webhooks; a STOP reply and
a tap on the opt-out button end those customers' messages, and a later campaign skips them.

The product runs as `wabulk serve` with its embedded worker (web, webhooks and sending in
one process, as a shop runs it), on SQLite and PostgreSQL; the fake posts its signed
webhooks to it over real HTTP."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from tests.cloud_support import (
    PHONE_NUMBER_ID,
    Rig,
    add_sender,
    cloud_settings,
    customers,
    launch,
    message_rows,
    served,
    spring_template,
)
from tests.inbound_support import assert_exact, by_kind
from wabulk.models import Contact, Inbound, MessageStatus

LIMITED = "This customer has reached WhatsApp's limit of marketing messages from businesses today."


def test_a_template_campaign_hears_back_its_whole_funnel(migrated_db, settings, fake_cloud) -> None:
    db, fake = migrated_db, fake_cloud
    settings = cloud_settings(settings, fake)
    sender_id = add_sender(db, settings, fake)
    rig = Rig(fake, db, settings, sender_id)
    template_id = spring_template(db, settings)
    list_id = customers(db, 6, "Spring customers")
    phones = [f"+9198110{i:05d}" for i in range(6)]
    fake.fail_recipient(phones[5], 131049)
    # Meta's habits: batched entries, duplicates, statuses out of order.
    fake.auto_statuses(PHONE_NUMBER_ID, duplicates=True, out_of_order=True, batch=4)

    with served(db, settings, fake, sender_id):
        campaign_id = launch(db, "Spring sale", list_id, sender_id, template_id)
        rig.wait(
            "five read and one failed",
            lambda: (lambda c: (c.n_read, c.n_failed) == (5, 1))(rig.campaign(campaign_id)),
        )
        rows = message_rows(db, campaign_id)
        by_phone = {row.phone: row for row in rows}

        # Each template send carried the contact's own values and the photo uploaded once.
        assert len(fake.media) == 1
        (photo,) = fake.media
        sends = [s for s in fake.sent if s["type"] == "template"]
        assert len(sends) == 6
        for send in sends:
            template = send["body"]["template"]
            assert (template["name"], template["language"]["code"]) == ("spring_sale", "en_US")
            parts = {c["type"]: c for c in template["components"]}
            assert parts["header"]["parameters"][0]["image"]["id"] == photo
            body = {p["parameter_name"]: p["text"] for p in parts["body"]["parameters"]}
            contact_name = f"Person {phones.index(send['to'])}"
            assert body == {"customer_name": contact_name, "code": "CARIBE25"}
            assert send["body"]["biz_opaque_callback_data"] == str(by_phone[send["to"]].id)

        limited = by_phone[phones[5]]
        assert limited.status == MessageStatus.FAILED
        assert (limited.error_code, limited.error_detail) == ("131049", LIMITED)
        assert {r.billed_category for r in rows if r.phone != phones[5]} == {"marketing"}

        # Replies: a question quoting the campaign message, a STOP, a tap on the opt-out button.
        fake.inbound(
            PHONE_NUMBER_ID,
            phones[0],
            "Do you deliver to Pune?",
            context_id=by_phone[phones[0]].provider_message_id,
        )
        fake.inbound(PHONE_NUMBER_ID, phones[1], "stop")
        fake.button_tap(
            PHONE_NUMBER_ID,
            phones[2],
            "wabulk:opt-out",
            "Stop promotions",
            by_phone[phones[2]].provider_message_id,
        )
        rig.wait("three replies", lambda: rig.campaign(campaign_id).n_replied == 3)
        with db.session() as session:
            opted = dict(
                session.execute(
                    select(Contact.phone, Contact.opt_out_reason).where(
                        Contact.opted_out_at.is_not(None)
                    )
                ).all()
            )
            replies = session.execute(
                select(Inbound.body, Inbound.campaign_id, Inbound.opted_out).order_by(Inbound.id)
            ).all()
        assert set(opted) == {phones[1], phones[2]}
        assert "stop" in opted[phones[1]].lower()
        assert [(r.campaign_id, r.opted_out) for r in replies] == [
            (campaign_id, False),
            (campaign_id, True),
            (campaign_id, True),
        ]

        campaign = rig.campaign(campaign_id)
        assert (campaign.n_sent, campaign.n_delivered, campaign.n_read) == (0, 0, 5)
        kinds = by_kind(assert_exact(db, campaign_id))
        assert kinds["sent"] == 5 and kinds["delivered"] == 5 and kinds["read"] == 5
        assert kinds["replied"] == 3 and kinds["failed"] == 1
        assert kinds["billed"] == 5

        # A later campaign leaves out both who opted out; the limited customer gets it again.
        later = launch(db, "Spring sale, week two", list_id, sender_id, template_id)
        rig.wait(
            "the later campaign to finish",
            lambda: (lambda c: (c.n_read, c.n_failed) == (3, 1))(rig.campaign(later)),
        )
        assert rig.campaign(later).total == 4
        assert {r.phone for r in message_rows(db, later)} == {
            phones[0],
            phones[3],
            phones[4],
            phones[5],
        }
        sent_to = Counter(s["to"] for s in fake.sent)
        assert sent_to[phones[1]] == 1 and sent_to[phones[2]] == 1
        assert sent_to[phones[5]] == 2
        assert len(fake.media) == 1  # the photo is still the one uploaded the first time
