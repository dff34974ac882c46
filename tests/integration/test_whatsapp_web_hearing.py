"""The WhatsApp Web channel hears back, in real Chromium against the stand-in: ticks read
from the chat list, replies read by opening only the chats of numbers it hears from,
unknown messages settled from their chat, and limit banners stopping the sender before
it clicks anything. Every markup variant."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from wabulk.channels.base import ChannelConfig, OutgoingMessage, SenderUnavailable
from wabulk.channels.heard import Heard, Watch, Watched
from wabulk.channels.whatsapp_web import WhatsAppWebChannel
from wabulk.channels.whatsapp_web.hearing import _READ_LIST, ROWS

from ..fakes.whatsapp_web import FakeWhatsAppWeb
from ..web_channel_support import (
    image_file,
    link,
    open_channel,
    options,
    text_message,
    wait_for,
)

pytestmark = pytest.mark.browser

VARIANTS = ["current", "older", "v2026"]
ASHA, RAVI, MIRA, OMAR = "+919812340001", "+919812340002", "+919812340003", "+919812340004"
STRANGER = "+919812340099"


def digits(phone: str) -> str:
    return phone.lstrip("+")


def hear_until(channel: WhatsAppWebChannel, watch: Watch, done, what: str) -> Heard:  # type: ignore[no-untyped-def]
    """Look until `done(all heard so far)`: the page shows what the stand-in changed on its
    next poll, so one change may take a few looks."""
    heard = Heard()

    def look() -> bool:
        more = channel.hear(watch)
        heard.statuses.extend(more.statuses)
        heard.replies.extend(more.replies)
        heard.not_sent.extend(more.not_sent)
        return bool(done(heard))

    wait_for(look, what=what)
    return heard


def ticks(heard: Heard) -> set[tuple[int | None, str]]:
    return {(u.message_id, u.status) for u in heard.statuses}


def soon() -> float:
    return time.monotonic() + 60


def unread(fake: FakeWhatsAppWeb, phone: str) -> int:
    return next((r["unread"] for r in fake.chats() if r["chat"] == digits(phone)), 0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_ticks_and_replies_from_the_chat_list(
    fake: FakeWhatsAppWeb, tmp_path: Path, variant: str
) -> None:
    fake.set(variant=variant)
    channel = open_channel(tmp_path, fake)
    try:
        link(channel, fake)
        sent = {}
        for i, (phone, text) in enumerate(
            [(ASHA, "Hello Asha, your order is ready"), (RAVI, "Hello Ravi"), (MIRA, "Hi Mira")],
            start=1,
        ):
            sent[i] = channel.send(text_message(i, phone, text)).provider_message_id
        # Typed on the phone after ours: Mira's row shows a tick that is not on our message.
        channel.send(text_message(4, MIRA, "See you at the shop"))
        watched = (
            Watched(3, MIRA, "Hi Mira", sent[3], "sent"),
            Watched(2, RAVI, "Hello Ravi", sent[2], "sent"),
            Watched(1, ASHA, "Hello Asha, your order is ready", sent[1], "sent"),
        )
        watch = Watch(watched, frozenset({ASHA, RAVI, MIRA}), until=soon())
        assert channel.hear(watch).statuses == []  # single ticks: nothing new

        fake.tick(phone=ASHA, status="delivered")
        fake.tick(phone=RAVI, status="read")
        fake.tick(phone=MIRA, status="read")
        heard = hear_until(channel, watch, lambda h: len(h.statuses) >= 2, "ticks")
        assert ticks(heard) == {(1, "delivered"), (2, "read")}  # nothing for Mira
        assert {u.provider_message_id for u in heard.statuses} == {sent[1], sent[2]}

        # Ravi's read message is done: the lane watches the others.
        fake.tick(phone=ASHA, status="read")
        asha_delivered = Watched(1, ASHA, "Hello Asha, your order is ready", sent[1], "delivered")
        later = Watch((watched[0], asha_delivered), watch.reply_phones, until=soon())
        heard = hear_until(channel, later, lambda h: h.statuses, "the read tick")
        assert ticks(heard) == {(1, "read")}

        # Replies: Asha writes text, Ravi a photo; a stranger's chat is never opened.
        channel.prepare(text_message(5, OMAR, "Hello Omar"))
        asha = fake.reply(ASHA, "Thanks! When can I pick it up?")
        ravi = fake.reply(RAVI, "this one?", kind="image")
        fake.reply(STRANGER, "Who is this?")
        wait_for(lambda: all(unread(fake, p) for p in (ASHA, RAVI, STRANGER)), what="the badges")
        heard = hear_until(channel, later, lambda h: len(h.replies) >= 2, "the replies")
        got = {r.phone: r for r in heard.replies}
        assert set(got) == {ASHA, RAVI}
        assert got[ASHA].text == "Thanks! When can I pick it up?" and got[ASHA].kind == "text"
        assert got[ASHA].provider_message_id == asha["data_id"]
        assert got[RAVI].kind == "image" and got[RAVI].text == "this one?"
        assert got[RAVI].provider_message_id == ravi["data_id"]
        assert all(r.at.tzinfo is not None and r.context_id is None for r in heard.replies)
        assert digits(STRANGER) not in fake.opened_chats()
        assert unread(fake, STRANGER) == 1
        assert channel.prepared is None  # a chat was opened over the prepared one

        # Ravi writes while his chat is on screen: the page marks it read at once, no badge.
        # Then the next chat is prepared before any look: his row, the customer's words
        # and no tick of ours, still tells it is new. Heard once: the next look is quiet.
        channel.prepare(text_message(6, RAVI, "Hello again Ravi"))
        wait_for(lambda: unread(fake, RAVI) == 0, what="Ravi's chat on screen")
        again = fake.reply(RAVI, "Also, is it there in blue?")
        wait_for(
            lambda: any(m["id"] == again["id"] and m["read"] for m in fake.incoming()),
            what="the reply marked read on screen",
        )
        channel.prepare(text_message(7, OMAR, "Hello Omar"))  # Ravi's chat leaves the screen
        assert unread(fake, RAVI) == 0
        heard = hear_until(channel, later, lambda h: h.replies, "the reply heard off screen")
        assert [(r.phone, r.provider_message_id) for r in heard.replies] == [
            (RAVI, again["data_id"])
        ]
        assert channel.hear(later).replies == []

        # Reading replies turned off, or past the lane's deadline: no chat is opened.
        channel.prepare(text_message(8, OMAR, "Hello Omar"))  # Ravi's chat leaves the screen
        fake.reply(ASHA, "Hello?")
        wait_for(lambda: unread(fake, ASHA), what="Asha's badge")
        for quiet in (
            Watch(later.messages, later.reply_phones, read_replies=False, until=soon()),
            Watch(later.messages, later.reply_phones, until=time.monotonic() - 1),
        ):
            assert channel.hear(quiet).replies == []
        assert unread(fake, ASHA) == 1
    finally:
        channel.close()


def test_a_saved_name_is_heard_by_its_number_only(fake: FakeWhatsAppWeb, tmp_path: Path) -> None:
    channel = open_channel(tmp_path, fake)
    try:
        link(channel, fake)
        first = channel.send(text_message(1, OMAR, "Hello Omar")).provider_message_id
        channel.prepare(text_message(2, RAVI, "Hello Ravi"))  # Omar's chat leaves the screen
        fake.save_contact(OMAR, "Omar (shop)")
        fake.tick(phone=OMAR, status="delivered")
        watch = Watch(
            (Watched(1, OMAR, "Hello Omar", first, "sent"),), frozenset({OMAR}), until=soon()
        )
        page = channel.page
        assert page is not None
        wait_for(
            lambda: any(
                r["title"] == "Omar (shop)" and r["tick"] == "delivered"
                for r in page.driver.execute_script(
                    _READ_LIST, channel.hearing.script_selectors, ROWS
                )["rows"]
            ),
            what="the name and the tick on the row",
        )
        # The row shows a name: its tick is not matched to anyone by that name alone.
        assert channel.hear(watch).statuses == []

        reply = fake.reply(OMAR, "Sure, thanks")
        heard = hear_until(channel, watch, lambda h: h.replies, "Omar's reply")
        assert [(r.phone, r.text, r.provider_message_id) for r in heard.replies] == [
            (OMAR, "Sure, thanks", reply["data_id"])
        ]
        # Opened, the chat showed our bubble's tick too.
        assert ticks(heard) == {(1, "delivered")}
        assert channel.hearing.names == {"Omar (shop)": digits(OMAR)}
        # From now on the name's row is known to be Omar's number.
        fake.tick(phone=OMAR, status="read")
        delivered = Watch(
            (Watched(1, OMAR, "Hello Omar", first, "delivered"),), frozenset({OMAR}), until=soon()
        )
        heard = hear_until(channel, delivered, lambda h: h.statuses, "the read tick by name")
        assert ticks(heard) == {(1, "read")}
        # Omar's chat is still on screen: what he writes now is read at once, no badge.
        more = fake.reply(OMAR, "One more thing", kind="document", filename="list.pdf")
        heard = hear_until(channel, delivered, lambda h: h.replies, "the reply on screen")
        assert [(r.provider_message_id, r.kind, r.text) for r in heard.replies] == [
            (more["data_id"], "document", "One more thing")
        ]
        assert unread(fake, OMAR) == 0
    finally:
        channel.close()


BANNERS = [
    "Message not sent. Tap for more info.",
    "Too many messages. Try again later.",
    "Your account is temporarily blocked",
    "Mensagem não enviada",
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_limit_banners_stop_the_sender_before_it_clicks(
    fake: FakeWhatsAppWeb, tmp_path: Path, variant: str
) -> None:
    fake.set(variant=variant)
    channel = WhatsAppWebChannel(
        ChannelConfig("Phone 1", {}, tmp_path, {**options(fake), "connect_banner_seconds": 2})
    )
    try:
        link(channel, fake)
        channel.send(text_message(1, ASHA, "Hello Asha"))
        watch = Watch(until=soon())
        for n, words in enumerate(BANNERS, start=10):
            fake.banner(words)
            with pytest.raises(SenderUnavailable) as raised:
                wait_for(lambda: channel.hear(watch) and False, what="the banner")
            stop = raised.value
            assert (stop.state, stop.code) == ("limited", "limit_banner")
            assert words in str(stop) and stop.screenshot and stop.screenshot.exists()
            # send() refuses too, with nothing clicked: a text, and a photo.
            before = len(fake.messages())
            message = text_message(n, RAVI, "Hello Ravi")
            channel.prepare(message)
            with pytest.raises(SenderUnavailable):
                channel.send(message)
            with pytest.raises(SenderUnavailable):
                channel.send(with_photo(n + 100, RAVI, image_file(tmp_path)))
            assert len(fake.messages()) == before
            fake.banner(None)
            wait_for(lambda: not _raises(channel, watch), what="the banner to go")

        # "Trying to connect" is a blip at first, and a stop once it lasts.
        fake.banner("Trying to connect…")
        wait_for(
            lambda: channel.hearing.connecting_since is not None or _raises(channel, watch),
            what="the connecting banner seen",
        )
        assert channel.hearing.connecting_since is not None  # seen, and not a stop yet
        with pytest.raises(SenderUnavailable) as raised:
            wait_for(lambda: channel.hear(watch) and False, what="the connecting stop")
        assert "Trying to connect" in str(raised.value) and raised.value.state == "limited"
        assert time.monotonic() - channel.hearing.connecting_since >= 2
        fake.banner(None)
        wait_for(lambda: not _raises(channel, watch), what="the banner to go")
        assert channel.hearing.connecting_since is None
        assert channel.send(text_message(99, RAVI, "Back again")).provider_message_id
    finally:
        channel.close()


def _raises(channel: WhatsAppWebChannel, watch: Watch) -> bool:
    try:
        channel.hear(watch)
    except SenderUnavailable:
        return True
    return False


def with_photo(message_id: int, phone: str, photo: Path) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message_id,
        phone=phone,
        text="A photo",
        media_path=photo,
        media_name="photo.png",
        media_mime="image/png",
    )


@pytest.mark.parametrize("variant", ["current", "v2026"])
def test_unknown_messages_settled_and_a_clock_is_not_sent(
    fake: FakeWhatsAppWeb, tmp_path: Path, variant: str
) -> None:
    fake.set(variant=variant)
    channel = open_channel(tmp_path, fake)
    try:
        link(channel, fake)
        went = channel.send(text_message(1, ASHA, "Your parcel left today")).provider_message_id
        settle = (
            Watched(1, ASHA, "Your parcel left today", None, "sent"),
            Watched(2, RAVI, "Never clicked", None, "sent"),
            Watched(3, "+919812340000", "Not on WhatsApp", None, "sent"),
        )
        heard = channel.hear(Watch(settle=settle, until=soon()))
        assert [(u.message_id, u.status, u.provider_message_id) for u in heard.statuses] == [
            (1, "sent", went)
        ]
        assert heard.not_sent == [2, 3]
        assert channel.prepared is None
        # Past the deadline nothing is opened to settle.
        assert channel.hear(Watch(settle=settle, until=time.monotonic() - 1)) == Heard()

        # A message still on its clock: the row shows it pending, and no tick is heard.
        fake.set(ack_delay=3)
        message = text_message(4, MIRA, "Still on the clock")
        channel.prepare(message)
        page = channel.page
        assert page is not None
        button = page.wait_find("send_button", 30, clickable=True)
        assert button is not None
        button.click()
        rows = wait_for(
            lambda: [
                r
                for r in page.driver.execute_script(
                    _READ_LIST, channel.hearing.script_selectors, ROWS
                )["rows"]
                if r["preview"] == "Still on the clock"
            ],
            what="the row of the message in flight",
        )
        assert rows[0]["tick"] == "pending"
        pending = Watch((Watched(4, MIRA, "Still on the clock", None, "sent"),), until=soon())
        assert channel.hear(pending).statuses == []

        # Logged out: hearing stops the sender like sending does.
        fake.logout()
        with pytest.raises(SenderUnavailable) as raised:
            wait_for(lambda: channel.hear(Watch()) and False, what="the logout")
        assert raised.value.state == "needs_link"
    finally:
        channel.close()
