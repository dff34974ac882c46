"""Cloud API webhook bodies turned into plain `Heard` values, and the signature check."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from wabulk.channels.cloud_api import webhook
from wabulk.channels.heard import AccountUpdate, OptOutSignal

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SECRET = "the-app-secret"


def body_of(*changes: tuple[str, dict], entry_id: str = "WABA1") -> bytes:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": entry_id, "changes": [{"field": f, "value": v} for f, v in changes]},
        ],
    }
    return json.dumps(payload, ensure_ascii=True).encode()


def messages_value(phone_number_id: str = "111", **parts) -> dict:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
        **parts,
    }


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- the signature -------------------------------------------------------------------


def test_the_signature_is_checked_over_the_raw_bytes() -> None:
    body = body_of(("messages", messages_value(statuses=[])))
    assert webhook.verify_signature(SECRET, body, signature(body))
    assert webhook.verify_signature(
        SECRET, body, signature(body).upper().replace("SHA256", "sha256")
    )
    # Re-serialised JSON is other bytes: refused.
    assert not webhook.verify_signature(
        SECRET, json.dumps(json.loads(body)).encode() + b" ", signature(body)
    )
    assert not webhook.verify_signature(SECRET, body, signature(body, "other"))
    assert not webhook.verify_signature(SECRET, body, None)
    assert not webhook.verify_signature(SECRET, body, "")
    assert not webhook.verify_signature("", body, signature(body, ""))
    assert not webhook.verify_signature(SECRET, body, "sha1=" + "0" * 40)
    assert not webhook.verify_signature(SECRET, body, "sha256=zz\u00e9")


def test_any_of_several_signatures_may_match_while_a_secret_rotates() -> None:
    body = b'{"entry": []}'
    header = f"sha256={'0' * 64}, {signature(body)}"
    assert webhook.verify_signature(SECRET, body, header)
    assert not webhook.verify_signature(SECRET, body, f"sha256={'0' * 64},sha256={'1' * 64}")


# --- bounds --------------------------------------------------------------------------


def test_too_big_or_too_deep_bodies_are_refused_before_decoding() -> None:
    with pytest.raises(webhook.PayloadRefused, match="at most"):
        webhook.parse(b" " * (webhook.MAX_BODY + 1))
    with pytest.raises(webhook.PayloadRefused, match="nested deeper"):
        webhook.parse(b"[" * 10_000 + b"]" * 10_000)
    # Brackets inside strings are text, not nesting.
    deep_text = json.dumps({"entry": [], "note": "[" * 5000}).encode()
    assert webhook.parse(deep_text) == []
    with pytest.raises(webhook.PayloadRefused, match="not JSON"):
        webhook.parse(b"{nope")


@pytest.mark.parametrize("text", ['\\"[', "\\", '\\\\"{[', "a\\\\", '"]]]', "}{"])
def test_escaped_quotes_and_backslashes_in_strings_do_not_move_the_depth(text: str) -> None:
    nested: object = {"note": text}  # one level
    for level in range(2, webhook.MAX_DEPTH + 1):
        nested = [nested, text] if level % 2 else {text: nested}
    webhook.check_bounds(json.dumps(nested).encode())  # exactly MAX_DEPTH levels
    with pytest.raises(webhook.PayloadRefused, match="nested deeper"):
        webhook.check_bounds(json.dumps([nested]).encode())


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        {"entry": "x"},
        {"entry": [{"changes": [{"field": "messages", "value": []}]}]},
        {"entry": [{"changes": [{"field": "messages", "value": {"statuses": [1, None, "x"]}}]}]},
        {"entry": [{"changes": [{"field": "something_new", "value": {"a": 1}}]}]},
        {"entry": [{"changes": [{"field": "messages", "value": {"messages": [{"type": 5}]}}]}]},
    ],
)
def test_unknown_shapes_are_skipped_never_raised(payload) -> None:
    heard = webhook.parse(json.dumps(payload).encode(), NOW)
    for h in heard:
        for reply in h.replies:
            assert reply.text is None


# --- statuses ------------------------------------------------------------------------


def test_statuses_carry_our_id_times_numbers_and_billing() -> None:
    statuses = [
        {
            "id": "wamid.A",
            "status": "sent",
            "timestamp": "1750030073",
            "recipient_id": "16505551234",
            "biz_opaque_callback_data": "4242",
            "pricing": {"billable": True, "pricing_model": "PMP", "category": "marketing"},
            "conversation": {"id": "c1", "origin": {"type": "marketing"}},
            "a_field_from_the_future": {"x": 1},
        },
        {
            "id": "wamid.B",
            "status": "read",
            "timestamp": 1750030100,
            "recipient_user_id": "US.1349",
            "biz_opaque_callback_data": "campaign-42:row-7",  # not ours: matched by wamid
        },
        {"id": "wamid.C", "status": "played", "timestamp": "1750030100"},
        {"id": "wamid.D", "status": "delivered", "timestamp": "garbage"},
    ]
    [heard] = webhook.parse(body_of(("messages", messages_value(statuses=statuses))), NOW)
    assert heard.account_id == "111"
    sent, read, delivered = heard.statuses
    assert (
        sent.status == "sent" and sent.message_id == 4242 and sent.provider_message_id == "wamid.A"
    )
    assert sent.at == datetime.fromtimestamp(1750030073, UTC) and sent.at.tzinfo is not None
    assert sent.recipient == "+16505551234" and sent.billed_category == "marketing"
    assert (
        read.message_id is None and read.recipient_user_id == "US.1349" and read.recipient is None
    )
    assert delivered.at == NOW  # an unreadable time: when it was heard


def test_failures_carry_the_meaning_of_metas_code() -> None:
    statuses = [
        {
            "id": "wamid.F",
            "status": "failed",
            "timestamp": "1751142888",
            "recipient_id": "16505551234",
            "pricing": {"category": "marketing"},
            "errors": [
                {
                    "code": 131049,
                    "title": "This message was not delivered to maintain healthy "
                    "ecosystem engagement.",
                    "error_data": {"details": "In order to maintain a healthy ecosystem..."},
                }
            ],
        },
        {"id": "wamid.G", "status": "failed", "timestamp": "1", "errors": [{"code": 131048}]},
        {"id": "wamid.H", "status": "failed", "timestamp": "1", "errors": [{"code": 190}]},
    ]
    [heard] = webhook.parse(body_of(("messages", messages_value(statuses=statuses))), NOW)
    capped, spam, token = heard.statuses
    [error] = capped.errors
    assert capped.billed_category is None  # a failure is not billed
    assert (error.code, error.kind, error.effect) == ("131049", "recipient", "limited")
    assert "limit of marketing messages" in error.sentence
    assert error.title.startswith("This message was not delivered") and error.details
    assert (spam.errors[0].kind, spam.errors[0].effect) == ("sender", "limited")
    assert (token.errors[0].kind, token.errors[0].effect) == ("sender", "none")


def test_errors_from_the_value_and_from_inbound_messages_are_read() -> None:
    value = messages_value(
        errors=[{"code": 131042, "title": "Business eligibility payment issue"}],
        contacts=[{"profile": {"name": "Ana"}, "wa_id": "5511999990000"}],
        messages=[
            {
                "from": "5511999990000",
                "id": "wamid.U",
                "timestamp": "1750000000",
                "type": "unsupported",
                "errors": [{"code": 131051, "title": "Message type unknown"}],
            }
        ],
    )
    [heard] = webhook.parse(body_of(("messages", value)), NOW)
    [account] = heard.account
    assert account.kind == "error" and account.errors[0].code == "131042"
    assert account.errors[0].kind == "sender"
    [reply] = heard.replies
    assert reply.kind == "unsupported" and reply.errors[0].code == "131051"
    assert reply.phone == "+5511999990000" and reply.name == "Ana"


# --- inbound messages ----------------------------------------------------------------


def test_inbound_texts_buttons_interactive_and_media() -> None:
    messages = [
        {"from": "919876500001", "id": "w1", "timestamp": "1750000001", "type": "text",
         "text": {"body": "STOP"}},
        {"from": "919876500001", "id": "w2", "timestamp": "1750000002", "type": "button",
         "button": {"payload": "wabulk:opt-out", "text": "Stop promotions"},
         "context": {"from": "15550783881", "id": "wamid.ours"}},
        {"from": "919876500001", "id": "w3", "timestamp": "1750000003", "type": "interactive",
         "interactive": {"type": "button_reply", "button_reply": {"id": "yes-1", "title": "Yes"}}},
        {"from": "919876500001", "id": "w4", "timestamp": "1750000004", "type": "interactive",
         "interactive": {"type": "list_reply", "list_reply": {"id": "row-2", "title": "Blue"}}},
        {"from": "919876500001", "id": "w5", "timestamp": "1750000005", "type": "image",
         "image": {"id": "media-1", "mime_type": "image/jpeg", "caption": "this one"}},
        {"from": "919876500001", "id": "w6", "timestamp": "1750000006", "type": "sticker",
         "sticker": {"id": "media-2"}},
    ]  # fmt: skip
    value = messages_value(
        contacts=[{"profile": {"name": "Deepa"}, "wa_id": "919876500001"}], messages=messages
    )
    [heard] = webhook.parse(body_of(("messages", value)), NOW)
    got = [(r.kind, r.text, r.payload, r.context_id) for r in heard.replies]
    assert got == [
        ("text", "STOP", None, None),
        ("button", "Stop promotions", "wabulk:opt-out", "wamid.ours"),
        ("interactive", "Yes", "yes-1", None),
        ("interactive", "Blue", "row-2", None),
        ("image", "this one", None, None),
        ("sticker", None, None, None),
    ]
    assert {r.phone for r in heard.replies} == {"+919876500001"}
    assert {r.name for r in heard.replies} == {"Deepa"}
    assert heard.replies[0].at == datetime.fromtimestamp(1750000001, UTC)


def test_a_user_with_no_number_keeps_the_business_scoped_id() -> None:
    value = messages_value(
        contacts=[{"profile": {"name": "Sam"}, "user_id": "US.1349851234"}],
        messages=[
            {"from_user_id": "US.1349851234", "id": "w9", "timestamp": "1750000009",
             "type": "text", "text": {"body": "hi"}},
        ],
    )  # fmt: skip
    [heard] = webhook.parse(body_of(("messages", value)), NOW)
    [reply] = heard.replies
    assert reply.phone is None and reply.user_id == "US.1349851234" and reply.name == "Sam"


def test_one_heard_per_phone_number_id_and_account_news() -> None:
    sent_a = [{"id": "a", "status": "sent", "timestamp": "1"}]
    sent_b = [{"id": "b", "status": "sent", "timestamp": "1"}]
    body = body_of(
        ("messages", messages_value("111", statuses=sent_a)),
        ("messages", messages_value("222", statuses=sent_b)),
        (
            "user_preferences",
            messages_value(
                "111",
                contacts=[{"wa_id": "919876500001"}],
                user_preferences=[
                    {"wa_id": "919876500001", "category": "marketing_messages", "value": "stop",
                     "detail": "User requested to stop marketing messages",
                     "timestamp": 1750000000},
                    {"wa_id": "919876500002", "category": "marketing_messages", "value": "resume",
                     "timestamp": 1750000000},
                ],
            ),
        ),
        ("phone_number_quality_update", {"display_phone_number": "15550783881", "event": "FLAGGED",
                                         "current_limit": "TIER_10K"}),
        ("phone_number_quality_update", {"display_phone_number": "15550783881",
                                         "event": "THROUGHPUT_UPGRADE"}),
        ("business_capability_update", {"max_daily_conversations_per_business": 100000}),
    )  # fmt: skip
    heard = {h.account_id: h for h in webhook.parse(body, NOW)}
    assert set(heard) == {"111", "222", None}
    assert [s.provider_message_id for s in heard["222"].statuses] == ["b"]
    assert heard["111"].opt_outs == [
        OptOutSignal(
            at=datetime.fromtimestamp(1750000000, UTC),
            phone="+919876500001",
            stop=True,
            detail="User requested to stop marketing messages",
        ),
        OptOutSignal(at=datetime.fromtimestamp(1750000000, UTC), phone="+919876500002", stop=False),
    ]
    quality, throughput, tier = heard[None].account
    assert quality == AccountUpdate(
        at=NOW, kind="quality", quality_rating="RED", messaging_tier="TIER_10K", event="FLAGGED"
    )
    assert throughput.kind == "throughput" and throughput.event == "THROUGHPUT_UPGRADE"
    assert tier.kind == "tier" and tier.messaging_tier == "TIER_100K"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("4242", 4242), ("0", None), ("-1", None), ("99999999999", None), ("4e3", None), (17, 17),
     ("campaign-42", None), ("2147483648", None), (True, None)],
)  # fmt: skip
def test_only_our_own_integer_is_taken_as_our_message_id(raw, expected) -> None:
    statuses = [{"id": "w", "status": "sent", "timestamp": "1", "biz_opaque_callback_data": raw}]
    [heard] = webhook.parse(body_of(("messages", messages_value(statuses=statuses))), NOW)
    assert heard.statuses[0].message_id == expected
