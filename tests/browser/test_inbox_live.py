"""The Inbox in a real browser: a customer's reply on the Cloud API number appears without a
reload with the unread count, a teammate answers it and the answer reaches the stand-in once
with its ticks following; after 24 hours free text is refused and a template is offered;
assignment, done and reopen; a viewer reads without controls.

Everything is real except the Cloud API itself: `wabulk serve` with its worker (webhook
receipts, the answer's send, its statuses), and the Cloud API stand-in posting signed
webhooks to it as Meta would.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from wabulk.auth import service as users
from wabulk.channels.heard import Reply
from wabulk.db import Database
from wabulk.inbound import replies
from wabulk.models import CloudTemplate, Conversation, Message, MessageStatus, Role, utcnow

from .. import hooks_support as hooks
from ..campaigns_support import make_campaign, make_contacts, make_sender
from ..fakes.cloud_api import FakeCloudApi
from ..fakes.whatsapp_web import FakeWhatsAppWeb
from ..inbound_support import APP_SECRET, PHONE_NUMBER_ID, WABA_ID, make_cloud_sender
from ..page_tour import COMPONENTS
from ..support import new_instance, running_server
from ..web_channel_support import ACCOUNT, wait_for
from .conftest import sign_in

# The Cloud API journey (the "done when") runs in make test; the WhatsApp Web one,
# which waits out the lane's looks in a real browser, with the slow checks.
pytestmark = [pytest.mark.browser]
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
TOKEN = "EAAG-token"
ASHA, RAVI = "+919876500021", "+919876500022"
QUESTION = "Do you deliver to Pune?"


def test_a_cloud_reply_is_answered_live_once_and_the_window_rule_holds(
    browser, artifacts, tmp_path, fake_cloud: FakeCloudApi
) -> None:
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "operator")
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        cloud = make_cloud_sender(db, "Shop number", secret_key=hooks.SECRET_KEY)
        customers = make_contacts(db, [ASHA, RAVI], "Customers", attributes={"city": "Pune"})
        _campaign_reached(db, customers, cloud)
        with db.session() as session:
            users.create_user(session, None, "viewer@shop.example", PASSWORD, Role.VIEWER)
            session.add(
                CloudTemplate(
                    sender_id=cloud,
                    name="spring_sale",
                    language="en_US",
                    category="MARKETING",
                    status="APPROVED",
                    parameter_format="positional",
                    components=COMPONENTS,
                )
            )
        fake_cloud.add_number(PHONE_NUMBER_ID, WABA_ID, TOKEN, APP_SECRET)
        fake_cloud.add_template(WABA_ID, "spring_sale", "en_US", components=COMPONENTS)
        fake_cloud.auto_statuses(PHONE_NUMBER_ID, delay=0.5)

        with (
            contextmanager(hooks.serve)() as receiver,
            running_server(
                instance,
                WABULK_CLOUD_API_URL=fake_cloud.base_url,
                WABULK_SECRET_KEY=hooks.SECRET_KEY,
            ) as server,
        ):
            endpoint_secret = hooks.add_endpoint(db, receiver.url)[1]
            fake_cloud.set_webhook(PHONE_NUMBER_ID, f"{server.url}/webhooks/whatsapp/{cloud}")
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            sign_in(page, server.url, EMAIL, PASSWORD)
            page.goto(server.url + "/inbox")
            expect(page.get_by_test_id("no-conversations")).to_contain_text("No replies yet.")
            count = page.locator("[data-inbox-unread]")
            expect(count).to_be_hidden()
            page.evaluate("window.__same_page = true")

            # Asha writes on WhatsApp: her conversation and the count appear without a reload.
            fake_cloud.inbound(PHONE_NUMBER_ID, from_phone=ASHA, text=QUESTION)
            row = page.locator("[data-conversation]").filter(has_text=QUESTION)
            expect(row).to_be_visible(timeout=30_000)
            expect(count).to_have_text(re.compile(r"^1\b"))
            assert page.evaluate("window.__same_page") is True

            row.get_by_role("link").click()
            expect(page.get_by_test_id("thread")).to_contain_text(QUESTION)
            expect(count).to_be_hidden()
            expect(page.get_by_test_id("window-left")).to_contain_text("23 h")
            page.get_by_label(re.compile("Your answer to")).fill(
                "Yes {{ first_name }}, we deliver to Pune tomorrow."
            )
            page.get_by_test_id("send-answer").click()
            out = page.get_by_test_id("thread").locator('[data-kind="out"]')
            expect(out.first).to_contain_text("Campaign: Diwali sale")
            expect(out.first).to_contain_text("20% off everything")
            answer = out.last
            expect(answer).to_contain_text("Yes Person, we deliver to Pune tomorrow.")
            expect(answer).to_contain_text(f"Answer by {EMAIL}")
            expect(answer.get_by_test_id("tick")).to_have_text("Read", timeout=30_000)
            fake_cloud.wait_for(lambda: len(fake_cloud.sent) >= 1, 30)
            sent = [m for m in fake_cloud.sent if m["to"].lstrip("+") == ASHA.lstrip("+")]
            assert len(sent) == 1 and sent[0]["type"] == "text", fake_cloud.sent
            page.screenshot(path=str(artifacts / "inbox-answered.png"), full_page=True)
            answer_id = _events_out_for_the_answer(receiver, endpoint_secret)

            # Assigned to me, then done: it leaves the open list until Asha writes again.
            page.get_by_test_id("assign-me").click()
            expect(page.get_by_test_id("assignee")).to_contain_text(EMAIL)
            page.get_by_test_id("mark-done").click()
            expect(page.get_by_test_id("done-badge")).to_be_visible()
            page.goto(server.url + "/inbox?f=mine")
            expect(page.locator("[data-conversation]")).to_have_count(0)
            fake_cloud.inbound(PHONE_NUMBER_ID, from_phone=ASHA, text="And on Sunday?")
            expect(
                page.locator("[data-conversation]").filter(has_text="And on Sunday?")
            ).to_be_visible(timeout=30_000)

            # Ravi wrote two days ago: free text is refused, the approved template offered.
            old = utcnow() - timedelta(hours=25)
            with db.session() as session:
                replies.store_replies(
                    session, cloud, [Reply(old, "wamid.old-ravi", RAVI, text="Price?")], (), old
                )
            with db.session() as session:
                ravi = session.scalars(
                    select(Conversation.id).order_by(Conversation.id.desc())
                ).first()
            page.goto(f"{server.url}/inbox/{ravi}")
            expect(page.get_by_test_id("window-closed")).to_be_visible()
            expect(page.get_by_test_id("send-answer")).to_have_count(0)
            choice = page.get_by_test_id("template-choices")
            expect(choice).to_contain_text("spring_sale")
            choice.get_by_label(re.compile("message's \\{\\{1\\}\\}")).fill("{{ first_name }}")
            choice.get_by_label(re.compile("message's \\{\\{2\\}\\}")).fill("SPRING10")
            choice.get_by_test_id("send-template").click()
            fake_cloud.wait_for(
                lambda: any(m["to"].lstrip("+") == RAVI.lstrip("+") for m in fake_cloud.sent), 30
            )
            to_ravi = [m for m in fake_cloud.sent if m["to"].lstrip("+") == RAVI.lstrip("+")]
            assert len(to_ravi) == 1 and to_ravi[0]["type"] == "template", to_ravi
            assert problems == []
            page.close()

            # A viewer reads the same conversation without any control, here on a phone.
            browser.clear_cookies()
            viewer = browser.new_page()
            viewer.set_viewport_size({"width": 390, "height": 844})
            sign_in(viewer, server.url, "viewer@shop.example", PASSWORD)
            viewer.goto(f"{server.url}/inbox/{ravi}")
            expect(viewer.get_by_test_id("read-only")).to_be_visible()
            expect(viewer.get_by_test_id("team-actions")).to_have_count(0)
            expect(viewer.locator("form[action*='/inbox/']")).to_have_count(0)
            expect(viewer.get_by_test_id("thread")).to_contain_text("Price?")
            wide = viewer.evaluate("document.documentElement.scrollWidth")
            assert wide <= 390, f"the conversation is {wide} px wide on a 390 px phone"
            viewer.screenshot(path=str(artifacts / "inbox-phone-viewer.png"), full_page=True)
            viewer.close()
        assert len(fake_cloud.sent) == 2
        # The answer went once: one sent, one delivered, one read event for it, no repeat.
        answer_statuses = sorted(
            e["data"]["status"]
            for e in receiver.events("message.status")
            if e["data"]["message_id"] == answer_id
        )
        assert answer_statuses == ["delivered", "read", "sent"]
    finally:
        db.dispose()


def _campaign_reached(db: Database, list_id: int, cloud: int) -> None:
    """A campaign's message went to each customer through the Cloud API number an hour ago
    (as the worker leaves it), so a reply is credited to it."""
    campaign = make_campaign(db, [list_id], [make_sender(db, "Rehearsal")], name="Diwali sale")
    with db.session() as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == campaign)
            .values(
                status=MessageStatus.SENT,
                sender_id=cloud,
                sent_at=utcnow() - timedelta(hours=1),
                body="Diwali sale: 20% off everything until Sunday.",
            )
        )


def _events_out_for_the_answer(receiver: hooks.Receiver, secret: str) -> int:
    """The shop's own server heard, signed, of the reply (credited to the campaign) and of
    the answer going out and being read; returns the answer's message id."""
    replied = hooks.wait_for(
        lambda: [e for e in receiver.events("message.replied") if e["data"]["text"] == QUESTION],
        "the message.replied event",
    )
    assert len(replied) == 1 and replied[0]["data"]["campaign_name"] == "Diwali sale"
    read = hooks.wait_for(
        lambda: [
            e
            for e in receiver.events("message.status")
            if e["data"]["campaign_id"] is None and e["data"]["status"] == "read"
        ],
        "the answer's read status event",
    )
    assert len(read) == 1 and read[0]["data"]["phone"] == ASHA
    with receiver.lock:
        hits = list(receiver.hits)
    assert hits and all(hooks.verify(secret, hit) for hit in hits)
    return int(read[0]["data"]["message_id"])


@pytest.mark.slow
def test_a_whatsapp_web_reply_appears_live_and_is_answered_once(
    browser, artifacts, tmp_path, fake: FakeWhatsAppWeb
) -> None:
    """The reply is read from the phone's chats by the sender's own browser, between sends
    and while idle after the campaign, and the answer goes through that same browser."""
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "admin")
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        customers = make_contacts(db, [ASHA], "Customers")
        env = {"WABULK_WHATSAPP_WEB_URL": fake.url, "WABULK_BROWSER_TIMEOUT": "20"}
        with running_server(instance, **env) as server:
            page = browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            sign_in(page, server.url, EMAIL, PASSWORD)
            page.goto(server.url + "/senders/new")
            page.get_by_label("Name", exact=True).fill("Shop phone")
            page.get_by_role("button", name="Add sender").click()
            page.wait_for_url(re.compile(r".*/senders/\d+/link$"))
            assert wait_for(lambda: fake.pending_qr(), what="the QR on the stand-in")
            assert fake.scan(phone=ACCOUNT)
            expect(page.get_by_test_id("linked-as")).to_contain_text(ACCOUNT, timeout=30_000)
            sender = int(page.url.rsplit("/", 2)[-2])
            make_campaign(db, [customers], [sender], name="Monsoon sale")
            wait_for(lambda: _web_sent(fake, ASHA), 60, what="the campaign message")

            page.goto(server.url + "/inbox")
            count = page.locator("[data-inbox-unread]")
            page.evaluate("window.__same_page = true")
            fake.reply(ASHA, QUESTION)
            row = page.locator("[data-conversation]").filter(has_text=QUESTION)
            expect(row).to_be_visible(timeout=60_000)
            expect(count).to_have_text(re.compile(r"^1\b"))
            assert page.evaluate("window.__same_page") is True

            row.get_by_role("link").click()
            thread = page.get_by_test_id("thread")
            expect(thread).to_contain_text("Campaign: Monsoon sale")
            expect(page.get_by_test_id("window-left")).to_have_count(0)  # no window here
            page.get_by_label(re.compile("Your answer to")).fill("Yes, we deliver on Saturday.")
            page.get_by_test_id("send-answer").click()
            answer = thread.locator('[data-kind="out"]').last
            expect(answer).to_contain_text("Yes, we deliver on Saturday.")
            expect(answer.get_by_test_id("tick")).to_have_text(
                re.compile("Sent|Delivered|Read"), timeout=60_000
            )
            page.screenshot(path=str(artifacts / "inbox-web-answered.png"), full_page=True)
            assert problems == []
            page.close()
        answers = [m for m in _web_sent(fake, ASHA) if m["text"] == "Yes, we deliver on Saturday."]
        assert len(answers) == 1
    finally:
        db.dispose()


def _web_sent(fake: FakeWhatsAppWeb, phone: str) -> list[dict]:
    return [m for m in fake.messages() if m["phone"].lstrip("+") == phone.lstrip("+")]
