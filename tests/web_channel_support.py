"""Helpers for tests that drive the real WhatsApp Web channel (Selenium + Chromium)
against the local stand-in in tests/fakes/whatsapp_web."""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image

from wabulk.channels.base import ChannelConfig, OutgoingMessage
from wabulk.channels.whatsapp_web import WhatsAppWebChannel

from .fakes.whatsapp_web import FakeWhatsAppWeb

ACCOUNT = "+919876543210"


def options(fake: FakeWhatsAppWeb, timeout: float = 8) -> dict[str, object]:
    return {"whatsapp_web_url": fake.url, "browser_timeout": timeout}


def open_channel(
    instance: Path, fake: FakeWhatsAppWeb, name: str = "Phone 1", timeout: float = 8, **settings
) -> WhatsAppWebChannel:  # type: ignore[no-untyped-def]
    return WhatsAppWebChannel(ChannelConfig(name, settings, instance, options(fake, timeout)))


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def link(channel: WhatsAppWebChannel, fake: FakeWhatsAppWeb, phone: str = ACCOUNT) -> None:
    """Show the QR, scan it on the stand-in, and wait until the channel sees the account."""
    wait_for(lambda: channel.link_status().kind == "qr" and fake.pending_qr(), what="the QR")
    assert fake.scan(phone=phone)
    wait_for(lambda: channel.link_status().kind == "linked", what="the link")
    # As the product does after linking: a clean quit writes the login to the profile
    # (Chrome writes it lazily, and a browser killed seconds later would forget it).
    channel.close()


def image_file(folder: Path) -> Path:
    path = folder / "d6d3aa-image"  # stored by hash, as the product stores media
    Image.new("RGB", (48, 32), (220, 40, 40)).save(path, "PNG")
    return path


def pdf_file(folder: Path) -> Path:
    path = folder / "5a83bb-pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    return path


def text_message(message_id: int, phone: str, text: str) -> OutgoingMessage:
    return OutgoingMessage(message_id=message_id, phone=phone, text=text)
