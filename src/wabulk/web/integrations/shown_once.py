"""A new signing secret, shown on the one page its redirect opens.

"Add" and "Make a new secret" answer with a redirect (so reloading the page makes no second
endpoint and no second secret). The redirect's address carries a token signed with the
installation's secret key naming the admin, the endpoint and a fingerprint of the new
secret; the page reads the secret itself from the database, where it is sealed. So any web
process can show it (`wabulk serve --processes N`), and the token holds nothing secret: it
may sit in a proxy's access log.

Shown once: the page marks the token spent in the admin's session (the browser's signed
cookie), so a reload or Back finds it gone. A token is good for KEEP_SECONDS, for its own
admin, and only while the endpoint keeps that secret (a newer one makes it void).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ...senders.secrets import SecretUnreadable, decrypt

TOKEN_MAX = 300
KEEP_SECONDS = 600
SPENT_KEY = "secrets_shown"
SPENT_KEPT = 20  # a session remembers this many spent tokens; older ones have expired
_SALT = "wabulk webhook secret shown once"


@dataclass(frozen=True)
class Held:
    secret: str
    created: bool


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def _signer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SALT)


def keep(secret_key: str, user_id: int, endpoint_id: int, secret: str, created: bool) -> str:
    """The token the redirect carries to show `secret` once."""
    return str(
        _signer(secret_key).dumps(
            {
                "u": user_id,
                "e": endpoint_id,
                "f": _fingerprint(secret),
                "c": created,
                "n": secrets.token_urlsafe(8),
            }
        )
    )


def take(
    secret_key: str,
    token: str,
    user_id: int,
    endpoint_id: int,
    sealed: str,
    spent: MutableMapping[str, Any],
) -> Held | None:
    """The secret to show, marked spent in `spent` (the session); None if already shown,
    too old, another admin's, or replaced by a newer secret since."""
    if not token or len(token) > TOKEN_MAX:
        return None
    try:
        data = _signer(secret_key).loads(token, max_age=KEEP_SECONDS)
    except BadSignature:  # also an expired one
        return None
    if not isinstance(data, dict) or data.get("u") != user_id or data.get("e") != endpoint_id:
        return None
    done = list(spent.get(SPENT_KEY) or [])
    if data.get("n") in done:
        return None
    try:
        secret = decrypt(secret_key, sealed)
    except SecretUnreadable:
        return None
    if _fingerprint(secret) != data.get("f"):
        return None
    spent[SPENT_KEY] = [*done, data.get("n")][-SPENT_KEPT:]
    return Held(secret=secret, created=bool(data.get("c")))
