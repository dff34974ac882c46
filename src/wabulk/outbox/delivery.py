"""Sending the queued events: claimed with a lease, posted with no lock held, recorded.

- Claim: one short transaction takes up to BATCH due rows (PostgreSQL `FOR UPDATE SKIP
  LOCKED`, so workers share them; SQLite's guarded UPDATE is the claim there) and pushes
  their `next_attempt_at` to the lease's end: a worker killed mid-post leaves rows that
  fall due again when the lease ends and are posted again. Receivers drop repeats by the
  event id, so a crash loses nothing and at worst repeats one delivery.
- Post: outside any transaction (SQLite's lock is the whole file), several at once over
  one pooled client. Redirects are never followed and proxies from the environment are
  ignored: a delivery goes only to the address the admin entered. An answer's body is
  read raw (still compressed) up to a few kilobytes: a 2xx's only to keep the connection,
  an error's for the log; the whole delivery has DEADLINE seconds. Results are recorded as
  they come, so a slow receiver holds back no other endpoint's.
- Record: 2xx is delivered; 410 Gone turns the endpoint off (the receiver says it is gone
  for good); anything else retries with exponential backoff and jitter until 24 hours after
  the event, then the row is failed and kept in the log. Guarded by the lease owner, so a
  worker that lost its lease changes nothing.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from .. import events
from ..db import Database
from ..models import DeliveryStatus, EventLevel, OutboxEvent, WebhookEndpoint, utcnow
from ..senders import secrets as sealed
from ..words import N_, said
from . import signing

log = logging.getLogger(__name__)
outbox = OutboxEvent.__table__
endpoints = WebhookEndpoint.__table__
D = DeliveryStatus

BATCH = 32
WORKERS = 8
LEASE = timedelta(seconds=60)
TIMEOUT = 10.0
DEADLINE = 15.0  # seconds for a whole delivery, however its answer trickles
GIVE_UP_AFTER = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=10)
MAX_RETRY = timedelta(hours=1)
ANSWER_BYTES = 4096
USER_AGENT = "wabulk-webhooks/1"
RECORD_EVERY = 0.2  # seconds

_pool: ThreadPoolExecutor | None = None
# Set while a delivery is posted, so httpx's own line per request (which carries the whole
# address: for Zapier, Make or n8n the address is the key) stays out of the log.
_quiet = threading.local()


class _NoWebhookAddresses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "on", False)


logging.getLogger("httpx").addFilter(_NoWebhookAddresses())
_client: httpx.Client | None = None
_setup = threading.Lock()


def _shared() -> tuple[httpx.Client, ThreadPoolExecutor]:
    global _pool, _client
    with _setup:
        if _client is None or _pool is None:
            _client = httpx.Client(
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(TIMEOUT, connect=5.0),
                limits=httpx.Limits(max_connections=WORKERS * 2, max_keepalive_connections=WORKERS),
                headers={"User-Agent": USER_AGENT},
            )
            _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="wabulk-webhook")
        return _client, _pool


@dataclass
class Job:
    row_id: int
    endpoint_id: int
    event: str
    event_id: str
    body: bytes
    url: str
    secret: str | None  # None: unreadable (the secret key changed)
    created_at: datetime
    attempts: int
    name: str = ""  # the endpoint's, for the log


@dataclass
class Result:
    code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s … up to an hour, each ±20 % so a recovering receiver is not hit
    by every retry at once."""
    base = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY)
    return base * random.uniform(0.8, 1.2)  # jitter, not security


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _claim(db: Database, owner: str, now: datetime, size: int, secret_key: str) -> list[Job]:
    with db.session() as session:
        due = (
            select(outbox.c.id)
            .where(outbox.c.status == D.PENDING, outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(size)
        )
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = list(session.scalars(due))
        if not ids:
            return []
        until = now + LEASE
        # Guarded: on SQLite another worker may have claimed a row since the SELECT.
        claimed = list(
            session.scalars(
                update(outbox)
                .where(
                    outbox.c.id.in_(ids),
                    outbox.c.status == D.PENDING,
                    outbox.c.next_attempt_at <= now,
                )
                .values(lease_owner=owner, lease_until=until, next_attempt_at=until)
                .returning(outbox.c.id)
            )
        )
        rows = session.execute(
            select(
                outbox.c.id,
                outbox.c.endpoint_id,
                outbox.c.event,
                outbox.c.event_id,
                outbox.c.payload,
                outbox.c.created_at,
                outbox.c.attempts,
                endpoints.c.url,
                endpoints.c.name,
                endpoints.c.secret,
                endpoints.c.active,
            )
            .join(endpoints, endpoints.c.id == outbox.c.endpoint_id)
            .where(outbox.c.id.in_(claimed))
            .order_by(outbox.c.id)
        ).all()
        session.commit()
    jobs: list[Job] = []
    off: list[int] = []
    for row in rows:
        if not row.active:
            off.append(row.id)
            continue
        try:
            secret: str | None = sealed.decrypt(secret_key, row.secret)
        except sealed.SecretUnreadable:
            secret = None
        jobs.append(
            Job(
                row.id,
                row.endpoint_id,
                row.event,
                row.event_id,
                body_of(row.payload),
                row.url,
                secret,
                row.created_at,
                row.attempts,
                row.name,
            )
        )
    if off:
        _turned_off(db, owner, off, now)
    return jobs


def _turned_off(db: Database, owner: str, ids: list[int], now: datetime) -> None:
    with db.session() as session:
        session.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids), outbox.c.lease_owner == owner)
            .values(
                status=D.FAILED,
                last_error=N_("Not sent: the webhook was turned off."),
                lease_owner=None,
                lease_until=None,
            )
        )


def post(client: httpx.Client, job: Job) -> Result:
    """One POST; never raises (a failure is a Result with its sentence)."""
    if job.secret is None:
        return Result(
            None,
            N_(
                "The signing secret cannot be read (was the installation's secret key "
                "changed?). Make a new secret on the webhook's page."
            ),
        )
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        signing.TIMESTAMP_HEADER: str(stamp),
        signing.SIGNATURE_HEADER: signing.signature(job.secret, stamp, job.body),
        signing.EVENT_HEADER: job.event,
        signing.EVENT_ID_HEADER: job.event_id,
    }
    # httpx's timeouts are per read: a receiver sending a byte now and then never trips
    # them, so the whole delivery has its own deadline.
    deadline = time.monotonic() + DEADLINE
    _quiet.on = True
    try:
        with client.stream("POST", job.url, content=job.body, headers=headers) as answer:
            code = answer.status_code
            if answer.is_redirect:
                where = answer.headers.get("Location", "")[:200]
                if not where:
                    return Result(
                        code,
                        N_(
                            "Your server answered with a redirect (to another address); "
                            "redirects are never followed. Enter the final address instead."
                        ),
                    )
                return Result(
                    code,
                    said(
                        "Your server answered with a redirect (to %(address)s); "
                        "redirects are never followed. Enter the final address instead.",
                        address=where,
                    ),
                )
            if 200 <= code < 300:
                # Its words are not needed, but a short body read to its end keeps the
                # connection for the next delivery; one still coming after a second is
                # dropped with its connection.
                _read_raw(answer, min(deadline, time.monotonic() + 1.0))
                return Result(code, None)
            words = _said(answer, deadline)
            return Result(code, answered(code, words))
    except httpx.TimeoutException:
        seconds = f"{client.timeout.read or TIMEOUT:g}"
        return Result(None, said("No answer within %(seconds)s seconds.", seconds=seconds))
    except httpx.ConnectError as exc:
        return Result(None, _connect_error(exc))
    except httpx.HTTPError as exc:
        return Result(None, said("The connection failed: %(error)s.", error=_short(exc)))
    except Exception as exc:  # e.g. an address httpx refuses: one row must not stop the batch
        log.warning("webhook %s to endpoint %s failed: %r", job.event_id, job.endpoint_id, exc)
        return Result(None, said("The delivery could not be made: %(error)s.", error=_short(exc)))
    finally:
        _quiet.on = False


def answered(code: int, words: str) -> str:
    """What a non-2xx answer means, in words; the log adds when it is tried again.
    `words`: the first words of the answer's body (the receiver's, never translated)."""
    if code == 408 or code == 429 or code >= 500:
        meaning = N_("an error on its side") if code >= 500 else N_("busy, try later")
    elif code >= 400:
        meaning = N_("it refused the delivery")
    else:
        meaning = N_("not a success")
    if words:
        return said(
            'Your server answered %(code)s (%(what)s) and said "%(words)s".',
            code=code,
            what=meaning,
            words=words,
        )
    return said("Your server answered %(code)s (%(what)s).", code=code, what=meaning)


def _read_raw(answer: httpx.Response, deadline: float) -> bytes:
    raw = b""
    for part in answer.iter_raw():  # as it arrives: a chunk size would wait to fill it
        raw += part
        if len(raw) >= ANSWER_BYTES or time.monotonic() > deadline:
            break
    return raw


def _said(answer: httpx.Response, deadline: float) -> str:
    """The first words of an error answer, for the log. Read raw (still compressed) and
    bounded: httpx's decoding unpacks a whole network read at once, so a small gzip answer
    could cost a hundred megabytes before any cut."""
    raw = _read_raw(answer, deadline)
    encoding = answer.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            # wbits 47: gzip or zlib, told apart by the header; max_length bounds the output.
            raw = zlib.decompressobj(47).decompress(raw, ANSWER_BYTES)
        except zlib.error:
            return "(a compressed answer that could not be read)"
    elif encoding and encoding != "identity":
        return f"(an answer compressed as {encoding[:20]})"
    return " ".join(raw[:ANSWER_BYTES].decode("utf-8", "replace").split())[:200]


def where(url: str) -> str:
    """The scheme and server of an address, for logs and the Activity page: never its
    path or query, which some tools (Zapier, Make, n8n) make the key to post to it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an address that cannot be read)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}"


def _connect_error(exc: Exception) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return N_("The server refused the connection: is the receiving program running?")
    if "name" in text and ("resolution" in text or "not known" in text or "getaddrinfo" in text):
        return N_("No server has this name: check the address.")
    if "certificate" in text or "ssl" in text or "tls" in text:
        return said(
            "The secure connection failed (the server's certificate?): %(error)s.",
            error=_short(exc),
        )
    return said("Could not connect: %(error)s.", error=_short(exc))


def _short(exc: Exception) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]


def _record(db: Database, owner: str, done: list[tuple[Job, Result]], now: datetime) -> None:
    """Write each result, guarded by the lease, as one statement run over the rows (one
    compiled UPDATE, not one per delivery: at hundreds a second the compiling showed)."""
    rows: list[dict[str, Any]] = []
    gone: set[int] = set()
    for job, result in done:
        status, retry_at, delivered_at = D.PENDING, now, None
        if result.ok:
            status, delivered_at = D.DELIVERED, now
        elif result.code == 410:
            status = D.FAILED
            gone.add(job.endpoint_id)
        else:
            retry_at = now + backoff(job.attempts + 1)
            if retry_at > job.created_at + GIVE_UP_AFTER:
                status = D.FAILED
        rows.append(
            {
                "row_id": job.row_id,
                "new_status": status,
                "new_attempts": job.attempts + 1,
                "new_code": result.code,
                "new_error": result.error[:500] if result.error else None,
                "new_next": retry_at,
                "new_delivered_at": delivered_at,
            }
        )
    statement = (
        update(outbox)
        .where(
            outbox.c.id == bindparam("row_id"),
            outbox.c.lease_owner == owner,
            outbox.c.status == D.PENDING,
        )
        .values(
            status=bindparam("new_status"),
            attempts=bindparam("new_attempts"),
            last_attempt_at=now,
            last_code=bindparam("new_code"),
            last_error=bindparam("new_error"),
            next_attempt_at=bindparam("new_next"),
            delivered_at=bindparam("new_delivered_at"),
            lease_owner=None,
            lease_until=None,
        )
    )
    with db.session() as session:
        if rows:
            session.connection().execute(statement, rows)
        for endpoint_id in sorted(gone):
            _gone(session, endpoint_id)
        session.commit()


def _gone(session: Session, endpoint_id: int) -> None:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or not endpoint.active:
        return
    endpoint.active = False
    events.record(
        session,
        "webhook_endpoint.gone",
        said(
            "The webhook %(name)s answered 410 (gone for good), so it was turned off. "
            "Turn it back on in Settings → Webhooks once the receiver is ready again.",
            name=endpoint.name,
        ),
        level=EventLevel.WARNING,
        data={"endpoint_id": endpoint_id},
    )


def deliver_due(
    db: Database,
    secret_key: str,
    owner: str,
    now: datetime | None = None,
    size: int = BATCH,
    client: httpx.Client | None = None,
) -> int:
    """Post one batch of due deliveries; returns how many were tried."""
    at = now or utcnow()
    jobs = _claim(db, owner, at, size, secret_key)
    if not jobs:
        return 0
    shared, pool = _shared()
    use = client or shared
    tried = {pool.submit(post, use, job): job for job in jobs}
    waiting = set(tried)
    # Results are recorded as they come, those in within RECORD_EVERY together in one
    # transaction: a slow receiver must not hold back the others', and one commit per
    # delivery would make SQLite's commits, not the posts, set the pace.
    while waiting:
        done, waiting = wait(waiting, timeout=RECORD_EVERY)
        if not done:
            continue
        results = [(tried[future], future.result()) for future in done]
        for job, result in results:
            log.info(
                "webhook %s %s to %s (%s): %s",
                job.event,
                job.event_id,
                job.name,
                where(job.url),
                result.code if result.code is not None else "no answer",
            )
        _record(db, owner, results, now or utcnow())
    return len(jobs)
