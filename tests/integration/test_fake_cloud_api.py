"""The fake Cloud API's Graph side, over real HTTP: sends, checks, limits, media, templates.

What our Cloud API client may rely on; the webhooks it posts are in test_fake_cloud_api_webhooks.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest

from tests.cloud_api_support import (
    JPEG,
    PDF,
    PNID,
    PNID2,
    SECRET,
    SECRET2,
    TOKEN,
    TOKEN2,
    WABA,
    WABA2,
    Receiver,
    add_shop,
    error_of,
    order_send,
    spring_send,
    text_send,
    upload,
)
from tests.fakes.cloud_api import FakeCloudApi


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


@pytest.fixture
def cloud(fake_cloud: FakeCloudApi, receiver: Receiver) -> FakeCloudApi:
    return add_shop(fake_cloud, receiver.url)


@pytest.fixture
def graph(fake_cloud: FakeCloudApi) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake_cloud.base_url + "/v26.0", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client


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


def test_a_latency_delays_every_answer_until_reset(
    cloud: FakeCloudApi, graph: httpx.Client
) -> None:
    url = f"/{PNID}/messages"
    cloud.set_latency(1.0)
    for to in ("+919876543221", "+919876543222"):
        with pytest.raises(httpx.ReadTimeout):
            graph.post(url, json=text_send(to), timeout=0.3)
    with pytest.raises(ValueError, match="between 0 and 60"):
        cloud.set_latency(-1)
    # Let the two answers we gave up on be written, so no request is still open on the
    # server when the module's tests end and it stops.
    time.sleep(1.0)
    cloud.reset()
    add_shop(cloud, "http://127.0.0.1:9/unused")
    assert cloud.send_latency == 0.0
    assert graph.post(url, json=text_send(), timeout=30).status_code == 200


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


def test_reset_forgets_everything(cloud: FakeCloudApi, graph: httpx.Client) -> None:
    cloud.fail_next(5)
    cloud.webhook_attempts, cloud.rate_limit, cloud.throttle_http_status = 2, False, 429
    cloud.reset()
    assert (cloud.webhook_attempts, cloud.rate_limit, cloud.throttle_http_status) == (5, True, 400)
    response = graph.post(f"/{PNID}/messages", json=text_send())
    assert (response.status_code, error_of(response)["code"]) == (401, 190)
    assert cloud.sent == [] and cloud.media == {} and cloud.counters()["sent"] == 0


def test_a_stopped_fake_restarts_on_the_same_port_with_its_state() -> None:
    fake = FakeCloudApi().start()
    try:
        add_shop(fake, "http://127.0.0.1:9/unused")
        url = f"{fake.base_url}/v26.0/{PNID}/messages"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(url, json=text_send(), headers=headers).status_code == 200
        fake.stop()  # Meta unreachable, as during an outage
        with pytest.raises(httpx.ConnectError):
            httpx.post(url, json=text_send(), headers=headers)
        fake.start()
        assert httpx.post(url, json=text_send("+919876543211"), headers=headers).status_code == 200
        assert len(fake.sent) == 2
    finally:
        fake.stop()
