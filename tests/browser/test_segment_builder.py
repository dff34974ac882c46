"""The segment builder in real Chromium against `wabulk serve`: two conditions, the live
count and sample following each change (an unfinished row says what is missing instead),
saved; then a retarget button on a campaign's page opens the wizard with its segment."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from wabulk.db import Database
from wabulk.models import Contact

from ..campaigns_support import make_contacts, phones
from ..funnel_support import funnel_campaign
from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
PUNE = phones(8, "+9198755")


def _seed(db: Database) -> int:
    """Eight customers in Pune with dues 100…800 and a launched campaign with outcomes;
    returns the campaign's id."""
    make_contacts(db, PUNE, "Pune")
    make_contacts(db, phones(5, "+9198766"), "Mumbai", attributes={"due_amount": "900"})
    with db.session() as session:
        for i, phone in enumerate(PUNE):
            contact = session.scalar(select(Contact).where(Contact.phone == phone))
            assert contact is not None
            contact.name = f"Pune customer {i + 1}"
            contact.attributes = {"due_amount": str(100 * (i + 1))}
    return funnel_campaign(db, "Diwali offer").campaign_id


def test_build_a_segment_with_a_live_count_then_retarget(browser, artifacts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "operator")
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        campaign_id = _seed(db)
        with running_server(instance, "--no-worker") as server:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            sign_in(page, server.url, EMAIL, PASSWORD)

            page.goto(f"{server.url}/segments")
            expect(page.get_by_text("No segments yet")).to_be_visible()
            page.get_by_role("link", name="New segment").click()
            page.get_by_label("Name").fill("Pune dues")
            count = page.get_by_test_id("segment-count")
            sample = page.get_by_test_id("segment-sample")

            rows = page.get_by_test_id("condition")
            first = rows.nth(0)
            first.get_by_label("Look at").select_option("list")
            # A list not chosen yet: the row says so, in place of the count.
            expect(first.get_by_test_id("condition-error")).to_contain_text("Condition 1")
            expect(page.get_by_test_id("segment-count-error")).to_be_visible()
            first.get_by_label("Pune").check()
            expect(count.locator("[data-count]")).to_have_text("8")
            expect(sample.locator("tbody tr")).to_have_count(8)
            expect(first.get_by_test_id("condition-error")).to_be_hidden()

            page.get_by_role("button", name="Add a condition").click()
            second = rows.nth(1)
            second.get_by_label("Look at").select_option("attribute")
            second.get_by_label("Column").select_option("due_amount")
            second.get_by_label("Condition").select_option("gt")
            second.get_by_label("Value").fill("500")
            expect(count.locator("[data-count]")).to_have_text("3")
            expect(sample.locator("tbody tr")).to_have_count(3)
            expect(sample).to_contain_text("Pune customer 8")
            expect(sample).not_to_contain_text("Pune customer 5")
            page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar, where it belongs
            page.screenshot(path=str(artifacts / "segment-builder.png"), full_page=True)

            second.get_by_label("Value").fill("lots")
            expect(second.get_by_test_id("condition-error")).to_contain_text("number")
            expect(count).to_be_hidden()
            expect(sample).to_be_hidden()  # no stale names beside an unfinished condition
            expect(page.get_by_test_id("segment-count-error")).to_have_text(
                re.compile(r"^\s*Condition 2: “Due Amount” needs a number\.\s*$")
            )
            page.screenshot(path=str(artifacts / "segment-builder-unfinished.png"))
            second.get_by_label("Value").fill("650")
            expect(count.locator("[data-count]")).to_have_text("2")
            # On a phone the live card is below the Save button: the count is beside it too.
            mirror = page.get_by_test_id("segment-count-mirror")
            expect(mirror).to_be_hidden()  # wide: the card is in view beside the form
            page.set_viewport_size({"width": 390, "height": 844})
            expect(mirror).to_have_text("2 contacts match now: see who")
            expect(mirror).to_be_visible()
            second.get_by_label("Value").fill("lots")
            expect(mirror).to_be_hidden()  # no count while a condition is unfinished
            second.get_by_label("Value").fill("650")
            expect(mirror).to_be_visible()
            page.set_viewport_size({"width": 1280, "height": 900})

            page.get_by_test_id("save-segment").click()
            page.wait_for_url(f"{server.url}/segments")
            listed = page.get_by_test_id("segments")
            expect(listed).to_contain_text("Pune dues")
            expect(listed.locator('[data-field="count"]')).to_have_text("2")
            page.screenshot(path=str(artifacts / "segments-list.png"), full_page=True)

            page.goto(f"{server.url}/campaigns/{campaign_id}")
            retarget = page.get_by_test_id("retarget")
            expect(retarget).to_be_visible()
            page.screenshot(path=str(artifacts / "campaign-retarget.png"), full_page=True)
            retarget.get_by_role("button", name=re.compile("did not read")).click()
            page.wait_for_url(re.compile(r"/campaigns/new\?segment_id=\d+$"))
            expect(page.get_by_label("A segment")).to_be_checked()
            expect(page.get_by_test_id("segment-choice")).to_contain_text("Did not read")
            expect(page.get_by_test_id("audience")).to_contain_text("1 recipient(s) now")
            expect(page.locator("[data-audience-lists]")).to_be_hidden()
            # The live preview is for the segment's own people: the one who did not read.
            page.locator("#body").fill("Hello {{ name }}, still thinking about Diwali?")
            preview = page.locator(".preview-panel")
            expect(preview).to_contain_text("Hello Person 1, still thinking about Diwali?")
            expect(preview).not_to_contain_text("Person 0")
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(artifacts / "wizard-segment.png"), full_page=True)
            assert problems == []
            page.close()
    finally:
        db.dispose()
