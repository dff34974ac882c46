"""How a delivery is signed (docs/webhooks.md says the same for receivers).

    signature = hex(HMAC-SHA256(key = the endpoint's secret as UTF-8,
                                message = "<timestamp>." + the raw body bytes))

sent as `X-Wabulk-Signature: sha256=<signature>` beside `X-Wabulk-Timestamp: <timestamp>`
(Unix seconds). The body holds the event id, so id, time and body are signed together: a
receiver refuses a timestamp older than five minutes and drops an event id it already took.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Wabulk-Signature"
TIMESTAMP_HEADER = "X-Wabulk-Timestamp"
EVENT_HEADER = "X-Wabulk-Event"
EVENT_ID_HEADER = "X-Wabulk-Event-Id"
PREFIX = "whsec_"
MIN_SECRET, MAX_SECRET = 16, 200
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, header: str, timestamp: str, body: bytes, now: float) -> bool:
    """What a receiver does (used by the tests as a receiver would)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(signature(secret, sent, body), header)
