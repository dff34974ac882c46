"""One answer per answer form: a form sent twice (a second click before the page's script
disables the button, a browser sending it again after a lost connection or on Back) makes
one answer, not two messages to the customer.

Each answer form carries a random token; the first request presenting it claims it. Claims
are kept in this process (`wabulk serve` is one process with many threads), bounded in
number and age, long enough for any page left open and sent again.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict

TOKEN_MAX = 64
KEEP_SECONDS = 24 * 3600
MAX_KEPT = 50_000

_lock = threading.Lock()
_claimed: OrderedDict[str, float] = OrderedDict()


def new_token() -> str:
    return secrets.token_urlsafe(16)


def claim(token: str, now: float | None = None) -> bool:
    """True the first time `token` is presented, False every time after. A form without a
    token (an old page) is not guarded, so it is let through."""
    if not token or len(token) > TOKEN_MAX:
        return True
    at = time.monotonic() if now is None else now
    with _lock:
        while _claimed and (
            len(_claimed) >= MAX_KEPT or next(iter(_claimed.values())) < at - KEEP_SECONDS
        ):
            _claimed.popitem(last=False)
        if token in _claimed:
            return False
        _claimed[token] = at
        return True


def release(token: str) -> None:
    """The answer was refused (nothing was written): the same form may be sent again."""
    with _lock:
        _claimed.pop(token, None)
