"""Talking to the Graph API: addresses, headers, reading Meta's errors, one pooled client.

- Every answer that is not a success goes through `read_failure` then `channel_error`, so
  the send path and the account helpers read Meta's `error.code` the same way and the
  one table in `errors.py` decides what it means.
- `Loop` runs an `httpx.AsyncClient` on an event loop in a daemon thread owned by the
  channel: the dispatcher calls from plain threads, and many requests share a few kept-alive
  connections without a thread per request.
- The access token only ever goes into the Authorization header. Text that comes back from
  Meta is scrubbed of it before it reaches an exception, in case an answer echoes it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from ...words import N_
from ..base import ChannelError, PermanentError, SenderUnavailable, TransientError
from .errors import describe

T = TypeVar("T")

DEFAULT_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v26.0"
DEFAULT_TIMEOUT = 20.0

# Meta marks a number as limited (quality, template-category enforcement) rather than
# unlinked: the sender waits out the enforcement instead of needing a new token.
LIMITED_CODES = frozenset({"131048", "131064"})
TEMPLATE_CODES = frozenset({"132000", "132001", "132012", "132015", "132016"})


def text(value: object) -> str:
    return "" if value is None else str(value).strip()


def api_base(settings: Mapping[str, object], options: Mapping[str, object]) -> str:
    """`https://graph.facebook.com/v26.0`: the sender's version wins over the installation's."""
    url = text(options.get("cloud_api_url")) or DEFAULT_URL
    version = (
        text(settings.get("api_version"))
        or text(options.get("cloud_api_version"))
        or DEFAULT_VERSION
    )
    if not version.startswith("v"):
        version = "v" + version
    return f"{url.rstrip('/')}/{version}"


def timeout_seconds(options: Mapping[str, object]) -> float:
    try:
        value = float(options.get("cloud_api_timeout") or DEFAULT_TIMEOUT)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def auth_headers(token: str, json_body: bool = True) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if json_body:
        headers["Content-Type"] = "application/json"
    return headers


@dataclass(frozen=True)
class Failure:
    """An answer that was not a success, as plain values."""

    http_status: int
    code: int | None  # Meta's `error.code`, None when the body had none
    message: str  # Meta's `error.message`, e.g. "(#131026) Message undeliverable"
    details: str  # `error.error_data.details` or `error_user_msg`
    retry_after: float | None  # from the Retry-After header
    subcode: int | None = None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds)


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def read_failure(status: int, content: bytes, headers: Mapping[str, str]) -> Failure:
    retry_after = parse_retry_after(headers.get("retry-after"))
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return Failure(status, None, "", "", retry_after)
    data = error.get("error_data")
    details = text(data.get("details")) if isinstance(data, dict) else text(data)
    if not details:
        details = text(error.get("error_user_msg"))
    return Failure(
        status,
        _int(error.get("code")),
        text(error.get("message")),
        details,
        retry_after,
        _int(error.get("error_subcode")),
    )


def scrub(value: str, secret: str | None) -> str:
    if secret and len(secret) >= 4 and secret in value:
        value = value.replace(secret, "…")
    return value


def _adds_information(details: str, failure: Failure, sentence: str) -> bool:
    if not details:
        return False
    plain = details.lower().rstrip(".")
    title = failure.message.lower()
    if title.startswith("(#"):
        title = title.split(")", 1)[-1]
    return plain not in (title.strip().rstrip("."), sentence.lower().rstrip("."))


def explain(failure: Failure, secret: str | None = None, subject: str | None = None) -> str:
    """The table's sentence, naming `subject` (a template), with Meta's details in brackets."""
    info = describe(failure.code, failure.http_status)
    sentence = info.sentence
    if subject:
        sentence = f"{sentence.rstrip('.')}: {subject}."
    details = scrub(failure.details, secret)
    if _adds_information(details, failure, info.sentence):
        sentence = f"{sentence} [{details[:300]}]"
    return sentence


def channel_error(
    failure: Failure, secret: str | None = None, template: str | None = None
) -> ChannelError:
    """What `send` raises for this answer (the kinds of `errors.describe`).

    `template` ("spring_sale (en_US)") is named in template errors, so the shop owner
    knows which one to fix.
    """
    info = describe(failure.code, failure.http_status)
    subject = f"template {template}" if template and info.code in TEMPLATE_CODES else None
    if info.kind == "retry":
        backoff = failure.retry_after if failure.retry_after is not None else info.backoff
        return TransientError(explain(failure, secret), code=info.code, retry_after=backoff)
    if info.kind == "sender":
        state = "limited" if info.code in LIMITED_CODES else "needs_link"
        return SenderUnavailable(explain(failure, secret), code=info.code, state=state)
    return PermanentError(explain(failure, secret, subject), code=info.code, effect=info.effect)


def transport_error(exc: httpx.TransportError) -> TransientError:
    """A request that failed on the network. Whether it reached Meta decides the code only:
    both are retried, and the callback data on the status webhook settles a message that did
    go out before its retry is due."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError | httpx.PoolTimeout):
        return TransientError(
            N_("Meta could not be reached (no connection); trying again."), code="connect_failed"
        )
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(N_("Meta did not answer in time; trying again."), code="timeout")
    return TransientError(
        N_("The connection to Meta broke before it answered; trying again."),
        code="connection_lost",
    )


class LoopClosed(Exception):
    """The channel was closed while a batch was still being sent."""


class Loop:
    """An event loop on a daemon thread, and `size` `httpx.AsyncClient`s living on it, each
    with one kept-alive connection: one per request in flight.

    One client with a pool of `size` connections costs more than the requests: httpcore
    checks every connection against every waiting request on each change, and can hand a
    freed connection to two requests, one of which then tries again. On two cores 64
    requests in flight on one pool made 98 requests/s, on 64 clients 812/s
    (bench/cloud_api.py).
    """

    def __init__(self, name: str, headers: Mapping[str, str], timeout: float, size: int) -> None:
        # Set by the owner when it starts closing: batches take no new work from then on.
        self.stopping = False
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=60)
        # A wait for a free connection is not Meta being slow: requests of two batches at
        # once queue for the pool instead of failing after `timeout`.
        timeouts = httpx.Timeout(timeout, pool=max(60.0, timeout * 3))

        async def make() -> list[httpx.AsyncClient]:
            tls = httpx.create_ssl_context()  # the CA bundle read once, not once a client
            return [
                httpx.AsyncClient(
                    headers=dict(headers), timeout=timeouts, limits=limits, verify=tls
                )
                for _ in range(max(1, size))
            ]

        self.clients = self.run(make())

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """The coroutine's result; `LoopClosed` if the loop stops first (`close` from another
        thread), instead of waiting for ever on a future nobody will finish."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        while True:
            try:
                return future.result(timeout=1.0)
            except TimeoutError:
                if not self.thread.is_alive():
                    raise LoopClosed from None

    def close(self) -> None:
        if not self.thread.is_alive():
            return
        try:
            for client in self.clients:
                self.run(client.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            if not self.thread.is_alive():
                self.loop.close()
