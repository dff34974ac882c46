"""The fake Cloud API's own contract, over real HTTP: what our client and webhook code may rely on.

Webhooks are received by a tiny HTTP server in the test that records the raw bytes, so the
signature is checked the way the app must check it: an HMAC over exactly what arrived.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import httpx
import pytest

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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


@pytest.fixture
def cloud(fake_cloud: FakeCloudApi, receiver: Receiver) -> FakeCloudApi:
    """One number with its webhook pointing at the receiver, and two templates."""
    fake_cloud.add_number(PNID, WABA, TOKEN, SECRET, display_phone="+1 555-000-1111")
    fake_cloud.set_webhook(PNID, receiver.url)
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


@pytest.fixture
def graph(fake_cloud: FakeCloudApi) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake_cloud.base_url + "/v26.0", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client


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


# --- sends --------------------------------------------------------------------------------


def test_text_send_answers_like_meta_and_is_recorded(
    cloud: FakeCloudApi, graph: httpx.Client
) -> None:
    response = graph.post(f"/{PNID}/messages", json=text_send("+91 (98765) 43210"))
    assert response.status_code == 200
    data = response.json()
    assert data["messaging_product"] == "whatsapp"
    assert data["contacts"] == [{"input": "+91 (98765) 43210", "wa_id": "919876543210"}]
    wamid = data["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    base64.b64decode(wamid[len("wamid.") :], validate=True)
    [sent] = cloud.sent
    assert (sent["pnid"], sent["to"], sent["type"], sent["wamid"], sent["endpoint"]) == (
        PNID,
        "+91 (98765) 43210",
        "text",
        wamid,
        "messages",
    )
    assert sent["body"]["text"]["body"] == "Hello"


def test_any_graph_version_is_accepted(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    url = f"{cloud.base_url}/v25.0/{PNID}/messages"
    assert graph.post(url, json=text_send()).status_code == 200
    assert (
        graph.post(f"{cloud.base_url}/latest/{PNID}/messages", json=text_send()).status_code == 404
    )


def test_each_media_type_by_link_and_by_uploaded_id(
    cloud: FakeCloudApi, graph: httpx.Client
) -> None:
    image_id = upload(graph, JPEG, "image/jpeg").json()["id"]
    doc_id = upload(graph, PDF, "application/pdf", "list.pdf").json()["id"]
    sends = [
        ("image", {"id": image_id, "caption": "New arrivals"}),
        ("image", {"link": "https://cdn.example/b.jpg"}),
        ("document", {"id": doc_id, "filename": "list.pdf", "caption": "Prices"}),
        ("video", {"link": "https://cdn.example/v.mp4", "caption": "Demo"}),
        ("audio", {"link": "https://cdn.example/a.ogg"}),
    ]
    for kind, media in sends:
        body = {"messaging_product": "whatsapp", "to": "+919876543210", "type": kind, kind: media}
        response = graph.post(f"/{PNID}/messages", json=body)
        assert response.status_code == 200, response.text
    assert [s["type"] for s in cloud.sent] == [kind for kind, _ in sends]


def test_templates_positional_and_named_with_header_and_button(
    cloud: FakeCloudApi, graph: httpx.Client
) -> None:
    assert graph.post(f"/{PNID}/messages", json=spring_send()).status_code == 200
    image_id = upload(graph, JPEG, "image/jpeg").json()["id"]
    response = graph.post(f"/{PNID}/messages", json=order_send({"id": image_id}))
    assert response.status_code == 200, response.text
    assert [s["type"] for s in cloud.sent] == ["template", "template"]


def test_send_by_bsuid_has_no_wa_id(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    body = {
        "messaging_product": "whatsapp",
        "recipient": "IN.13491208655302741918",
        "type": "text",
        "text": {"body": "Hi"},
    }
    response = graph.post(f"/{PNID}/messages", json=body)
    assert response.status_code == 200
    assert response.json()["contacts"] == [
        {"input": "IN.13491208655302741918", "user_id": "IN.13491208655302741918"}
    ]


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def _spring(name: str = "spring_sale", code: str = "en_US") -> dict[str, Any]:
    body = spring_send()
    body["template"] = {**body["template"], "name": name, "language": {"code": code}}
    return body


INVALID: list[tuple[str, Any, int, int]] = [
    ("no messaging_product", _without(text_send(), "messaging_product"), 100, 400),
    ("no recipient", _without(text_send(), "to"), 131008, 400),
    ("letters in to", text_send("call me"), 131009, 400),
    ("unknown type", {**text_send(), "type": "hologram"}, 131051, 400),
    ("no text object", _without(text_send(), "text"), 131008, 400),
    ("text too long", text_send(body="x" * 4097), 100, 400),
    (
        "caption too long",
        {
            "messaging_product": "whatsapp",
            "to": "+919876543210",
            "type": "image",
            "image": {"link": "https://c.example/a.jpg", "caption": "x" * 1025},
        },
        100,
        400,
    ),
    (
        "id and link",
        {
            "messaging_product": "whatsapp",
            "to": "+919876543210",
            "type": "image",
            "image": {"link": "https://c.example/a.jpg", "id": "1"},
        },
        131008,
        400,
    ),
    (
        "unknown media id",
        {
            "messaging_product": "whatsapp",
            "to": "+919876543210",
            "type": "video",
            "video": {"id": "999"},
        },
        131053,
        400,
    ),
    ("unknown template", _spring("winter_sale"), 132001, 404),
    ("template in another language", _spring(code="pt_BR"), 132001, 404),
    ("too few parameters", spring_send(params=("Asha",)), 132000, 400),
    ("too many parameters", spring_send(params=("Asha", "X", "Y")), 132000, 400),
    (
        "named parameter misnamed",
        order_send({"link": "https://c.example/h.jpg"}, ("name", "order_id")),
        132012,
        400,
    ),
    ("callback data too long", text_send(biz_opaque_callback_data="x" * 513), 100, 400),
]


@pytest.mark.parametrize(("case", "body", "code", "status"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_sends_get_metas_error(
    cloud: FakeCloudApi, graph: httpx.Client, case: str, body: Any, code: int, status: int
) -> None:
    response = graph.post(f"/{PNID}/messages", json=body)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code
    assert error["error_data"]["details"]
    assert cloud.sent == []


def test_template_status_decides(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    for name, status, code in [
        ("p", "PENDING", 132001),
        ("q", "PAUSED", 132015),
        ("d", "DISABLED", 132016),
    ]:
        cloud.add_template(
            WABA, name, "en_US", status=status, components=[{"type": "BODY", "text": "Hi"}]
        )
        body = _spring(name)
        body["template"].pop("components")
        assert error_of(graph.post(f"/{PNID}/messages", json=body))["code"] == code


def test_bad_json_and_missing_header_parameter(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    response = graph.post(
        f"/{PNID}/messages", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert error_of(response)["code"] == 100
    body = order_send({"link": "https://c.example/h.jpg"})
    body["template"]["components"].pop(0)
    assert error_of(graph.post(f"/{PNID}/messages", json=body))["code"] == 132000


# --- auth, marketing messages, faults -------------------------------------------------------


def test_tokens(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    cloud.add_number(PNID2, WABA2, TOKEN2, SECRET2)
    url = f"/{PNID}/messages"
    for headers in ({"Authorization": "Bearer nope"}, {"Authorization": ""}):
        response = graph.post(url, json=text_send(), headers=headers)
        assert response.status_code == 401
        error = error_of(response)
        assert error["code"] == 190 and "error_data" not in error
    response = graph.post(url, json=text_send(), headers={"Authorization": f"Bearer {TOKEN2}"})
    assert (response.status_code, error_of(response)["code"]) == (400, 100)
    assert graph.post(url, json=text_send()).status_code == 200
    cloud.revoke_token(TOKEN)
    response = graph.post(url, json=text_send("+919876543211"))
    assert (response.status_code, error_of(response)["code"]) == (401, 190)
    assert len(cloud.sent) == 1


def test_marketing_messages_endpoint(
    cloud: FakeCloudApi, graph: httpx.Client, receiver: Receiver
) -> None:
    url = f"/{PNID}/marketing_messages"
    response = graph.post(url, json=spring_send())
    assert (response.status_code, error_of(response)["code"]) == (403, 131005)
    cloud.add_number(PNID, WABA, TOKEN, SECRET, marketing_messages_onboarded=True)
    cloud.set_webhook(PNID, receiver.url)
    cloud.auto_statuses(PNID, progression=("sent",))
    assert error_of(graph.post(url, json=text_send()))["code"] == 131055
    utility = order_send({"link": "https://c.example/h.jpg"})
    assert error_of(graph.post(url, json=utility))["code"] == 134100
    response = graph.post(url, json=spring_send())
    assert response.status_code == 200
    assert cloud.sent[-1]["endpoint"] == "marketing_messages"
    cloud.wait_for(lambda: receiver.statuses())
    assert receiver.statuses()[0]["pricing"]["category"] == "marketing_lite"


def test_injected_failures_rejections_and_hangs(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    url = f"/{PNID}/messages"
    cloud.fail_next(2, code=131000, http_status=500)
    for _ in range(2):
        response = graph.post(url, json=text_send())
        assert (response.status_code, error_of(response)["code"]) == (500, 131000)
    cloud.fail_next(1, code=None, http_status=503)
    response = graph.post(url, json=text_send())
    assert response.status_code == 503 and not response.headers["content-type"].startswith(
        "application/json"
    )
    assert graph.post(url, json=text_send()).status_code == 200
    cloud.reject_recipient("+44 7700 900123", 131047)
    response = graph.post(url, json=text_send("+447700900123"))
    assert (response.status_code, error_of(response)["code"]) == (400, 131047)
    cloud.hang_next(1, 3.0)
    with pytest.raises(httpx.ReadTimeout):
        graph.post(url, json=text_send("+919876543219"), timeout=0.5)
    # The send was taken before the answer hung: a blind retry would double-send.
    cloud.wait_for(lambda: any(s["to"] == "+919876543219" for s in cloud.sent))


# --- limits -------------------------------------------------------------------------------


async def _burst(base_url: str, count: int) -> list[tuple[int, dict[str, Any]]]:
    """`count` sends at once over 64 keep-alive connections: (HTTP status, JSON answer).

    aiohttp rather than httpx: its client is fast enough that the burst really arrives
    faster than 80 a second even on a busy machine.
    """
    url = f"{base_url}/v26.0/{PNID}/messages"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(i: int) -> tuple[int, dict[str, Any]]:
            async with session.post(url, json=text_send(f"+9198765{i:05d}")) as response:
                return response.status, await response.json()

        return await asyncio.gather(*(send(i) for i in range(count)))


def test_throughput_bucket_per_number(cloud: FakeCloudApi) -> None:
    answers = asyncio.run(_burst(cloud.base_url, 400))
    accepted = [a for a in answers if a[0] == 200]
    assert len(accepted) >= 80  # the bucket starts full
    throttled = [a for a in answers if a[0] != 200]
    assert throttled, "400 sends at once never hit the 80/s bucket"
    assert {(status, body["error"]["code"]) for status, body in throttled} == {(400, 130429)}
    assert len(cloud.sent) == len(accepted)
    cloud.throttle_http_status = 429
    try:
        statuses = {status for status, _ in asyncio.run(_burst(cloud.base_url, 200))}
    finally:
        cloud.throttle_http_status = 400
    assert 429 in statuses and 400 not in statuses


def test_no_bucket_when_rate_limit_is_off() -> None:
    fake = FakeCloudApi(rate_limit=False).start()
    try:
        fake.add_number(PNID, WABA, TOKEN, SECRET)
        answers = asyncio.run(_burst(fake.base_url, 400))
        assert {status for status, _ in answers} == {200}
        assert len(fake.sent) == 400
    finally:
        fake.stop()


def test_pair_rate_limit(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    url = f"/{PNID}/messages"
    codes = []
    started = time.monotonic()
    for _ in range(60):
        response = graph.post(url, json=text_send("+919876543210"))
        codes.append(
            response.status_code if response.status_code == 200 else error_of(response)["code"]
        )
        if codes[-1] != 200:
            break
    elapsed = time.monotonic() - started
    assert codes[-1] == 131056
    # A burst of 45, plus one more for each 6 s the loop took on a slow machine.
    assert 45 <= codes.index(131056) <= 45 + int(elapsed / 6)
    assert graph.post(url, json=text_send("+919876543211")).status_code == 200


# --- media, number, templates ---------------------------------------------------------------


def test_media_upload_read_download_delete(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    response = upload(graph, JPEG, "image/jpeg", "banner.jpg")
    assert response.status_code == 200, response.text
    media_id = response.json()["id"]
    assert cloud.media[media_id]["sha256"] == hashlib.sha256(JPEG).hexdigest()
    info = graph.get(f"/{media_id}").json()
    assert (info["mime_type"], info["file_size"], info["id"]) == ("image/jpeg", len(JPEG), media_id)
    assert info["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert graph.get(info["url"]).content == JPEG
    assert httpx.get(info["url"]).status_code == 401
    wrong_kind = {
        "messaging_product": "whatsapp",
        "to": "+919876543210",
        "type": "video",
        "video": {"id": media_id},
    }
    assert error_of(graph.post(f"/{PNID}/messages", json=wrong_kind))["code"] == 131053
    assert graph.delete(f"/{media_id}").json() == {"success": True}
    assert error_of(graph.get(f"/{media_id}"))["code"] == 100


@pytest.mark.parametrize(
    ("data", "mime", "part_type"),
    [
        (b"GIF89a", "image/gif", None),  # not in Meta's table
        (b"not a jpeg", "image/jpeg", None),  # bytes are not what the type says
        (JPEG, "image/jpeg", "image/png"),  # the part and the field disagree
        (b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024), "image/jpeg", None),  # over 5 MB
    ],
    ids=["unsupported", "magic", "part-type", "oversize"],
)
def test_media_upload_refusals(
    cloud: FakeCloudApi, graph: httpx.Client, data: bytes, mime: str, part_type: str | None
) -> None:
    response = upload(graph, data, mime, part_type=part_type)
    assert (response.status_code, error_of(response)["code"]) == (400, 131053)
    assert cloud.media == {}


def test_number_fields_are_only_those_asked(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    fields = "quality_rating,throughput,whatsapp_business_manager_messaging_limit"
    assert graph.get(f"/{PNID}", params={"fields": fields}).json() == {
        "quality_rating": "GREEN",
        "throughput": {"level": "STANDARD"},
        "whatsapp_business_manager_messaging_limit": "TIER_250",
        "id": PNID,
    }
    assert graph.get(f"/{PNID}", params={"fields": "verified_name"}).json() == {
        "verified_name": "Acme Shop",
        "id": PNID,
    }
    assert error_of(graph.get(f"/{PNID}", params={"fields": "secret_sauce"}))["code"] == 100
    assert error_of(graph.get("/123456789"))["code"] == 100


def test_template_listing_pages(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    for i in range(5):
        cloud.add_template(
            WABA, f"promo_{i}", "es", components=[{"type": "BODY", "text": f"Oferta {i}"}]
        )
    names: list[str] = []
    url: str | None = f"/{WABA}/message_templates?fields=name,status,quality_score&limit=3"
    pages = 0
    while url:
        page = graph.get(url).json()
        pages += 1
        for row in page["data"]:
            assert set(row) == {"id", "name", "status", "quality_score"}
            names.append(row["name"])
        assert page["paging"]["cursors"]["after"]
        url = page["paging"].get("next")
    assert pages == 3
    assert names == ["spring_sale", "order_ready"] + [f"promo_{i}" for i in range(5)]
    full = graph.get(f"/{WABA}/message_templates", params={"limit": 1}).json()["data"][0]
    assert full["components"] == [{"type": "BODY", "text": "Hi {{1}}, use {{2}}"}]
    assert (full["category"], full["parameter_format"], full["language"]) == (
        "MARKETING",
        "POSITIONAL",
        "en_US",
    )
    cloud.add_number(PNID2, WABA2, TOKEN2, SECRET2)
    response = graph.get(
        f"/{WABA}/message_templates", headers={"Authorization": f"Bearer {TOKEN2}"}
    )
    assert (response.status_code, error_of(response)["code"]) == (403, 200)


# --- webhooks -------------------------------------------------------------------------------


def test_statuses_are_signed_and_shaped_like_metas(
    cloud: FakeCloudApi, graph: httpx.Client, receiver: Receiver
) -> None:
    cloud.auto_statuses(PNID)
    body = spring_send("+91 98765 43210")
    body["biz_opaque_callback_data"] = "campaign-42:row-7"
    wamid = graph.post(f"/{PNID}/messages", json=body).json()["messages"][0]["id"]
    cloud.wait_for(lambda: len(receiver.statuses()) == 3)
    for headers, raw in receiver.requests:
        assert verify(headers, raw)
        assert headers["Content-Type"] == "application/json"
    payload = receiver.payloads()[0]
    assert payload["object"] == "whatsapp_business_account"
    assert payload["entry"][0]["id"] == WABA
    change = payload["entry"][0]["changes"][0]
    assert change["field"] == "messages"
    assert change["value"]["metadata"] == {
        "display_phone_number": "15550001111",
        "phone_number_id": PNID,
    }
    statuses = receiver.statuses()
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    for status in statuses:
        assert status["id"] == wamid
        assert status["recipient_id"] == "919876543210"
        assert isinstance(status["timestamp"], str) and status["timestamp"].isdigit()
        assert status["biz_opaque_callback_data"] == "campaign-42:row-7"
    assert [("pricing" in s) for s in statuses] == [True, True, False]
    assert statuses[0]["pricing"] == {
        "billable": True,
        "pricing_model": "PMP",
        "type": "regular",
        "category": "marketing",
    }


def test_webhook_retries_until_200(
    cloud: FakeCloudApi, graph: httpx.Client, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    cloud.auto_statuses(PNID, progression=("sent",))
    graph.post(f"/{PNID}/messages", json=text_send())
    cloud.wait_for(lambda: len(cloud.webhook_log) == 3)
    assert [status for _, status, _ in cloud.webhook_log] == [500, 503, 200]
    assert len({body for _, _, body in cloud.webhook_log}) == 1  # the same bytes each time
    cloud.wait_for(lambda: cloud.counters()["webhooks_posted"] == 1)


def test_keep_alive_receivers_get_one_connection_and_stale_ones_are_replaced(
    cloud: FakeCloudApi, graph: httpx.Client
) -> None:
    hook = Receiver(keep_alive=True, idle_timeout=0.3)
    try:
        cloud.set_webhook(PNID, hook.url)
        cloud.auto_statuses(PNID)
        graph.post(f"/{PNID}/messages", json=text_send())
        cloud.wait_for(lambda: len(cloud.webhook_log) == 3)
        assert len(set(hook.peers)) == 1  # one kept-alive connection, chunked answers read
        # The receiver drops the idle connection; the next post must not count it as a failure.
        time.sleep(0.6)
        graph.post(f"/{PNID}/messages", json=text_send("+919876543211"))
        cloud.wait_for(lambda: len(cloud.webhook_log) == 6)
        assert [status for _, status, _ in cloud.webhook_log] == [200] * 6
        assert len(set(hook.peers)) == 2
        assert all(verify(h, b) for h, b in hook.requests)
    finally:
        hook.close()


def test_webhook_retries_are_capped(
    cloud: FakeCloudApi, graph: httpx.Client, receiver: Receiver
) -> None:
    receiver.answers = [500] * 50
    cloud.webhook_attempts = 3
    try:
        cloud.auto_statuses(PNID, progression=("sent",))
        graph.post(f"/{PNID}/messages", json=text_send())
        cloud.wait_for(lambda: cloud.counters()["webhooks_failed"] == 1)
        assert len(receiver.requests) == 3
    finally:
        cloud.webhook_attempts = 5


def test_duplicates_out_of_order_and_batches(
    cloud: FakeCloudApi, graph: httpx.Client, receiver: Receiver
) -> None:
    cloud.auto_statuses(PNID, duplicates=True, out_of_order=True)
    graph.post(f"/{PNID}/messages", json=text_send())
    cloud.wait_for(lambda: len(receiver.statuses()) == 6)
    assert [s["status"] for s in receiver.statuses()] == [
        "read",
        "read",
        "delivered",
        "delivered",
        "sent",
        "sent",
    ]
    receiver.requests.clear()
    cloud.auto_statuses(PNID, batch=3)
    graph.post(f"/{PNID}/messages", json=text_send())
    cloud.wait_for(lambda: len(receiver.statuses()) == 3)
    assert len(receiver.requests) == 1
    assert len(receiver.payloads()[0]["entry"][0]["changes"][0]["value"]["statuses"]) == 3


def test_a_batch_spans_numbers_as_entries(cloud: FakeCloudApi, receiver: Receiver) -> None:
    cloud.add_number(PNID2, WABA2, TOKEN2, SECRET)  # same app, so same secret and URL
    cloud.set_webhook(PNID2, receiver.url)
    for pnid in (PNID, PNID2):
        cloud.auto_statuses(pnid, progression=("sent",), batch=2)
    cloud.batch_window = 30.0  # the POST leaves as soon as it holds two statuses
    for pnid, token in ((PNID, TOKEN), (PNID2, TOKEN2)):
        response = httpx.post(
            f"{cloud.base_url}/v26.0/{pnid}/messages",
            json=text_send(),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
    try:
        cloud.wait_for(lambda: len(receiver.statuses()) == 2)
    finally:
        cloud.batch_window = 0.25
    assert len(receiver.requests) == 1
    entries = receiver.payloads()[0]["entry"]
    assert sorted(e["id"] for e in entries) == sorted([WABA, WABA2])
    assert verify(*receiver.requests[0])


def test_recipient_failures_arrive_as_failed_statuses(
    cloud: FakeCloudApi, graph: httpx.Client, receiver: Receiver
) -> None:
    cloud.fail_recipient("+1 650 555 1234", 131049)
    assert graph.post(f"/{PNID}/messages", json=spring_send("+16505551234")).status_code == 200
    cloud.wait_for(lambda: receiver.statuses())
    [status] = receiver.statuses()
    assert status["status"] == "failed" and status["recipient_id"] == "16505551234"
    [error] = status["errors"]
    assert error["code"] == 131049 and error["title"] == error["message"]
    assert error["error_data"]["details"] and error["href"]


def test_inbound_text_button_and_bsuid_only_user(cloud: FakeCloudApi, receiver: Receiver) -> None:
    wamid = cloud.inbound(
        PNID, from_phone="+919812345678", text="STOP, Zoë", name="Zoë", context_id="wamid.X"
    )
    raw = receiver.requests[0][1]
    assert b"\\u00eb" in raw and "ë".encode() not in raw  # ASCII-escaped like Meta
    assert verify(*receiver.requests[0])
    value = receiver.payloads()[0]["entry"][0]["changes"][0]["value"]
    assert value["contacts"] == [{"profile": {"name": "Zoë"}, "wa_id": "919812345678"}]
    [message] = value["messages"]
    assert (message["id"], message["from"], message["type"], message["text"]) == (
        wamid,
        "919812345678",
        "text",
        {"body": "STOP, Zoë"},
    )
    assert message["context"] == {"from": "15550001111", "id": "wamid.X"}
    cloud.button_tap(PNID, "+919812345678", "STOP_PROMOS", "Stop promotions", "wamid.Y")
    message = receiver.payloads()[1]["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message["button"] == {"payload": "STOP_PROMOS", "text": "Stop promotions"}
    cloud.inbound(PNID, text="hola", user_id="IN.555", no_phone=True)
    value = receiver.payloads()[2]["entry"][0]["changes"][0]["value"]
    assert value["contacts"] == [{"profile": {"name": "Deepa"}, "user_id": "IN.555"}]
    assert "from" not in value["messages"][0]


def test_account_webhooks(cloud: FakeCloudApi, graph: httpx.Client, receiver: Receiver) -> None:
    cloud.user_preference(PNID, "+919812345678", stop=True)
    cloud.quality_update(PNID, event="DOWNGRADE", rating="RED")
    cloud.tier_update(WABA, tier="TIER_2K")
    changes = [p["entry"][0]["changes"][0] for p in receiver.payloads()]
    assert [c["field"] for c in changes] == [
        "user_preferences",
        "phone_number_quality_update",
        "business_capability_update",
    ]
    [preference] = changes[0]["value"]["user_preferences"]
    assert (preference["wa_id"], preference["value"], preference["category"]) == (
        "919812345678",
        "stop",
        "marketing_messages",
    )
    assert changes[1]["value"]["event"] == "DOWNGRADE"
    assert changes[2]["value"]["max_daily_conversations_per_business"] == 2000
    fields = "quality_rating,whatsapp_business_manager_messaging_limit"
    assert graph.get(f"/{PNID}", params={"fields": fields}).json() == {
        "quality_rating": "RED",
        "whatsapp_business_manager_messaging_limit": "TIER_2K",
        "id": PNID,
    }
    assert all(verify(h, b) for h, b in receiver.requests)


def test_post_raw_signatures(cloud: FakeCloudApi, receiver: Receiver) -> None:
    payload = {"object": "whatsapp_business_account", "entry": []}
    assert cloud.post_raw(PNID, payload) == 200
    cloud.post_raw(PNID, payload, signature="bad")
    cloud.post_raw(PNID, payload, signature=None)
    (good_h, good_b), (bad_h, bad_b), (none_h, _) = receiver.requests
    assert verify(good_h, good_b)
    assert bad_h["X-Hub-Signature-256"].startswith("sha256=") and not verify(bad_h, bad_b)
    assert "X-Hub-Signature-256" not in none_h
    receiver.answers = [403]
    assert cloud.post_raw(PNID, payload, signature="bad") == 403
    assert len(receiver.requests) == 4  # a raw post is not retried


def test_reset_forgets_everything(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    cloud.fail_next(5)
    cloud.webhook_attempts, cloud.rate_limit, cloud.throttle_http_status = 2, False, 429
    cloud.reset()
    assert (cloud.webhook_attempts, cloud.rate_limit, cloud.throttle_http_status) == (5, True, 400)
    response = graph.post(f"/{PNID}/messages", json=text_send())
    assert (response.status_code, error_of(response)["code"]) == (401, 190)
    assert cloud.sent == [] and cloud.media == {} and cloud.counters()["sent"] == 0


# --- as a separate process ------------------------------------------------------------------


def test_runs_as_a_process_driven_over_control(receiver: Receiver) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.cloud_api", "--port", "0", "--no-rate-limit"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base = process.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base) as client:
            for action, kwargs in [
                (
                    "add_number",
                    {
                        "phone_number_id": PNID,
                        "waba_id": WABA,
                        "token": TOKEN,
                        "app_secret": SECRET,
                    },
                ),
                (
                    "add_template",
                    {
                        "waba_id": WABA,
                        "name": "spring_sale",
                        "language": "en_US",
                        "components": [{"type": "BODY", "text": "Hi {{1}}, use {{2}}"}],
                    },
                ),
                ("set_webhook", {"phone_number_id": PNID, "url": receiver.url}),
                ("auto_statuses", {"phone_number_id": PNID, "progression": ["sent", "delivered"]}),
            ]:
                answer = client.post(f"/_control/{action}", json=kwargs)
                assert answer.json()["ok"], answer.text
            assert client.post("/_control/add_numbr", json={}).status_code == 404
            assert (
                client.post("/_control/set_webhook", json={"phone_number_id": "1"}).status_code
                == 400
            )
            headers = {"Authorization": f"Bearer {TOKEN}"}
            assert (
                client.post(
                    f"/v26.0/{PNID}/messages", json=spring_send(), headers=headers
                ).status_code
                == 200
            )
            assert client.get("/_control/counters").json()["sent"] == 1
            assert client.get("/_control/sent").json()[0]["pnid"] == PNID
            inbound = client.post(
                "/_control/inbound", json={"phone_number_id": PNID, "text": "STOP"}
            )
            assert inbound.json()["result"].startswith("wamid.")
        deadline = time.monotonic() + 30
        while not (len(receiver.statuses()) == 2 and len(receiver.requests) == 3):
            assert time.monotonic() < deadline, receiver.payloads()
            time.sleep(0.02)
        assert all(verify(h, b) for h, b in receiver.requests)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
