"""What the fake Cloud API keeps and how it judges a send: numbers, templates, errors, limits.

- Everything here is plain Python with no I/O, so the server's handlers stay thin and the
  rules can be read in one place.
- A send is checked the way the spec's §2 and §8 describe; the first problem found is
  raised as a `GraphError` carrying Meta's code, its HTTP status (§4.3) and a details line.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

# code -> (title, HTTP status). Titles follow Meta's error-code page; the statuses the
# older copy of its table (spec §4.3), throttling at 400 like observed traffic.
ERRORS: dict[int, tuple[str, int]] = {
    1: ("API Unknown", 400),
    2: ("API Service", 503),
    4: ("API Too Many Calls", 400),
    100: ("Invalid parameter", 400),
    190: ("Invalid OAuth access token - Cannot parse access token", 401),
    200: ("Permissions error", 403),
    368: ("Temporarily blocked for policies violations", 403),
    80007: ("Rate limit issues", 400),
    130429: ("Rate limit hit", 400),
    130472: ("User's number is part of an experiment", 400),
    131000: ("Something went wrong", 500),
    131005: ("Access denied", 403),
    131008: ("Required parameter is missing", 400),
    131009: ("Parameter value is not valid", 400),
    131016: ("Service unavailable", 500),
    131021: ("Recipient cannot be sender", 400),
    131026: ("Message undeliverable", 400),
    131031: ("Account has been locked", 403),
    131042: ("Business eligibility payment issue", 400),
    131047: ("Re-engagement message", 400),
    131048: ("Spam rate limit hit", 400),
    131049: ("This message was not delivered to maintain healthy ecosystem engagement.", 400),
    131050: (
        "Unable to deliver the message. This recipient has chosen to stop receiving "
        "marketing messages on WhatsApp from your business.",
        400,
    ),
    131051: ("Unsupported message type", 400),
    131053: ("Media upload error", 400),
    131055: ("Method not allowed", 400),
    131056: ("(Business Account, Consumer Account) pair rate limit hit", 400),
    131057: ("Business Account is in maintenance mode", 500),
    132000: ("Number of parameters does not match the expected number of params", 400),
    132001: ("Template name does not exist in the translation", 404),
    132005: ("Template Hydrated Text Too Long", 400),
    132012: ("Parameter format does not match format in the created template", 400),
    132015: ("Template is Paused", 400),
    132016: ("Template is Disabled", 400),
    133004: ("Server temporarily unavailable", 503),
    133010: ("Phone number Not Registered", 400),
    134100: ("Marketing Messages API only supports marketing templates", 400),
}
THROTTLING = (4, 80007, 130429, 131048, 131056)
ERROR_HREF = "/documentation/business-messaging/whatsapp/support/error-codes"

# Spec §3: MIME type -> (message kind, size cap in bytes).
MB = 1024 * 1024
MEDIA_TYPES: dict[str, tuple[str, int]] = {
    "image/jpeg": ("image", 5 * MB),
    "image/png": ("image", 5 * MB),
    "video/mp4": ("video", 16 * MB),
    "video/3gpp": ("video", 16 * MB),
    "audio/aac": ("audio", 16 * MB),
    "audio/amr": ("audio", 16 * MB),
    "audio/mpeg": ("audio", 16 * MB),
    "audio/mp4": ("audio", 16 * MB),
    "audio/ogg": ("audio", 16 * MB),
    "text/plain": ("document", 100 * MB),
    "application/pdf": ("document", 100 * MB),
    "application/msword": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        "document",
        100 * MB,
    ),
    "application/vnd.ms-excel": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("document", 100 * MB),
    "application/vnd.ms-powerpoint": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "document",
        100 * MB,
    ),
    "image/webp": ("sticker", 500 * 1024),
}
# The bytes a file of these types must start with: a mismatch is the classic 131053.
MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF",),
}

MESSAGE_TYPES = ("text", "template", "image", "document", "video", "audio")
MEDIA_KINDS = ("image", "document", "video", "audio")
TEXT_MAX = 4096
CAPTION_MAX = 1024
HYDRATED_BODY_MAX = 1024
CALLBACK_DATA_MAX = 512
THROUGHPUT = {"STANDARD": 80.0, "HIGH": 1000.0, "NOT_APPLICABLE": 80.0}
UNLIMITED_RATE = 1e9
PAIR_RATE = 1 / 6.0
PAIR_BURST = 45.0
VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


class GraphError(Exception):
    """A synchronous Graph error: `code` decides, `details` says what was wrong."""

    def __init__(self, code: int, details: str = "", http_status: int | None = None) -> None:
        super().__init__(f"({code}) {details}")
        self.code = code
        self.details = details
        self.http_status = http_status if http_status is not None else http_status_for(code)


def http_status_for(code: int) -> int:
    return ERRORS.get(code, ("", 400))[1]


def title_for(code: int) -> str:
    return ERRORS.get(code, ("Unknown error",))[0]


def error_body(error: GraphError) -> dict[str, Any]:
    """Spec §4.1; auth errors carry no `error_data`, like Graph's own."""
    body: dict[str, Any] = {
        "message": f"(#{error.code}) {title_for(error.code)}",
        "type": "OAuthException",
        "code": error.code,
    }
    if error.code == 190:
        body["message"] = title_for(190)
    else:
        body["error_data"] = {"messaging_product": "whatsapp", "details": error.details}
    body["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    return {"error": body}


def async_error(code: int, details: str = "") -> dict[str, Any]:
    """The webhook form of an error (statuses[].errors[]): `title` equals `message`."""
    title = title_for(code)
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details or title},
        "href": ERROR_HREF,
    }


def digits(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def recipient_key(value: Any) -> str:
    """How faults name a recipient: a BSUID as it is, a phone number by its digits."""
    text = str(value)
    return text if re.fullmatch(r"[A-Z]{2}\.[A-Za-z0-9]+", text) else digits(text)


class TokenBucket:
    """`rate` tokens a second up to `burst`; not thread-safe (the event loop owns it)."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class Number:
    phone_number_id: str
    waba_id: str
    token: str
    app_secret: str
    display_phone: str
    display_name: str
    quality: str = "GREEN"
    tier: str = "TIER_250"
    throughput: str = "STANDARD"
    marketing_messages_onboarded: bool = False
    webhook_url: str | None = None
    statuses: dict[str, Any] | None = None  # auto_statuses settings, None = no statuses


@dataclass
class Template:
    id: str
    waba_id: str
    name: str
    language: str
    category: str
    components: list[dict[str, Any]]
    status: str
    parameter_format: str
    quality: str

    def as_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "quality_score": {"score": self.quality},
            "parameter_format": self.parameter_format,
            "components": self.components,
        }


@dataclass
class SendResult:
    """A send that passed every check: what the response and the webhooks need."""

    kind: str
    recipient: str  # digits of `to`, or the BSUID of `recipient`
    wa_id: str | None
    category: str  # pricing category for the status webhooks
    extra: dict[str, Any] = field(default_factory=dict)


def variables(text: str) -> list[str]:
    """Distinct variable names in order of first use: "1", "2" or named ones."""
    seen: list[str] = []
    for name in VARIABLE.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


# --- checking a send --------------------------------------------------------------------


def _require(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj or obj[key] in (None, ""):
        raise GraphError(131008, f"The parameter {where}{key} is required.")
    return obj[key]


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GraphError(100, f"Param {where} must be a JSON object.")
    return value


def check_envelope(body: Any) -> tuple[str, str, str | None]:
    """(kind, recipient key, wa_id) from the common envelope of spec §2."""
    body = _object(body, "body")
    if body.get("messaging_product") != "whatsapp":
        raise GraphError(100, "The parameter messaging_product must be 'whatsapp'.")
    if body.get("recipient_type", "individual") != "individual":
        raise GraphError(100, "Param recipient_type must be 'individual'.")
    to, bsuid = body.get("to"), body.get("recipient")
    if to in (None, "") and bsuid in (None, ""):
        raise GraphError(131008, "The parameter to is required.")
    if to not in (None, ""):
        if not isinstance(to, str) or not re.fullmatch(r"\+?[\d\s\-().]+", to):
            raise GraphError(131009, "Param to is not a valid phone number.")
        wa_id = digits(to)
        if not 7 <= len(wa_id) <= 15:
            raise GraphError(131009, "Param to is not a valid phone number.")
        key: str = wa_id
    else:
        if not isinstance(bsuid, str) or not re.fullmatch(r"[A-Z]{2}\.[A-Za-z0-9]+", bsuid):
            raise GraphError(131009, "Param recipient is not a valid business-scoped user id.")
        key, wa_id = bsuid, None
    kind = body.get("type", "text")
    if kind not in MESSAGE_TYPES:
        raise GraphError(131051, f"Message type {kind!r} is not supported.")
    callback = body.get("biz_opaque_callback_data")
    if callback is not None and (not isinstance(callback, str) or len(callback) > 512):
        raise GraphError(100, "Param biz_opaque_callback_data must be a string of <= 512 chars.")
    return kind, key, wa_id


def check_text(obj: Any) -> None:
    obj = _object(obj, "text")
    text = _require(obj, "body", "text.")
    if not isinstance(text, str):
        raise GraphError(100, "Param text.body must be a string.")
    if len(text) > TEXT_MAX:
        raise GraphError(100, f"Param text.body must be at most {TEXT_MAX} characters long.")
    if "preview_url" in obj and not isinstance(obj["preview_url"], bool):
        raise GraphError(100, "Param text.preview_url must be a boolean.")


def check_media(kind: str, obj: Any, media: dict[str, dict[str, Any]], where: str) -> None:
    obj = _object(obj, where)
    has_id, has_link = obj.get("id") not in (None, ""), obj.get("link") not in (None, "")
    if has_id == has_link:
        raise GraphError(131008, f"Param {where} needs exactly one of id or link.")
    if has_id:
        found = media.get(str(obj["id"]))
        if found is None:
            raise GraphError(131053, f"Media id {obj['id']} is not a valid uploaded media id.")
        if found["kind"] != kind:
            raise GraphError(131053, f"Media id {obj['id']} is {found['mime']}, not a {kind}.")
    elif not isinstance(obj["link"], str) or not obj["link"].startswith(("https://", "http://")):
        raise GraphError(131009, f"Param {where}.link must be an http(s) URL.")
    caption = obj.get("caption")
    if caption is not None:
        if kind == "audio":
            raise GraphError(100, "Param audio.caption is not supported for audio.")
        if not isinstance(caption, str) or len(caption) > CAPTION_MAX:
            raise GraphError(
                100, f"Param {where}.caption must be at most {CAPTION_MAX} characters long."
            )
    if "filename" in obj and kind != "document":
        raise GraphError(100, f"Param {where}.filename is only supported for documents.")


def _template_parts(template: Template) -> dict[str, Any]:
    """What a send of this template must fill: header, body variables, buttons by index."""
    parts: dict[str, Any] = {"header": None, "body": [], "body_text": "", "buttons": []}
    for component in template.components:
        ctype = str(component.get("type", "")).upper()
        if ctype == "HEADER":
            fmt = str(component.get("format", "TEXT")).upper()
            if fmt in ("IMAGE", "VIDEO", "DOCUMENT"):
                parts["header"] = ("media", fmt.lower())
            elif fmt == "TEXT" and variables(component.get("text", "")):
                parts["header"] = ("text", variables(component.get("text", "")))
        elif ctype == "BODY":
            parts["body_text"] = component.get("text", "")
            parts["body"] = variables(parts["body_text"])
        elif ctype == "BUTTONS":
            for button in component.get("buttons", []):
                btype = str(button.get("type", "")).lower()
                needs = btype == "copy_code" or (
                    btype == "url" and bool(variables(button.get("url", "")))
                )
                parts["buttons"].append((btype, needs))
    return parts


def _check_text_params(
    params: list[Any], expected: list[str], named: bool, where: str
) -> dict[str, str]:
    if len(params) != len(expected):
        raise GraphError(
            132000,
            f"{where}: {len(params)} parameters given, the template expects {len(expected)}.",
        )
    values: dict[str, str] = {}
    for position, param in enumerate(params, start=1):
        param = _object(param, f"{where} parameter")
        ptype = param.get("type")
        if ptype not in ("text", "currency", "date_time"):
            raise GraphError(132012, f"{where}: parameter type {ptype!r} is not a text value.")
        if ptype == "text":
            value = _require(param, "text", f"{where} parameter ")
            if not isinstance(value, str):
                raise GraphError(100, f"{where}: parameter text must be a string.")
        else:
            value = str(_object(param.get(ptype), f"{where} {ptype}").get("fallback_value", ""))
        if named:
            name = param.get("parameter_name")
            if name not in expected:
                raise GraphError(
                    132012,
                    f"{where}: parameter_name {name!r} is not one of {', '.join(expected)}.",
                )
            values[name] = value
        else:
            values[str(position)] = value
    if named and len(values) != len(expected):
        raise GraphError(132012, f"{where}: each named parameter must be given once.")
    return values


def check_template(
    obj: Any, templates: dict[tuple[str, str], Template], media: dict[str, dict[str, Any]]
) -> Template:
    obj = _object(obj, "template")
    name = _require(obj, "name", "template.")
    language = _object(_require(obj, "language", "template."), "template.language")
    code = _require(language, "code", "template.language.")
    template = templates.get((str(name), str(code)))
    if template is None or template.status in ("PENDING", "REJECTED", "IN_APPEAL", "DELETED"):
        raise GraphError(
            132001, f"template name ({name}) does not exist in {code} or is not approved"
        )
    if template.status == "PAUSED":
        raise GraphError(132015, f"Template {name} is paused for low quality.")
    if template.status == "DISABLED":
        raise GraphError(132016, f"Template {name} is disabled.")
    parts = _template_parts(template)
    named = template.parameter_format.upper() == "NAMED"
    components = obj.get("components") or []
    if not isinstance(components, list):
        raise GraphError(100, "Param template.components must be an array.")
    filled_header, body_values, filled_buttons = False, None, set()
    for component in components:
        component = _object(component, "template component")
        ctype = str(component.get("type", "")).lower()
        params = component.get("parameters") or []
        if not isinstance(params, list):
            raise GraphError(100, f"Param {ctype}.parameters must be an array.")
        if ctype == "header":
            header = parts["header"]
            if header is None:
                raise GraphError(132000, "header: the template's header takes no parameters.")
            if header[0] == "media":
                if len(params) != 1:
                    raise GraphError(132000, "header: a media header takes one parameter.")
                param = _object(params[0], "header parameter")
                if param.get("type") != header[1]:
                    raise GraphError(132012, f"header: the template's header is a {header[1]}.")
                check_media(header[1], param.get(header[1]), media, f"header.{header[1]}")
            else:
                _check_text_params(params, header[1], named, "header")
            filled_header = True
        elif ctype == "body":
            body_values = _check_text_params(params, parts["body"], named, "body")
        elif ctype == "button":
            try:
                index = int(component.get("index", ""))
            except (TypeError, ValueError):
                raise GraphError(131009, "button: index must be a number 0-9.") from None
            if not 0 <= index < len(parts["buttons"]):
                raise GraphError(131009, f"button: the template has no button {index}.")
            btype, needs = parts["buttons"][index]
            if str(component.get("sub_type", "")).lower() != btype:
                raise GraphError(131009, f"button {index}: the template's button is {btype}.")
            if btype in ("url", "copy_code") and len(params) != (1 if needs else 0):
                raise GraphError(132000, f"button {index}: wrong number of parameters.")
            filled_buttons.add(index)
        elif ctype not in ("limited_time_offer", "carousel"):
            raise GraphError(100, f"Param template component type {ctype!r} is invalid.")
    if parts["header"] is not None and not filled_header:
        raise GraphError(132000, "header: the template's header needs a parameter.")
    if parts["body"] and body_values is None:
        raise GraphError(132000, f"body: the template expects {len(parts['body'])} parameters.")
    missing = [
        i for i, (_, needs) in enumerate(parts["buttons"]) if needs and i not in filled_buttons
    ]
    if missing:
        raise GraphError(132000, f"button {missing[0]}: the template's button needs a parameter.")
    hydrated = VARIABLE.sub(
        lambda m: (body_values or {}).get(m.group(1), m.group(0)), parts["body_text"]
    )
    if len(hydrated) > HYDRATED_BODY_MAX:
        raise GraphError(132005, f"The body would be {len(hydrated)} characters long.")
    return template


def check_send(
    body: Any,
    number: Number,
    templates: dict[tuple[str, str], Template],
    media: dict[str, dict[str, Any]],
    endpoint: str,
) -> SendResult:
    kind, key, wa_id = check_envelope(body)
    if endpoint == "marketing_messages":
        if not number.marketing_messages_onboarded:
            raise GraphError(
                131005,
                "This phone number's business is not onboarded to the Marketing Messages API.",
            )
        if kind != "template":
            raise GraphError(131055, "Only template messages can be sent to marketing_messages.")
    if kind not in body:
        raise GraphError(131008, f"The parameter {kind} is required.")
    if kind == "text":
        check_text(body["text"])
        return SendResult(kind, key, wa_id, "service")
    if kind in MEDIA_KINDS:
        check_media(kind, body[kind], media, kind)
        return SendResult(kind, key, wa_id, "service")
    template = check_template(body["template"], templates, media)
    if endpoint == "marketing_messages":
        if template.category.upper() != "MARKETING":
            raise GraphError(134100, f"Template {template.name} is not a marketing template.")
        return SendResult(kind, key, wa_id, "marketing_lite", {"template": template})
    return SendResult(kind, key, wa_id, template.category.lower(), {"template": template})
