"""The fake Cloud API's webhooks, over real HTTP: signed, shaped like Meta's, retried, batched.

A receiving server in the test records the raw bytes, so signatures are checked the way the
app must check them. Also the fake run as a separate process and driven through /_control.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.cloud_api_support import (
    PNID,
    PNID2,
    SECRET,
    TOKEN,
    TOKEN2,
    WABA,
    WABA2,
    Receiver,
    add_shop,
    spring_send,
    text_send,
    verify,
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
