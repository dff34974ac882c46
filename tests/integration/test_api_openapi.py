"""The OpenAPI document and the /api/docs page: valid, complete, and true to the validation."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient

from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.models import Role

from ..conftest import PASSWORD

METHODS = {"get", "post", "put", "delete", "patch"}


@pytest.fixture
def auth(db: Database) -> dict[str, str]:
    with db.session() as session:
        user = users.create_user(session, None, "viewer@example.com", PASSWORD, Role.VIEWER)
        secret = tokens.create_token(session, user, "docs").secret
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin_auth(db: Database) -> dict[str, str]:
    """For operations only admins may call (webhook endpoints)."""
    with db.session() as session:
        user = users.create_user(session, None, "admin@example.com", PASSWORD, Role.ADMIN)
        secret = tokens.create_token(session, user, "docs").secret
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def spec(client: FlaskClient, auth: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json", headers=auth)
    assert response.status_code == 200
    return response.get_json()  # type: ignore[no-any-return]


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.validate()  # against the OpenAPI 3.1 meta-schema; raises with the path at fault
    for name, schema in spec["components"]["schemas"].items():
        # Each body and response schema is itself valid JSON Schema 2020-12.
        assert jsonschema_rs.meta.is_valid(
            {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema"}
        ), name
    assert len(list(loaded.get_all_operations())) == len(operations(spec))


def test_every_api_route_is_documented_and_nothing_else(app: Flask, spec: dict[str, Any]) -> None:
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_json":
            path = re.sub(r"<int\([^)]*\):(\w+)>", r"{\1}", rule.rule).removeprefix("/api/v1")
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                routed.add((method.lower(), path))
    documented = {(method, path) for method, path, _ in operations(spec)}
    assert routed == documented
    assert len(documented) >= 30


def test_every_operation_documents_its_role_security_and_errors(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from Settings → API tokens.",
    }
    assert spec["security"] == [{"bearerAuth": []}]
    tags = {t["name"] for t in spec["tags"]}
    ids = set()
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for method, path, op in operations(spec):
        ids.add(op["operationId"])
        assert op["summary"] and set(op["tags"]) <= tags, path
        assert op["x-role"] in {"viewer", "operator", "admin"}
        assert f"Needs the **{op['x-role']}** role" in op["description"]
        codes = set(op["responses"])
        assert {"401", "403", "500"} <= codes, (method, path)
        if method != "get":
            assert op["x-role"] != "viewer" and {"400", "409"} <= codes, (method, path)
        if "{" in path:
            assert "404" in codes
        if method != "get" or any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "422" in codes
        for code, answer in op["responses"].items():
            if int(code) >= 400:
                assert answer["content"]["application/json"]["schema"] == error
    assert len(ids) == len(operations(spec))


def test_list_operations_share_the_cursor_page_shape(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    pages = [
        (path, op)
        for method, path, op in operations(spec)
        if method == "get" and any(p["name"] == "cursor" for p in op.get("parameters", []))
    ]
    assert {p for p, _ in pages} >= {
        "/contacts",
        "/lists",
        "/templates",
        "/campaigns",
        "/senders",
        "/campaigns/{campaign_id}/recipients",
    }
    for path, op in pages:
        ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = schemas[ref.rsplit("/", 1)[1]]
        assert set(page["properties"]) == {"data", "next_cursor"}, path
        limit = next(p for p in op["parameters"] if p["name"] == "limit")["schema"]
        assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 200, 50)


def test_documented_limits_are_the_enforced_ones(
    client: FlaskClient, spec: dict[str, Any], admin_auth: dict[str, str]
) -> None:
    """The document comes from the models that validate: what it says is what happens."""
    for method, path, op in operations(spec):
        if method != "get" or "{" in path:
            continue
        for param in op.get("parameters", []):
            schema = param["schema"]
            if schema.get("type") != "integer" or "maximum" not in schema:
                continue
            name = param["name"]
            ok = client.get(f"/api/v1{path}?{name}={schema['minimum']}", headers=admin_auth)
            too_big = client.get(
                f"/api/v1{path}?{name}={schema['maximum'] + 1}", headers=admin_auth
            )
            assert ok.status_code in (200, 422), (path, name)  # 422 only for ids that are absent
            assert too_big.status_code == 422, (path, name)
            assert too_big.get_json()["error"]["details"][0]["field"] == name


def test_document_and_docs_need_a_signed_in_user_or_token(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/v1/openapi.json").status_code == 401
    anonymous = client.get("/api/docs")
    assert anonymous.status_code == 401 and anonymous.is_json
    browser = client.get("/api/docs", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 302 and browser.headers["Location"].startswith("/login")
    assert client.get("/api/docs", headers=auth).status_code == 200


def test_docs_page_lists_every_operation_with_an_example(
    client: FlaskClient, as_role, spec: dict[str, Any]
) -> None:
    as_role(Role.VIEWER)
    html = client.get("/api/docs").get_data(as_text=True)
    for method, path, op in operations(spec):
        assert f'id="{op["operationId"]}"' in html, path
        assert f"curl -X {method.upper()} &#34;http://localhost/api/v1" in html
        assert f"/api/v1{path}</code>" in html, path
    assert html.count('data-testid="api-op"') == len(operations(spec))
    # Parameters, body fields and error codes are spelled out.
    assert "<code>limit</code>" in html and "integer ≥ 1 ≤ 200" in html
    assert "<code>list_ids</code>" in html and "list of integer" in html
    assert "-F &#34;file=@customers.xlsx&#34;" in html
    assert "<code>422</code> A parameter or field is invalid" in html
    # The same CSP rules as every page: scripts from files only, no inline styles.
    for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S):
        assert "src=" in attrs and body.strip() == ""
    assert not re.search(r"\sstyle=", html)
