"""A new signing secret, held for the one page that shows it.

"Add" and "Make a new secret" answer with a redirect (so reloading the page makes no second
endpoint and no second secret); the secret waits here, in this process's memory (`wabulk
serve` is one process with many threads), keyed by a random token carried in the redirect's
address. The first read takes it away; it is never in the session cookie, the database or
a log. Bounded in number and age: an unread secret is gone after KEEP_SECONDS (make a new
one then).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

TOKEN_MAX = 64
KEEP_SECONDS = 600
MAX_KEPT = 1000


@dataclass(frozen=True)
class Held:
    user_id: int
    endpoint_id: int
    secret: str
    created: bool
    at: float


_lock = threading.Lock()
_held: OrderedDict[str, Held] = OrderedDict()


def keep(user_id: int, endpoint_id: int, secret: str, created: bool) -> str:
    """The token to read `secret` back with, once."""
    token = secrets.token_urlsafe(24)
    now = time.monotonic()
    with _lock:
        while _held and (
            len(_held) >= MAX_KEPT or next(iter(_held.values())).at < now - KEEP_SECONDS
        ):
            _held.popitem(last=False)
        _held[token] = Held(user_id, endpoint_id, secret, created, now)
    return token


def take(token: str, user_id: int, endpoint_id: int) -> Held | None:
    """The held secret, removed; None if already read, too old, or another's."""
    if not token or len(token) > TOKEN_MAX:
        return None
    with _lock:
        held = _held.get(token)
        if held is None or held.user_id != user_id or held.endpoint_id != endpoint_id:
            return None
        del _held[token]
    if held.at < time.monotonic() - KEEP_SECONDS:
        return None
    return held
