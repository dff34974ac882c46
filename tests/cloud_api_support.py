"""Helpers for testing against the fake Cloud API: a webhook receiver, a shop, send bodies.

- `Receiver` is a tiny HTTP server that records each webhook's headers and raw bytes, so a
  signature is checked the way the app must check it: an HMAC over exactly what arrived.
- `add_shop` gives the fake one number and two templates (positional marketing; named
  utility with an image header and a URL button); the `*_send` functions build bodies for them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.fakes.cloud_api import FakeCloudApi

PNID, WABA, TOKEN, SECRET = "106540352242922", "200154321098765", "tok-alpha", "sec-alpha"
PNID2, WABA2, TOKEN2, SECRET2 = "106540352242999", "200154321098999", "tok-beta", "sec-beta"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200
PDF = b"%PDF-1.4\n" + b"x" * 100


class Receiver:
    """Records every webhook POST (headers, raw body); answers from `answers`, then 200.

    By default it answers HTTP/1.0 and closes; `keep_alive` answers HTTP/1.1 with a chunked
    body and keeps the connection until it has been idle `idle_timeout` seconds, as app
    servers do.
    """

    def __init__(self, keep_alive: bool = False, idle_timeout: float | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.peers: list[tuple[str, int]] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            timeout = idle_timeout

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers), body))
                    receiver.peers.append(self.client_address)
                    status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                if keep_alive:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"2\r\nok\r\n0\r\n\r\n")
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.requests]

    def statuses(self) -> list[dict[str, Any]]:
        return [
            status
            for payload in self.payloads()
            for entry in payload["entry"]
            for change in entry["changes"]
            for status in change["value"].get("statuses", [])
        ]


def add_shop(fake_cloud: FakeCloudApi, webhook_url: str) -> FakeCloudApi:
    """One number with its webhook pointing at `webhook_url`, and two templates."""
    fake_cloud.add_number(PNID, WABA, TOKEN, SECRET, display_phone="+1 555-000-1111")
    fake_cloud.set_webhook(PNID, webhook_url)
    fake_cloud.add_template(
        WABA, "spring_sale", "en_US", components=[{"type": "BODY", "text": "Hi {{1}}, use {{2}}"}]
    )
    fake_cloud.add_template(
        WABA,
        "order_ready",
        "en_US",
        category="UTILITY",
        parameter_format="NAMED",
        components=[
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Dear {{customer_name}}, order {{order_id}} is ready."},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "URL", "text": "Track", "url": "https://shop.example/t/{{1}}"},
                    {"type": "QUICK_REPLY", "text": "Stop promotions"},
                ],
            },
        ],
    )
    return fake_cloud


def text_send(to: str = "+919876543210", body: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "text",
        "text": {"body": body},
        **extra,
    }


def spring_send(to: str = "+919876543210", params: tuple[str, ...] = ("Asha", "CARIBE25")) -> dict:
    parameters = [{"type": "text", "text": p} for p in params]
    template = {
        "name": "spring_sale",
        "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": parameters}],
    }
    return {"messaging_product": "whatsapp", "to": to, "type": "template", "template": template}


def order_send(header: dict[str, Any], names: tuple[str, str] = ("customer_name", "order_id")):  # type: ignore[no-untyped-def]
    body = [
        {"type": "text", "text": "Deepa", "parameter_name": names[0]},
        {"type": "text", "text": "A-17", "parameter_name": names[1]},
    ]
    components = [
        {"type": "header", "parameters": [{"type": "image", "image": header}]},
        {"type": "body", "parameters": body},
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "A-17"}],
        },
    ]
    template = {"name": "order_ready", "language": {"code": "en_US"}, "components": components}
    return {
        "messaging_product": "whatsapp",
        "to": "+919876543210",
        "type": "template",
        "template": template,
    }


def upload(
    graph: httpx.Client, data: bytes, mime: str, name: str = "f.jpg", part_type: str | None = None
):  # type: ignore[no-untyped-def]
    return graph.post(
        f"/{PNID}/media",
        data={"messaging_product": "whatsapp", "type": mime},
        files={"file": (name, data, part_type or mime)},
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    error = response.json()["error"]
    assert error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{error['code']}) ") or error["code"] == 190
    assert error["fbtrace_id"]
    return error  # type: ignore[no-any-return]


def verify(headers: dict[str, str], body: bytes, secret: str = SECRET) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-Hub-Signature-256", ""), expected)
