"""What an admin types for a Cloud API sender, checked and turned into `sender.settings`.

- Ids are digits only: Meta shows them under WhatsApp → API Setup; a phone *number* typed
  where the phone-number *id* belongs is the usual slip, so the sentence says which is which.
- Secrets (access token, app secret, webhook verify token) are stored encrypted through
  `secrets.store`; a blank one on an edit keeps the stored value, a blank one on a new
  sender is refused. They are never part of an error sentence.
- The Marketing Messages TTL is Meta's allowed range for marketing templates (12 hours to
  30 days); blank leaves Meta's default.
"""

from __future__ import annotations

import re
import secrets as random_secrets
from typing import Any

from ..errors import ValidationError
from ..words import N_, said
from . import secrets

# Settings a Cloud API sender keeps besides its secrets; anything else is refused so a typo
# in an API call is reported instead of silently ignored.
PLAIN_FIELDS = (
    "phone_number_id",
    "waba_id",
    "api_version",
    "use_marketing_messages",
    "marketing_ttl_seconds",
)
FIELDS = (*PLAIN_FIELDS, *secrets.SECRET_FIELDS)
TTL_RANGE = (12 * 3600, 30 * 24 * 3600)
MAX_RATE = 1000.0  # Meta's highest standard throughput per number
DEFAULT_RATE = 80.0
DEFAULT_VERSION = "v26.0"  # what a sender gets when the installation names none
_VERSION = re.compile(r"v\d{1,3}\.\d{1,2}")
# Each id's sentences (missing, not digits), whole so that they can be translated.
_ID_SENTENCES = {
    "phone_number_id": (
        N_(
            "The phone-number id is missing. It is the long number Meta shows under WhatsApp → "
            "API Setup as “Phone number ID”, not the phone number itself."
        ),
        N_(
            "The phone-number id is digits only (at most 30). It is the long number Meta shows "
            "under WhatsApp → API Setup as “Phone number ID”, not the phone number itself."
        ),
    ),
    "waba_id": (
        N_(
            "The WhatsApp Business Account id is missing. Meta shows it under WhatsApp → API "
            "Setup as “WhatsApp Business Account ID”."
        ),
        N_(
            "The WhatsApp Business Account id is digits only (at most 30). Meta shows it under "
            "WhatsApp → API Setup as “WhatsApp Business Account ID”."
        ),
    ),
}
# Each secret's longest length and its sentences: missing, too long, not printable.
_SECRET_LABELS = {
    "access_token": (
        4096,
        N_("Paste the access token."),
        N_(
            "That is too long for the access token (at most %(longest)s characters): check that "
            "only it was pasted."
        ),
        N_(
            "The access token has spaces or characters it cannot hold: paste it again, exactly "
            "as Meta shows it."
        ),
    ),
    "app_secret": (
        256,
        N_("Paste the app secret."),
        N_(
            "That is too long for the app secret (at most %(longest)s characters): check that "
            "only it was pasted."
        ),
        N_(
            "The app secret has spaces or characters it cannot hold: paste it again, exactly as "
            "Meta shows it."
        ),
    ),
    "verify_token": (
        200,
        N_("Paste the webhook verify token."),
        N_(
            "That is too long for the webhook verify token (at most %(longest)s characters): "
            "check that only it was pasted."
        ),
        N_(
            "The webhook verify token has spaces or characters it cannot hold: paste it again, "
            "exactly as Meta shows it."
        ),
    ),
}
_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"", "0", "false", "off", "no"}


def new_verify_token() -> str:
    """A verify token to offer on the form: random, URL-safe, easy to paste into Meta."""
    return random_secrets.token_urlsafe(24)


def clean_settings(
    raw: dict[str, Any],
    previous: dict[str, Any],
    secret_key: str,
    *,
    default_version: str,
) -> dict[str, Any]:
    """`sender.settings` of a Cloud API sender from what was typed (`raw`).

    - `previous` is the sender's stored settings (empty for a new one): its secrets stay
      when their boxes are left blank, and a new sender must give all three.
    - Raises ValidationError naming the field; the sentence never quotes a secret.
    """
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise ValidationError(
            said("Unknown Cloud API setting(s): %(names)s.", names=", ".join(unknown)),
            field=unknown[0],
        )
    out: dict[str, Any] = {}
    for key in ("phone_number_id", "waba_id"):
        out[key] = _digits(key, raw.get(key))
    version = str(raw.get("api_version") or "").strip() or default_version
    if not _VERSION.fullmatch(version):
        raise ValidationError(
            N_("The API version looks like v26.0 (a “v”, then the version number)."),
            field="api_version",
        )
    out["api_version"] = version
    out["use_marketing_messages"] = _flag(raw.get("use_marketing_messages"))
    ttl = _ttl(raw.get("marketing_ttl_seconds"))
    if ttl is not None:
        out["marketing_ttl_seconds"] = ttl
    typed: dict[str, str] = {}
    stored = previous.get("secrets") or {}
    for key in secrets.SECRET_FIELDS:
        value = _secret(key, raw.get(key))
        if not value and not stored.get(key):
            raise ValidationError(_SECRET_LABELS[key][1], field=key)
        typed[key] = value
    kept = {k: v for k, v in previous.items() if k in ("secrets", "hints")}
    return secrets.store({**kept, **out}, secret_key, typed)


def clean_rate(value: Any) -> float:
    """Messages per second at most for a Cloud API sender; blank means Meta's 80."""
    if value in (None, ""):
        return DEFAULT_RATE
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = float("nan")
    if not 0 < rate <= MAX_RATE:  # NaN fails both comparisons
        raise ValidationError(
            said(
                "Messages per second must be a number above 0 and at most %(most)s.",
                most=f"{MAX_RATE:g}",
            ),
            field="max_per_second",
        )
    return rate


def _digits(key: str, value: Any) -> str:
    missing, not_digits = _ID_SENTENCES[key]
    text = "" if value is None else str(value).strip()
    if not text:
        raise ValidationError(missing, field=key)
    if not (text.isascii() and text.isdigit()) or len(text) > 30:
        raise ValidationError(not_digits, field=key)
    return text


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValidationError(
        N_("“Send marketing templates through the Marketing Messages API” is on or off."),
        field="use_marketing_messages",
    )


def _ttl(value: Any) -> int | None:
    if value in (None, ""):
        return None
    lo, hi = TTL_RANGE
    sentence = said(
        "The time to live is a whole number of seconds from %(low)s (12 hours) to %(high)s "
        "(30 days), or blank for Meta's default.",
        low=f"{lo:,}",
        high=f"{hi:,}",
    )
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(sentence, field="marketing_ttl_seconds") from None
    if number != number or number != int(number) or not lo <= number <= hi:
        raise ValidationError(sentence, field="marketing_ttl_seconds")
    return int(number)


def _secret(key: str, value: Any) -> str:
    longest, _, too_long, unprintable = _SECRET_LABELS[key]
    text = "" if value is None else str(value).strip()
    if not text:
        return ""
    if len(text) > longest:
        raise ValidationError(
            said(too_long, longest=longest),
            field=key,
        )
    if not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
        raise ValidationError(
            unprintable,
            field=key,
        )
    if key == "verify_token" and len(text) < 8:
        raise ValidationError(
            N_("Choose a webhook verify token of at least 8 characters, or use the one offered."),
            field=key,
        )
    return text
