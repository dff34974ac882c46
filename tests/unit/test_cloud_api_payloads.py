"""Cloud API send bodies (spec §2): every message type, templates, limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wabulk.channels.base import OutgoingMessage, PermanentError, TemplateCall
from wabulk.channels.cloud_api import payloads


def message(**kw: object) -> OutgoingMessage:
    values: dict[str, object] = {"message_id": 42, "phone": "+919876500001", "text": "Hello"}
    values.update(kw)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


def only(msg: OutgoingMessage) -> dict:
    bodies = payloads.plan(msg)
    assert len(bodies) == 1
    return bodies[0]


def test_text_envelope_callback_and_no_preview() -> None:
    body = only(message(text="Sale tonight"))
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+919876500001",
        "type": "text",
        "biz_opaque_callback_data": "42",
        "text": {"preview_url": False, "body": "Sale tonight"},
    }


@pytest.mark.parametrize(
    ("text", "preview"),
    [
        ("See https://shop.example/sale", True),
        ("See HTTP://shop.example", True),
        ("See http://x", True),
        ("shop.example/sale or https:// alone", False),
        ("no link here", False),
    ],
)
def test_preview_url_only_with_a_web_address(text: str, preview: bool) -> None:
    assert only(message(text=text))["text"]["preview_url"] is preview


def test_phone_without_plus_gets_one() -> None:
    assert only(message(phone="919876500001"))["to"] == "+919876500001"


def test_text_limit_is_named() -> None:
    assert only(message(text="a" * 4096))["text"]["body"] == "a" * 4096
    with pytest.raises(PermanentError, match=r"4,097 characters.*at most 4,096") as caught:
        payloads.plan(message(text="a" * 4097))
    assert caught.value.code == "text_too_long"


def test_empty_text_is_refused() -> None:
    with pytest.raises(PermanentError, match="no text"):
        payloads.plan(message(text="  "))


@pytest.mark.parametrize(("mime", "kind"), [("image/jpeg", "image"), ("video/mp4", "video")])
def test_photo_and_video_carry_the_text_as_caption(mime: str, kind: str) -> None:
    body = only(message(media_path=Path("x"), media_mime=mime, media_name="x", media_ref="77"))
    assert body["type"] == kind
    assert body[kind] == {"id": "77", "caption": "Hello"}
    assert "filename" not in body[kind]


def test_photo_without_text_has_no_caption() -> None:
    body = only(message(text="", media_ref="77", media_mime="image/png", media_name="a.png"))
    assert body["image"] == {"id": "77"}


def test_caption_limit_on_photos() -> None:
    ok = only(message(text="c" * 1024, media_ref="1", media_mime="image/png"))
    assert len(ok["image"]["caption"]) == 1024
    with pytest.raises(PermanentError, match=r"caption of a photo is 1,025.*1,024"):
        payloads.plan(message(text="c" * 1025, media_ref="1", media_mime="image/png"))


def test_document_caption_and_filename() -> None:
    body = only(message(media_ref="9", media_mime="application/pdf", media_name="price list.pdf"))
    assert body["type"] == "document"
    assert body["document"] == {"id": "9", "caption": "Hello", "filename": "price list.pdf"}


def test_long_document_text_goes_as_a_second_message_after_it() -> None:
    text = "d" * 1025
    bodies = payloads.plan(
        message(text=text, media_ref="9", media_mime="application/pdf", media_name="p.pdf")
    )
    assert [b["type"] for b in bodies] == ["document", "text"]
    assert "caption" not in bodies[0]["document"]
    assert bodies[1]["text"]["body"] == text
    assert {b["biz_opaque_callback_data"] for b in bodies} == {"42"}


def test_long_document_text_before_it_when_asked() -> None:
    bodies = payloads.plan(
        message(
            text="d" * 2000,
            media_ref="9",
            media_mime="application/pdf",
            text_after_document=False,
        )
    )
    assert [b["type"] for b in bodies] == ["text", "document"]


def test_document_text_over_the_text_limit_is_refused() -> None:
    with pytest.raises(PermanentError, match="4,096"):
        payloads.plan(message(text="d" * 5000, media_ref="9", media_mime="application/pdf"))


def test_audio_text_goes_separately() -> None:
    bodies = payloads.plan(message(media_ref="5", media_mime="audio/ogg", media_name="v.ogg"))
    assert bodies[0] == {**bodies[0], "type": "audio", "audio": {"id": "5"}}
    assert bodies[1]["text"]["body"] == "Hello"
    assert only(message(text="", media_ref="5", media_mime="audio/ogg"))["audio"] == {"id": "5"}


def test_a_file_never_uploaded_is_refused_not_linked() -> None:
    with pytest.raises(PermanentError, match="never uploaded") as caught:
        payloads.plan(message(media_path=Path("/srv/x.jpg"), media_mime="image/jpeg"))
    assert caught.value.code == "media_not_uploaded"


@pytest.mark.parametrize(
    ("mime", "name", "kind"),
    [
        ("image/png", None, "image"),
        ("video/3gpp", None, "video"),
        ("audio/mpeg", None, "audio"),
        ("application/pdf", None, "document"),
        ("image/gif", None, "document"),
        (None, "a.JPG", "image"),
        (None, "a.mp4", "video"),
        (None, "a.xlsx", "document"),
    ],
)
def test_media_kind(mime: str | None, name: str | None, kind: str) -> None:
    assert payloads.media_kind(mime, name) == kind


def test_template_positional_with_text_header_and_buttons() -> None:
    call = TemplateCall(
        name="spring_sale",
        language="en_US",
        body=((None, "Pablo"), (None, "CARIBE25")),
        header_text=(None, "Spring"),
        buttons=((0, "url", "n3mtql"), (1, "quick_reply", "STOP_PROMOS")),
    )
    body = only(message(template=call, text="rendered wording"))
    assert body["type"] == "template"
    assert "text" not in body
    assert body["biz_opaque_callback_data"] == "42"
    assert body["template"] == {
        "name": "spring_sale",
        "language": {"code": "en_US"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "Spring"}]},
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Pablo"},
                    {"type": "text", "text": "CARIBE25"},
                ],
            },
            {
                "type": "button",
                "sub_type": "url",
                "index": "0",
                "parameters": [{"type": "text", "text": "n3mtql"}],
            },
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "1",
                "parameters": [{"type": "payload", "payload": "STOP_PROMOS"}],
            },
        ],
    }


def test_template_named_parameters() -> None:
    call = TemplateCall(
        name="order",
        language="pt_BR",
        body=(("customer_name", "Ana"), ("order_id", "A-7")),
        header_text=("store", "Loja"),
    )
    components = only(message(template=call))["template"]["components"]
    assert components[0]["parameters"] == [
        {"type": "text", "text": "Loja", "parameter_name": "store"}
    ]
    assert components[1]["parameters"] == [
        {"type": "text", "text": "Ana", "parameter_name": "customer_name"},
        {"type": "text", "text": "A-7", "parameter_name": "order_id"},
    ]


def test_template_without_values_has_no_components() -> None:
    body = only(message(template=TemplateCall(name="hello_world", language="en_US")))
    assert body["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


@pytest.mark.parametrize("kind", ["image", "video"])
def test_template_media_header_by_id(kind: str) -> None:
    call = TemplateCall(name="promo", language="en", header_media_kind=kind)
    body = only(message(template=call, media_ref="555", media_name="banner.jpg"))
    assert body["template"]["components"] == [
        {"type": "header", "parameters": [{"type": kind, kind: {"id": "555"}}]}
    ]


def test_template_document_header_has_its_filename() -> None:
    call = TemplateCall(name="catalog", language="en", header_media_kind="document")
    body = only(message(template=call, media_ref="8", media_name="catalog.pdf"))
    header = body["template"]["components"][0]["parameters"][0]
    assert header == {"type": "document", "document": {"id": "8", "filename": "catalog.pdf"}}


def test_template_media_header_needs_an_upload() -> None:
    call = TemplateCall(name="promo", language="en", header_media_kind="image")
    with pytest.raises(PermanentError, match="never uploaded"):
        payloads.plan(message(template=call, media_path=Path("b.jpg")))


def test_template_button_of_unknown_kind_is_named() -> None:
    call = TemplateCall(name="promo", language="en", buttons=((2, "flow", "x"),))
    with pytest.raises(PermanentError, match=r"promo \(en\): its button 3 .*flow"):
        payloads.plan(message(template=call))


def test_marketing_body_gets_a_bounded_ttl() -> None:
    body = only(message(template=TemplateCall(name="p", language="en", marketing=True)))
    assert payloads.marketing(body, None) is body
    assert payloads.marketing(body, 86_400)["ttl"] == 86_400
    assert payloads.marketing(body, 60)["ttl"] == 43_200
    assert payloads.marketing(body, 10**9)["ttl"] == 2_592_000
    assert "ttl" not in body


def test_encode_is_compact_utf8() -> None:
    body = only(message(text="Olá 👋"))
    raw = payloads.encode(body)
    assert "Olá 👋".encode() in raw
    assert b", " not in raw
    assert json.loads(raw) == body


def test_template_label() -> None:
    assert payloads.template_label(message()) is None
    call = TemplateCall(name="spring_sale", language="en_US")
    assert payloads.template_label(message(template=call)) == "spring_sale (en_US)"
