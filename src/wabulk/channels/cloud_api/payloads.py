"""The JSON bodies of Cloud API sends (spec §2), as pure functions of an `OutgoingMessage`.

- `plan(message)` gives the one or two bodies a message needs, in the order they are
  sent; it raises `PermanentError` for a message that can never go (too long, a file never
  uploaded to the sender's account), before anything reaches Meta.
- Every body carries our message id as `biz_opaque_callback_data`, so a status webhook
  settles the message even when the send's own answer was lost.
- Files go by the media id they got when uploaded to the sender's number; a link to a file
  on this server would expose it to anyone who sees the message, so there is no `link`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ...words import N_, said
from ..base import OutgoingMessage, PermanentError, TemplateCall

TEXT_MAX = 4096
CAPTION_MAX = 1024
# Meta's range for a marketing template's time-to-live (12 hours to 30 days).
TTL_RANGE = (43_200, 2_592_000)
MEDIA_KINDS = ("image", "video", "audio", "document")
HEADER_MEDIA = ("image", "video", "document")
_URL = re.compile(r"https?://\S", re.IGNORECASE)

Body = dict[str, Any]


def recipient(phone: str) -> str:
    """E.164 with its `+`: without it Meta may read the number as national to the business."""
    phone = phone.strip()
    return phone if phone.startswith("+") else "+" + phone.lstrip("0")


def media_kind(mime: str | None, name: str | None = None) -> str:
    """The message type a file goes as; anything not a photo, video or sound is a document."""
    mime = (mime or "").split(";", 1)[0].strip().lower()
    if mime == "image/jpeg" or mime == "image/png":
        return "image"
    head = mime.split("/", 1)[0]
    if head in ("video", "audio"):
        return head
    if not mime and name:
        lower = name.lower()
        if lower.endswith((".jpg", ".jpeg", ".png")):
            return "image"
        if lower.endswith((".mp4", ".3gp")):
            return "video"
    return "document"


def encode(body: Body) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _envelope(message: OutgoingMessage, kind: str) -> Body:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient(message.phone),
        "type": kind,
        "biz_opaque_callback_data": str(message.message_id),
    }


# Text too long for WhatsApp, one whole sentence for each kind of text.
_TOO_LONG = {
    "text": N_("The text is %(length)s characters long; WhatsApp allows at most %(limit)s."),
    "image": N_(
        "The caption of a photo is %(length)s characters long; WhatsApp allows at most %(limit)s."
    ),
    "video": N_(
        "The caption of a video is %(length)s characters long; WhatsApp allows at most %(limit)s."
    ),
    "audio": N_(
        "The caption of a audio file is %(length)s characters long; WhatsApp allows at most "
        "%(limit)s."
    ),
    "document": N_(
        "The caption of a document is %(length)s characters long; WhatsApp allows at most "
        "%(limit)s."
    ),
}


def _too_long(what: str, limit: int, length: int, code: str) -> PermanentError:
    """`what`: "text", or the kind of file whose caption is too long."""
    return PermanentError(
        said(_TOO_LONG[what], length=f"{length:,}", limit=f"{limit:,}"),
        code=code,
    )


def text_body(message: OutgoingMessage, text: str) -> Body:
    if not text.strip():
        raise PermanentError(N_("The message has no text to send."), code="empty_text")
    if len(text) > TEXT_MAX:
        raise _too_long("text", TEXT_MAX, len(text), "text_too_long")
    body = _envelope(message, "text")
    body["text"] = {"preview_url": bool(_URL.search(text)), "body": text}
    return body


def _media_id(message: OutgoingMessage) -> str:
    if not message.media_ref:
        raise PermanentError(
            N_(
                "The file was never uploaded to this sender's WhatsApp account, and wabulk does "
                "not send links to files on this server. Upload it again from the campaign."
            ),
            code="media_not_uploaded",
        )
    return message.media_ref


def media_body(message: OutgoingMessage, kind: str, caption: str | None) -> Body:
    media: dict[str, Any] = {"id": _media_id(message)}
    if caption:
        if kind == "audio":
            raise PermanentError(N_("WhatsApp audio messages take no caption."), code="caption")
        if len(caption) > CAPTION_MAX:
            raise _too_long(kind, CAPTION_MAX, len(caption), "caption_too_long")
        media["caption"] = caption
    if kind == "document" and message.media_name:
        media["filename"] = message.media_name
    body = _envelope(message, kind)
    body[kind] = media
    return body


def _text_parameter(name: str | None, value: str) -> dict[str, str]:
    parameter = {"type": "text", "text": value}
    if name:
        parameter["parameter_name"] = name
    return parameter


def _button(index: int, sub_type: str, value: str, call: TemplateCall) -> dict[str, Any]:
    kind = sub_type.strip().lower()
    if kind == "url":
        parameter: dict[str, str] = {"type": "text", "text": value}
    elif kind == "quick_reply":
        parameter = {"type": "payload", "payload": value}
    elif kind == "copy_code":
        parameter = {"type": "coupon_code", "coupon_code": value}
    else:
        raise PermanentError(
            said(
                "Template %(name)s (%(language)s): its button %(number)s is of a kind wabulk "
                "cannot fill (%(kind)s).",
                name=call.name,
                language=call.language,
                number=index + 1,
                kind=sub_type,
            ),
            code="template_button",
        )
    return {"type": "button", "sub_type": kind, "index": str(index), "parameters": [parameter]}


def template_body(message: OutgoingMessage, call: TemplateCall) -> Body:
    components: list[dict[str, Any]] = []
    if call.header_media_kind:
        kind = call.header_media_kind.strip().lower()
        if kind not in HEADER_MEDIA:
            raise PermanentError(
                said(
                    "Template %(name)s (%(language)s): a header of kind %(kind)s cannot be sent.",
                    name=call.name,
                    language=call.language,
                    kind=kind,
                ),
                code="template_header",
            )
        media: dict[str, str] = {"id": _media_id(message)}
        if kind == "document" and message.media_name:
            media["filename"] = message.media_name
        components.append({"type": "header", "parameters": [{"type": kind, kind: media}]})
    elif call.header_text is not None:
        name, value = call.header_text
        components.append({"type": "header", "parameters": [_text_parameter(name, value)]})
    if call.body:
        components.append(
            {"type": "body", "parameters": [_text_parameter(n, v) for n, v in call.body]}
        )
    components.extend(_button(i, s, v, call) for i, s, v in call.buttons)
    template: dict[str, Any] = {"name": call.name, "language": {"code": call.language}}
    if components:
        template["components"] = components
    body = _envelope(message, "template")
    body["template"] = template
    return body


def plan(message: OutgoingMessage) -> list[Body]:
    """The bodies to send for `message`, in order; the last one's wamid is the message's."""
    if message.template is not None:
        return [template_body(message, message.template)]
    text = message.text or ""
    if message.media_path is None and message.media_ref is None:
        return [text_body(message, text)]
    kind = media_kind(message.media_mime, message.media_name)
    if kind in ("image", "video"):
        return [media_body(message, kind, text or None)]
    # Documents take the text as their caption when it fits; audio never does. Otherwise
    # the text is its own message, before or after the file as the campaign chose.
    if kind == "document" and len(text) <= CAPTION_MAX:
        return [media_body(message, kind, text or None)]
    file_body = media_body(message, kind, None)
    if not text.strip():
        return [file_body]
    words = text_body(message, text)
    return [file_body, words] if message.text_after_document else [words, file_body]


def marketing(body: Body, ttl_seconds: int | None) -> Body:
    """The body for `/marketing_messages`: the same template send, with its time-to-live."""
    if not ttl_seconds:
        return body
    low, high = TTL_RANGE
    return {**body, "ttl": max(low, min(high, int(ttl_seconds)))}


def template_label(message: OutgoingMessage) -> str | None:
    """ "spring_sale (en_US)": how errors name the template."""
    call = message.template
    return f"{call.name} ({call.language})" if call is not None else None
