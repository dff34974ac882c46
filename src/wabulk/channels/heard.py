"""What a channel hears back, as plain values (DESIGN §8).

A channel (Cloud API webhooks, WhatsApp Web's chat list) turns what it read into these;
`wabulk.inbound` applies them to the database. Neither side knows the other: these
values are the whole contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Status = Literal["sent", "delivered", "read", "failed"]


@dataclass(frozen=True)
class HeardError:
    """An error the provider reported after the send (a failed status, a webhook error).

    The channel fills in what the code means (for the Cloud API from
    `channels.cloud_api.errors.describe`), so `inbound` needs no provider's table:
    `kind` retry | recipient | sender | invalid; `effect` none | opt_out | not_on_whatsapp |
    limited | window; `sentence` for the shop owner.
    """

    code: str
    title: str = ""
    details: str = ""
    kind: str = "recipient"
    effect: str = "none"
    sentence: str = ""


@dataclass(frozen=True)
class StatusUpdate:
    """A message of ours moved: matched by the provider's id, or by our own message id
    (the Cloud API echoes it as `biz_opaque_callback_data`)."""

    status: Status
    at: datetime
    provider_message_id: str | None = None
    message_id: int | None = None
    recipient: str | None = None  # E.164 when the provider gave a number
    recipient_user_id: str | None = None  # the business-scoped user id, when given
    billed_category: str | None = None  # pricing.category when the provider billed it
    errors: tuple[HeardError, ...] = ()


@dataclass(frozen=True)
class Reply:
    """A message a customer sent to one of our senders."""

    at: datetime
    provider_message_id: str | None
    phone: str | None  # E.164; None when the provider sent only the user id
    user_id: str | None = None
    name: str | None = None  # the profile name WhatsApp shows
    kind: str = "text"  # text | button | interactive | image | document | audio | video | …
    text: str | None = None
    payload: str | None = None  # a quick-reply button's payload
    context_id: str | None = None  # the provider id of the message it answers
    errors: tuple[HeardError, ...] = ()


@dataclass(frozen=True)
class AccountUpdate:
    """The provider changed something about the account: quality, tier, throughput."""

    at: datetime
    kind: Literal["quality", "tier", "throughput", "error"]
    quality_rating: str | None = None  # GREEN | YELLOW | RED
    messaging_tier: str | None = None  # TIER_250 … TIER_UNLIMITED
    event: str | None = None  # the provider's own word (FLAGGED, UPGRADE, THROUGHPUT_UPGRADE…)
    errors: tuple[HeardError, ...] = ()


@dataclass(frozen=True)
class OptOutSignal:
    """The user told WhatsApp itself they want no more marketing (Cloud API
    `user_preferences`), or asked to resume it."""

    at: datetime
    phone: str | None
    user_id: str | None = None
    stop: bool = True
    detail: str = ""


@dataclass
class Heard:
    """Everything one delivery (a webhook POST, a look at the chat list) carried, for one
    sender, identified by the provider's account id (the Cloud API phone-number id)."""

    account_id: str | None = None
    statuses: list[StatusUpdate] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    account: list[AccountUpdate] = field(default_factory=list)
    opt_outs: list[OptOutSignal] = field(default_factory=list)
    # `Watch.settle` message ids the channel proved were never sent (their chat lacks them)
    not_sent: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Watched:
    """One recent message of ours whose ticks are still worth reading."""

    message_id: int
    phone: str  # E.164, the recipient
    text: str  # what we sent (the caption, or the file name)
    # the bubble's data-id stored at send ("true_<digits>@c.us_<ID>")
    provider_message_id: str | None
    status: str  # "sent" | "delivered" (read ones are done)


@dataclass(frozen=True)
class Watch:
    """What the lane asks the channel to look for in one look."""

    messages: tuple[Watched, ...] = ()  # newest message per phone, newest first
    # E.164: recipients in the hearing period; only their chats are opened
    reply_phones: frozenset[str] = frozenset()
    read_replies: bool = True  # False: never open a chat to read replies
    until: float = 0.0  # time.monotonic() deadline; after it: no more chat opening
    # `unknown` messages to settle by reading their chat (idle only)
    settle: tuple[Watched, ...] = ()
