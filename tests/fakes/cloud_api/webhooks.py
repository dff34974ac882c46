"""Webhooks the fake Cloud API posts: Meta's envelopes (spec §6.3-6.5), signed, retried.

- The body is `json.dumps(..., ensure_ascii=True)` and the signature is the HMAC-SHA256 of
  exactly those bytes with the number's app secret, as Meta does (§6.2).
- A non-200 answer or a refused connection is retried with a short doubling backoff, up to
  `attempts` tries, so a test against a broken receiver still ends.
- Statuses travel through lanes, one set per (url, secret): a message's statuses always take
  the same lane, so they arrive in the order queued. A batching lane waits up to the fake's
  `batch_window` seconds to gather up to `batch` statuses into one POST, grouped into entries
  per WABA and changes per number.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.fakes.cloud_api.http1 import Http1Client
from tests.fakes.cloud_api.state import Number, async_error, digits


def now_string() -> str:
    return str(int(time.time()))


def new_wamid(recipient: str) -> str:
    # Meta's ids are base64 of an opaque binary record that starts with the user's number.
    raw = b"\x1c\x18\x0b" + recipient.encode() + b"\x15\x02\x00\x12\x18\x14" + os.urandom(10)
    return "wamid." + base64.b64encode(raw).decode()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=True).encode("ascii")


def metadata(number: Number) -> dict[str, str]:
    return {
        "display_phone_number": digits(number.display_phone),
        "phone_number_id": number.phone_number_id,
    }


def envelope(changes: list[tuple[Number, str, dict[str, Any]]]) -> dict[str, Any]:
    """One entry per WABA (in first-seen order), one change per (number, field, value)."""
    entries: dict[str, dict[str, Any]] = {}
    for number, field, value in changes:
        entry = entries.setdefault(number.waba_id, {"id": number.waba_id, "changes": []})
        entry["changes"].append({"value": value, "field": field})
    return {"object": "whatsapp_business_account", "entry": list(entries.values())}


def messages_value(number: Number, **parts: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "metadata": metadata(number), **parts}


def status_record(
    wamid: str,
    status: str,
    recipient: str,
    wa_id: str | None,
    callback: str | None,
    pricing: dict[str, Any] | None,
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    record: dict[str, Any] = {"id": wamid, "status": status, "timestamp": now_string()}
    if wa_id is not None:
        record["recipient_id"] = wa_id
    else:
        # A send addressed by BSUID: the fake has no phone to report, only the user id.
        record["recipient_user_id"] = recipient
    if callback is not None:
        record["biz_opaque_callback_data"] = callback
    if pricing is not None:
        record["pricing"] = pricing
    if error is not None:
        record["errors"] = [error]
    return record


def pricing_for(category: str) -> dict[str, Any]:
    return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": category}


def plan_statuses(
    settings: dict[str, Any] | None, failure: int | None, category: str
) -> list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]:
    """The (status, pricing, error) sequence one accepted send produces, in posting order."""
    if failure is not None:
        plan: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = [
            ("failed", None, async_error(failure))
        ]
    elif settings is None:
        return []
    else:
        progression = list(settings["progression"])
        # Pricing on `sent` and on `delivered`, or on `read` when delivered is skipped.
        priced = {"sent", "delivered" if "delivered" in progression else "read"}
        plan = [
            (
                status,
                pricing_for(category) if settings["pricing"] and status in priced else None,
                None,
            )
            for status in progression
        ]
    if settings is not None and settings["out_of_order"]:
        plan.reverse()
    if settings is not None and settings["duplicates"]:
        plan = [item for item in plan for _ in (0, 1)]
    return plan


def inbound_value(
    number: Number,
    message: dict[str, Any],
    from_phone: str | None,
    user_id: str | None,
    name: str,
) -> dict[str, Any]:
    contact: dict[str, Any] = {"profile": {"name": name}}
    if from_phone is not None:
        contact["wa_id"] = digits(from_phone)
        message = {"from": digits(from_phone), **message}
    if user_id is not None:
        contact["user_id"] = user_id
        message = {**message, "from_user_id": user_id}
    return messages_value(number, contacts=[contact], messages=[message])


class Poster:
    """Posts signed bodies from the event loop and records every attempt."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        log: list[tuple[str, int, bytes]] | None,
        attempts: Callable[[], int],
    ) -> None:
        self.session = session
        self.http1 = Http1Client()
        self.log = log  # None: count attempts only (a long benchmark would hoard the bodies)
        self.attempts = attempts
        self.tries = 0
        self.posted = 0
        self.failed = 0

    async def post(self, url: str, body: bytes, signature: str | None, retry: bool = True) -> int:
        """The last answer's HTTP status (0 when the receiver could not be reached)."""
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        delay = 0.05
        tries = self.attempts() if retry else 1
        status = 0
        for attempt in range(tries):
            try:
                if url.startswith("http://"):
                    status = await self.http1.post(url, body, headers)
                else:
                    async with self.session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
            except (TimeoutError, aiohttp.ClientError, OSError, EOFError, ValueError):
                status = 0
            self.tries += 1
            if self.log is not None:
                self.log.append((url, status, body))
            if status == 200:
                self.posted += 1
                return status
            if attempt + 1 < tries:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        self.failed += 1
        return status


class StatusLanes:
    """Queues of (number, status record, batch) per (url, secret), drained by worker tasks."""

    def __init__(self, poster: Poster, window: Callable[[], float], width: int = 8) -> None:
        self.poster = poster
        self.width = width  # unbatched statuses: parallel posts, a message always on one lane
        self.window = window  # how long a batching lane waits for more statuses
        self.lanes: dict[tuple[str, str], list[asyncio.Queue[Any]]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.pending = 0

    def put(self, number: Number, record: dict[str, Any], batch: int) -> None:
        url = number.webhook_url
        if url is None:
            return
        key = (url, number.app_secret)
        queues = self.lanes.get(key)
        if queues is None:
            queues = self.lanes[key] = []
            for _ in range(self.width):
                queue: asyncio.Queue[Any] = asyncio.Queue()
                queues.append(queue)
                self.tasks.append(asyncio.create_task(self._drain(key, queue)))
        # Batching shares one lane so that statuses of different messages can meet in a POST.
        lane = 0 if batch > 1 else hash(record["id"]) % self.width
        self.pending += 1
        queues[lane].put_nowait((number, record, batch))

    async def _drain(self, key: tuple[str, str], queue: asyncio.Queue[Any]) -> None:
        url, secret = key
        loop = asyncio.get_running_loop()
        while True:
            first = await queue.get()
            items = [first]
            limit = first[2]
            deadline = loop.time() + self.window()
            while len(items) < limit:
                while len(items) < limit and not queue.empty():
                    items.append(queue.get_nowait())
                left = deadline - loop.time()
                if len(items) >= limit or left <= 0:
                    break
                # Short naps, not a wait_for per status: cheaper at thousands a second.
                await asyncio.sleep(min(left, 0.005))
            changes: list[tuple[Number, str, dict[str, Any]]] = []
            by_number: dict[str, dict[str, Any]] = {}
            for number, record, _ in items:
                value = by_number.get(number.phone_number_id)
                if value is None:
                    value = by_number[number.phone_number_id] = messages_value(number, statuses=[])
                    changes.append((number, "messages", value))
                value["statuses"].append(record)
            body = encode(envelope(changes))
            try:
                await self.poster.post(url, body, sign(secret, body))
            finally:
                self.pending -= len(items)

    def cancel(self) -> list[asyncio.Task[None]]:
        tasks, self.tasks, self.lanes, self.pending = self.tasks, [], {}, 0
        for task in tasks:
            task.cancel()
        return tasks
