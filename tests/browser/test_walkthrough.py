"""A new user's whole day in real Chromium against `wabulk serve` (dispatcher inside): sign
in, import the customer sheet, add a sender, write a template, launch, watch it reach 100%
without reloading, then read the dashboard, the analytics charts and the report.

Screenshots of every page go to tests/artifacts/walkthrough-*.png.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
NAMES = ["Asha Patel", "Ravi Kumar", "Meera Nair", '=HYPERLINK("http://x")', "Kabir Shah"]
N = 40


def _sheet(path) -> None:  # type: ignore[no-untyped-def]
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("Customers")
    for c, title in enumerate(["Customer", "Mobile", "City"]):
        sheet.write(0, c, title)
    for i in range(N):
        sheet.write_string(i + 1, 0, NAMES[i % len(NAMES)])  # "=…" stays text
        sheet.write_number(i + 1, 1, 919_876_500_000 + i)  # Excel's float-typed numbers
        sheet.write(i + 1, 2, ["Pune", "Delhi", "Goa"][i % 3])
    sheet.write_row(N + 1, 0, ["Typo", "12345", "Pune"])  # too short: reported, not imported
    workbook.close()


# The chart's canvas holds pixels: its image differs from a blank canvas of its size.
_CANVAS_DRAWN = """(key) => {
    const c = document.querySelector(`canvas[data-chart="${key}"]`);
    if (!c || !c.width || !c.height) return false;
    const blank = document.createElement('canvas');
    blank.width = c.width; blank.height = c.height;
    return c.toDataURL() !== blank.toDataURL();
}"""


def _wait_drawn(page, key: str) -> None:  # type: ignore[no-untyped-def]
    """Chart.js animates its first draw: wait for pixels, however slow the machine is."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(_CANVAS_DRAWN, arg=key)
    except PlaywrightTimeout:
        raise AssertionError(f"the {key} chart is blank") from None


def test_a_new_user_imports_sends_and_reads_the_results(browser, artifacts, tmp_path) -> None:
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "admin")
    sheet = tmp_path / "Customers.xlsx"
    _sheet(sheet)

    def shot(name: str) -> None:
        page.screenshot(path=str(artifacts / f"walkthrough-{name}.png"), full_page=True)

    with running_server(instance) as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: d.accept())
        sign_in(page, server.url, EMAIL, PASSWORD)
        shot("1-dashboard-empty")
        nav = page.get_by_role("navigation", name="Main navigation")

        # Import the sheet into a new list.
        nav.get_by_role("link", name="Contacts").click()
        page.get_by_role("link", name="Import contacts").first.click()
        page.set_input_files("#file", str(sheet))
        page.get_by_role("button", name="Upload and preview").click()
        page.wait_for_selector("[data-testid=preview]")
        assert page.get_by_label("Use of column Mobile").input_value() == "phone"
        page.select_option("#default_country", "IN")
        page.select_option("#list_choice", label="A new list…")
        page.get_by_label("Name of the new list").fill("Customers")
        shot("2-import-mapping")
        page.get_by_role("button", name="Start import").click()
        page.wait_for_selector("[data-testid=issues]", timeout=30_000)
        counts = page.get_by_test_id("import-counts").inner_text()
        assert f"Created\n{N}" in counts and "Invalid\n1" in counts
        assert "'12345' is too short" in page.get_by_test_id("issues").inner_text()
        shot("3-import-done")

        # A fast dry-run sender.
        nav.get_by_role("link", name="Senders").click()
        page.get_by_role("link", name="Add a dry-run sender").click()
        page.get_by_label("Name").fill("Rehearsal")
        page.get_by_label("Latency (s)").fill("0.05")
        page.get_by_role("button", name="Add sender").click()
        page.wait_for_url(server.url + "/senders")

        # A template.
        nav.get_by_role("link", name="Templates").click()
        page.get_by_role("link", name="Write a template").click()
        page.get_by_label("Name").fill("Welcome")
        page.get_by_label("Message").fill("Hi {{ name }}, our {{ city }} shop is open!")
        page.get_by_role("button", name="Save template").click()
        page.wait_for_url(server.url + "/templates")

        # The campaign, launched, followed to 100% on the same page.
        nav.get_by_role("link", name="Campaigns").click()
        page.get_by_role("link", name="New campaign").click()
        page.get_by_label("Campaign name").fill("Opening day")
        page.get_by_role("checkbox", name=re.compile(r"^Customers")).check()
        page.get_by_label("Template").select_option(label="Welcome")
        page.get_by_label("Rehearsal").check()
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
        campaign_url = page.url
        page.get_by_role("button", name="Launch").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
        page.evaluate("window.__notReloaded = 'same page'")
        shot("4-campaign-running")
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=60_000)
        expect(page.get_by_test_id("percent")).to_have_text("100%")
        assert page.evaluate("window.__notReloaded") == "same page"
        shot("5-campaign-completed")

        # The dashboard counts what went out today.
        nav.get_by_role("link", name="Dashboard").click()
        page.wait_for_load_state("networkidle")
        dashboard = page.locator("main").inner_text()
        assert re.search(rf"\b{N}\b", dashboard), dashboard
        shot("6-dashboard")

        # Analytics: the charts are drawn, and their numbers are in the tables beneath.
        nav.get_by_role("link", name="Analytics").click()
        for key in ("days", "hours", "funnel", "senders"):
            _wait_drawn(page, key)
        assert str(N) in page.get_by_test_id("table-days").inner_text()
        shot("7-analytics")

        # The report: every recipient, with formula-looking names made harmless.
        page.goto(campaign_url)
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Report").click()
            page.get_by_role("link", name="Every recipient as CSV").click()
        download = download_info.value
        text = Path(download.path()).read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == N
        assert {r["status"] for r in rows} == {"sent"}
        assert {r["phone"] for r in rows} == {f"+91{9_876_500_000 + i}" for i in range(N)}
        formula = [r["name"] for r in rows if "HYPERLINK" in r["name"]]
        assert formula and all(not name.startswith("=") for name in formula)

        with page.expect_download() as download_info:
            page.get_by_role("button", name="Report").click()
            page.get_by_role("link", name="Every recipient as Excel (.xlsx)").click()
        from openpyxl import load_workbook

        report = tmp_path / download_info.value.suggested_filename
        assert report.suffix == ".xlsx"
        download_info.value.save_as(report)
        book = load_workbook(report, read_only=True)
        sheet_rows = list(book.worksheets[0].iter_rows(values_only=True))
        assert len(sheet_rows) == N + 1 and sheet_rows[0][0] == "phone"

        page.get_by_role("link", name="Summary").click()
        page.wait_for_load_state("networkidle")
        shot("8-campaign-summary")

        nav.get_by_role("link", name="Activity").click()
        assert "Opening day" in page.locator("main").inner_text()
        shot("9-activity")
        assert problems == []
        page.close()
