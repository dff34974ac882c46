"""The template editor as a shop owner uses it, in real Chromium against `wabulk serve`:
insert a field with a fallback by button, pick an emoji, see *bold* in the WhatsApp-like
preview, get a misspelt field named before saving, and on a phone see the preview first."""

from __future__ import annotations

import pytest

from ..support import new_instance, run_wabulk, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"


def _customers_csv(path) -> None:  # type: ignore[no-untyped-def]
    rows = ["Phone,Name,City"]
    names = ["Asha Rao", "Ravi Shah", "Meera Iyer", "Arjun Das"]
    for i, name in enumerate(names):
        rows.append(f"98765{i:05d},{name},{['Pune', '', 'Goa', 'Delhi'][i]}")
    path.write_text("\n".join(rows) + "\n")


def test_a_shop_owner_writes_a_template_with_buttons_an_emoji_and_bold(
    browser, artifacts, tmp_path
) -> None:
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "admin")
    sheet = tmp_path / "customers.csv"
    _customers_csv(sheet)
    imported = run_wabulk(
        instance, "contacts", "import", str(sheet), "--list", "Regulars", "--country", "IN"
    )
    assert imported.returncode == 0, imported.stderr

    with running_server(instance) as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        sign_in(page, server.url, EMAIL, PASSWORD)
        page.goto(server.url + "/templates/new")
        page.get_by_label("Name").fill("Festival offer")
        body = page.get_by_label("Message")
        body.fill("Hello ")

        # A field by button: the fallback is asked, Enter inserts it where the cursor was.
        fields = page.get_by_role("group", name="Insert a field:")
        fields.get_by_role("button", name="First name").click()
        fallback = page.get_by_label("For customers without it, write")
        expect(fallback).to_be_focused()
        expect(fallback).to_have_value("there")
        fallback.press("Enter")
        expect(body).to_have_value('Hello {{ first_name | default("there") }}')
        expect(body).to_be_focused()
        body.press("End")
        body.press_sequentially(", your *festival gift* waits in ")
        fields.get_by_role("button", name="city").click()
        fallback.fill('our "main" shop')
        page.get_by_role("button", name="Insert", exact=True).click()
        expect(body).to_have_value(
            'Hello {{ first_name | default("there") }}, your *festival gift* waits in '
            '{{ city | default("our \\"main\\" shop") }}'
        )

        # The preview renders WhatsApp's bold as bold, for real customers.
        preview = page.get_by_test_id("preview")
        expect(preview.locator("strong").first).to_have_text("festival gift")
        expect(preview).to_contain_text("Hello Asha, your festival gift waits in Pune")
        expect(preview).to_contain_text('waits in our "main" shop')  # Ravi has no city

        # An emoji from the picker, served by the app itself.
        page.get_by_role("button", name="Emoji").click()
        picker = page.locator("emoji-picker")
        picker.get_by_role("combobox").fill("party popper")
        picker.get_by_role("option", name="party popper").first.click()
        expect(body).to_have_value(
            'Hello {{ first_name | default("there") }}, your *festival gift* waits in '
            '{{ city | default("our \\"main\\" shop") }}🎉'
        )
        expect(preview).to_contain_text("waits in Pune🎉")
        page.screenshot(path=str(artifacts / "template-editor.png"), full_page=True)

        # Only a few customers' worth from a search, and the preview follows the choice.
        page.get_by_label("Or find a customer").fill("Meera")
        page.get_by_test_id("sample-results").get_by_role("button").first.click()
        expect(preview).to_contain_text("To Meera Iyer")
        expect(preview.locator(".wa-bubble")).to_have_count(1)

        # A misspelt field is named while typing, and refused on saving, text kept.
        body.press("End")
        body.press_sequentially(" {{ nmae }}")
        error = page.get_by_test_id("preview-error")
        expect(error).to_have_text('Line 1: "nmae" is not a field; did you mean "name"?')
        page.get_by_role("button", name="Save template").click()
        expect(page.locator("#body-error")).to_have_text(
            'Line 1: "nmae" is not a field; did you mean "name"?'
        )
        expect(page.get_by_label("Message")).to_have_value(
            'Hello {{ first_name | default("there") }}, your *festival gift* waits in '
            '{{ city | default("our \\"main\\" shop") }}🎉 {{ nmae }}'
        )

        # On a phone the preview comes before the Save button.
        page.set_viewport_size({"width": 390, "height": 844})
        preview_box = page.get_by_test_id("preview").bounding_box()
        save_box = page.get_by_role("button", name="Save template").bounding_box()
        assert preview_box and save_box and preview_box["y"] < save_box["y"]
        page.screenshot(path=str(artifacts / "template-editor-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 860})

        assert all(url.startswith(server.url) for url in requests), requests
        # The picker writes inline styles into its shadow root, which the page's policy blocks
        # (its rules are handed over as a style sheet instead); anything else is a fault, as
        # is a request anywhere but the app. The 400 is the refused save.
        assert [p for p in problems if "style-src" not in p and "status of 400" not in p] == []
        page.close()
