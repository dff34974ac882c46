"""The WhatsApp Web channel in real Chromium + ChromeDriver against the local stand-in.

Each failure mode of the page ends in the engine error the issue names; texts arrive
byte-exact; a crash after the click is reconciled instead of sent twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wabulk.channels.base import (
    NOT_ON_WHATSAPP,
    OutgoingMessage,
    PermanentError,
    SenderUnavailable,
    TransientError,
    Unconfirmed,
)
from wabulk.channels.whatsapp_web import selectors
from wabulk.channels.whatsapp_web.channel import screenshots_folder

from ..fakes.whatsapp_web import FakeWhatsAppWeb
from ..web_channel_support import (
    ACCOUNT,
    image_file,
    link,
    open_channel,
    pdf_file,
    text_message,
    wait_for,
)

pytestmark = pytest.mark.browser

TEXTS = [
    "Hello Asha 😀👍🏽 your order is ready",
    "Line one\nLine two\n\nAfter a blank line",
    "Café crème, niño, Zoë, Ångström",
    "مرحبا أحمد، طلبك جاهز",  # Arabic, right to left
    "Pay 100+50 = 150 & save #5 at 20% off ?ref=a&b=c",
    "नमस्ते 🙏 Diwali offer: ₹499 only",
]


def received(fake: FakeWhatsAppWeb) -> list[tuple[str, str, str]]:
    return [(m["phone"], m["kind"], m["text"]) for m in fake.messages()]


def test_linking_by_qr_survives_a_browser_restart(fake: FakeWhatsAppWeb, tmp_path: Path) -> None:
    channel = open_channel(tmp_path, fake)
    try:
        status = channel.link_status()
        assert status.kind == "qr"
        assert status.qr_png and status.qr_png.startswith("data:image/png;base64,")
        link(channel, fake)
        assert channel.link_status().phone == ACCOUNT
    finally:
        channel.close()
    # A new browser on the same profile folder is still logged in: no second scan.
    again = open_channel(tmp_path, fake)
    try:
        status = again.link_status()
        assert status.kind == "linked" and status.phone == ACCOUNT
        assert fake.pending_qr() == []
    finally:
        again.close()


def test_texts_arrive_byte_exact(fake: FakeWhatsAppWeb, tmp_path: Path) -> None:
    channel = open_channel(tmp_path, fake)
    try:
        link(channel, fake)
        for i, text in enumerate(TEXTS, start=1):
            message = text_message(i, f"+9198123450{i:02d}", text)
            channel.prepare(message)
            result = channel.send(message)
            assert result.provider_message_id  # WhatsApp's id for the bubble
    finally:
        channel.close()
    assert received(fake) == [
        (f"9198123450{i:02d}", "text", text) for i, text in enumerate(TEXTS, start=1)
    ]


def test_attachments_as_media_with_caption_and_as_documents(
    fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    image, pdf = image_file(tmp_path), pdf_file(tmp_path)
    caption = "Our new menu 😀\nOpen till 10 pm"
    channel = open_channel(tmp_path, fake)
    try:
        link(channel, fake)
        channel.send(OutgoingMessage(1, "+919812300001", caption, image, "menu.png", "image/png"))
        channel.send(
            OutgoingMessage(2, "+919812300002", "Video caption", image, "clip.mp4", "video/mp4")
        )
        channel.send(
            OutgoingMessage(
                3, "+919812300003", "Prices inside 👇", pdf, "Price list.pdf", "application/pdf"
            )
        )
        channel.send(
            OutgoingMessage(
                4,
                "+919812300004",
                "Read this first",
                pdf,
                "Price list.pdf",
                "application/pdf",
                text_after_document=False,
            )
        )
    finally:
        channel.close()
    got = fake.messages()
    kinds = [(m["phone"], m["kind"], m["text"], m["filename"]) for m in got]
    assert kinds == [
        ("919812300001", "media", caption, "menu.png"),
        ("919812300002", "media", "Video caption", "clip.mp4"),
        ("919812300003", "document", "", "Price list.pdf"),
        ("919812300003", "text", "Prices inside 👇", None),
        ("919812300004", "text", "Read this first", None),
        ("919812300004", "document", "", "Price list.pdf"),
    ]
    assert got[0]["size"] == image.stat().st_size
    assert got[2]["size"] == pdf.stat().st_size


def test_invalid_number_is_permanent_and_named(fake: FakeWhatsAppWeb, tmp_path: Path) -> None:
    fake.set(unregistered=["919811111111"])
    channel = open_channel(tmp_path, fake)
    try:
        link(channel, fake)
        with pytest.raises(PermanentError) as caught:
            channel.send(text_message(1, "+919811111111", "hello"))
        assert caught.value.code == NOT_ON_WHATSAPP
        assert "not on WhatsApp" in str(caught.value)
        # The next chat still works in the same browser.
        channel.send(text_message(2, "+919811111112", "hello"))
    finally:
        channel.close()
    assert received(fake) == [("919811111112", "text", "hello")]


def test_logged_out_and_use_here_make_the_sender_unavailable(
    fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    channel = open_channel(tmp_path, fake)
    try:
        link(channel, fake)
        fake.set(use_here=True)
        with pytest.raises(SenderUnavailable) as in_use:
            channel.send(text_message(1, "+919812300001", "one"))
        assert in_use.value.state == "in_use"
        # Taking the session back ("Use here") from the Senders page.
        channel.close()
        # The fresh page restores its session slowly: the first look still gets the answer.
        fake.set(session_delay=1.5)
        status = channel.link_status(takeover=True)
        assert status.kind == "linked"
        channel.send(text_message(2, "+919812300002", "two"))
        fake.logout()
        with pytest.raises(SenderUnavailable) as logged_out:
            channel.send(text_message(3, "+919812300003", "three"))
        assert logged_out.value.state == "needs_link"
    finally:
        channel.close()
    assert received(fake) == [("919812300002", "text", "two")]


def test_a_hanging_page_restarts_the_browser_once_then_is_transient(
    fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    channel = open_channel(tmp_path, fake, timeout=3)
    try:
        link(channel, fake)
        fake.set(hang=True)
        with pytest.raises(TransientError) as caught:
            channel.send(text_message(1, "+919812300001", "one"))
        assert "twice" in str(caught.value)
        fake.set(hang=False)
        channel.send(text_message(2, "+919812300002", "two"))  # the lane's retry works
    finally:
        channel.close()
    assert received(fake) == [("919812300002", "text", "two")]


@pytest.mark.parametrize("fault", ["kill_renderer_after", "kill_browser_after"])
def test_a_browser_crash_after_the_click_is_reconciled_not_resent(
    fake: FakeWhatsAppWeb, tmp_path: Path, fault: str
) -> None:
    channel = open_channel(tmp_path, fake)
    try:
        link(channel, fake)
        fake.set(**{fault: 1, "kill_profile": str(channel.browser_options.user_data_dir)})
        result = channel.send(text_message(1, "+919812300001", "exactly once"))
        assert result.detail == "confirmed after a browser restart"
        channel.send(text_message(2, "+919812300002", "next one"))
    finally:
        channel.close()
    assert received(fake) == [
        ("919812300001", "text", "exactly once"),
        ("919812300002", "text", "next one"),
    ]


def test_reconcile_answers_sent_not_sent_and_unknown(fake: FakeWhatsAppWeb, tmp_path: Path) -> None:
    channel = open_channel(tmp_path, fake)
    try:
        link(channel, fake)
        channel.send(text_message(1, "+919812300001", "Hi 😀\nsee you"))
        assert channel.reconcile(text_message(1, "+919812300001", "Hi 😀\nsee you")) == "sent"
        assert channel.reconcile(text_message(2, "+919812300001", "never sent")) == "not_sent"
        fake.logout()
        assert channel.reconcile(text_message(1, "+919812300001", "Hi 😀\nsee you")) == "unknown"
    finally:
        channel.close()


# The clock each variant shows while WhatsApp has not taken a message yet.
PENDING_ICON = {"current": "msg-time", "older": "msg-time", "v2026": "msg-clock"}


@pytest.mark.parametrize("variant", ["current", "older", "v2026"])
def test_the_send_path_works_on_every_variant_of_the_page(
    fake: FakeWhatsAppWeb, tmp_path: Path, variant: str
) -> None:
    """One browser per variant: text, photo with caption, document with text after it,
    an invalid number, reconcile, and a message whose clock never goes."""
    fake.set(variant=variant, unregistered=["919811111111"])
    image, pdf = image_file(tmp_path), pdf_file(tmp_path)
    text = "Hello Asha 😀👍🏽\nLine two\n\nAfter a blank line & 20% off"
    caption = "Our new menu 😀\nOpen till 10 pm"
    channel = open_channel(tmp_path, fake)
    try:
        link(channel, fake)
        assert channel.send(text_message(1, "+919812300001", text)).provider_message_id
        channel.send(OutgoingMessage(2, "+919812300002", caption, image, "menu.png", "image/png"))
        # The text is prefilled in the chat while the document's preview is open: the
        # preview's own send button must be the one clicked.
        channel.send(
            OutgoingMessage(
                3, "+919812300003", "Prices inside 👇", pdf, "Price list.pdf", "application/pdf"
            )
        )
        with pytest.raises(PermanentError) as invalid:
            channel.send(text_message(4, "+919811111111", "hello"))
        assert invalid.value.code == NOT_ON_WHATSAPP
        assert channel.reconcile(text_message(1, "+919812300001", text)) == "sent"

        # WhatsApp takes the message but its clock never goes: not sent, whatever the clock
        # looks like (the 2026 one is msg-clock, once counted as sent at once).
        fake.set(ack_delay=600)
        pending = text_message(5, "+919812300005", "still on the clock")
        channel.prepare(pending)
        assert channel.page is not None
        wait_for(lambda: channel.page.state() == "chat", what="the prepared chat")
        channel.timeout = 2  # the product's wait for the clock, not a timing threshold
        with pytest.raises(Unconfirmed):
            channel.send(pending)
        icon = f'#main span[data-icon="{PENDING_ICON[variant]}"]'
        assert channel.page.driver.find_elements("css selector", icon)
    finally:
        channel.close()
    got = [(m["phone"], m["kind"], m["text"], m["filename"]) for m in fake.messages()]
    assert got == [
        ("919812300001", "text", text, None),
        ("919812300002", "media", caption, "menu.png"),
        ("919812300003", "document", "", "Price list.pdf"),
        ("919812300003", "text", "Prices inside 👇", None),
        ("919812300005", "text", "still on the clock", None),
    ]


def test_an_unexpected_page_is_a_transient_error_with_a_screenshot(
    fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    channel = open_channel(tmp_path, fake, timeout=4)
    try:
        link(channel, fake)
        channel.close()
        # Now every "app ready" hook is wrong, as after a WhatsApp markup change.
        channel.selectors = dict(channel.selectors) | {
            "logged_in": ("#renamed-side",),
            "qr_canvas": ("#renamed-qr",),
        }
        with pytest.raises(TransientError) as caught:
            channel.send(text_message(1, "+919812300001", "hello"))
    finally:
        channel.close()
    shot = caught.value.screenshot
    assert shot is not None and shot.parent == screenshots_folder(tmp_path)
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert fake.messages() == []


def test_selector_overrides_go_first_and_bad_files_are_explained(tmp_path: Path) -> None:
    path = tmp_path / selectors.OVERRIDES_FILE
    path.write_text(json.dumps({"send_button": ['span[data-icon="send-v3"]']}))
    loaded = selectors.load(tmp_path)
    assert loaded["send_button"][0] == 'span[data-icon="send-v3"]'
    assert set(selectors.DEFAULTS["send_button"]) <= set(loaded["send_button"])
    path.write_text(json.dumps({"sned_button": ["x"]}))
    with pytest.raises(selectors.SelectorFileError, match="unknown element 'sned_button'"):
        selectors.load(tmp_path)
    path.write_text("{not json")
    with pytest.raises(selectors.SelectorFileError, match="not valid JSON"):
        selectors.load(tmp_path)


def test_an_existing_chrome_profile_is_used_and_never_taken_from_an_open_chrome(
    fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    # A Chrome profile where WhatsApp Web is already logged in (made here by linking once).
    first = open_channel(tmp_path / "theirs", fake)
    link(first, fake)
    profile = first.browser_options.user_data_dir
    mine = open_channel(
        tmp_path / "ours", fake, user_data_dir=str(profile), profile_directory="Default"
    )
    try:
        assert mine.link_status().kind == "linked"  # no scan: the login came with the profile
        mine.send(text_message(1, "+919812300001", "from their own Chrome"))
        # While that Chrome is open, a second one on the same profile is refused, clearly.
        other = open_channel(
            tmp_path / "other", fake, user_data_dir=str(profile), profile_directory="Default"
        )
        with pytest.raises(SenderUnavailable) as caught:
            other.link_status()
        assert caught.value.state == "browser_failed"
        assert "open in another Chrome window" in str(caught.value)
    finally:
        mine.close()
    assert not (tmp_path / "ours" / "browsers").exists()  # nothing made beside their profile
    assert received(fake) == [("919812300001", "text", "from their own Chrome")]


def test_an_unreachable_whatsapp_web_is_named_as_such_not_as_a_broken_browser(
    tmp_path: Path,
) -> None:
    closed = FakeWhatsAppWeb()
    closed.start()
    closed.stop()  # its port is now refused, as WhatsApp Web is on a machine with no internet
    channel = open_channel(tmp_path, closed, timeout=5)
    try:
        with pytest.raises(SenderUnavailable) as linking:
            channel.link_status()
        assert "could not be reached from this machine" in str(linking.value)
        assert "net::ERR_CONNECTION_REFUSED" in str(linking.value)
        with pytest.raises(TransientError) as sending:
            channel.send(text_message(1, "+919812300001", "hello"))
        assert sending.value.code == "unreachable"
        assert channel.reconcile(text_message(1, "+919812300001", "hello")) == "unknown"
    finally:
        channel.close()
