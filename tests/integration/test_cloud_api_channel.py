"""The Cloud API channel and account helpers against the fake Cloud API over loopback HTTP."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.cloud_api import FakeCloudApi
from wabulk.channels.base import (
    ChannelConfig,
    OutgoingMessage,
    PermanentError,
    SenderUnavailable,
    SendResult,
    TemplateCall,
    TransientError,
)
from wabulk.channels.cloud_api import CloudApiChannel, account
from wabulk.channels.registry import open_channel

PNID = "106540352242922"
WABA = "102290129340398"
TOKEN = "EAAG-test-token-5678"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.4\n" + b"0" * 200


def settings(**extra: object) -> dict[str, object]:
    return {"phone_number_id": PNID, "waba_id": WABA, "access_token": TOKEN, **extra}


def options(fake: FakeCloudApi, timeout: float = 20) -> dict[str, object]:
    return {
        "cloud_api_url": fake.base_url,
        "cloud_api_version": "v26.0",
        "cloud_api_timeout": timeout,
    }


def phone(i: int) -> str:
    return f"+9198765{i:05d}"


def msg(i: int = 1, **kw: Any) -> OutgoingMessage:
    values: dict[str, Any] = {"message_id": i, "phone": phone(i), "text": f"Hello {i}"}
    values.update(kw)
    return OutgoingMessage(**values)


@pytest.fixture
def cloud(fake_cloud: FakeCloudApi) -> FakeCloudApi:
    # HIGH: a 1,000/s bucket, so batches here are not throttled unless a test says so.
    fake_cloud.add_number(
        phone_number_id=PNID, waba_id=WABA, token=TOKEN, app_secret="s3cret", throughput="HIGH"
    )
    return fake_cloud


def make_channel(fake: FakeCloudApi, timeout: float = 20, **extra: object) -> CloudApiChannel:
    return CloudApiChannel(
        ChannelConfig("cloud", settings(**extra), options=options(fake, timeout))
    )


@pytest.fixture
def channel(cloud: FakeCloudApi):  # type: ignore[no-untyped-def]
    ch = make_channel(cloud)
    yield ch
    ch.close()


def by_callback(fake: FakeCloudApi) -> dict[str, dict[str, Any]]:
    return {s["callback"]: s for s in fake.sent}


def upload(fake: FakeCloudApi, tmp_path: Path, data: bytes, mime: str, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return account.upload_media(settings(), options(fake), path, mime, name)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- sending each kind of message -------------------------------------------------------


def test_text(channel: CloudApiChannel, cloud: FakeCloudApi) -> None:
    result = channel.send(msg(7, text="Sale tonight: https://shop.example/s"))
    [sent] = cloud.sent
    assert result == SendResult(sent["wamid"], None)
    assert sent["endpoint"] == "messages"
    assert sent["to"] == phone(7) and sent["callback"] == "7"
    assert sent["body"]["text"] == {
        "preview_url": True,
        "body": "Sale tonight: https://shop.example/s",
    }


def test_registered_as_cloud_api(cloud: FakeCloudApi) -> None:
    ch = open_channel("cloud_api", ChannelConfig("c", settings(), options=options(cloud)))
    try:
        assert ch.send(msg(1)).provider_message_id == cloud.sent[0]["wamid"]
    finally:
        ch.close()


@pytest.mark.parametrize(
    ("data", "mime", "name", "kind"),
    [
        (PNG, "image/png", "banner.png", "image"),
        (b"\x00\x00\x00\x18ftypmp42" + b"0" * 100, "video/mp4", "clip.mp4", "video"),
        (PDF, "application/pdf", "price list.pdf", "document"),
    ],
)
def test_media_by_uploaded_id_with_caption(
    channel: CloudApiChannel,
    cloud: FakeCloudApi,
    tmp_path: Path,
    data: bytes,
    mime: str,
    name: str,
    kind: str,
) -> None:
    media_id = upload(cloud, tmp_path, data, mime, name)
    assert cloud.media[media_id]["mime"] == mime
    result = channel.send(
        msg(3, media_path=tmp_path / name, media_name=name, media_mime=mime, media_ref=media_id)
    )
    [sent] = cloud.sent
    assert result.provider_message_id == sent["wamid"]
    assert sent["type"] == kind
    expected = {"id": media_id, "caption": "Hello 3"}
    if kind == "document":
        expected["filename"] = name
    assert sent["body"][kind] == expected


def test_audio_then_its_text(channel: CloudApiChannel, cloud: FakeCloudApi, tmp_path: Path) -> None:
    media_id = upload(cloud, tmp_path, b"OggS" + b"0" * 100, "audio/ogg", "voice.ogg")
    result = channel.send(
        msg(4, media_ref=media_id, media_mime="audio/ogg", media_name="voice.ogg")
    )
    assert [s["type"] for s in cloud.sent] == ["audio", "text"]
    assert cloud.sent[0]["body"]["audio"] == {"id": media_id}
    assert result.provider_message_id == cloud.sent[1]["wamid"]


def test_long_document_text_is_a_second_message(
    channel: CloudApiChannel, cloud: FakeCloudApi, tmp_path: Path
) -> None:
    media_id = upload(cloud, tmp_path, PDF, "application/pdf", "menu.pdf")
    text = "Our menu. " * 150
    result = channel.send(
        msg(5, text=text, media_ref=media_id, media_mime="application/pdf", media_name="menu.pdf")
    )
    assert [s["type"] for s in cloud.sent] == ["document", "text"]
    assert "caption" not in cloud.sent[0]["body"]["document"]
    assert cloud.sent[1]["body"]["text"]["body"] == text
    assert result.provider_message_id == cloud.sent[1]["wamid"]
    assert {s["callback"] for s in cloud.sent} == {"5"}


def test_file_never_uploaded_is_refused_before_meta(
    channel: CloudApiChannel, cloud: FakeCloudApi
) -> None:
    with pytest.raises(PermanentError, match="never uploaded"):
        channel.send(msg(1, media_path=Path("/srv/photo.jpg"), media_mime="image/jpeg"))
    assert cloud.sent == []


# --- templates --------------------------------------------------------------------------


def test_template_with_uploaded_header_named_variables_and_buttons(
    channel: CloudApiChannel, cloud: FakeCloudApi, tmp_path: Path
) -> None:
    cloud.add_template(
        WABA,
        "spring_sale",
        "en_US",
        components=[
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Hi {{customer_name}}, use {{code}} today."},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "URL", "text": "Shop", "url": "https://shop.example/{{1}}"},
                    {"type": "QUICK_REPLY", "text": "Stop promotions"},
                ],
            },
        ],
        parameter_format="NAMED",
    )
    media_id = upload(cloud, tmp_path, PNG, "image/png", "banner.png")
    call = TemplateCall(
        name="spring_sale",
        language="en_US",
        body=(("customer_name", "Pablo"), ("code", "CARIBE25")),
        header_media_kind="image",
        buttons=((0, "url", "n3mtql"), (1, "quick_reply", "STOP_PROMOS")),
        marketing=True,
    )
    result = channel.send(msg(9, template=call, media_ref=media_id, media_name="banner.png"))
    [sent] = cloud.sent
    assert result.provider_message_id == sent["wamid"]
    assert sent["type"] == "template" and sent["endpoint"] == "messages"
    components = sent["body"]["template"]["components"]
    assert components[0] == {
        "type": "header",
        "parameters": [{"type": "image", "image": {"id": media_id}}],
    }
    assert components[1]["parameters"][0] == {
        "type": "text",
        "text": "Pablo",
        "parameter_name": "customer_name",
    }


def test_template_positional_with_text_header(
    channel: CloudApiChannel, cloud: FakeCloudApi
) -> None:
    cloud.add_template(
        WABA,
        "order_ready",
        "pt_BR",
        category="UTILITY",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}"},
            {"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} está pronto."},
        ],
    )
    call = TemplateCall(
        name="order_ready",
        language="pt_BR",
        body=((None, "Ana"), (None, "A-7")),
        header_text=(None, "A-7"),
    )
    channel.send(msg(2, template=call))
    [sent] = cloud.sent
    assert sent["body"]["template"]["components"][1]["parameters"] == [
        {"type": "text", "text": "Ana"},
        {"type": "text", "text": "A-7"},
    ]


def test_template_errors_name_the_template(channel: CloudApiChannel, cloud: FakeCloudApi) -> None:
    with pytest.raises(PermanentError) as missing:
        channel.send(msg(1, template=TemplateCall(name="nope", language="en_US")))
    assert missing.value.code == "132001"
    assert "template nope (en_US)" in str(missing.value)
    cloud.add_template(WABA, "two_vars", "en", components=[{"type": "BODY", "text": "{{1}} {{2}}"}])
    with pytest.raises(PermanentError) as count:
        channel.send(
            msg(2, template=TemplateCall(name="two_vars", language="en", body=((None, "a"),)))
        )
    assert count.value.code == "132000"
    assert "template two_vars (en)" in str(count.value)


# --- Meta's errors ----------------------------------------------------------------------


def test_transient_131000_uses_the_tables_backoff(
    channel: CloudApiChannel, cloud: FakeCloudApi
) -> None:
    cloud.fail_next(1, 131000, 500)
    with pytest.raises(TransientError) as caught:
        channel.send(msg(1))
    assert (caught.value.code, caught.value.retry_after) == ("131000", 30)
    assert channel.send(msg(1)).provider_message_id == cloud.sent[0]["wamid"]


def test_bare_5xx_is_transient(channel: CloudApiChannel, cloud: FakeCloudApi) -> None:
    cloud.fail_next(1, None, 503)
    with pytest.raises(TransientError) as caught:
        channel.send(msg(1))
    assert caught.value.code == "http_503"
    assert cloud.sent == []


def test_throughput_130429(channel: CloudApiChannel, cloud: FakeCloudApi) -> None:
    cloud.fail_next(1, 130429, 400)
    with pytest.raises(TransientError) as caught:
        channel.send(msg(1))
    assert (caught.value.code, caught.value.retry_after) == ("130429", 1)


def test_a_burst_over_the_numbers_rate_is_throttled_not_lost(fake_cloud: FakeCloudApi) -> None:
    fake_cloud.add_number(phone_number_id=PNID, waba_id=WABA, token=TOKEN, app_secret="s")
    ch = make_channel(fake_cloud)
    try:
        results = ch.send_batch([msg(i) for i in range(400)])
    finally:
        ch.close()
    throttled = [r for r in results if isinstance(r, TransientError)]
    sent = [r for r in results if isinstance(r, SendResult)]
    # The bucket starts full at 80; a burst of 400 cannot all fit unless it took 4 s.
    assert len(sent) + len(throttled) == 400
    assert len(sent) == len(fake_cloud.sent) >= 80
    assert all(t.code == "130429" for t in throttled)


@pytest.mark.parametrize(("code", "effect"), [(131026, "not_on_whatsapp"), (131047, "window")])
def test_recipient_refused_synchronously(
    channel: CloudApiChannel, cloud: FakeCloudApi, code: int, effect: str
) -> None:
    cloud.reject_recipient(phone(3), code)
    results = channel.send_batch([msg(2), msg(3), msg(4)])
    assert isinstance(results[0], SendResult) and isinstance(results[2], SendResult)
    error = results[1]
    assert isinstance(error, PermanentError)
    assert (error.code, error.effect) == (str(code), effect)


def test_revoked_token_takes_the_sender_out(channel: CloudApiChannel, cloud: FakeCloudApi) -> None:
    channel.send(msg(1))
    cloud.revoke_token(TOKEN)
    with pytest.raises(SenderUnavailable) as caught:
        channel.send(msg(2))
    assert (caught.value.code, caught.value.state) == ("190", "needs_link")
    assert TOKEN not in str(caught.value)


def test_timeout_after_the_request_went_out_is_transient(cloud: FakeCloudApi) -> None:
    ch = make_channel(cloud, timeout=1)
    try:
        cloud.hang_next(1, 4)
        with pytest.raises(TransientError) as caught:
            ch.send(msg(1))
        assert caught.value.code == "timeout"
        assert len(cloud.sent) == 1  # it did reach Meta: the callback data will settle it
        assert ch.send(msg(2)).provider_message_id == cloud.sent[1]["wamid"]
    finally:
        ch.close()


def test_unreachable_meta_is_transient(cloud: FakeCloudApi) -> None:
    ch = CloudApiChannel(
        ChannelConfig(
            "c", settings(), options={"cloud_api_url": f"http://127.0.0.1:{closed_port()}"}
        )
    )
    try:
        with pytest.raises(TransientError) as caught:
            ch.send(msg(1))
        assert caught.value.code == "connect_failed"
    finally:
        ch.close()


def test_sender_without_token_is_unavailable(cloud: FakeCloudApi) -> None:
    ch = CloudApiChannel(ChannelConfig("c", {"phone_number_id": PNID}, options=options(cloud)))
    with pytest.raises(SenderUnavailable, match="no access token"):
        ch.send(msg(1))
    assert cloud.sent == []
    assert ch.reconcile(msg(1)) == "unknown"


# --- batches ----------------------------------------------------------------------------


def test_batch_of_500_answers_in_order(channel: CloudApiChannel, cloud: FakeCloudApi) -> None:
    cloud.reject_recipient(phone(123), 131026)
    messages = [msg(i) for i in range(500)]
    messages[77] = msg(77, text="x" * 5000)  # refused before Meta
    results = channel.send_batch(messages)
    assert len(results) == 500
    assert isinstance(results[77], PermanentError) and results[77].code == "text_too_long"
    assert isinstance(results[123], PermanentError) and results[123].code == "131026"
    sent = by_callback(cloud)
    assert len(sent) == 498
    for i, result in enumerate(results):
        if i in (77, 123):
            continue
        assert isinstance(result, SendResult)
        assert result.provider_message_id == sent[str(i)]["wamid"]
        assert sent[str(i)]["to"] == phone(i)


def test_batch_keeps_many_but_at_most_max_in_flight(cloud: FakeCloudApi) -> None:
    ch = make_channel(cloud, max_in_flight=16)
    hang = 2.0
    cloud.hang_next(32, hang)
    try:
        results = ch.send_batch([msg(i) for i in range(32)])
    finally:
        ch.close()
    assert all(isinstance(r, SendResult) for r in results)
    times = sorted(s["at"] for s in cloud.sent)
    # One at a time, the 16th could not start before 15 answers had each waited `hang`.
    assert times[15] - times[0] < 15 * hang / 2
    # The 17th waits for an answer: at most 16 in flight.
    assert times[16] - times[0] >= hang * 0.9


def test_close_during_a_batch_lets_the_requests_in_flight_finish(cloud: FakeCloudApi) -> None:
    ch = make_channel(cloud, max_in_flight=2)
    cloud.hang_next(10, 2)
    out: list[list[Any]] = []
    worker = threading.Thread(target=lambda: out.append(ch.send_batch([msg(i) for i in range(10)])))
    worker.start()
    cloud.wait_for(lambda: len(cloud.sent) >= 2)
    ch.close()
    worker.join(60)
    [results] = out
    sent = by_callback(cloud)
    for i, result in enumerate(results):
        if str(i) in sent:  # went out before the close: answered, not cut
            assert isinstance(result, SendResult)
            assert result.provider_message_id == sent[str(i)]["wamid"]
        else:
            assert isinstance(result, TransientError) and result.code == "closed"
    assert 2 <= len(sent) < 10


def test_close_then_send_again(channel: CloudApiChannel, cloud: FakeCloudApi) -> None:
    channel.send(msg(1))
    channel.close()
    channel.close()
    assert channel.send(msg(2)).provider_message_id == cloud.sent[1]["wamid"]


# --- the Marketing Messages API ---------------------------------------------------------


def _marketing_template(fake: FakeCloudApi) -> TemplateCall:
    fake.add_template(WABA, "promo", "en", components=[{"type": "BODY", "text": "Hi {{1}}"}])
    fake.add_template(
        WABA, "receipt", "en", category="UTILITY", components=[{"type": "BODY", "text": "Paid"}]
    )
    return TemplateCall(name="promo", language="en", body=((None, "Ana"),), marketing=True)


def test_marketing_messages_when_onboarded(fake_cloud: FakeCloudApi) -> None:
    fake_cloud.add_number(
        phone_number_id=PNID,
        waba_id=WABA,
        token=TOKEN,
        app_secret="s",
        marketing_messages_onboarded=True,
    )
    call = _marketing_template(fake_cloud)
    ch = make_channel(fake_cloud, use_marketing_messages=True, marketing_ttl_seconds=86_400)
    try:
        result = ch.send(msg(1, template=call))
        ch.send(msg(2, template=TemplateCall(name="receipt", language="en")))
    finally:
        ch.close()
    assert result == SendResult(fake_cloud.sent[0]["wamid"], None)
    assert [s["endpoint"] for s in fake_cloud.sent] == ["marketing_messages", "messages"]
    assert fake_cloud.sent[0]["body"]["ttl"] == 86_400


def test_marketing_messages_fall_back_when_not_onboarded(cloud: FakeCloudApi) -> None:
    call = _marketing_template(cloud)
    ch = make_channel(cloud, use_marketing_messages=True, marketing_ttl_seconds=86_400)
    try:
        first = ch.send(msg(1, template=call))
        rejected = cloud.rejected
        second = ch.send(msg(2, template=call))
    finally:
        ch.close()
    assert [s["endpoint"] for s in cloud.sent] == ["messages", "messages"]
    assert "ttl" not in cloud.sent[0]["body"]
    assert first.provider_message_id == cloud.sent[0]["wamid"]
    for result in (first, second):
        assert result.detail is not None and result.detail.startswith("marketing_fallback: ")
        assert "not onboarded" in result.detail
    assert cloud.rejected == rejected == 1  # the second went straight to /messages


def test_marketing_messages_off_by_default(channel: CloudApiChannel, cloud: FakeCloudApi) -> None:
    channel.send(msg(1, template=_marketing_template(cloud)))
    assert cloud.sent[0]["endpoint"] == "messages"


# --- the account: connection, templates, media ------------------------------------------


def test_check_connection(cloud: FakeCloudApi) -> None:
    info = account.check_connection(settings(), options(cloud))
    assert (info.display_name, info.display_phone) == ("Acme Shop", "+15550001111")
    assert (info.quality_rating, info.throughput_level, info.messaging_tier) == (
        "GREEN",
        "HIGH",
        "TIER_250",
    )
    assert info.raw["id"] == PNID
    assert info.account_name


@pytest.mark.parametrize(
    ("change", "kind", "words"),
    [
        ({"access_token": "EAAG-wrong-token-0000"}, "token", "access token is not valid"),
        ({"phone_number_id": "999"}, "number", "no phone number with id 999"),
        ({"waba_id": "888"}, "account", "no WhatsApp Business Account with id 888"),
        ({"access_token": ""}, "missing", "no access token"),
    ],
)
def test_check_connection_says_what_is_wrong(
    cloud: FakeCloudApi, change: dict[str, str], kind: str, words: str
) -> None:
    with pytest.raises(account.AccountError, match=words) as caught:
        account.check_connection(settings(**change), options(cloud))
    assert caught.value.kind == kind
    assert "EAAG" not in str(caught.value)


def test_check_connection_revoked_token(cloud: FakeCloudApi) -> None:
    cloud.revoke_token(TOKEN)
    with pytest.raises(account.AccountError, match="not valid or has expired"):
        account.check_connection(settings(), options(cloud))


def test_check_connection_unreachable() -> None:
    port = closed_port()
    with pytest.raises(account.AccountError, match="could not be reached") as caught:
        account.check_connection(settings(), {"cloud_api_url": f"http://127.0.0.1:{port}"})
    assert caught.value.kind == "unreachable"


def test_list_templates_follows_pages(cloud: FakeCloudApi) -> None:
    for i in range(230):
        cloud.add_template(WABA, f"t{i:03d}", "en_US", components=[{"type": "BODY", "text": "Hi"}])
    cloud.add_template(
        WABA,
        "named",
        "es",
        category="UTILITY",
        components=[{"type": "BODY", "text": "Hola {{nombre}}"}],
        parameter_format="NAMED",
        status="PAUSED",
        quality="YELLOW",
    )
    found = account.list_templates(settings(), options(cloud))
    assert len(found) == 231
    assert {t.name for t in found} == {f"t{i:03d}" for i in range(230)} | {"named"}
    named = next(t for t in found if t.name == "named")
    assert (
        named.language,
        named.category,
        named.status,
        named.quality,
        named.parameter_format,
    ) == (
        "es",
        "UTILITY",
        "PAUSED",
        "YELLOW",
        "named",
    )
    assert named.components == [{"type": "BODY", "text": "Hola {{nombre}}"}]
    assert named.provider_id
    plain = next(t for t in found if t.name == "t000")
    assert plain.parameter_format == "positional"


def test_list_templates_of_an_account_the_token_cannot_see(cloud: FakeCloudApi) -> None:
    with pytest.raises(account.AccountError, match="lacks a permission") as caught:
        account.list_templates(settings(waba_id="777"), options(cloud))
    assert caught.value.kind == "permission"


def test_upload_refusals(cloud: FakeCloudApi, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with big.open("wb") as fh:
        fh.truncate(5 * 1024 * 1024 + 1)
    with pytest.raises(
        account.AccountError, match=r"photo is 5\.0 MB; WhatsApp takes photos up to 5 MB"
    ):
        account.upload_media(settings(), options(cloud), big, "image/png", "big.png")
    with pytest.raises(account.AccountError, match="only as stickers"):
        upload(cloud, tmp_path, b"RIFF", "image/webp", "a.webp")
    with pytest.raises(account.AccountError, match="does not accept application/zip"):
        upload(cloud, tmp_path, b"PK", "application/zip", "a.zip")
    with pytest.raises(account.AccountError, match="missing"):
        account.upload_media(
            settings(), options(cloud), tmp_path / "gone.pdf", "application/pdf", "gone.pdf"
        )
    # Meta's own refusal (the bytes are not a PNG), with its details.
    with pytest.raises(
        account.AccountError, match=r"could not use the attached file.*\["
    ) as caught:
        upload(cloud, tmp_path, b"\xff\xd8\xff" + b"0" * 50, "image/png", "fake.png")
    assert caught.value.code == "131053"
    assert cloud.media == {}
