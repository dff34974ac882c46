"""A webhook's delivery log in real Chromium fits its card: at 1280 px a long answer wraps
and "When" stays in view; at 390 px (a phone) every part of a delivery is on screen."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.hooks_support import add_endpoint
from wabulk.auth import service as users
from wabulk.db import Database
from wabulk.models import DeliveryStatus, OutboxEvent, Role, utcnow

from ..conftest import PASSWORD
from ..support import serving_database
from .conftest import sign_in

LONG = "https://receiver.example.com/" + "x" * 170  # an unbroken word, as a Location can be


@pytest.mark.browser
def test_the_delivery_log_fits_at_desktop_and_phone_widths(browser, db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        users.create_user(session, None, "owner@shop.example", PASSWORD, Role.ADMIN)
    endpoint_id, _ = add_endpoint(db, "https://hooks.example.com/hook", name="Orders flow")
    now = utcnow()
    with db.session() as session:
        for n in range(3):
            session.execute(
                OutboxEvent.__table__.insert().values(
                    endpoint_id=endpoint_id,
                    event_id=f"evt_{n}_" + "0123456789abcdef" * 2,
                    event="message.status",
                    payload={},
                    status=DeliveryStatus.PENDING,
                    attempts=2,
                    created_at=now,
                    last_attempt_at=now,
                    next_attempt_at=now + timedelta(minutes=5),
                    last_code=302,
                    last_error=f"Your server answered with a redirect (to {LONG}).",
                )
            )
        session.commit()
    with serving_database(db, settings) as server:
        page = browser.new_page()
        try:
            sign_in(page, server.url, "owner@shop.example", PASSWORD)
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 900})
                page.goto(f"{server.url}/settings/webhooks/{endpoint_id}")
                log = page.get_by_test_id("deliveries")
                card = log.locator("xpath=ancestor::div[contains(@class,'card-body')]").first
                right = min(_right(card), width)
                row = log.locator("tbody tr").first
                for cell in ("Event", "State", "Answer", "Tries", "When"):
                    box = row.locator(f'td[data-label="{cell}"]').bounding_box()
                    assert box is not None and box["width"] > 0, (width, cell)
                    assert box["x"] >= 0 and box["x"] + box["width"] <= right + 1, (
                        f"at {width} px the {cell} column reaches {box['x'] + box['width']:.0f}, "
                        f"past {right:.0f}"
                    )
                # The whole event id is still there, for a receiver's log to be searched by.
                full = row.locator("[title^='Event id ']").first.get_attribute("title")
                assert full is not None and full.endswith("0123456789abcdef" * 2)
        finally:
            page.close()


def _right(locator) -> float:  # type: ignore[no-untyped-def]
    box = locator.bounding_box()
    assert box is not None
    return float(box["x"] + box["width"])
