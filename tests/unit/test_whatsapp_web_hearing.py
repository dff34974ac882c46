"""What the WhatsApp Web channel makes of what the chat list shows, without a browser:
numbers from row titles and bubble ids, previews against our texts, banners, bubble times,
and which ticks become statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from wabulk.channels.base import ChannelConfig
from wabulk.channels.heard import Heard, Watched
from wabulk.channels.whatsapp_web import WhatsAppWebChannel, selectors
from wabulk.channels.whatsapp_web.hearing import (
    Hearing,
    Row,
    banner_kind,
    bubble_time,
    chat_digits,
    preview_matches,
    title_digits,
)

NOW = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("title", "digits"),
    [
        ("+91 98765 43210", "919876543210"),
        ("\u202a+55 11 91234-5678\u202c", "5511912345678"),
        ("+1 (415) 555-0100", "14155550100"),
        ("Asha Rao", None),
        ("919876543210", None),  # a saved name made of digits is still a name
        ("+91 98765 43210 (shop)", None),
        ("+12", None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_number_title_gives_digits(title: str | None, digits: str | None) -> None:
    assert title_digits(title) == digits


def test_a_chat_number_comes_from_its_bubble_ids() -> None:
    assert chat_digits(["false_919876543210@c.us_3EB0AA", "true_919876543210@c.us_X1"]) == (
        "919876543210"
    )
    assert chat_digits(["false_919876543210@c.us_A", "false_919800000001@c.us_B"]) is None
    assert chat_digits(["false_120363000000@g.us_A_9198@c.us", None]) is None
    assert chat_digits(["false_1234567890@lid_A"]) is None  # hidden numbers stay unknown
    assert chat_digits([]) is None


@pytest.mark.parametrize(
    ("preview", "text", "match"),
    [
        ("Hello Asha, your order is ready", "Hello Asha, your order is ready", True),
        ("Hello Asha, your or…", "Hello Asha, your order is ready", True),
        ("Line one", "Line one\nLine two", True),
        ("Line one Line two", "Line one\nLine two", True),
        ("Sale today", "*Sale* today", True),
        ("Café crème", "Cafe\u0301 cre\u0300me", True),  # NFC either way
        ("See you at 5", "Hello Asha, your order is ready", False),
        ("Hello Asha, your order is ready!", "Hello Asha, your order is ready", False),
        ("…", "Hello", False),
        ("", "Hello", False),
        (None, "Hello", False),
    ],
)
def test_a_preview_shows_our_text(preview: str | None, text: str, match: bool) -> None:
    assert preview_matches(preview, text) is match


@pytest.mark.parametrize(
    ("banner", "kind"),
    [
        ("Message not sent. Tap to learn more", "limit"),
        ("Too many messages", "limit"),
        ("Your account is temporarily blocked", "limit"),
        ("Trying to connect…", "connecting"),
        ("Mensagem não enviada", "limit"),
        ("Demasiados mensajes", "limit"),
        ("संदेश नहीं भेजा गया", "limit"),
        ("Pesan tidak terkirim", "limit"),
        ("Intentando conectar…", "connecting"),
        ("Get notified of new messages", None),
        ("Phone not connected", None),
    ],
)
def test_limit_banners_in_every_language(banner: str, kind: str | None) -> None:
    assert banner_kind(banner) == kind


def test_every_banner_phrase_is_lower_case_with_a_known_kind() -> None:
    for phrase, kind in selectors.LIMIT_BANNERS:
        assert phrase == phrase.casefold().strip() and kind in ("limit", "connecting")


def test_bubble_times_in_the_browsers_time_zone() -> None:
    # India is UTC+5:30: JavaScript's getTimezoneOffset() says -330.
    assert bubble_time("[19:45, 05/12/2026] +91 98765 43210: ", -330, NOW) == datetime(
        2026, 12, 5, 14, 15, tzinfo=UTC
    )
    assert bubble_time("[2:05 pm, 12/5/2026] Asha: ", 0, NOW) == datetime(
        2026, 12, 5, 14, 5, tzinfo=UTC
    )  # month first once day first would lie in the future
    assert bubble_time("[14:05, 2026-12-05] Asha: ", 0, NOW) == datetime(
        2026, 12, 5, 14, 5, tzinfo=UTC
    )
    assert bubble_time("[14:35, 05/12/2026] Asha: ", 0, NOW) == NOW  # never after now
    assert bubble_time(None, 0, NOW) == NOW
    assert bubble_time("no stamp", 0, NOW) == NOW


def test_row_ticks_become_statuses_by_number_and_text_only(tmp_path: Path) -> None:
    channel = WhatsAppWebChannel(ChannelConfig("Phone 1", {}, tmp_path, {}))
    watched = (
        Watched(1, "+919800000001", "Hello Asha", "true_919800000001@c.us_A", "sent"),
        Watched(2, "+919800000002", "Hello Ravi", None, "delivered"),
        Watched(3, "+919800000003", "Hello Mira", None, "sent"),
        Watched(4, "+919800000004", "Hello Omar", None, "sent"),
    )
    channel.hearing.names["Omar (shop)"] = "919800000004"
    rows = [
        Row("+91 98000 00001", "Hello Asha", "delivered", 0),
        Row("+91 98000 00002", "Hello Ravi", "delivered", 0),  # no news
        Row("+91 98000 00003", "Typed on the phone", "read", 0),  # not ours
        Row("Omar (shop)", "Hello Omar", "read", 0),  # a name proven to be this number
        Row("Hello Asha", "Hello Asha", "read", 0),  # a name alone never matches
        Row("+91 98000 00009", "Hello Asha", "read", 0),  # nobody we watch
    ]
    got = channel.hearing.row_statuses(rows, watched, NOW)
    assert [(u.message_id, u.status) for u in got] == [(1, "delivered"), (4, "read")]
    assert got[0].provider_message_id == "true_919800000001@c.us_A" and got[0].at == NOW
    # A clock says nothing; neither does a failed mark.
    pending = [Row("+91 98000 00001", "Hello Asha", t, 0) for t in ("pending", "failed", None)]
    assert channel.hearing.row_statuses(pending, watched, NOW) == []


def test_only_new_replies_are_taken_from_an_open_chat(tmp_path: Path) -> None:
    hearing = WhatsAppWebChannel(ChannelConfig("Phone 1", {}, tmp_path, {})).hearing

    def bubble(ident: str, out: bool, tick: str | None = None) -> dict[str, object]:
        side = "true" if out else "false"
        return {
            "id": f"{side}_919800000001@c.us_{ident}",
            "out": out,
            "text": ident,
            "kind": "text",
            "meta": None,
            "tick": tick,
        }

    def replies(bubbles: list[dict[str, object]], unread: int) -> list[str | None]:
        heard = Heard()
        hearing._read_chat({"bubbles": bubbles, "offset": 0}, unread, "+919800000001", [], heard)
        return [r.text for r in heard.replies]

    old, ours, new1, new2 = (
        bubble("OLD", False),
        bubble("OURS", True, "read"),
        bubble("NEW1", False),
        bubble("NEW2", False),
    )
    assert replies([old, ours, new1, new2], 0) == ["NEW1", "NEW2"]  # after our message
    assert replies([old, ours], 0) == []  # nothing after ours: history is not a reply
    assert replies([old, new1], 0) == []  # no message of ours on screen: unread ones only
    assert replies([bubble("A", False), bubble("B", False)], 1) == ["B"]
    assert replies([old, ours, new1, new2], 0) == []  # each reply is handed over once


def test_a_row_without_a_badge_is_new_when_the_customer_wrote_what_was_not_read(
    tmp_path: Path,
) -> None:
    def hearing() -> Hearing:
        return WhatsAppWebChannel(ChannelConfig("Phone 1", {}, tmp_path, {})).hearing

    first = hearing()
    asha = "919800000001"
    stop = Row("+91 98000 00001", "STOP", None, 0)  # marked read on screen: no badge
    assert first._is_new(Row("+91 98000 00001", "Hi", None, 2), asha)  # a badge
    assert first._is_new(stop, asha)
    assert not first._is_new(Row("+91 98000 00001", "Hello Asha", "read", 0), asha)  # ours
    assert not first._is_new(stop, None)  # a name not proven to be a number we hear from
    first._heard_up_to(asha, stop)
    assert not first._is_new(stop, asha)  # read up to it
    assert first._is_new(Row("+91 98000 00001", "STOP please", None, 0), asha)
    # After a restart the chat is opened once more: its replies are stored once by id.
    assert hearing()._is_new(stop, asha)
