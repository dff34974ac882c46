"""The "Repeat this campaign" form in real Chromium: only the boxes the chosen frequency
uses show (days of the week for every week, the day of the month for every month)."""

from __future__ import annotations

import pytest

from wabulk.db import Database

from ..campaigns_support import make_campaign, make_contacts, make_sender, phones
from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"


def test_the_repeat_form_shows_the_boxes_of_the_chosen_frequency(browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "operator")
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        draft = make_campaign(
            db, [make_contacts(db, phones(2), "Dues")], [make_sender(db)], launch=False
        )
        with running_server(instance, "--no-worker") as server:
            page = browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            sign_in(page, server.url, EMAIL, PASSWORD)
            page.goto(f"{server.url}/recurrences/new/{draft}")
            weekdays = page.get_by_text("On which days of the week")
            day_of_month = page.locator("#day_of_month")
            page.get_by_role("radio", name="Every month").check()
            expect(day_of_month).to_be_visible()
            expect(weekdays).to_be_hidden()
            page.get_by_role("radio", name="Every week").check()
            expect(weekdays).to_be_visible()
            expect(day_of_month).to_be_hidden()
            page.get_by_role("radio", name="Every day").check()
            expect(weekdays).to_be_hidden()
            expect(day_of_month).to_be_hidden()
            assert problems == []
            page.close()
    finally:
        db.dispose()
