"""The Cloud API channel: many sends in flight on one pooled, kept-alive connection set.

- `send_batch` posts a list of messages with up to `max_in_flight` requests outstanding
  (a number's 80 messages/s, up to 1,000 for upgraded numbers, at Meta's latency) and
  answers in the same order, each item the result or the error `send` would have raised.
  `send` is a batch of one. `may_send`, when given, is asked before each request starts;
  once it says no, nothing more goes out and the items not started answer `None` (the
  dispatcher puts them back in the queue: a Pause or Cancel stops a batch at once). A
  `may_send` with a `delay()` (the dispatcher's send slots under a rate) is asked that
  first, again after each wait until it answers 0: the request waits on the event loop,
  so the other requests in flight are answered meanwhile and each goes out at its own
  slot, not in a burst.
- The requests run on an event loop in a daemon thread owned by the channel, started at the
  first send and stopped by `close`, which first lets the requests in flight be answered.
  Bodies are encoded once in the caller's thread; the loop only posts and reads answers.
- A marketing template goes through `/marketing_messages` when the sender asks for it. An
  account not onboarded there gets the same body through `/messages`, a result whose detail
  starts `marketing_fallback:` (the dispatcher logs it), and no second try on
  `/marketing_messages` for ten minutes, so a campaign does not pay two calls a message.
- `reconcile` answers "unknown": Meta offers no way to look a message up; the status webhook
  carrying our message id as callback data is what settles one whose answer was lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from ...words import N_, said
from ..base import (
    ChannelConfig,
    ChannelError,
    OutgoingMessage,
    PermanentError,
    Reconciled,
    SenderUnavailable,
    SendResult,
    TransientError,
    Unconfirmed,
)
from . import payloads
from .client import (
    Failure,
    Loop,
    LoopClosed,
    api_base,
    auth_headers,
    channel_error,
    read_failure,
    text,
    timeout_seconds,
    transport_error,
)

log = logging.getLogger(__name__)

DEFAULT_IN_FLIGHT = 64
MAX_IN_FLIGHT = 1024
MARKETING_PAUSE = 600.0  # seconds before `/marketing_messages` is tried again
STOPPED = N_("The sender was stopped before this message was sent.")
NOT_ONBOARDED = (
    "The business is not onboarded to Meta's Marketing Messages API; "
    "sent through the regular Cloud API instead."
)


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _count(value: object, default: int | None) -> int | None:
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def not_onboarded(failure: Failure) -> bool:
    """Meta documents no code of its own for this: an access refusal on that endpoint, or a
    parameter error that says so."""
    if failure.code == 131005:
        return True
    said = f"{failure.message} {failure.details}".lower()
    return failure.code in (100, 131055) and "onboard" in said


@dataclass(frozen=True, slots=True)
class _Job:
    message: OutgoingMessage
    bodies: tuple[bytes, ...]  # for /messages, in order
    marketing: bytes | None  # for /marketing_messages, when it applies
    template: str | None  # "spring_sale (en_US)" for errors


class CloudApiChannel:
    def __init__(self, config: ChannelConfig) -> None:
        settings, options = config.settings, config.options
        self.sender_name = config.sender_name
        self.phone_number_id = text(settings.get("phone_number_id"))
        self._token = text(settings.get("access_token"))
        base = api_base(settings, options)
        # Parsed once: httpx would otherwise parse the address again for every request.
        self.messages_url = httpx.URL(f"{base}/{self.phone_number_id}/messages")
        self.marketing_url = httpx.URL(f"{base}/{self.phone_number_id}/marketing_messages")
        self.use_marketing = _flag(settings.get("use_marketing_messages", False))
        self.marketing_ttl = _count(settings.get("marketing_ttl_seconds"), None)
        in_flight = _count(settings.get("max_in_flight"), DEFAULT_IN_FLIGHT) or DEFAULT_IN_FLIGHT
        self.max_in_flight = min(MAX_IN_FLIGHT, in_flight)
        self.timeout = timeout_seconds(options)
        if not self.phone_number_id and not self._token:
            self._missing: str | None = N_(
                "This sender has no phone-number id or access token: fill it in on the "
                "Senders page."
            )
        elif not self.phone_number_id:
            self._missing = N_(
                "This sender has no phone-number id: fill it in on the Senders page."
            )
        elif not self._token:
            self._missing = N_("This sender has no access token: fill it in on the Senders page.")
        else:
            self._missing = None
        self._loop: Loop | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = 0  # batches running on the loop
        self._marketing_off_until = 0.0

    def __repr__(self) -> str:  # the token stays out of any log line that prints us
        return f"CloudApiChannel({self.sender_name!r}, phone_number_id={self.phone_number_id!r})"

    # --- the Channel protocol -------------------------------------------------------------

    def prepare(self, message: OutgoingMessage) -> None:
        return None

    def send(self, message: OutgoingMessage) -> SendResult:
        result = self.send_batch([message])[0]
        if isinstance(result, ChannelError):
            raise result
        assert result is not None  # only `may_send` leaves one unanswered
        return result

    def reconcile(self, message: OutgoingMessage) -> Reconciled:
        return "unknown"

    def close(self) -> None:
        """Stop taking new sends, let the requests in flight be answered, then stop."""
        with self._idle:
            loop = self._loop
            if loop is None:
                return
            loop.stopping = True
            # An answer comes within the timeout; past it the requests are cut, which
            # `send_batch` reports as not proven either way.
            self._idle.wait_for(lambda: self._active == 0, timeout=self.timeout + 5)
            self._loop = None
        loop.close()

    # --- batches --------------------------------------------------------------------------

    def send_batch(
        self, messages: Sequence[OutgoingMessage], may_send: Callable[[], bool] | None = None
    ) -> list[SendResult | ChannelError | None]:
        results: list[SendResult | ChannelError | None] = [None] * len(messages)
        if self._missing:
            return [SenderUnavailable(self._missing, code="not_configured") for _ in messages]
        jobs: list[tuple[int, _Job]] = []
        for index, message in enumerate(messages):
            try:
                jobs.append((index, self._job(message)))
            except ChannelError as exc:
                results[index] = exc
        if jobs:
            loop = self._engine()
            done: list[tuple[int, SendResult | ChannelError]] = []
            try:
                loop.run(self._run(loop, jobs, done, may_send))
            except LoopClosed:
                for index, _job in jobs:
                    results[index] = Unconfirmed(
                        "The sender was stopped while this message was being sent; "
                        "it may have gone.",
                        code="closed",
                    )
            finally:
                with self._idle:
                    self._active -= 1
                    self._idle.notify_all()
            for index, outcome in list(done):
                results[index] = outcome
        return results  # a slot left None: never started, `may_send` said no

    def _job(self, message: OutgoingMessage) -> _Job:
        bodies = payloads.plan(message)
        marketing = None
        call = message.template
        if self.use_marketing and call is not None and call.marketing:
            marketing = payloads.encode(payloads.marketing(bodies[0], self.marketing_ttl))
        return _Job(
            message,
            tuple(payloads.encode(body) for body in bodies),
            marketing,
            payloads.template_label(message),
        )

    def _engine(self) -> Loop:
        """The running loop, counted as busy until the caller's batch is done."""
        with self._lock:
            if self._loop is None:
                self._loop = Loop(
                    f"cloud-api-{self.phone_number_id}",
                    auth_headers(self._token),
                    self.timeout,
                    self.max_in_flight,
                )
            self._active += 1
            return self._loop

    async def _run(
        self,
        loop: Loop,
        jobs: list[tuple[int, _Job]],
        done: list[tuple[int, SendResult | ChannelError]],
        may_send: Callable[[], bool] | None = None,
    ) -> None:
        """Fills `done`, which the caller holds, so what finished survives a `close`; a job
        `may_send` stopped gets no entry."""
        pending = iter(jobs)

        async def worker(client: httpx.AsyncClient) -> None:
            # One shared iterator: each worker takes the next job when its request is answered.
            for index, job in pending:
                if loop.stopping:  # `close` came from another thread: nothing more goes out
                    done.append((index, TransientError(STOPPED, code="closed")))
                    continue
                waited = False
                while (wait := _delay(may_send)) > 0:
                    await asyncio.sleep(wait)
                    waited = True
                if waited and loop.stopping:
                    done.append((index, TransientError(STOPPED, code="closed")))
                    continue
                if may_send is not None and not _asked(may_send):
                    continue  # the campaign stopped: left unanswered, so never started
                try:
                    outcome = await self._one(client, job)
                except Exception as exc:  # a bug must not lose the other results
                    log.exception("Cloud API send of message %s failed", job.message.message_id)
                    outcome = Unconfirmed(
                        said(
                            "Unexpected error while sending (%(error)s); the message may have "
                            "gone.",
                            error=type(exc).__name__,
                        )
                    )
                done.append((index, outcome))

        clients = loop.clients[: min(self.max_in_flight, len(jobs))]
        await asyncio.gather(*(worker(client) for client in clients))

    async def _post(
        self, client: httpx.AsyncClient, url: httpx.URL, content: bytes
    ) -> SendResult | Failure | ChannelError:
        try:
            response = await client.post(url, content=content)
        except httpx.TransportError as exc:
            return transport_error(exc)
        if response.is_success:
            try:
                sent = json.loads(response.content)["messages"][0]
                wamid = str(sent["id"])
            except (ValueError, KeyError, IndexError, TypeError):
                return Unconfirmed(
                    N_("Meta accepted the message but its answer could not be read."),
                    code="unreadable_answer",
                )
            status = sent.get("message_status")
            # Template pacing (spec §2.5): held messages go later or fail with 132015.
            detail = f"template_paced: {status}" if status and status != "accepted" else None
            return SendResult(wamid, detail)
        return read_failure(response.status_code, response.content, response.headers)

    async def _one(self, client: httpx.AsyncClient, job: _Job) -> SendResult | ChannelError:
        fallback: str | None = None
        if job.marketing is not None:
            if time.monotonic() >= self._marketing_off_until:
                outcome = await self._post(client, self.marketing_url, job.marketing)
                if not (isinstance(outcome, Failure) and not_onboarded(outcome)):
                    return self._settle(outcome, job)
                self._marketing_off_until = time.monotonic() + MARKETING_PAUSE
            fallback = f"marketing_fallback: {NOT_ONBOARDED}"
        result: SendResult | None = None
        for position, body in enumerate(job.bodies):
            outcome = self._settle(await self._post(client, self.messages_url, body), job)
            if isinstance(outcome, ChannelError):
                return outcome if position == 0 else _second_part(outcome)
            result = outcome
        assert result is not None
        return SendResult(result.provider_message_id, fallback or result.detail)

    def _settle(
        self, outcome: SendResult | Failure | ChannelError, job: _Job
    ) -> SendResult | ChannelError:
        if isinstance(outcome, Failure):
            return channel_error(outcome, self._token, job.template)
        return outcome


def _asked(may_send: Callable[[], bool]) -> bool:
    """A question that fails is a no: an answer missing from the batch must mean not sent."""
    try:
        return bool(may_send())
    except Exception:
        log.exception("could not ask whether to send")
        return False


def _delay(may_send: Callable[[], bool] | None) -> float:
    """Seconds this request waits for its send slot (0 when `may_send` keeps none)."""
    delay = getattr(may_send, "delay", None)
    if delay is None:
        return 0.0
    try:
        return max(0.0, float(delay()))
    except Exception:
        log.exception("could not ask when to send")
        return 0.0


def _second_part(error: ChannelError) -> ChannelError:
    """The first of two parts went out: sending the message again would repeat it, so only a
    failure that can never succeed stays a failure; the rest is left to the operator."""
    sentence = said(
        "The first part of this message was sent, the second was not: %(problem)s",
        problem=str(error),
    )
    if isinstance(error, PermanentError):
        return PermanentError(sentence, code=error.code, effect=error.effect)
    return Unconfirmed(sentence, code=error.code)
