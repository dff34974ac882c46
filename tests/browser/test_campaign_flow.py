"""A new user's first campaign in real Chromium against `wabulk serve` (dispatcher inside):
add a dry-run sender, write a template with the live preview, launch, and watch it finish."""

from __future__ import annotations

import re

import pytest

from ..support import new_instance, run_wabulk, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
FIRST_NAMES = ["Asha", "Ravi", "Meera", "Arjun", "Priya", "Kabir"]
N = 60


def _customers_csv(path) -> None:  # type: ignore[no-untyped-def]
    rows = ["Phone,Name,City"]
    for i in range(N):
        city = "" if i % 10 == 3 else ["Pune", "Delhi", "Goa"][i % 3]
        rows.append(f"98765{i:05d},{FIRST_NAMES[i % len(FIRST_NAMES)]} Kumar,{city}")
    path.write_text("\n".join(rows) + "\n")


def test_first_campaign_from_sender_to_completed_without_reloading(
    browser, artifacts, tmp_path
) -> None:
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "admin")
    sheet = tmp_path / "Diwali customers.csv"
    _customers_csv(sheet)
    imported = run_wabulk(
        instance, "contacts", "import", str(sheet), "--list", "Diwali customers", "--country", "IN"
    )
    assert imported.returncode == 0, imported.stderr

    with running_server(instance) as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: d.accept())  # the launch asks for confirmation
        sign_in(page, server.url, EMAIL, PASSWORD)
        nav = page.get_by_role("navigation", name="Main navigation")

        # A dry-run sender, fast and unpaced so the campaign finishes in seconds.
        nav.get_by_role("link", name="Senders").click()
        assert "No senders yet" in page.content()
        page.get_by_role("link", name="Add a dry-run sender").click()
        page.get_by_label("Name").fill("Rehearsal")
        page.get_by_label("Latency (s)").fill("0.05")
        page.get_by_role("button", name="Add sender").click()
        page.wait_for_url(server.url + "/senders")
        row = page.get_by_test_id("senders").inner_text()
        assert "Rehearsal" in row and "linked" in row and "No delay" in row
        page.screenshot(path=str(artifacts / "senders.png"), full_page=True)

        # A template, with the preview following the typing.
        nav.get_by_role("link", name="Templates").click()
        page.get_by_role("link", name="Write a template").click()
        page.get_by_label("Name").fill("Diwali offer")
        page.get_by_label("Preview for contacts in").select_option(label="Diwali customers (60)")
        body = page.get_by_label("Message")
        body.press_sequentially("Hi {{ first_name }}, your Diwali gift waits in {{ city }}!")
        preview = page.get_by_test_id("preview")
        preview.get_by_text("Hi Asha, your Diwali gift waits in Pune!").wait_for()
        assert "Hi Ravi, your Diwali gift waits in Delhi!" in preview.inner_text()
        warnings = page.get_by_test_id("preview-warnings")
        warnings.get_by_text("{{ city }} is empty for 6 of 60 recipient(s).").wait_for()

        body.press_sequentially("\n{{ oops ")  # a mistake on line 2 is named while typing
        error = page.get_by_test_id("preview-error")
        error.wait_for(state="visible")
        assert error.inner_text().startswith("Line 2:")
        for _ in range(len("\n{{ oops ")):
            body.press("Backspace")
        error.wait_for(state="hidden")
        # A field by button; an empty fallback inserts the bare placeholder.
        fields = page.get_by_role("group", name="Insert a field:")
        fields.get_by_role("button", name="Country").click()
        page.get_by_label("For customers without it, write").press("Enter")
        assert body.input_value().endswith("{{ city }}!{{ country }}")
        preview.get_by_text("Hi Asha, your Diwali gift waits in Pune!IN").wait_for()
        page.screenshot(path=str(artifacts / "templates-editor.png"), full_page=True)
        page.get_by_role("button", name="Save template").click()
        page.wait_for_url(server.url + "/templates")
        assert "Diwali offer" in page.get_by_test_id("templates").inner_text()

        # The campaign: audience, template, sender; saved as a draft, checked, launched.
        nav.get_by_role("link", name="Campaigns").click()
        page.get_by_role("link", name="New campaign").click()
        page.get_by_label("Campaign name").fill("Diwali 2025")
        page.get_by_label("Diwali customers").check()
        page.get_by_test_id("audience").get_by_text("60", exact=True).wait_for()
        page.get_by_label("Template").select_option(label="Diwali offer")
        preview.get_by_text("Hi Asha, your Diwali gift waits in Pune!IN").wait_for()
        # The only sender is ticked already, and the wizard says how long sending takes.
        expect(page.get_by_label("Rehearsal")).to_be_checked()
        expect(page.get_by_test_id("estimate")).to_contain_text(
            "the 60 messages go out as fast as they can"
        )
        page.get_by_label("Rehearsal").check()
        assert page.get_by_label("Shortest delay (s)").get_attribute("placeholder") == "0"
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
        assert "60" in page.get_by_test_id("recipient-count").inner_text()
        assert page.get_by_test_id("status").inner_text() == "draft"
        page.get_by_role("button", name="Launch").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))

        # From here the page follows the campaign by itself: no reload, no navigation.
        page.evaluate("window.__notReloaded = 'still the same page'")
        page.screenshot(path=str(artifacts / "campaign-running.png"), full_page=True)
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=60_000)
        assert page.evaluate("window.__notReloaded") == "still the same page"
        assert page.get_by_test_id("percent").inner_text() == "100%"
        assert page.get_by_test_id("progress").get_attribute("aria-valuenow") == "100"
        # The bar's width is animated (a CSS transition): let it arrive before measuring.
        page.wait_for_function(
            "() => { const b = document.querySelector('[data-field=bar]');"
            " const t = document.querySelector('[data-testid=progress]');"
            " return b.getBoundingClientRect().width > 0.99 * t.getBoundingClientRect().width; }"
        )
        bar = page.locator("[data-field=bar]").bounding_box()
        track = page.get_by_test_id("progress").bounding_box()
        assert bar and track and bar["width"] > 0.99 * track["width"]
        counters = page.get_by_test_id("counters").inner_text()
        assert re.search(r"Waiting\s+0", counters) and re.search(r"Failed\s+0", counters)
        assert page.get_by_test_id("funnel").locator('[data-funnel="sent"]').inner_text() == "60"
        page.get_by_test_id("log").get_by_text("Finished: 60 sent").wait_for()
        # The buttons follow the status: nothing to pause or cancel any more.
        assert not page.get_by_role("button", name="Pause").is_visible()
        assert not page.get_by_role("button", name="Cancel campaign").is_visible()
        # The recipients table is swapped in too, once more at the end.
        expect(page.get_by_test_id("recipients").locator(".msg-sent")).to_have_count(
            50, timeout=10_000
        )
        assert page.evaluate("window.__notReloaded") == "still the same page"
        page.screenshot(path=str(artifacts / "campaign-completed.png"), full_page=True)

        delivered = (instance / "dry_run" / "Rehearsal.jsonl").read_text().splitlines()
        assert len(delivered) == N
        assert problems == []
        page.close()
