"""The campaign page follows receipts and replies after the last send, without a reload:
real Chromium against `wabulk serve`, the statuses applied by `inbound.apply` as the worker
applies a webhook."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from wabulk import inbound
from wabulk.campaigns import lifecycle
from wabulk.channels.heard import Heard, Reply, StatusUpdate
from wabulk.db import Database
from wabulk.models import Message, utcnow

from ..campaigns_support import FakeClock, drive, make_campaign, make_contacts, make_lane, phones
from ..campaigns_support import make_sender as new_sender
from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"


def test_delivered_read_billed_and_replies_rise_without_a_reload(
    browser, artifacts, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "viewer")
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        numbers = phones(3, "+9198730")
        sender = new_sender(db, "Shop phone")
        campaign_id = make_campaign(db, [make_contacts(db, numbers, "Customers")], [sender])
        clock = FakeClock()
        drive([make_lane(db, sender, instance, clock)], clock, db)
        with db.session() as session:
            # Finished, as the worker's scheduler finishes it: the page no longer follows
            # sending, only what is heard back.
            assert lifecycle.complete_finished(session, utcnow()) == [campaign_id]
            ids = dict(
                session.execute(
                    select(Message.phone, Message.id).where(Message.campaign_id == campaign_id)
                ).all()
            )

        with running_server(instance, "--no-worker") as server:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            sign_in(page, server.url, EMAIL, PASSWORD)
            page.goto(f"{server.url}/campaigns/{campaign_id}")
            funnel = page.get_by_test_id("funnel")
            expect(funnel.locator('[data-funnel="sent"]')).to_have_text("3")
            expect(funnel.locator('[data-funnel="read"]')).to_have_text("0")
            expect(page.get_by_test_id("status")).to_have_text("completed")
            expect(page.get_by_test_id("billed")).to_be_hidden()
            expect(page.get_by_test_id("no-replies")).to_be_visible()
            page.evaluate("window.__same_page = true")

            now = utcnow()
            heard = Heard(
                statuses=[
                    StatusUpdate(
                        "read", now, message_id=ids[numbers[0]], billed_category="marketing"
                    ),
                    StatusUpdate(
                        "delivered", now, message_id=ids[numbers[1]], billed_category="utility"
                    ),
                ],
                replies=[
                    Reply(at=now, provider_message_id="wamid.in-1", phone=numbers[0], text="STOP")
                ],
            )
            with db.session() as session:
                inbound.apply(session, sender, heard, now)

            # The page polls a finished campaign every 10 s: generous waits, no reload.
            expect(funnel.locator('[data-funnel="read"]')).to_have_text("1", timeout=60_000)
            expect(funnel.locator('[data-funnel="delivered"]')).to_have_text("2")
            expect(funnel.locator('[data-funnel-percent="delivered"]')).to_have_text(
                "66.7% of sent"
            )
            expect(funnel.locator('[data-funnel="replied"]')).to_have_text("1")
            expect(page.get_by_test_id("billed")).to_contain_text("Utility 1")
            expect(page.get_by_test_id("billed")).to_contain_text("Marketing 1")
            replies = page.get_by_test_id("replies")
            expect(replies).to_contain_text("STOP", timeout=30_000)
            expect(replies.get_by_test_id("opted-out")).to_have_count(1)
            assert page.evaluate("window.__same_page") is True
            page.screenshot(path=str(artifacts / "campaign-funnel.png"), full_page=True)
            assert problems == []
            page.close()
    finally:
        db.dispose()
