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

# The PermanentError code for a number with no WhatsApp account, whichever channel found
# it out: the contact is flagged and later campaigns skip it until someone clears the flag.
NOT_ON_WHATSAPP = "not_on_whatsapp"


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one phone: everything a channel needs, nothing it must not see."""

    message_id: int  # ours; channels echo it so a crash can be reconciled
    phone: str  # E.164
    text: str
    media_path: Path | None = None
    media_name: str | None = None
    media_mime: str | None = None
    # The provider's id for the file once uploaded to this sender's account (Cloud API),
    # so a campaign's photo is uploaded once, not once per recipient.
    media_ref: str | None = None
    # For documents: send the text as a separate message after the file (the default),
    # or before it. Images and videos carry the text as their caption.
    text_after_document: bool = True
    # Cloud API: send this approved template instead of free-form text (`text` is then its
    # rendered wording, kept for the operator). Plain values, see `TemplateCall`.
    template: TemplateCall | None = None


@dataclass(frozen=True)
class TemplateCall:
    """An approved template with this recipient's values.

    - `body`: the body's variables in order (positional `{{1}}`…) or by name.
    - `header_text`: the value of a text header's variable; `header_media`: a photo, video
      or document header (sent by the provider's media id once uploaded).
    - `buttons`: (index, sub_type, value) for URL suffixes and quick-reply payloads.
    - `marketing`: the template's category is MARKETING (the Marketing Messages API
      takes only those).
    """

    name: str
    language: str
    body: tuple[tuple[str | None, str], ...] = ()  # (parameter name or None, value)
    header_text: tuple[str | None, str] | None = None
    header_media_kind: str | None = None  # image | video | document
    buttons: tuple[tuple[int, str, str], ...] = ()
    marketing: bool = False


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None
    detail: str | None = None


class ChannelError(Exception):
    """Base of what a channel may raise; `code` is the provider's, kept for the operator.

    `screenshot`: a picture of what the provider showed when something unexpected
    happened (WhatsApp Web), saved with the Event so the operator can see it.
    """

    def __init__(
        self, message: str, code: str | None = None, screenshot: Path | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.screenshot = screenshot


class PermanentError(ChannelError):
    """This message can never succeed (number not on WhatsApp, media refused).

    `effect`: what it says about the contact, acted on by the dispatcher: `opt_out` (they
    stopped marketing from this business), `not_on_whatsapp`, `limited` (the provider's
    per-user cap, not a fault of the number), `window` (only a template reaches them now).
    """

    def __init__(
        self,
        message: str,
        code: str | None = None,
        screenshot: Path | None = None,
        effect: str = "none",
    ) -> None:
        super().__init__(message, code, screenshot)
        self.effect = effect


class TransientError(ChannelError):
    """Worth retrying later; `retry_after` (seconds) when the provider says how long."""

    def __init__(
        self,
        message: str,
        code: str | None = None,
        retry_after: float | None = None,
        screenshot: Path | None = None,
    ) -> None:
        super().__init__(message, code, screenshot)
        self.retry_after = retry_after


class Unconfirmed(ChannelError):
    """The message may have gone and nothing can prove either way: it becomes `unknown`
    for the operator to decide, because sending it again risks a duplicate."""


class SenderUnavailable(ChannelError):
    """The account cannot send at all right now.

    `state` is the sender state it leads to: `needs_link` (logged out, token revoked),
    `in_use` (another browser took the session), `browser_failed`, or `disabled`.
    """

    def __init__(
        self,
        message: str,
        code: str | None = None,
        state: str = "needs_link",
        screenshot: Path | None = None,
    ) -> None:
        super().__init__(message, code, screenshot)
        self.state = state


@dataclass
class ChannelConfig:
    """What a channel gets at construction.

    `settings` are the sender's own (its Chrome profile, its tokens); `options` are the
    installation's (WABULK_* settings such as the WhatsApp Web address or the ChromeDriver
    path), passed in so channels never read the environment themselves.
    """

    sender_name: str
    settings: dict[str, object] = field(default_factory=dict)
    instance_path: Path = Path("instance")
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkStatus:
    """What linking shows: a QR to scan (PNG data URL), the 8-character code to type on the
    phone when linking by phone number, the linked number, or a blocker."""

    kind: Literal["qr", "code", "linked", "in_use", "loading"]
    qr_png: str | None = None
    phone: str | None = None
    code: str | None = None


class Channel(Protocol):
    def prepare(self, message: OutgoingMessage) -> None:
        """Get ready to send `message` (may be a no-op); errors surface at `send`."""

    def send(self, message: OutgoingMessage) -> SendResult: ...

    def reconcile(self, message: OutgoingMessage) -> Reconciled: ...

    def close(self) -> None: ...


class Linkable(Protocol):
    """A channel whose account is linked by scanning a QR or typing a code (WhatsApp Web)."""

    def link_status(self, takeover: bool = False, phone: str | None = None) -> LinkStatus:
        """Look at the account now; `takeover` presses "Use here" if another session holds it;
        `phone` (E.164) links by phone number: the answer is a code instead of a QR."""
