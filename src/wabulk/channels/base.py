"""The channel interface: what the dispatcher hands a channel and what it gets back.

- A channel receives a plain `OutgoingMessage` and returns a `SendResult`, or raises one
  of the three errors below. The dispatcher maps them onto the message state machine
  (DESIGN §3): permanent → `failed`, transient → retried with backoff, unavailable → the
  message goes back to the queue and the sender is taken out of rotation.
- `prepare` lets a slow channel (a browser opening a chat) get the next recipient ready
  while the pacing delay of the current one runs.
- `reconcile` answers, after a crash, whether a message whose outcome was lost reached
  the recipient. "unknown" is an honest answer: duplicates are worse than a visible gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

Reconciled = Literal["sent", "not_sent", "unknown"]


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one phone: everything a channel needs, nothing it must not see."""

    message_id: int  # ours; channels echo it so a crash can be reconciled
    phone: str  # E.164
    text: str
    media_path: Path | None = None
    media_name: str | None = None
    media_mime: str | None = None
    # For documents: send the text as a separate message after the file (the default),
    # or before it. Images and videos carry the text as their caption.
    text_after_document: bool = True


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None
    detail: str | None = None


class ChannelError(Exception):
    """Base of what a channel may raise; `code` is the provider's, kept for the operator."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentError(ChannelError):
    """This message can never succeed (number not on WhatsApp, media refused)."""


class TransientError(ChannelError):
    """Worth retrying later; `retry_after` (seconds) when the provider says how long."""

    def __init__(
        self, message: str, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class SenderUnavailable(ChannelError):
    """The account cannot send at all right now (logged out, token revoked, in use)."""

    def __init__(self, message: str, code: str | None = None, state: str = "needs_link") -> None:
        super().__init__(message, code)
        self.state = state


@dataclass
class ChannelConfig:
    """What a channel gets at construction: the sender's name and channel settings."""

    sender_name: str
    settings: dict[str, object] = field(default_factory=dict)
    instance_path: Path = Path("instance")


class Channel(Protocol):
    def prepare(self, message: OutgoingMessage) -> None:
        """Get ready to send `message` (may be a no-op); errors surface at `send`."""

    def send(self, message: OutgoingMessage) -> SendResult: ...

    def reconcile(self, message: OutgoingMessage) -> Reconciled: ...

    def close(self) -> None: ...
