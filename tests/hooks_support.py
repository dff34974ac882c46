"""A webhook receiver on loopback (real HTTP, a thread per request) for the events-out tests.

It records every request, verifies signatures as docs/webhooks.md tells receivers to, and
can be told to answer 500s, hang until released (a timeout for the sender), redirect, or
hold a request while a test kills the worker. It keeps the event ids it took, as a
receiver that drops repeats would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select

from wabulk.db import Database
from wabulk.models import OutboxEvent
from wabulk.outbox import endpoints

SECRET_KEY = "test-secret-key-not-for-production"


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


def verify(secret: str, hit: Hit, now: float | None = None) -> bool:
    """The documented check, written out as a receiver would (not through wabulk's code)."""
    stamp = hit.headers.get("x-wabulk-timestamp", "")
    given = hit.headers.get("x-wabulk-signature", "")
    if not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > 300:
        return False
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + hit.body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), given)


@dataclass
class Receiver:
    """mode: "ok" | a status code such as "500" | "hang" | "redirect" | "hold" (answers
    once `release` is set)."""

    mode: str = "ok"
    hits: list[Hit] = field(default_factory=list)
    trap_hits: list[Hit] = field(default_factory=list)
    taken: dict[str, int] = field(default_factory=dict)  # event id → times received
    release: threading.Event = field(default_factory=threading.Event)
    got: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            bodies = [h.json for h in self.hits]
        return [b for b in bodies if name is None or b["event"] == name]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            hit = Hit(
                self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(size)
            )
            if self.path.startswith("/trap"):
                with receiver.lock:
                    receiver.trap_hits.append(hit)
                self._answer(200)
                return
            with receiver.lock:
                receiver.hits.append(hit)
                mode = receiver.mode
                try:
                    event_id = hit.json["id"]
                    receiver.taken[event_id] = receiver.taken.get(event_id, 0) + 1
                except (ValueError, KeyError):
                    pass
            receiver.got.set()
            if mode in ("hang", "hold"):
                receiver.release.wait(60)
                if mode == "hang":
                    return  # the sender has given up by now
            if mode.isdigit():
                self._answer(int(mode), b"boom")
            elif mode == "redirect":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{receiver.port}/trap")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._answer(200, b'{"ok":true}')

        def _answer(self, code: int, body: bytes = b"") -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def serve() -> Iterator[Receiver]:
    """A running receiver (use as a fixture body); stopped and released at the end."""
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


def add_endpoint(
    db: Database, url: str, events: list[str] | None = None, name: str = "Receiver"
) -> tuple[int, str]:
    """(endpoint id, secret in clear), made the product's way."""
    with db.session() as session:
        endpoint, secret = endpoints.create(
            session,
            None,
            SECRET_KEY,
            name=name,
            url=url,
            events_wanted=events or ["message.status", "message.replied", "contact.opted_out"],
        )
        return endpoint.id, secret


def rows(db: Database, event: str | None = None) -> list[OutboxEvent]:
    with db.session() as session:
        query = select(OutboxEvent).order_by(OutboxEvent.id)
        if event is not None:
            query = query.where(OutboxEvent.event == event)
        return list(session.scalars(query))


def wait_for(condition: Callable[[], Any], what: str, deadline: float = 30.0) -> Any:
    """Poll until `condition()` is truthy (a generous deadline, never a fixed sleep)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
