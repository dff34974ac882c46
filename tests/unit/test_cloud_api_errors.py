"""Reading Meta's error answers and turning them into the channel's errors (spec §4)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from wabulk.channels.base import PermanentError, SenderUnavailable, TransientError, Unconfirmed
from wabulk.channels.cloud_api import account, client
from wabulk.channels.cloud_api.channel import _second_part, not_onboarded
from wabulk.channels.cloud_api.errors import describe

TOKEN = "EAAG-very-secret-token-1234"


def graph(code: int, details: str = "", message: str = "", **extra: object) -> bytes:
    error: dict[str, object] = {"code": code, "type": "OAuthException"}
    error["message"] = message or f"(#{code}) Something"
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error.update(extra)
    return json.dumps({"error": error}).encode()


def failure(status: int, content: bytes, headers: dict[str, str] | None = None) -> client.Failure:
    return client.read_failure(status, content, httpx.Headers(headers or {}))


def error_for(
    status: int, content: bytes, headers: dict[str, str] | None = None, template: str | None = None
):  # type: ignore[no-untyped-def]
    return client.channel_error(failure(status, content, headers), TOKEN, template)


def test_read_failure_fields() -> None:
    got = failure(
        400, graph(131026, "Recipient is not a valid WhatsApp user", error_subcode=2494010)
    )
    assert (got.code, got.details, got.subcode, got.retry_after) == (
        131026,
        "Recipient is not a valid WhatsApp user",
        2494010,
        None,
    )
    assert failure(502, b"<html>Bad gateway</html>").code is None
    assert failure(400, b'{"error": "nope"}').code is None
    user = failure(400, json.dumps({"error": {"code": 100, "error_user_msg": "Bad to"}}).encode())
    assert user.details == "Bad to"


@pytest.mark.parametrize("code", [1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004])
def test_retry_codes_are_transient_with_the_tables_backoff(code: int) -> None:
    error = error_for(400, graph(code))
    assert isinstance(error, TransientError)
    assert error.code == str(code)
    assert error.retry_after == describe(code).backoff > 0


def test_retry_after_header_wins_over_the_table() -> None:
    error = error_for(500, graph(131000), {"Retry-After": "7"})
    assert isinstance(error, TransientError) and error.retry_after == 7.0
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    dated = error_for(503, b"", {"Retry-After": when})
    assert isinstance(dated, TransientError)
    assert dated.retry_after is not None and 60 < dated.retry_after <= 120
    assert client.parse_retry_after("garbage") is None
    assert client.parse_retry_after("-3") == 0.0


@pytest.mark.parametrize(
    ("code", "effect"),
    [
        (131026, "not_on_whatsapp"),
        (131049, "limited"),
        (131050, "opt_out"),
        (131047, "window"),
        (131021, "none"),
    ],
)
def test_recipient_codes_are_permanent_with_their_effect(code: int, effect: str) -> None:
    error = error_for(400, graph(code))
    assert isinstance(error, PermanentError)
    assert (error.code, error.effect) == (str(code), effect)
    assert str(error) == describe(code).sentence


def test_details_in_brackets_only_when_they_add_something() -> None:
    plain = error_for(
        400, graph(131009, "Parameter value is not valid", "(#131009) Parameter value is not valid")
    )
    assert "[" not in str(plain)
    told = error_for(400, graph(131009, "Param to is not a valid phone number."))
    assert (
        str(told) == "A value in the message is not valid. [Param to is not a valid phone number.]"
    )


@pytest.mark.parametrize("code", [132000, 132001, 132012, 132015, 132016])
def test_template_errors_name_the_template(code: int) -> None:
    error = error_for(404, graph(code), template="spring_sale (en_US)")
    assert isinstance(error, PermanentError)
    assert "template spring_sale (en_US)" in str(error)
    assert error.code == str(code)


def test_other_invalid_errors_do_not_claim_a_template() -> None:
    error = error_for(
        400, graph(100, "Param text.body is too long"), template="spring_sale (en_US)"
    )
    assert isinstance(error, PermanentError)
    assert "spring_sale" not in str(error) and "text.body" in str(error)


@pytest.mark.parametrize(
    ("code", "state"),
    [(190, "needs_link"), (0, "needs_link"), (368, "needs_link"), (131042, "needs_link"),
     (133010, "needs_link"), (10, "needs_link"), (250, "needs_link"),
     (131048, "limited"), (131064, "limited")],
)  # fmt: skip
def test_sender_codes_take_the_sender_out(code: int, state: str) -> None:
    error = error_for(401, graph(code))
    assert isinstance(error, SenderUnavailable)
    assert (error.code, error.state) == (str(code), state)


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [(500, TransientError, "http_500"), (503, TransientError, "http_503"),
     (429, TransientError, "http_429"),
     (401, SenderUnavailable, "http_401"), (403, SenderUnavailable, "http_403"),
     (400, PermanentError, "http_400"), (404, PermanentError, "http_404")],
)  # fmt: skip
def test_without_a_json_error_the_http_status_decides(status: int, kind: type, code: str) -> None:
    error = error_for(status, b"Service Unavailable")
    assert type(error) is kind
    assert error.code == code


def test_unlisted_code_is_permanent_and_says_its_number() -> None:
    error = error_for(400, graph(139999))
    assert isinstance(error, PermanentError)
    assert "139999" in str(error)


def test_the_token_never_reaches_an_error() -> None:
    error = error_for(400, graph(131009, f"Bad value near {TOKEN}"))
    assert TOKEN not in str(error)
    assert "Bad value near …" in str(error)


def test_transport_errors() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/v26.0/1/messages")
    connect = client.transport_error(httpx.ConnectError("refused", request=request))
    read = client.transport_error(httpx.ReadTimeout("slow", request=request))
    broken = client.transport_error(httpx.RemoteProtocolError("closed", request=request))
    assert (connect.code, read.code, broken.code) == (
        "connect_failed",
        "timeout",
        "connection_lost",
    )
    assert all(isinstance(e, TransientError) for e in (connect, read, broken))


def test_not_onboarded_reading() -> None:
    assert not_onboarded(failure(403, graph(131005, "not onboarded to the Marketing Messages API")))
    assert not_onboarded(failure(400, graph(100, "The business is not onboarded")))
    assert not not_onboarded(failure(400, graph(100, "Param template.name is required")))
    assert not not_onboarded(failure(400, graph(134100)))
    assert not not_onboarded(failure(500, b""))


def test_a_failed_second_part_never_invites_a_resend() -> None:
    permanent = _second_part(PermanentError("too long", code="100", effect="none"))
    assert isinstance(permanent, PermanentError) and permanent.code == "100"
    assert "first part of this message was sent" in str(permanent)
    for error in (TransientError("later", code="131000"), SenderUnavailable("token", code="190")):
        assert isinstance(_second_part(error), Unconfirmed)


@pytest.mark.parametrize(
    ("settings", "options", "base"),
    [({}, {}, "https://graph.facebook.com/v26.0"),
     ({}, {"cloud_api_url": "http://127.0.0.1:9/", "cloud_api_version": "v25.0"}, "http://127.0.0.1:9/v25.0"),
     ({"api_version": "24.0"}, {"cloud_api_version": "v25.0"}, "https://graph.facebook.com/v24.0")],
)  # fmt: skip
def test_api_base(settings: dict, options: dict, base: str) -> None:
    assert client.api_base(settings, options) == base


# --- what the Senders page says for each account problem ----------------------------------

ACCOUNT = account._Account("https://graph.facebook.com/v26.0", "1065", "2290", TOKEN, 20.0)
MISSING = "Unsupported get request. Object with ID '1065' does not exist, cannot be loaded"


@pytest.mark.parametrize(
    ("status", "content", "subject", "kind", "words"),
    [(401, graph(190, message="Bad token"), "number", "token", "not valid or has expired"),
     (401, b"", "number", "token", "not valid or has expired"),
     (403, graph(10, "No permission"), "number", "permission", "lacks a permission"),
     (403, graph(200), "account", "permission", "whatsapp_business_management"),
     (400, graph(100, message=f"(#100) {MISSING}", error_subcode=33), "number", "number",
      "no phone number with id 1065"),
     (400, graph(100, MISSING), "account", "account", "no WhatsApp Business Account with id 2290"),
     (400, graph(4), "account", "retry", "Too many calls"),
     (500, b"oops", "number", "retry", "did not answer properly")],
)  # fmt: skip
def test_account_sentences(
    status: int, content: bytes, subject: str, kind: str, words: str
) -> None:
    error = account._failure_error(failure(status, content), ACCOUNT, subject)
    assert error.kind == kind
    assert words in error.sentence
    assert TOKEN not in error.sentence


def test_account_unreachable_and_slow() -> None:
    request = httpx.Request("GET", "https://graph.facebook.com/v26.0/1065")
    refused = account._unreachable(httpx.ConnectError("refused", request=request), ACCOUNT)
    slow = account._unreachable(httpx.ReadTimeout("slow", request=request), ACCOUNT)
    assert refused.kind == slow.kind == "unreachable"
    assert refused.sentence == (
        "Meta could not be reached at graph.facebook.com: check this server's internet connection."
    )
    assert slow.sentence == "Meta did not answer within 20 seconds: try again in a minute."


@pytest.mark.parametrize(
    ("mime", "size", "words"),
    [("image/png", 5 * 1024 * 1024 + 1, "photo is 5.0 MB"),
     ("video/mp4", 17 * 1024 * 1024, "video is 17.0 MB; WhatsApp takes videos up to 16 MB"),
     ("application/pdf", 101 * 1024 * 1024, "up to 100 MB"),
     ("image/gif", 10, "does not accept image/gif"),
     ("", 10, "does not accept this kind of files"),
     ("text/plain", 0, "empty")],
)  # fmt: skip
def test_media_checks(mime: str, size: int, words: str) -> None:
    with pytest.raises(account.AccountError, match=re.escape(words)):
        account.check_media(mime, size)


def test_media_accepted_kinds() -> None:
    assert account.check_media("image/jpeg", 5 * 1024 * 1024) == "image"
    assert account.check_media("audio/ogg; codecs=opus", 100) == "audio"
    assert account.check_media("application/vnd.ms-excel", 100) == "document"
