"""Who may reach what: every URL rule, enumerated from the app's URL map."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.routing.converters import AnyConverter, NumberConverter

from wabulk.app import create_app
from wabulk.config import Settings
from wabulk.models import Role, User

from ..conftest import PASSWORD, get_csrf

PUBLIC_ENDPOINTS = {"static", "auth.login", "auth.setup"}
# Meta calls these without a session: they answer only a correct verify token (GET) or a
# body signed with the sender's app secret (POST), see test_webhook_receiver.py.
SIGNED_ENDPOINTS = {"webhooks.verify", "webhooks.receive"}
# Load balancers and Prometheus: no sign-in; /metrics needs its own token or address and is
# off (404) here, see test_health_metrics.py.
HEALTH_ENDPOINTS = {"health.healthz", "health.readyz", "health.metrics_page"}


def _url_for_rule(app: Flask, rule: Rule) -> str:
    values: dict[str, object] = {}
    for arg in rule.arguments:
        converter = rule._converters[arg]
        if isinstance(converter, AnyConverter):
            values[arg] = sorted(converter.items)[0]  # one of the values the rule allows
        else:
            values[arg] = 1 if isinstance(converter, NumberConverter) else "x"
    with app.test_request_context():
        return app.url_map.bind("localhost").build(rule.endpoint, values)


def _all_rules(settings: Settings) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every rule; built at collection time from a throwaway app."""
    app = create_app(settings)
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, _url_for_rule(app, rule)))
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "route" in metafunc.fixturenames:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(instance_path=Path(tmp), secret_key="k", worker=False).resolved()
            rules = _all_rules(settings)
        metafunc.parametrize("route", rules, ids=[f"{m} {u}" for _, m, u in rules])


def test_every_route_refuses_anonymous_visitors(client: FlaskClient, make_user, route) -> None:
    endpoint, method, url = route
    make_user(Role.ADMIN)  # with no user at all, /login itself redirects to setup
    response = client.open(url, method=method)
    if endpoint in PUBLIC_ENDPOINTS:
        assert response.status_code != 401
        return
    if endpoint in SIGNED_ENDPOINTS:
        assert response.status_code in (403, 404)  # no sender 1 here: 404
        return
    if endpoint in HEALTH_ENDPOINTS:
        assert response.status_code == (404 if endpoint == "health.metrics_page" else 200)
        return
    if url.startswith("/api/"):
        assert response.status_code == 401
        assert response.is_json
        assert response.get_json()["error"]["code"] == "unauthorized"
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


def test_every_endpoint_declares_a_role_or_is_public(app: Flask) -> None:
    undeclared = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint not in PUBLIC_ENDPOINTS
        and not hasattr(view, "required_role")
        and not getattr(view, "is_public", False)
    ]
    # An undeclared view falls back to admin-only (fail closed); declaring it keeps intent visible.
    assert undeclared == []


@pytest.mark.parametrize("persona", list(Role))
def test_role_matrix_over_every_get_route(
    app: Flask, client: FlaskClient, as_role: Callable[[Role], User], persona: Role
) -> None:
    as_role(persona)
    checked = 0
    for rule in app.url_map.iter_rules():
        if (
            "GET" not in (rule.methods or ())
            or rule.endpoint in PUBLIC_ENDPOINTS | HEALTH_ENDPOINTS
            or rule.arguments
        ):
            continue
        needed = getattr(app.view_functions[rule.endpoint], "required_role", Role.ADMIN)
        response = client.get(_url_for_rule(app, rule))
        expected_ok = persona.includes(needed)
        assert (response.status_code == 200) == expected_ok, (rule.rule, response.status_code)
        if not expected_ok:
            assert response.status_code == 403
        checked += 1
    assert checked >= 9


def test_post_without_csrf_token_is_refused(client: FlaskClient, as_role) -> None:
    as_role(Role.OPERATOR)
    response = client.post("/contacts/lists", data={"name": "Gold club"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    page = client.get("/contacts/").get_data(as_text=True)
    assert "Gold club" not in page


def test_login_post_without_csrf_token_is_refused(client: FlaskClient, make_user) -> None:
    user = make_user(Role.ADMIN)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302  # still signed out


def test_viewer_cannot_create_a_list(client: FlaskClient, as_role) -> None:
    as_role(Role.VIEWER)
    token = get_csrf(client, "/contacts/")
    response = client.post("/contacts/lists", data={"name": "Gold club", "csrf_token": token})
    assert response.status_code == 403
    assert "Gold club" not in client.get("/contacts/").get_data(as_text=True)


def test_operator_can_create_a_list(client: FlaskClient, as_role) -> None:
    as_role(Role.OPERATOR)
    token = get_csrf(client, "/contacts/")
    response = client.post(
        "/contacts/lists", data={"name": "Gold club", "csrf_token": token}, follow_redirects=True
    )
    assert response.status_code == 200
    assert "Gold club" in response.get_data(as_text=True)


def test_operator_cannot_manage_users(client: FlaskClient, as_role, make_user) -> None:
    as_role(Role.OPERATOR)
    token = get_csrf(client, "/settings/")
    assert client.get("/settings/users").status_code == 403
    response = client.post(
        "/settings/users",
        data={
            "email": "new@example.com",
            "role": "admin",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "csrf_token": token,
        },
    )
    assert response.status_code == 403
    victim = make_user(Role.VIEWER)
    assert (
        client.post(
            f"/settings/users/{victim.id}/role", data={"role": "admin", "csrf_token": token}
        ).status_code
        == 403
    )


def test_api_answers_json_for_a_signed_in_user(client: FlaskClient, as_role) -> None:
    user = as_role(Role.VIEWER)
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.get_json() == {
        "id": user.id,
        "email": user.email,
        "role": "viewer",
        "timezone": None,
    }
