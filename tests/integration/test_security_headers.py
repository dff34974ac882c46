"""Headers, cookies and the no-inline-script rule that the CSP depends on."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from wabulk.app import create_app
from wabulk.models import Role

from ..conftest import login

PAGES = [
    "/",
    "/contacts/",
    "/templates",
    "/campaigns",
    "/senders",
    "/analytics",
    "/activity",
    "/settings/",
    "/settings/users",
]


def test_every_response_carries_the_security_headers(client: FlaskClient) -> None:
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_is_httponly_and_samesite_lax(client: FlaskClient, make_user) -> None:
    user = make_user(Role.VIEWER)
    response = login(client, user.email)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_cookies_are_secure_when_configured_for_https(settings) -> None:
    app = create_app(settings, https=True)
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]


def test_pages_have_no_inline_scripts_or_styles(app: Flask, client: FlaskClient, as_role) -> None:
    as_role(Role.ADMIN)
    for url in [*PAGES]:
        html = client.get(url).get_data(as_text=True)
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
        assert scripts, url
        for attrs, body in scripts:
            assert "src=" in attrs and body.strip() == "", (url, attrs)
        assert not re.search(r"\sstyle=", html), url
        assert not re.search(r"\son[a-z]+=", html), url  # inline event handlers


def test_pages_are_not_cached_but_static_files_may_be(client: FlaskClient, as_role) -> None:
    as_role(Role.VIEWER)
    assert client.get("/").headers["Cache-Control"] == "no-store"
    static = client.get("/static/css/app.css")
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("Cache-Control", "")
    static.close()
