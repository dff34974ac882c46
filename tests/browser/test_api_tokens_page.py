"""The API tokens page in real Chromium: a token shown once, copied, and revoked."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from wabulk.auth import service as users
from wabulk.db import Database
from wabulk.models import ApiToken, Role, User

from ..conftest import PASSWORD
from ..support import serving_database


@pytest.mark.browser
def test_token_page_in_chromium_copy_and_revoke(browser, db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        users.create_user(session, None, "owner@shop.example", PASSWORD, Role.OPERATOR)
    with serving_database(db, settings) as server:
        context = browser  # the shared Chromium context of tests/browser
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(server.url + "/login")
        page.get_by_label("Email").fill("owner@shop.example")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(server.url + "/")
        page.goto(server.url + "/settings/")
        page.get_by_role("link", name="API tokens").click()
        page.get_by_label("Name").fill("shop website")
        page.get_by_role("button", name="Create token").click()
        shown = page.get_by_label("Your new API token").input_value()
        assert shown.startswith("wab_")
        page.get_by_role("button", name="Copy").click()
        page.get_by_text("Copied").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == shown
        page.goto(server.url + "/api/docs")
        assert page.get_by_test_id("api-op").count() >= 30
        page.goto(server.url + "/settings/tokens")
        assert shown not in page.content()
        page.once("dialog", lambda d: d.accept())
        page.get_by_role("button", name="Revoke").click()
        page.get_by_text("is revoked").wait_for()
        assert problems == []
        page.close()
        context.clear_permissions()
    with db.session() as session:
        assert session.scalar(select(ApiToken.revoked_at)) is not None
        assert session.scalar(select(User.email)) == "owner@shop.example"
