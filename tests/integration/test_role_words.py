"""Settings → Users says what each role may do, answering in the Inbox included."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from wabulk.models import Role, User


def test_the_operator_role_mentions_the_inbox(
    client: FlaskClient, as_role: Callable[[Role], User]
) -> None:
    as_role(Role.ADMIN)
    page = client.get("/settings/users").get_data(as_text=True)
    assert "Operator: contacts, templates, campaigns and answering in the Inbox" in page
    docs = client.get("/api/docs").get_data(as_text=True)
    assert "and answer customers in the Inbox" in docs
