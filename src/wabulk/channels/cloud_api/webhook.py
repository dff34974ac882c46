"""Cloud API webhooks: the signature check and the payload turned into plain `Heard` values.

- `verify_signature` checks `X-Hub-Signature-256` (HMAC-SHA256 of the raw body bytes with
  the app secret) in constant time; several comma-separated signatures are accepted so a
  secret can rotate. Re-serialised JSON would not match: only the received bytes count.
- `parse` refuses a body over 3 MB or nested absurdly deep before decoding it, then reads
  what it knows and skips the rest: an unknown field or kind never raises, because Meta
  adds both and a webhook must never be lost to a parser error.
- One `Heard` per phone-number id; changes about the whole account (quality, tier), which
  carry no phone-number id, come as a `Heard` with no account id: the sender whose
  address received them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from ..heard import (
    AccountUpdate,
    Heard,
    HeardError,
    OptOutSignal,
    Reply,
    StatusUpdate,
)
from .errors import describe

MAX_BODY = 3 * 1024 * 1024
MAX_DEPTH = 32
# Our message id rides in `biz_opaque_callback_data` as its decimal digits.
MAX_MESSAGE_ID = 2**31 - 1
# Sender errors that mean Meta is restricting the number (quality), not that its
# credentials are wrong: the sender becomes `limited`, not `needs_link`.
RESTRICTING = frozenset({"131048", "131064", "368", "131031"})
# `phone_number_quality_update` events that mean the rating is low: FLAGGED (it dropped
# to low) and DOWNGRADE (the messaging limit was lowered after it stayed low).
LOW_QUALITY_EVENTS = frozenset({"FLAGGED", "DOWNGRADE"})
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker", "voice")

_NOT_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")
_OPEN = frozenset(b"[{")


class PayloadRefused(ValueError):
    """The body is too big, too deep, or not JSON: nothing in it can be read."""


def verify_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` carries a valid `sha256=<hex>` signature of `body`."""
    if not app_secret or not header:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    valid = False
    for part in header.split(",")[:8]:
        scheme, _, value = part.strip().partition("=")
        if scheme.strip().lower() != "sha256":
            continue
        # Every candidate is compared, so the time taken says nothing about which matched.
        given = value.strip().lower().encode("utf-8", "replace")
        valid |= hmac.compare_digest(expected.encode(), given)
    return valid


def check_bounds(body: bytes) -> None:
    """Refuse what must not be decoded: too large, or nested past MAX_DEPTH."""
    if len(body) > MAX_BODY:
        raise PayloadRefused(f"The body has {len(body):,} bytes; at most {MAX_BODY:,} are read.")
    # Brackets inside strings do not count. Escapes go first (each `\\` pair, then each
    # `\"`, scanned left to right as a decoder reads them), so every quote left opens or
    # closes a string: what lies outside strings is every other piece between quotes.
    # Bytes methods only: this runs for every delivery of a storm, where a regex walking
    # the strings byte by byte cost more than decoding the JSON (11 times this).
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[::2]).translate(None, _NOT_BRACKET)
    depth = 0
    for byte in brackets:
        if byte in _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                raise PayloadRefused(f"The body is nested deeper than {MAX_DEPTH} levels.")
        else:
            depth -= 1


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any, limit: int = 10_000) -> str | None:
    if isinstance(value, str):
        return value[:limit] if value else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _when(value: Any, fallback: datetime) -> datetime:
    """Unix seconds, a string of them as Meta sends, as an aware UTC time."""
    try:
        seconds = float(value)
        if seconds != seconds or not 0 < seconds < 32_503_680_000:  # NaN, or past year 3000
            return fallback
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError):
        return fallback


def _phone(value: Any) -> str | None:
    """Meta's digits (`wa_id`, `from`, `recipient_id`) as E.164 with its plus."""
    digits = _text(value, 40)
    if digits is None:
        return None
    digits = digits.strip().lstrip("+")
    if not (digits.isascii() and digits.isdigit()) or not 6 <= len(digits) <= 15:
        return None
    return "+" + digits


def _message_id(value: Any) -> int | None:
    text = _text(value, 40)
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_MESSAGE_ID else None


def _errors(value: Any) -> tuple[HeardError, ...]:
    out = []
    for raw in _list(value)[:20]:
        raw = _obj(raw)
        code = raw.get("code")
        if code is None:
            continue
        info = describe(code)
        effect = info.effect
        if info.kind == "sender" and info.code in RESTRICTING:
            effect = "limited"
        out.append(
            HeardError(
                code=info.code,
                title=_text(raw.get("title") or raw.get("message"), 500) or "",
                details=_text(_obj(raw.get("error_data")).get("details"), 1000) or "",
                kind=info.kind,
                effect=effect,
                sentence=info.sentence,
            )
        )
    return tuple(out)


def _status(raw: dict[str, Any], now: datetime) -> StatusUpdate | None:
    status = raw.get("status")
    if status not in ("sent", "delivered", "read", "failed"):
        return None  # `played` (voice), `deleted`, and whatever comes next
    provider_id = _text(raw.get("id"), 200)
    message_id = _message_id(raw.get("biz_opaque_callback_data"))
    if provider_id is None and message_id is None:
        return None
    pricing = _obj(raw.get("pricing"))
    category = _text(pricing.get("category"), 40) if status != "failed" else None
    if pricing.get("billable") is False:
        category = None
    return StatusUpdate(
        status=status,
        at=_when(raw.get("timestamp"), now),
        provider_message_id=provider_id,
        message_id=message_id,
        recipient=_phone(raw.get("recipient_id")),
        recipient_user_id=_text(raw.get("recipient_user_id") or raw.get("user_id"), 100),
        billed_category=category,
        errors=_errors(raw.get("errors")),
    )


def _reply_content(raw: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(kind, text, payload) of an inbound message."""
    kind = _text(raw.get("type"), 30) or "unknown"
    if kind == "text":
        return kind, _text(_obj(raw.get("text")).get("body")), None
    if kind == "button":
        button = _obj(raw.get("button"))
        return kind, _text(button.get("text"), 500), _text(button.get("payload"), 500)
    if kind == "interactive":
        interactive = _obj(raw.get("interactive"))
        chosen = _obj(interactive.get("button_reply")) or _obj(interactive.get("list_reply"))
        return kind, _text(chosen.get("title"), 500), _text(chosen.get("id"), 500)
    if kind in MEDIA_KINDS:
        media = _obj(raw.get(kind))
        return kind, _text(media.get("caption")) or _text(media.get("filename"), 500), None
    if kind == "reaction":
        return kind, _text(_obj(raw.get("reaction")).get("emoji"), 50), None
    if kind == "location":
        place = _obj(raw.get("location"))
        return kind, _text(place.get("name"), 500) or _text(place.get("address"), 500), None
    return kind, None, None


def _replies(value: dict[str, Any], now: datetime) -> list[Reply]:
    people = [_obj(c) for c in _list(value.get("contacts"))]
    by_wa_id = {_text(c.get("wa_id"), 40): c for c in people if c.get("wa_id")}
    by_user = {_text(c.get("user_id"), 100): c for c in people if c.get("user_id")}
    out = []
    for raw in _list(value.get("messages"))[:1000]:
        raw = _obj(raw)
        sender_digits = _text(raw.get("from"), 40)
        user_id = _text(raw.get("from_user_id") or raw.get("user_id"), 100)
        person = by_wa_id.get(sender_digits) or by_user.get(user_id)
        if person is None and len(people) == 1:
            person = people[0]
        person = person or {}
        user_id = user_id or _text(person.get("user_id"), 100)
        phone = _phone(sender_digits) or _phone(person.get("wa_id"))
        kind, text, payload = _reply_content(raw)
        out.append(
            Reply(
                at=_when(raw.get("timestamp"), now),
                provider_message_id=_text(raw.get("id"), 200),
                phone=phone,
                user_id=user_id,
                name=_text(_obj(person.get("profile")).get("name"), 200),
                kind=kind,
                text=text,
                payload=payload,
                context_id=_text(_obj(raw.get("context")).get("id"), 200),
                errors=_errors(raw.get("errors")),
            )
        )
    return out


def _user_preferences(value: dict[str, Any], now: datetime) -> list[OptOutSignal]:
    people = [_obj(c) for c in _list(value.get("contacts"))]
    out = []
    for raw in _list(value.get("user_preferences"))[:1000]:
        raw = _obj(raw)
        if str(raw.get("category") or "marketing_messages") != "marketing_messages":
            continue
        wish = str(raw.get("value") or "").lower()
        if wish not in ("stop", "resume"):
            continue
        digits = raw.get("wa_id") or (people[0].get("wa_id") if len(people) == 1 else None)
        user_id = raw.get("user_id") or (people[0].get("user_id") if len(people) == 1 else None)
        out.append(
            OptOutSignal(
                at=_when(raw.get("timestamp"), now),
                phone=_phone(digits),
                user_id=_text(user_id, 100),
                stop=wish == "stop",
                detail=_text(raw.get("detail"), 300) or "",
            )
        )
    return out


def _account(field: str, value: dict[str, Any], now: datetime) -> AccountUpdate | None:
    at = _when(value.get("timestamp"), now)
    event = _text(value.get("event"), 60)
    if field == "phone_number_quality_update":
        if event and "THROUGHPUT" in event.upper():
            return AccountUpdate(at=at, kind="throughput", event=event)
        tier = _text(value.get("current_limit") or value.get("messaging_limit_tier"), 30)
        rating = _text(value.get("quality_rating") or value.get("current_quality"), 20)
        if rating is None and (event or "").upper() in LOW_QUALITY_EVENTS:
            rating = "RED"
        return AccountUpdate(
            at=at, kind="quality", quality_rating=rating, messaging_tier=tier, event=event
        )
    if field == "business_capability_update":
        tier = _text(
            value.get("max_daily_conversations_per_business")
            or value.get("max_daily_conversation_per_phone")
            or value.get("messaging_limit_tier")
            or value.get("current_limit"),
            30,
        )
        if tier and tier.isdigit():
            tier = _tier_name(int(tier))
        return AccountUpdate(at=at, kind="tier", messaging_tier=tier, event=event)
    return None


def _tier_name(limit: int) -> str:
    names = {250: "TIER_250", 1000: "TIER_1K", 2000: "TIER_2K", 10_000: "TIER_10K"}
    return names.get(limit, "TIER_100K" if limit == 100_000 else f"TIER_{limit}")


def parse(body: bytes, now: datetime | None = None) -> list[Heard]:
    """The deliveries in one webhook body, one `Heard` per phone-number id.

    Raises PayloadRefused for a body that is too big, too deep or not JSON; anything it
    does not know inside a readable body is skipped.
    """
    now = now or datetime.now(UTC)
    check_bounds(body)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PayloadRefused(f"The body is not JSON: {str(exc)[:200]}") from None
    heard: dict[str | None, Heard] = {}

    def for_account(account_id: str | None) -> Heard:
        if account_id not in heard:
            heard[account_id] = Heard(account_id=account_id)
        return heard[account_id]

    for entry in _list(_obj(payload).get("entry")):
        for change in _list(_obj(entry).get("changes")):
            change = _obj(change)
            field = change.get("field")
            value = _obj(change.get("value"))
            account_id = _text(_obj(value.get("metadata")).get("phone_number_id"), 100)
            if field == "messages":
                target = for_account(account_id)
                for raw in _list(value.get("statuses")):
                    status = _status(_obj(raw), now)
                    if status is not None:
                        target.statuses.append(status)
                target.replies.extend(_replies(value, now))
                errors = _errors(value.get("errors"))
                if errors:
                    target.account.append(AccountUpdate(at=now, kind="error", errors=errors))
            elif field == "user_preferences":
                for_account(account_id).opt_outs.extend(_user_preferences(value, now))
            elif field in ("phone_number_quality_update", "business_capability_update"):
                update = _account(field, value, now)
                if update is not None:
                    for_account(account_id).account.append(update)
    return [h for h in heard.values() if h.statuses or h.replies or h.account or h.opt_outs]
