"""Settings → Workers follows the workers without a reload: a worker that starts appears,
and one that stops says so. Real Chromium against `wabulk serve` (no dispatcher inside, so
the page starts empty); the rows written by the registry as a worker writes them."""

from __future__ import annotations

import pytest

from wabulk.db import Database
from wabulk.dispatch import registry

from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # two 10-second refreshes
EMAIL, PASSWORD = "helper@shop.example", "a long pass phrase"


def test_the_workers_table_refreshes_itself(browser, artifacts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "operator")
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        with running_server(instance, "--no-worker") as server:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            sign_in(page, server.url, EMAIL, PASSWORD)
            page.goto(f"{server.url}/settings/")
            page.get_by_role("link", name="Workers").click()
            expect(page.get_by_test_id("no-workers")).to_be_visible()
            page.evaluate("window.__same_page = true")

            registry.register(db, identity="till:1:a", name="till", lease_seconds=120)
            table = page.get_by_test_id("workers")
            # The page looks again every 10 s: generous waits, no reload.
            expect(table).to_be_visible(timeout=60_000)
            row = table.locator("tr[data-worker]")
            expect(row).to_contain_text("till")
            expect(row).to_contain_text("Running")
            page.screenshot(path=str(artifacts / "settings-workers.png"), full_page=True)

            registry.stopped(db, "till:1:a")
            expect(row).to_contain_text("Stopped", timeout=60_000)
            assert page.evaluate("window.__same_page") is True
            assert problems == []
            page.close()
    finally:
        db.dispose()
