"""Adding and editing one contact in real Chromium, as a shop owner would; the first-run
setup page guessing the country from the browser's timezone."""

from __future__ import annotations

import pytest

from ..support import new_instance, run_wabulk, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"


def test_add_a_contact_then_edit_it(browser, artifacts, tmp_path) -> None:
    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "operator")
    assert run_wabulk(instance, "settings", "default-country", "IN").returncode == 0
    with running_server(instance) as server:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        sign_in(page, server.url, EMAIL, PASSWORD)

        page.goto(server.url + "/contacts/")
        page.get_by_label("List name").fill("Regulars")
        page.get_by_role("button", name="Create list").click()
        page.get_by_role("link", name="Add contact").click()
        page.get_by_label("Phone number").fill("98765 43210")
        page.get_by_label("Name", exact=True).fill("Asha Patel")
        page.get_by_label("Name of a new field").first.fill("City")
        page.get_by_label("Its value").first.fill("Pune")
        page.get_by_label("Regulars").check()
        page.get_by_role("button", name="Add contact").click()

        page.wait_for_selector("[data-testid=edit-contact]")
        details = page.get_by_test_id("attributes").inner_text()
        assert "+919876543210" in details and "Asha Patel" in details and "Pune" in details
        assert "Regulars" in page.get_by_test_id("member-of").inner_text()
        history = page.get_by_test_id("history").inner_text()
        assert "added +919876543210 named 'Asha Patel'" in history

        # The same number again is refused, with the way to the contact who has it.
        page.goto(server.url + "/contacts/new")
        page.get_by_label("Phone number").fill("+91 98765 43210")
        page.get_by_role("button", name="Add contact").click()
        assert "Asha Patel (+919876543210) is already a contact" in page.inner_text("#phone-error")
        page.get_by_test_id("taken-link").click()
        page.wait_for_selector("[data-testid=edit-contact]")

        page.get_by_test_id("edit-contact").click()
        page.get_by_label("Phone number").fill("12345")
        page.get_by_role("button", name="Save changes").click()
        assert "'12345' is too short for India" in page.inner_text("#phone-error")
        assert page.get_by_label("Name", exact=True).input_value() == "Asha Patel"  # kept
        page.get_by_label("Phone number").fill("022 2456 7890")
        page.get_by_label("Name", exact=True).fill("Asha's shop")
        page.get_by_label("City").fill("")
        page.get_by_label("Regulars").uncheck()
        page.screenshot(path=str(artifacts / "contact-edit.png"), full_page=True)
        page.get_by_role("button", name="Save changes").click()

        page.wait_for_selector("[data-testid=landline]")
        assert "Landline: may not reach a phone" in page.get_by_test_id("landline").inner_text()
        details = page.get_by_test_id("attributes").inner_text()
        assert "+912224567890" in details and "Asha's shop" in details and "Pune" not in details
        history = page.get_by_test_id("history").inner_text()
        assert "changed phone from +919876543210 to +912224567890" in history
        assert "left 'Regulars'" in history
        page.goto(server.url + "/contacts/")
        assert page.get_by_test_id("landline").count() == 1
        # Only the two refused forms themselves: the browser logs their status codes.
        assert errors == [
            "Failed to load resource: the server responded with a status of 409 (CONFLICT)",
            "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)",
        ]


def test_first_run_setup_preselects_the_country_of_the_browser(browser, tmp_path) -> None:
    instance = tmp_path / "instance"
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    with running_server(instance) as server:
        page = browser.new_page()
        cdp = page.context.new_cdp_session(page)
        cdp.send("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kolkata"})
        page.goto(server.url + "/setup")
        assert page.get_by_label("Your country").input_value() == "IN"
        cdp.send("Emulation.setTimezoneOverride", {"timezoneId": "Europe/Berlin"})
        page.reload()
        assert page.get_by_label("Your country").input_value() == "DE"
        page.close()
