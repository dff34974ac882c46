"""The template editor's WhatsApp template part in real Chromium against `wabulk serve`:
choose an approved template, fill its blanks, watch the preview follow, save; the wizard
then says what the Cloud API sender will send."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.integration.test_cloud_template_editor import ORDER, SPRING
from wabulk.contacts.bulk import add_members
from wabulk.db import Database
from wabulk.models import (
    Channel,
    CloudTemplate,
    Contact,
    ContactList,
    Sender,
    SenderState,
    Template,
    utcnow,
)

from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"


def _shop(db: Database) -> None:
    with db.session() as session:
        sender = Sender(name="Shop line", channel=Channel.CLOUD_API, state=SenderState.LINKED)
        session.add(sender)
        session.flush()
        for name, status, components in (
            ("spring_sale", "APPROVED", SPRING),
            ("order_update", "APPROVED", ORDER),
            ("new_offer", "REJECTED", [{"type": "BODY", "text": "Hola"}]),
        ):
            session.add(
                CloudTemplate(
                    sender_id=sender.id,
                    name=name,
                    language="en_US",
                    category="MARKETING",
                    status=status,
                    parameter_format="positional",
                    components=components,
                )
            )
        vip = ContactList(name="VIP")
        session.add(vip)
        session.flush()
        people = []
        for i, (name, city) in enumerate((("Asha Rao", "Pune"), ("Ravi Kumar", "Goa"))):
            contact = Contact(
                phone=f"+9198765000{i:02d}",
                name=name,
                attributes={"city": city, "order_ref": f"A{i}"},
            )
            session.add(contact)
            session.flush()
            people.append(contact.id)
        vip.member_count = add_members(session, vip.id, people, utcnow())


def test_map_a_whatsapp_template_with_the_live_preview(browser, artifacts, tmp_path) -> None:
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "admin")
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    _shop(db)

    with running_server(instance) as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, server.url, EMAIL, PASSWORD)

        page.goto(server.url + "/templates/new")
        page.get_by_label("Name", exact=True).fill("Spring")
        choice = page.get_by_label("Approved WhatsApp template")
        expect(choice.locator("option", has_text="new_offer")).to_be_disabled()
        choice.select_option(label="spring_sale · en_US · marketing")
        page.locator("#preview_list").select_option(label="VIP (2)")
        rows = page.locator("[data-cloud-block]:visible [data-cloud-var]")
        expect(rows).to_have_count(5)
        preview = page.get_by_test_id("cloud-preview")
        # Until every blank is filled, the template shows with its blanks and says which.
        expect(page.get_by_test_id("cloud-preview-error")).to_contain_text("The heading's {{1}}")
        expect(preview).to_contain_text("Hi {{2}}, use {{1}} before Sunday.")

        rows.nth(0).locator("[data-cloud-field]").select_option("city")
        rows.nth(1).locator("[data-cloud-kind]").select_option("text")
        rows.nth(1).locator("[data-cloud-text]").fill("CARIBE25")
        rows.nth(2).locator("[data-cloud-field]").select_option("first_name")
        rows.nth(3).locator("[data-cloud-field]").select_option("order_ref")
        rows.nth(4).locator("[data-cloud-kind]").select_option("opt_out")
        expect(rows.nth(4).locator("[data-cloud-opt-out-note]")).to_be_visible()

        bubbles = preview.get_by_test_id("cloud-bubble")
        expect(bubbles).to_have_count(2)
        expect(bubbles.nth(0)).to_contain_text("Sale in Pune")
        expect(bubbles.nth(0)).to_contain_text("Hi Asha, use CARIBE25 before Sunday.")
        expect(bubbles.nth(1)).to_contain_text("Hi Ravi, use CARIBE25 before Sunday.")
        expect(bubbles.nth(0)).to_contain_text("opts the contact out")
        expect(page.get_by_test_id("cloud-preview-error")).to_be_hidden()

        # Typing a fixed text updates the preview without a reload.
        rows.nth(1).locator("[data-cloud-text]").fill("SPRING10")
        expect(bubbles.nth(0)).to_contain_text("use SPRING10 before Sunday.")
        page.screenshot(path=str(artifacts / "cloud-template-editor.png"), full_page=True)

        page.get_by_role("button", name="Save template").click()
        page.wait_for_url(server.url + "/templates")
        expect(page.get_by_test_id("cloud-badge")).to_contain_text("spring_sale")

        page.goto(server.url + "/campaigns/new")
        page.get_by_label("Shop line").check()
        notes = page.get_by_test_id("cloud-notes")
        expect(notes).to_contain_text("Only customers who wrote to you in the last 24 hours")
        page.locator("#template_id").select_option(label="Spring")
        expect(notes).to_contain_text("Shop line will send the approved WhatsApp template")
        assert problems == []

    with db.session() as session:
        saved = session.scalars(select(Template)).one()
        assert saved.cloud_parameters["body.1"] == "SPRING10"
    db.dispose()
