"""What an admin types for a Cloud API sender: checked, named when wrong, secrets sealed."""

from __future__ import annotations

from typing import Any

import pytest

from wabulk.errors import ValidationError
from wabulk.senders import cloud, cloud_input, secrets

KEY = "unit-test-secret-key"
TOKEN, APP_SECRET, VERIFY = "EAAGtokenABCD1234", "f00dfacecafe9876", "verify-me-please"


def _raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "phone_number_id": "106540352242922",
        "waba_id": "102290129340398",
        "api_version": "",
        "use_marketing_messages": "",
        "marketing_ttl_seconds": "",
        "access_token": TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY,
    }
    raw.update(changes)
    return raw


def _clean(raw: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    return cloud_input.clean_settings(raw, previous or {}, KEY, default_version="v26.0")


def _refused(raw: dict[str, Any], previous: dict[str, Any] | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _clean(raw, previous)
    return caught.value


def test_a_complete_form_is_stored_with_its_secrets_sealed() -> None:
    settings = _clean(_raw(use_marketing_messages="1", marketing_ttl_seconds="86400"))
    assert {k: v for k, v in settings.items() if k not in ("secrets", "hints")} == {
        "phone_number_id": "106540352242922",
        "waba_id": "102290129340398",
        "api_version": "v26.0",
        "use_marketing_messages": True,
        "marketing_ttl_seconds": 86400,
    }
    assert settings["hints"] == {
        "access_token": "…1234",
        "app_secret": "…9876",
        "verify_token": "…ease",
    }
    for name, value in (
        ("access_token", TOKEN),
        ("app_secret", APP_SECRET),
        ("verify_token", VERIFY),
    ):
        assert value not in str(settings)
        assert secrets.reveal(settings, KEY, name) == value


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("phone_number_id", "", "The phone-number id is missing"),
        ("phone_number_id", "+1 555 0100", "digits only"),
        ("phone_number_id", "١٢٣", "digits only"),  # Arabic-Indic digits are not Meta's ids
        ("phone_number_id", "1" * 31, "at most 30"),
        ("waba_id", "abc", "The WhatsApp Business Account id is digits only"),
        ("api_version", "26", "looks like v26.0"),
        ("api_version", "v26.0; drop", "looks like v26.0"),
        ("use_marketing_messages", "maybe", "is on or off"),
        ("marketing_ttl_seconds", "60", "from 43,200 (12 hours)"),
        ("marketing_ttl_seconds", "2592001", "to 2,592,000 (30 days)"),
        ("marketing_ttl_seconds", "86400.5", "whole number of seconds"),
        ("marketing_ttl_seconds", "nan", "whole number of seconds"),
        ("access_token", "", "Paste the access token."),
        ("access_token", "EAAG token with spaces", "has spaces or characters it cannot hold"),
        ("access_token", "x" * 4097, "too long for the access token"),
        ("app_secret", "", "Paste the app secret."),
        ("app_secret", "sécret-value", "has spaces or characters"),
        ("verify_token", "short", "at least 8 characters"),
        ("verify_token", "", "Paste the webhook verify token."),
    ],
)
def test_a_wrong_value_is_named_with_a_sentence(field: str, value: str, words: str) -> None:
    error = _refused(_raw(**{field: value}))
    assert error.field == field
    assert words in str(error)
    if field in secrets.SECRET_FIELDS and value:
        assert value not in str(error), "a sentence never quotes a secret"


def test_an_unknown_setting_is_refused_not_dropped() -> None:
    error = _refused(_raw(phone_number="123"))
    assert error.field == "phone_number" and "Unknown Cloud API setting" in str(error)


def test_blank_secrets_keep_the_saved_ones_on_an_edit() -> None:
    saved = _clean(_raw())
    edited = _clean(_raw(access_token="", app_secret="", verify_token="", waba_id="42"), saved)
    assert edited["waba_id"] == "42"
    assert edited["secrets"] == saved["secrets"] and edited["hints"] == saved["hints"]
    renewed = _clean(_raw(access_token="EAAGnewtokenWXYZ", app_secret="", verify_token=""), saved)
    assert secrets.reveal(renewed, KEY, "access_token") == "EAAGnewtokenWXYZ"
    assert renewed["hints"]["access_token"] == "…WXYZ"
    assert secrets.reveal(renewed, KEY, "app_secret") == APP_SECRET


def test_ids_and_secrets_are_trimmed_and_booleans_taken_as_given() -> None:
    settings = _clean(
        _raw(phone_number_id=" 123 ", access_token=f"  {TOKEN}\n", use_marketing_messages=True)
    )
    assert settings["phone_number_id"] == "123" and settings["use_marketing_messages"] is True
    assert secrets.reveal(settings, KEY, "access_token") == TOKEN


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 80.0), ("", 80.0), ("20", 20.0), (1000, 1000.0), ("0.5", 0.5)],
)
def test_messages_per_second_defaults_to_meta_s_80(value: Any, expected: float) -> None:
    assert cloud_input.clean_rate(value) == expected


@pytest.mark.parametrize("value", ["0", "-1", "1001", "fast", "nan", "inf"])
def test_messages_per_second_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        cloud_input.clean_rate(value)
    assert caught.value.field == "max_per_second" and "at most 1000" in str(caught.value)


def test_the_offered_verify_token_is_random_and_accepted() -> None:
    one, two = cloud_input.new_verify_token(), cloud_input.new_verify_token()
    assert one != two and len(one) >= 30
    assert secrets.reveal(_clean(_raw(verify_token=one)), KEY, "verify_token") == one


@pytest.mark.parametrize(
    ("tier", "limit", "words"),
    [
        ("TIER_250", 250, "up to 250 customers a day"),
        ("TIER_2K", 2000, "up to 2,000 customers a day"),
        ("TIER_10K", 10_000, "up to 10,000 customers a day"),
        ("TIER_100K", 100_000, "up to 100,000 customers a day"),
        ("TIER_UNLIMITED", None, "no daily limit"),
        ("TIER_50", 50, "up to 50 customers a day"),
        ("TIER_1K", 1000, "up to 1,000 customers a day"),
        ("tier_2k", 2000, "up to 2,000 customers a day"),
        ("TIER_NOT_SET", 250, "not known yet (counted as up to 250 customers a day)"),
        (None, 250, "not known yet (counted as up to 250 customers a day)"),
    ],
)
def test_the_messaging_tier_in_customers_a_day(
    tier: str | None, limit: int | None, words: str
) -> None:
    health = {} if tier is None else {"messaging_tier": tier}
    assert cloud.messaging_tier_limit(health) == limit
    assert cloud.tier_words(health) == words


def test_the_tier_of_a_sender_never_checked_is_the_safe_floor() -> None:
    assert cloud.messaging_tier_limit(None) == 250


@pytest.mark.parametrize(
    ("rating", "words"),
    [("GREEN", "High"), ("YELLOW", "Medium"), ("RED", "Low"), ("UNKNOWN", "not rated yet")],
)
def test_the_quality_rating_in_words(rating: str, words: str) -> None:
    assert cloud.quality_words({"quality_rating": rating}) == words
