"""Importing a messy sheet in real Chromium against `wabulk serve` (dispatcher inside)."""

from __future__ import annotations

import pytest

from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"


def _messy_workbook(path) -> None:
    import xlsxwriter

    rows = [
        ["Customer Name", "WhatsApp No", "City", "Due Amount"],
        ["Asha Patel", 919876543210, "Pune", 1250.5],
        ["Ravi", "'09123456789", "Delhi", 0],
        [],
        ["Bad Number", "12345", "Goa", 10],
        ["Asha again", "+91 98765 43210", "", 99],
    ]
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("Customers")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    workbook.close()


def test_import_a_sheet_and_see_every_row_accounted_for(browser, artifacts, tmp_path) -> None:
    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "operator")
    sheet = tmp_path / "Diwali customers.xlsx"
    _messy_workbook(sheet)
    with running_server(instance) as server:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        sign_in(page, server.url, EMAIL, PASSWORD)

        page.goto(server.url + "/contacts/")
        page.get_by_role("link", name="Import contacts").first.click()
        page.set_input_files("#file", str(sheet))
        page.get_by_role("button", name="Upload and preview").click()
        page.wait_for_selector("[data-testid=preview]")
        assert page.get_by_label("Use of column WhatsApp No").input_value() == "phone"
        assert page.get_by_label("Use of column Customer Name").input_value() == "name"
        assert page.get_by_label("Keep the first row").is_checked()  # a repeat renames no one
        page.select_option("#default_country", "IN")
        page.screenshot(path=str(artifacts / "import-mapping.png"), full_page=True)
        page.get_by_role("button", name="Start import").click()

        # The page follows the import by itself and shows the outcome without a reload by us.
        page.wait_for_selector("[data-testid=issues]", timeout=30_000)
        counts = page.get_by_test_id("import-counts").inner_text()
        for expected in ("Rows read\n4", "Created\n2", "Duplicates in the file\n1", "Invalid\n1"):
            assert expected in counts
        content = page.content().replace("&#39;", "'")
        assert "row 5: '12345' is too short for India" in content
        assert (
            "row 6 repeats row 2 (+919876543210); not taken: Customer Name 'Asha again', "
            "Due Amount '99'"
        ) in content
        page.screenshot(path=str(artifacts / "import-done.png"), full_page=True)

        page.get_by_role("link", name="Diwali customers").click()
        table = page.get_by_test_id("contacts").inner_text()
        assert "+919876543210" in table and "+919123456789" in table
        assert "Asha Patel" in table and "Asha again" not in table
        assert errors == []
        page.close()
