"""The segment builder's live count on a Portuguese page reads "300,00" as 300 and
"1.000,00" as 1000 (as the saved form does), against values imported as "23,70"."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from wabulk.db import Database
from wabulk.models import Contact, User

from ..campaigns_support import make_contacts, phones
from ..support import new_instance, running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "dona@loja.example", "a long pass phrase"
GASTOS = ["23,70", "53,48", "300,00", "350", "1.234,56"]
SHOP = phones(len(GASTOS), "+5511987")


def test_the_live_count_reads_a_decimal_comma_in_portuguese(browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    instance = tmp_path / "instance"
    new_instance(instance, EMAIL, PASSWORD, "operator")
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        make_contacts(db, SHOP, "Clientes")
        with db.session() as session:
            for phone, gasto in zip(SHOP, GASTOS, strict=True):
                contact = session.scalar(select(Contact).where(Contact.phone == phone))
                assert contact is not None
                contact.attributes = {"total_gasto": gasto}
            user = session.scalar(select(User).where(User.email == EMAIL))
            assert user is not None
            user.language = "pt_BR"
        with running_server(instance, "--no-worker") as server:
            page = browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            sign_in(page, server.url, EMAIL, PASSWORD)
            page.goto(f"{server.url}/segments/new")
            row = page.get_by_test_id("condition").nth(0)
            row.locator('[data-part="field"]').select_option("attribute")
            row.locator('select[name$="-key"]').select_option("total_gasto")
            row.locator('[data-part="op"]').select_option("gt")
            count = page.get_by_test_id("segment-count").locator("[data-count]")
            row.locator('[data-part="value"]').fill("300,00")
            expect(count).to_have_text("2")  # 350 and 1.234,56
            row.locator('[data-part="value"]').fill("1.000,00")
            expect(count).to_have_text("1")
            row.locator('[data-part="value"]').fill("50")
            expect(count).to_have_text("4")  # 53,48 is over 50; 23,70 is not
            assert problems == []
    finally:
        db.dispose()
