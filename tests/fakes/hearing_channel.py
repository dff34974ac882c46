"""A channel that hears back on cue, to test how the engine reads ticks and replies.

Registered only by the tests that use it, in place of WhatsApp Web. `HearingChannel.phone`
is what the account's phone shows, as the test sets it: ticks on our messages, customers'
unread replies, a limit banner, which `unknown` messages their chat holds. `hear` answers
a `Watch` the way the real channel does: ticks only for the messages asked about, replies
only from the recipients named and only while it may open chats, a banner as
`SenderUnavailable(state="limited")`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from wabulk.channels.base import (
    ChannelConfig,
    OutgoingMessage,
    Reconciled,
    SenderUnavailable,
    SendResult,
    Unconfirmed,
)
from wabulk.channels.heard import Heard, Reply, StatusUpdate, Watch

RANK = {"unknown": 0, "sent": 1, "delivered": 2, "read": 3}
SHOT = Path("20261205T201500-limit-banner.png")


def provider_id(message: OutgoingMessage) -> str:
    return f"true_{message.phone.lstrip('+')}@c.us_3EB0{message.message_id:08d}"


@dataclass
class Phone:
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    sent: list[OutgoingMessage] = field(default_factory=list)
    ticks: dict[int, str] = field(default_factory=dict)  # message id → delivered | read
    inbox: list[tuple[str, str]] = field(default_factory=list)  # unread (phone, text)
    banner: str | None = None
    unconfirmed: set[int] = field(default_factory=set)  # sends that end unknown
    in_chat: set[int] = field(default_factory=set)  # unknown messages the chat shows
    not_in_chat: set[int] = field(default_factory=set)  # unknown ones it proves never went
    watches: list[Watch] = field(default_factory=list)
    budgets: list[float] = field(default_factory=list)  # seconds a look was given
    looks_at: list[datetime] = field(default_factory=list)
    # Seconds each preparation of a chat takes, in turn, on the browser's own stopwatch
    # (`worked`; a lane's `stopwatch` in the tests that time preparations).
    prepare_takes: list[float] = field(default_factory=list)
    worked: float = 0.0
    opened: list[str] = field(default_factory=list)  # chats opened (marked read)
    sends_at: list[datetime] = field(default_factory=list)
    on_send: Callable[[Phone, OutgoingMessage], None] | None = None
    ids: itertools.count = field(default_factory=itertools.count)

    def reply(self, phone: str, text: str) -> None:
        self.inbox.append((phone, text))


class HearingChannel:
    phone = Phone()

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self.prepared: int | None = None

    def prepare(self, message: OutgoingMessage) -> None:
        if self.phone.prepare_takes:
            self.phone.worked += self.phone.prepare_takes.pop(0)
        self.prepared = message.message_id

    def _limited(self) -> None:
        if self.phone.banner:
            raise SenderUnavailable(
                f"WhatsApp shows: \u201c{self.phone.banner}\u201d",
                code="limit_banner",
                state="limited",
                screenshot=SHOT,
            )

    def send(self, message: OutgoingMessage) -> SendResult:
        self._limited()
        self.prepared = None
        phone = self.phone
        phone.sends_at.append(phone.now())
        if message.message_id in phone.unconfirmed:
            raise Unconfirmed("The browser closed before the message showed its tick.")
        phone.sent.append(message)
        if phone.on_send is not None:
            phone.on_send(phone, message)
        return SendResult(provider_message_id=provider_id(message))

    def hear(self, watch: Watch) -> Heard:
        phone = self.phone
        phone.watches.append(watch)
        phone.budgets.append(watch.until - time.monotonic())
        phone.looks_at.append(phone.now())
        self._limited()
        at = phone.now()
        heard = Heard()
        for w in watch.messages:
            tick = phone.ticks.get(w.message_id)
            if tick and RANK[tick] > RANK[w.status]:
                heard.statuses.append(
                    StatusUpdate(
                        tick, at, provider_message_id=w.provider_message_id, message_id=w.message_id
                    )
                )
        may_open = time.monotonic() < watch.until
        if watch.read_replies and may_open:
            unread, phone.inbox = phone.inbox, []
            for number, text in unread:
                if number not in watch.reply_phones:
                    phone.inbox.append((number, text))  # a stranger's chat stays closed
                    continue
                self._open(number)
                heard.replies.append(
                    Reply(
                        at,
                        f"false_{number.lstrip('+')}@c.us_3EB1{next(phone.ids):08d}",
                        number,
                        text=text,
                    )
                )
        for w in watch.settle if may_open else ():
            if w.message_id in phone.in_chat:
                self._open(w.phone)
                heard.statuses.append(StatusUpdate("sent", at, message_id=w.message_id))
            elif w.message_id in phone.not_in_chat:
                self._open(w.phone)
                heard.not_sent.append(w.message_id)
        return heard

    def _open(self, number: str) -> None:
        self.phone.opened.append(number)
        self.prepared = None

    def reconcile(self, message: OutgoingMessage) -> Reconciled:
        return "unknown"

    def close(self) -> None:
        pass
