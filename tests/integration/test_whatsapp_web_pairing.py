"""Linking WhatsApp Web by phone number, in real Chromium against the stand-in: the channel
asks for the 8-character code, reads it, and sees the account linked once the phone types it."""

from __future__ import annotations

from pathlib import Path

import pytest

from wabulk.channels.base import SenderUnavailable

from ..fakes.whatsapp_web import FakeWhatsAppWeb
from ..fakes.whatsapp_web.pairing import ALPHABET
from ..fakes.whatsapp_web.server import VARIANTS
from ..web_channel_support import ACCOUNT, open_channel, wait_for

pytestmark = pytest.mark.browser


def codes(fake: FakeWhatsAppWeb) -> dict[str, str]:
    """Every code the stand-in handed out, with the number typed for it."""
    with fake.state.lock:
        return {code: p["phone"] for code, p in fake.state.pairings.items()}


# The 2026 build words the link differently, has no test id on it and no form around the
# field, and keeps the code as "K,7,Q,2,…": the fallbacks of the selectors module.
@pytest.mark.parametrize("variant", [v for v in ("current", "v2026") if v in VARIANTS])
def test_link_by_phone_number_shows_the_code_and_links_when_the_phone_types_it(
    fake: FakeWhatsAppWeb, tmp_path: Path, variant: str
) -> None:
    fake.set(variant=variant)
    channel = open_channel(tmp_path, fake)
    try:
        # A number WhatsApp refuses: its words reach the sender, with a picture of the page.
        with pytest.raises(SenderUnavailable) as refused:
            wait_for(lambda: channel.link_status(phone="+12").kind != "loading", what="a look")
        assert refused.value.code == "phone_refused"
        assert "Invalid phone number" in str(refused.value) and "+12" in str(refused.value)
        assert refused.value.screenshot is not None and refused.value.screenshot.exists()

        # The right number: the field's prefilled country code is replaced, not added to.
        status = wait_for(
            lambda: (s := channel.link_status(phone=ACCOUNT)).kind == "code" and s,
            what="the pairing code",
        )
        assert status.code and len(status.code) == 8 and set(status.code) <= set(ALPHABET)
        assert codes(fake) == {status.code: ACCOUNT}
        assert fake.pending_qr() == []  # the QR left the screen
        # Later looks read the same code; they do not ask for another.
        assert channel.link_status(phone=ACCOUNT).code == status.code
        assert len(codes(fake)) == 1

        assert not fake.accept_pairing(phone="+447700900123")  # not the number typed
        wait_for(fake.accept_pairing, what="the phone typing the code")
        linked = wait_for(
            lambda: (s := channel.link_status(phone=ACCOUNT)).kind == "linked" and s,
            what="the link",
        )
        assert linked.phone == ACCOUNT
        assert fake.snapshot()["sessions"] == [ACCOUNT]
    finally:
        channel.close()


def test_asking_for_the_qr_after_a_code_goes_back_to_the_qr(
    fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    channel = open_channel(tmp_path, fake)
    try:
        wait_for(lambda: channel.link_status(phone=ACCOUNT).kind == "code", what="the code")
        status = wait_for(
            lambda: (s := channel.link_status()).kind == "qr" and s, what="the QR again"
        )
        assert status.qr_png and status.qr_png.startswith("data:image/png;base64,")
        wait_for(lambda: fake.scan(phone=ACCOUNT), what="the phone scanning the QR")
        assert wait_for(lambda: channel.link_status().kind == "linked", what="the link")
    finally:
        channel.close()
