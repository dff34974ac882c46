"""Sender secrets: encrypted at rest, readable only with the same secret key."""

from __future__ import annotations

import json

import pytest

from wabulk.senders import secrets


def test_round_trip_and_hint_only() -> None:
    stored = secrets.store(
        {"phone_number_id": "1065"}, "key-one", {"access_token": "EAAG-token-9f3c"}
    )
    dumped = json.dumps(stored)
    assert "EAAG-token-9f3c" not in dumped
    assert stored["hints"]["access_token"] == "…9f3c"
    assert secrets.reveal(stored, "key-one", "access_token") == "EAAG-token-9f3c"
    assert "secrets" not in secrets.without_secrets(stored)
    assert secrets.reveal(stored, "key-one", "app_secret") is None


def test_blank_keeps_the_stored_value() -> None:
    first = secrets.store({}, "k", {"app_secret": "s3cret-abcd"})
    again = secrets.store(first, "k", {"app_secret": ""})
    assert secrets.reveal(again, "k", "app_secret") == "s3cret-abcd"


def test_another_key_or_a_tampered_value_is_refused() -> None:
    stored = secrets.store({}, "key-one", {"verify_token": "hello-world"})
    with pytest.raises(secrets.SecretUnreadable, match="secret key"):
        secrets.reveal(stored, "key-two", "verify_token")
    token = stored["secrets"]["verify_token"]
    stored["secrets"]["verify_token"] = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(secrets.SecretUnreadable):
        secrets.reveal(stored, "key-one", "verify_token")


def test_unknown_secret_name_is_a_bug() -> None:
    with pytest.raises(KeyError):
        secrets.store({}, "k", {"password": "x"})
