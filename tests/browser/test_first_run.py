"""A new user's first minutes, in real Chromium against `wabulk serve`."""

from __future__ import annotations

import pytest

from ..support import running_server
from .conftest import sign_in

pytestmark = pytest.mark.browser

NAVIGATION = [
    ("Dashboard", "/", "No campaigns yet"),
    ("Contacts", "/contacts/", "No contacts yet"),
    ("Templates", "/templates", "No templates yet"),
    ("Campaigns", "/campaigns", "No campaigns yet"),
    ("Senders", "/senders", "No senders yet"),
    ("Analytics", "/analytics", "No messages sent yet"),
    ("Activity", "/activity", "created the first administrator account"),
    ("Settings", "/settings/", "Change your password"),
]
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"


def _watch_console(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and "/static/" in r.url
            else None
        ),
    )
    return problems


def test_first_admin_signs_in_and_visits_every_area(browser, artifacts, tmp_path) -> None:
    from wabulk.cli import main  # noqa: F401  (the package under test is importable)

    instance = tmp_path / "instance"
    from ..support import run_wabulk

    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    with running_server(instance) as server:
        page = browser.new_page()
        problems = _watch_console(page)

        page.goto(server.url + "/")
        assert page.url.endswith("/setup")
        page.get_by_label("Setup code").fill("WRONG-CODE-0000")
        page.get_by_label("Your email").fill(EMAIL)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Repeat the password").fill(PASSWORD)
        page.get_by_role("button", name="Create administrator").click()
        assert "setup code is not right" in page.get_by_test_id("form-error").inner_text()
        assert problems == [
            "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
        ]  # the refused form itself, nothing else
        problems.clear()

        page.get_by_label("Setup code").fill(server.setup_code)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Repeat the password").fill(PASSWORD)
        page.get_by_role("button", name="Create administrator").click()
        page.wait_for_url(server.url + "/")
        assert "Your administrator account is ready" in page.content()

        page.get_by_test_id("user-menu").click()
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/login")
        assert "You are signed out." in page.content()

        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(server.url + "/")

        nav = page.get_by_role("navigation", name="Main navigation")
        for label, path, expected in NAVIGATION:
            nav.get_by_role("link", name=label).click()
            page.wait_for_url(server.url + path)
            assert expected in page.content(), label
            assert nav.get_by_role("link", name=label).get_attribute("aria-current") == "page"

        nav.get_by_role("link", name="Dashboard").click()
        page.wait_for_url(server.url + "/")
        page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
        assert problems == []
        page.close()


def test_the_shell_works_on_a_phone_screen(browser, artifacts, tmp_path) -> None:
    from ..support import run_wabulk

    instance = tmp_path / "instance"
    run_wabulk(instance, "db", "upgrade")
    run_wabulk(
        instance,
        "user",
        "create",
        "--email",
        EMAIL,
        "--role",
        "admin",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    with running_server(instance) as server:
        page = browser.new_page()
        page.set_viewport_size({"width": 390, "height": 844})
        problems = _watch_console(page)
        sign_in(page, server.url, EMAIL, PASSWORD)
        # No sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # Bootstrap gives the open drawer role=dialog, so find the sidebar by id here.
        nav = page.locator("#sidebar")
        assert not nav.get_by_role("link", name="Senders").is_visible()
        page.get_by_role("button", name="Open navigation").click()
        nav.get_by_role("link", name="Senders").click()
        page.wait_for_url(server.url + "/senders")
        assert "No senders yet" in page.content()
        page.screenshot(path=str(artifacts / "senders-phone.png"), full_page=True)
        assert problems == []
        page.close()
