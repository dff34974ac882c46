"""Schemathesis on the webhook endpoint operations with an admin token (the API-wide run
uses an operator's, which these refuse): no server error, every answer as documented, on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.hooks_support import add_endpoint
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.models import Role

from ..support import serving_database

EXAMPLES = 8


@pytest.fixture
def served(dual: tuple[Flask, Database], settings) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    _, db = dual
    with db.session() as session:
        admin = users.create_user(session, None, "admin@example.com", "correct horse", Role.ADMIN)
        secret = tokens.create_token(session, admin, "fuzz").secret
    for n in (1, 2):
        add_endpoint(db, f"https://hooks.example.com/{n}", name=f"Hook {n}")
    with serving_database(db, settings) as server:
        yield server.url, secret


def test_webhook_operations_answer_as_documented(served: tuple[str, str]) -> None:
    base, secret = served
    auth = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json", headers=auth)
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if "/webhook-endpoints" not in operation.path:
            continue
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            names = [p.name for p in operation.path_parameters]
            if names:
                seeded = [
                    operation.as_strategy(
                        generation_mode=mode, path_parameters=dict.fromkeys(names, i)
                    )
                    for i in (1, 2)
                ]
                strategy = st.one_of(strategy, *seeded)

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(
                    base_url=f"{base}/api/v1",
                    headers=auth,
                    checks=[not_a_server_error, response_schema_conformance],
                )

            check()
        tested += 1
    assert tested == 8
