"""A local stand-in for the WhatsApp Cloud API (graph.facebook.com), fast enough for benchmarks.

- An aiohttp server: in a background thread for tests (`start()`/`stop()`), as the main loop
  under `python -m tests.fakes.cloud_api`. Any `vNN.N` version prefix is accepted.
- Graph routes (spec §1-§8): `POST /{pnid}/messages` and `/marketing_messages`,
  `POST /{pnid}/media`, `GET|DELETE /{media_id}`, `GET /{pnid}?fields=`,
  `GET /{waba_id}/message_templates`, and `GET /_media/{id}` for the download URL.
- Auth: a token unknown, revoked or missing gets 190 (HTTP 401); a known token asking for a
  number or account it was not added with gets 100 ("does not exist ... missing
  permissions"), as Graph answers; the same for an unknown phone-number id.
- `/marketing_messages` on a number not onboarded answers 131005 "Access denied" (HTTP 403):
  Meta documents no dedicated code, and a client reading it as a permission problem falls
  back to `/messages`. Non-template sends there get 131055, non-marketing templates 134100.
- Order of checks on a send: auth, injected `fail_next`, the 80/s bucket (130429), the body
  (§2, see state.py), the pair rule (131056), `reject_recipient`; then it is accepted.
  `hang_next` delays the answer *after* the send was accepted, as a slow Meta would;
  `send_latency` (seconds, `set_latency`) delays every send's answer, as a far-away
  Graph API would (benchmarks measure what parallel workers hide of it).
- Statuses of a send addressed by BSUID carry `recipient_user_id` instead of `recipient_id`;
  `out_of_order` posts a message's statuses in reverse; `phone_number_quality_update` carries
  Meta's fields (event, current_limit), the new rating shows on `GET /{pnid}`.

Nothing here checks who calls `/_control/*`: it only ever listens on loopback.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.cloud_api import control
from tests.fakes.cloud_api.events import UserEvents
from tests.fakes.cloud_api.reads import GraphReads, answer, fail, no_object
from tests.fakes.cloud_api.state import (
    PAIR_BURST,
    PAIR_RATE,
    THROTTLING,
    THROUGHPUT,
    GraphError,
    Number,
    Template,
    TokenBucket,
    check_send,
    recipient_key,
)
from tests.fakes.cloud_api.webhooks import (
    Poster,
    StatusLanes,
    new_wamid,
    now_string,
    plan_statuses,
    status_record,
)

VERSION = r"{ver:v\d+\.\d+}"
# Knobs a test may turn; reset() puts back the values they had when the server started.
TUNABLES = (
    "rate_limit",
    "throttle_http_status",
    "webhook_attempts",
    "batch_window",
    "send_latency",
)
CALL_TIMEOUT = 120.0


class FakeCloudApi(UserEvents, GraphReads):
    """The fake Graph API with its state, faults and webhook poster; see the module docstring."""

    def __init__(
        self,
        rate_limit: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_webhook_bodies: bool = True,
        webhook_lanes: int = 8,
    ) -> None:
        self.rate_limit = rate_limit
        self.keep_webhook_bodies = keep_webhook_bodies
        self.webhook_lanes = webhook_lanes
        self.host = host
        self.port = port
        self.throttle_http_status = 400  # Meta's copies disagree (400/429); spec §4.3
        self.webhook_attempts = 5
        # With auto_statuses(batch=k): how long a POST waits for more statuses to fill it.
        self.batch_window = 0.25
        self.send_latency = 0.0  # seconds added to every send's answer
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(int(time.time()) % 100000 * 10**10)
        self.webhook_log: list[tuple[str, int, bytes]] = []
        self._reset_state()

    # --- state --------------------------------------------------------------------------

    def _reset_state(self) -> None:
        with self._lock:
            self.numbers: dict[str, Number] = {}
            self.templates: dict[str, dict[tuple[str, str], Template]] = {}
            self.revoked: set[str] = set()
            self.sent: list[dict[str, Any]] = []
            # (phone-number id, time.monotonic()) of every send request as it arrives,
            # answered or refused: what a rate is measured on at Meta's end.
            self.arrivals: list[tuple[str, float]] = []
            self.webhook_log.clear()
            self.media: dict[str, dict[str, Any]] = {}
            self._media_bytes: dict[str, bytes] = {}
            self._failures: dict[str, int] = {}
            self._rejects: dict[str, int] = {}
            self._fail_next: list[tuple[int | None, int]] = []
            self._hang_next: list[float] = []
            self._buckets: dict[str, TokenBucket] = {}
            self._pairs: dict[tuple[str, str], TokenBucket] = {}
            self._scheduled = 0
            self.rejected = 0

    def reset(self) -> None:
        """No numbers, templates, messages, media or faults; queued webhooks are dropped;
        the knobs in TUNABLES are back to their values at start()."""
        if self._loop is None or self._in_loop():
            self._reset_now()
        else:
            self._call(self._reset_async())

    async def _reset_async(self) -> None:
        self._reset_now()

    def _reset_now(self) -> None:
        self._generation = getattr(self, "_generation", 0) + 1
        for name, value in getattr(self, "_tunables", {}).items():
            setattr(self, name, value)
        lanes = getattr(self, "_lanes", None)
        if lanes is not None:
            lanes.cancel()
            self._lanes = StatusLanes(self._poster, lambda: self.batch_window, self.webhook_lanes)
            self._poster.posted = self._poster.failed = self._poster.tries = 0
        self._reset_state()

    def add_number(
        self,
        phone_number_id: str,
        waba_id: str,
        token: str,
        app_secret: str,
        display_phone: str = "+15550001111",
        display_name: str = "Acme Shop",
        quality: str = "GREEN",
        tier: str = "TIER_250",
        throughput: str = "STANDARD",
        marketing_messages_onboarded: bool = False,
    ) -> None:
        with self._lock:
            self.numbers[str(phone_number_id)] = Number(
                str(phone_number_id),
                str(waba_id),
                token,
                app_secret,
                display_phone,
                display_name,
                quality,
                tier,
                throughput,
                bool(marketing_messages_onboarded),
            )
            self.templates.setdefault(str(waba_id), {})
            self._buckets.pop(str(phone_number_id), None)

    def add_template(
        self,
        waba_id: str,
        name: str,
        language: str,
        category: str = "MARKETING",
        components: list[dict[str, Any]] | None = None,
        status: str = "APPROVED",
        parameter_format: str = "POSITIONAL",
        quality: str = "GREEN",
    ) -> str:
        with self._lock:
            template = Template(
                self._new_id(),
                str(waba_id),
                name,
                language,
                category.upper(),
                list(components or []),
                status.upper(),
                parameter_format.upper(),
                quality,
            )
            self.templates.setdefault(str(waba_id), {})[(name, language)] = template
            return template.id

    def set_webhook(self, phone_number_id: str, url: str | None) -> None:
        with self._lock:
            self._number(phone_number_id).webhook_url = url

    def auto_statuses(
        self,
        phone_number_id: str,
        progression: Any = ("sent", "delivered", "read"),
        delay: float = 0.0,
        duplicates: bool = False,
        out_of_order: bool = False,
        batch: int = 1,
        pricing: bool = True,
    ) -> None:
        with self._lock:
            self._number(phone_number_id).statuses = {
                "progression": tuple(progression),
                "delay": float(delay),
                "duplicates": bool(duplicates),
                "out_of_order": bool(out_of_order),
                "batch": max(1, int(batch)),
                "pricing": bool(pricing),
            }

    def fail_recipient(self, phone: str, code: int) -> None:
        with self._lock:
            self._failures[recipient_key(phone)] = int(code)

    def reject_recipient(self, phone: str, code: int) -> None:
        with self._lock:
            self._rejects[recipient_key(phone)] = int(code)

    def fail_next(self, n: int, code: int | None = 131000, http_status: int = 500) -> None:
        """code=None answers with a bare HTTP error page, no JSON (a proxy in the way)."""
        with self._lock:
            self._fail_next.extend([(code, int(http_status))] * int(n))

    def set_latency(self, seconds: float) -> None:
        """Answer every send `seconds` later (after it was accepted), until reset."""
        if not 0 <= float(seconds) <= 60:
            raise ValueError("latency must be between 0 and 60 seconds")
        self.send_latency = float(seconds)

    def hang_next(self, n: int, seconds: float) -> None:
        with self._lock:
            self._hang_next.extend([float(seconds)] * int(n))

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self.revoked.add(token)

    def counters(self) -> dict[str, int]:
        lanes = getattr(self, "_lanes", None)
        return {
            "sent": len(self.sent),
            "rejected": self.rejected,
            "media": len(self.media),
            "webhooks_posted": self._poster.posted if self._session else 0,
            "webhooks_failed": self._poster.failed if self._session else 0,
            "webhook_attempts": self._poster.tries if self._session else 0,
            "statuses_pending": self._scheduled + (lanes.pending if lanes else 0),
        }

    def wait_for(self, predicate: Callable[..., Any], timeout: float = 30.0) -> Any:
        """Poll until predicate() (or predicate(fake)) is truthy; return its value."""
        try:
            takes_fake = len(inspect.signature(predicate).parameters) == 1
        except (TypeError, ValueError):  # a builtin without a signature
            takes_fake = False
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self) if takes_fake else predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s: {self.counters()}")
            time.sleep(0.02)

    def _new_id(self) -> str:
        return str(next(self._ids))

    def _number(self, phone_number_id: str) -> Number:
        number = self.numbers.get(str(phone_number_id))
        if number is None:
            raise KeyError(f"no number {phone_number_id} was added to the fake")
        return number

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeCloudApi:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._startup())
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._shutdown())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-cloud-api", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._loop.close()
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop = self._thread = None

    async def serve(self, announce: Callable[[str], None]) -> None:
        """Run in the caller's event loop until cancelled (the separate-process mode)."""
        self._loop = asyncio.get_running_loop()
        await self._startup()
        announce(self.base_url)
        try:
            await asyncio.Event().wait()
        finally:
            await self._shutdown()

    async def _startup(self) -> None:
        self._tunables = {name: getattr(self, name) for name in TUNABLES}
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10),
            connector=aiohttp.TCPConnector(limit=max(64, self.webhook_lanes * 2)),
            # Meta keeps no cookies and sends plain JSON: skipping both saves CPU per post.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        )
        self._poster = Poster(
            self._session,
            self.webhook_log if self.keep_webhook_bodies else None,
            lambda: self.webhook_attempts,
        )
        self._lanes = StatusLanes(self._poster, lambda: self.batch_window, self.webhook_lanes)
        self._generation = 1
        app = web.Application(client_max_size=110 * 1024 * 1024)
        self._routes(app)
        control.add_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        tasks = self._lanes.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        await self._poster.http1.close()
        if self._session is not None:
            await self._session.close()

    def _in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the fake Cloud API is not running: call start() first")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT)

    # --- Graph routes ---------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        app.router.add_post(f"/{VERSION}/{{pnid}}/messages", self._messages)
        app.router.add_post(f"/{VERSION}/{{pnid}}/marketing_messages", self._marketing_messages)
        app.router.add_post(f"/{VERSION}/{{pnid}}/media", self._upload)
        app.router.add_get(f"/{VERSION}/{{waba}}/message_templates", self._list_templates)
        app.router.add_get(f"/{VERSION}/{{node}}", self._get_node)
        app.router.add_delete(f"/{VERSION}/{{node}}", self._delete_node)
        app.router.add_get("/_media/{node}", self._download)

    def _token(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        token = (
            header[7:].strip()
            if header[:7].lower() == "bearer "
            else request.query.get("access_token", "")
        )
        if (
            not token
            or token in self.revoked
            or not any(n.token == token for n in self.numbers.values())
        ):
            raise GraphError(190, "Invalid OAuth access token.")
        return token

    def _authorised_number(self, request: web.Request, pnid: str) -> Number:
        token = self._token(request)
        number = self.numbers.get(pnid)
        if number is None or number.token != token:
            raise no_object(pnid)
        return number

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await self._send(request, "messages")

    async def _marketing_messages(self, request: web.Request) -> web.StreamResponse:
        return await self._send(request, "marketing_messages")

    async def _send(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        self.arrivals.append((request.match_info["pnid"], time.monotonic()))
        raw = await request.read()
        with self._lock:
            hang = self._hang_next.pop(0) if self._hang_next else 0.0
        hang += self.send_latency
        try:
            response = self._accept(request, raw, endpoint)
        except GraphError as error:
            self.rejected += 1
            if error.code in THROTTLING:
                error.http_status = self.throttle_http_status
            response = fail(error)
        except _BareFailure as failure:
            self.rejected += 1
            response = web.Response(text="Service Unavailable", status=failure.status)
        if hang:
            await asyncio.sleep(hang)
        return response

    def _accept(self, request: web.Request, raw: bytes, endpoint: str) -> web.Response:
        """The synchronous part of a send: every check, then the record and its statuses."""
        pnid = request.match_info["pnid"]
        number = self._authorised_number(request, pnid)
        with self._lock:
            injected = self._fail_next.pop(0) if self._fail_next else None
        if injected is not None:
            code, status = injected
            if code is None:
                raise _BareFailure(status)
            raise GraphError(code, "Injected failure.", status)
        if self.rate_limit:
            bucket = self._buckets.get(pnid)
            if bucket is None:
                rate = THROUGHPUT.get(number.throughput, 80.0)
                bucket = self._buckets[pnid] = TokenBucket(rate, rate)
            if not bucket.take():
                raise GraphError(130429, "Cloud API message throughput has been reached.")
        try:
            body = json.loads(raw)
        except ValueError:
            raise GraphError(100, "The request body is not valid JSON.") from None
        result = check_send(
            body, number, self.templates.get(number.waba_id, {}), self.media, endpoint
        )
        pair = self._pairs.get((pnid, result.recipient))
        if pair is None:
            pair = self._pairs[(pnid, result.recipient)] = TokenBucket(PAIR_RATE, PAIR_BURST)
        if not pair.take():
            raise GraphError(
                131056,
                "Message failed to send because there were too many messages "
                "sent from this phone number to the same phone number in a short period of time.",
            )
        rejected = self._rejects.get(result.recipient)
        if rejected is not None:
            raise GraphError(rejected, "Rejected for this recipient by the test.")
        wamid = new_wamid(result.wa_id or "0")
        callback = body.get("biz_opaque_callback_data")
        self.sent.append(
            {
                "pnid": pnid,
                "to": body.get("to", body.get("recipient")),
                "type": result.kind,
                "body": body,
                "wamid": wamid,
                "endpoint": endpoint,
                "at": time.time(),
                "wa_id": result.wa_id,
                "recipient": result.recipient,
                "callback": callback,
            }
        )
        self._schedule_statuses(
            number, wamid, result.recipient, result.wa_id, callback, result.category
        )
        contact: dict[str, Any] = {"input": body.get("to", body.get("recipient"))}
        if result.wa_id is not None:
            contact["wa_id"] = result.wa_id
        else:
            contact["user_id"] = result.recipient
        return answer(
            {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]}
        )

    def _schedule_statuses(
        self,
        number: Number,
        wamid: str,
        recipient: str,
        wa_id: str | None,
        callback: str | None,
        category: str,
    ) -> None:
        if number.webhook_url is None:
            return
        settings = number.statuses
        plan = plan_statuses(settings, self._failures.get(recipient), category)
        if not plan:
            return
        delay = settings["delay"] if settings else 0.0
        batch = settings["batch"] if settings else 1
        loop = asyncio.get_running_loop()
        for step, (status, pricing, error) in enumerate(plan, start=1):
            record = status_record(wamid, status, recipient, wa_id, callback, pricing, error)
            if delay > 0:
                self._scheduled += 1
                loop.call_later(
                    delay * step, self._release, self._generation, number, record, batch
                )
            else:
                self._lanes.put(number, record, batch)

    def _release(self, generation: int, number: Number, record: dict[str, Any], batch: int) -> None:
        if generation != self._generation:
            return
        self._scheduled -= 1
        record["timestamp"] = now_string()
        self._lanes.put(number, record, batch)


class _BareFailure(Exception):
    """An injected failure answered without a JSON body, as a proxy or load balancer would."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status
