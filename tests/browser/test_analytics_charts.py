"""The Analytics charts are really drawn, and the Dashboard follows a campaign live, in
real Chromium against `wabulk serve`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from wabulk.db import Database
from wabulk.models import utcnow

from ..analytics_support import failed, seed_outcomes, sent
from ..campaigns_support import make_campaign, make_contacts, make_sender, phones
from ..support import run_wabulk, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
CHARTS = ("days", "hours", "funnel", "campaigns", "failures", "senders")

# How many pixels of the canvas are painted (alpha > 0): 0 for a blank canvas.
PAINTED = """(canvas) => {
  const { width, height } = canvas;
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
  return painted;
}"""


def _instance(tmp_path: Path) -> Path:
    instance = tmp_path / "instance"
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    created = run_wabulk(
        instance, "user", "create", "--email", EMAIL, "--role", "admin", "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return instance


def _watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def test_analytics_draws_every_chart(browser, tmp_path) -> None:
    instance = _instance(tmp_path)
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        list_id = make_contacts(db, phones(6), "Customers")
        sender = make_sender(db, "Shop phone")
        campaign = make_campaign(db, [list_id], [sender], name="Week offer")
        day = timedelta(days=1)
        now = utcnow()
        seed_outcomes(
            db,
            campaign,
            sender,
            [
                sent(now - 3 * day, "read", delivered_at=now - 3 * day, read_at=now - 2 * day),
                sent(now - 2 * day, "delivered", delivered_at=now - 2 * day),
                sent(now - day),
                failed(now - day, "not_on_whatsapp"),
                sent(now),
                sent(now),
            ],
        )
    finally:
        db.dispose()

    with running_server(instance, "--no-worker") as server:
        page = browser.new_page()
        problems = _watch(page)
        sign_in(page, server.url, EMAIL, PASSWORD)
        page.goto(server.url + "/analytics")
        for key in CHARTS:
            box = page.locator(f'[data-chart-box="{key}"]')
            box.and_(page.locator('[data-state="ready"]')).wait_for()
            canvas = page.get_by_test_id(f"chart-{key}")
            assert canvas.evaluate(PAINTED) > 500, f"the {key} chart is blank"
            assert page.get_by_test_id(f"table-{key}").is_visible()
        # Nobody opted out: that card says so instead of drawing an empty chart.
        assert page.get_by_test_id("empty-opt_outs").is_visible()
        assert problems == [], problems  # no CSP refusal, no script error
        page.close()


def test_dashboard_follows_a_campaign_without_reloading(browser, tmp_path) -> None:
    from playwright.sync_api import expect

    instance = _instance(tmp_path)
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        list_id = make_contacts(db, phones(400), "Everyone")
        sender = make_sender(db, "Rehearsal", min_delay_seconds=0.2, max_delay_seconds=0.3)
        make_campaign(db, [list_id], [sender], name="Slow and steady")
    finally:
        db.dispose()

    with running_server(instance) as server:
        page = browser.new_page()
        problems = _watch(page)
        sign_in(page, server.url, EMAIL, PASSWORD)
        today = page.get_by_test_id("today-sent")
        first = int(today.inner_text().replace(",", ""))
        item = page.locator(".live-campaign", has_text="Slow and steady")
        start = item.locator('[data-field="sent"]').inner_text()
        # Numbers move with no reload: the page is the same document throughout.
        page.evaluate("window.sameDocument = true")
        expect(today).not_to_have_text(str(first), timeout=30_000)
        expect(item.locator('[data-field="sent"]')).not_to_have_text(start, timeout=30_000)
        assert page.evaluate("window.sameDocument") is True
        assert page.locator("[data-live-indicator]").inner_text() == "Live"
        month = int(page.get_by_test_id("month-sent").inner_text().replace(",", ""))
        assert month >= int(today.inner_text().replace(",", "")) > first

        # The server goes away: the page keeps its numbers and says it is reconnecting.
        server.process.terminate()
        server.process.wait(20)
        expect(page.get_by_test_id("live-note")).to_have_text("Reconnecting…", timeout=30_000)
        expect(page.locator("[data-live-indicator]")).to_have_text("Reconnecting…")
        assert int(today.inner_text().replace(",", "")) > first
        page.close()
    assert [p for p in problems if "Failed to load resource" not in p] == [], problems


def test_the_campaigns_list_follows_running_campaigns(browser, tmp_path) -> None:
    from playwright.sync_api import expect

    instance = _instance(tmp_path)
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        list_id = make_contacts(db, phones(100), "Everyone")
        sender = make_sender(db, "Rehearsal", min_delay_seconds=0.08, max_delay_seconds=0.12)
        make_campaign(db, [list_id], [sender], name="Followed")
    finally:
        db.dispose()

    with running_server(instance) as server:
        page = browser.new_page()
        problems = _watch(page)
        sign_in(page, server.url, EMAIL, PASSWORD)
        page.goto(server.url + "/campaigns")
        row = page.get_by_test_id("campaigns").locator("tr", has_text="Followed")
        assert row.locator('[data-field="status"]').inner_text() == "running"
        expect(row.locator('[data-field="status"]')).to_have_text("completed", timeout=60_000)
        expect(row.locator('[data-field="summary"]')).to_have_text("100 of 100 · 100 sent")
        page.close()
    assert problems == [], problems
