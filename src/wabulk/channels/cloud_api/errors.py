"""What each Cloud API error code means for a campaign, in one table (spec §4.4).

- `kind` says what the sender does next: `retry` (later, with backoff), `recipient`
  (this message fails, others go on), `sender` (the account cannot send: its campaigns
  move to other senders or pause), `invalid` (our request was wrong: this message fails
  with the template or field named).
- `effect` is what a failure says about the contact, whichever way it arrived (the send's
  answer or a status webhook): `opt_out` (131050: they stopped marketing from us),
  `not_on_whatsapp` (131026), `limited` (131049: Meta's per-user marketing cap, not a
  fault of the number), `window` (131047: only a template may reach them now).
- `sentence` is for the shop owner; Meta's own title and details are kept beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...words import N_, said

Kind = Literal["retry", "recipient", "sender", "invalid"]
Effect = Literal["none", "opt_out", "not_on_whatsapp", "limited", "window"]


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    kind: Kind
    sentence: str
    effect: Effect = "none"
    # Seconds to wait before a retry when the provider gives no Retry-After.
    backoff: float = 0.0


def _e(kind: Kind, sentence: str, effect: Effect = "none", backoff: float = 0.0) -> tuple:
    return (kind, sentence, effect, backoff)


_WINDOW = N_(
    "More than 24 hours since this customer last wrote: only an approved template reaches them."
)

_TABLE: dict[int, tuple] = {
    # The account cannot send: the token, the number, the business or its payments.
    0: _e(
        "sender",
        N_("The access token is not valid any more. Paste a new one in the sender's settings."),
    ),
    190: _e(
        "sender",
        N_(
            "The access token has expired or was revoked. Paste a new one in the sender's settings."
        ),
    ),
    3: _e(
        "sender",
        N_("The app lacks a capability Meta requires for sending. Check the app's permissions."),
    ),
    10: _e("sender", N_("The access token lacks the whatsapp_business_messaging permission.")),
    131005: _e("sender", N_("The access token lacks the permission this needs.")),
    368: _e(
        "sender", N_("Meta has restricted this WhatsApp Business Account for a policy violation.")
    ),
    131031: _e("sender", N_("Meta has locked this WhatsApp Business Account.")),
    131042: _e(
        "sender",
        N_("Meta refused the send because of a payment problem on the WhatsApp Business Account."),
    ),
    133010: _e(
        "sender",
        N_(
            "This phone number is not registered on the Cloud API yet. "
            "Register it in Meta's WhatsApp Manager."
        ),
    ),
    131048: _e(
        "sender",
        N_(
            "Meta is limiting this number after customers blocked or reported it. "
            "Sending stopped to protect it."
        ),
    ),
    131064: _e("sender", N_("Meta is limiting this number for template-category violations.")),
    131063: _e(
        "sender",
        N_(
            "Marketing templates are turned off on the Cloud API for this account: "
            "turn on the Marketing Messages setting."
        ),
    ),
    # Worth another try later.
    1: _e("retry", N_("Meta answered with an unknown error; trying again."), backoff=30),
    2: _e("retry", N_("Meta's service is temporarily down; trying again."), backoff=30),
    4: _e(
        "retry",
        N_("Too many calls to Meta from this app; waiting before trying again."),
        backoff=300,
    ),
    80007: _e(
        "retry",
        N_("The WhatsApp Business Account reached Meta's rate limit; slowing down."),
        backoff=60,
    ),
    130429: _e(
        "retry", N_("This number reached its messages-per-second limit; slowing down."), backoff=1
    ),
    131056: _e(
        "retry",
        N_("Too many messages to this customer in a short time; trying again shortly."),
        backoff=4,
    ),
    131000: _e("retry", N_("Something went wrong at Meta; trying again."), backoff=30),
    131016: _e("retry", N_("Meta's service is unavailable; trying again."), backoff=30),
    131057: _e(
        "retry",
        N_("The number is in maintenance at Meta for about a minute; trying again."),
        backoff=60,
    ),
    133004: _e("retry", N_("Meta's server is temporarily unavailable; trying again."), backoff=30),
    # This recipient only.
    131026: _e(
        "recipient",
        N_("This number is not on WhatsApp, or the customer's app cannot receive it."),
        "not_on_whatsapp",
    ),
    131049: _e(
        "recipient",
        N_(
            "This customer has reached WhatsApp's limit of marketing messages from businesses "
            "today."
        ),
        "limited",
    ),
    131050: _e(
        "recipient", N_("This customer stopped marketing messages from your business."), "opt_out"
    ),
    130472: _e(
        "recipient", N_("Meta held this message back: the customer is part of a Meta experiment.")
    ),
    131047: _e("recipient", _WINDOW, "window"),
    470: _e("recipient", _WINDOW, "window"),
    130497: _e(
        "recipient", N_("Your business may not message customers in this customer's country.")
    ),
    131021: _e("recipient", N_("The customer's number is the sender's own number.")),
    131030: _e(
        "recipient",
        N_("This number is not in the test number's allowed list (five numbers at most)."),
    ),
    130403: _e("recipient", N_("Your business has blocked this customer.")),
    131051: _e("recipient", N_("WhatsApp does not support this kind of message.")),
    131053: _e(
        "recipient", N_("WhatsApp could not use the attached file (wrong type or too large).")
    ),
    # Our request was wrong: the template or the values we filled in.
    100: _e(
        "invalid",
        N_("Meta refused a value in the message (a field is missing, misspelled or too long)."),
    ),
    131008: _e("invalid", N_("A value the message needs is missing.")),
    131009: _e("invalid", N_("A value in the message is not valid.")),
    135000: _e("invalid", N_("Meta refused a value in the message.")),
    132000: _e("invalid", N_("The number of values does not match the template's variables.")),
    132001: _e("invalid", N_("The template does not exist in this language or is not approved.")),
    132005: _e(
        "invalid", N_("The message is too long once the template's variables are filled in.")
    ),
    132007: _e("invalid", N_("Meta says the template's content breaks its policy.")),
    132012: _e("invalid", N_("A value has the wrong format for the template's variable.")),
    132015: _e("invalid", N_("Meta paused the template for low quality.")),
    132016: _e("invalid", N_("Meta disabled the template permanently.")),
    134100: _e(
        "invalid", N_("Only marketing templates can go through the Marketing Messages API.")
    ),
}

# Meta lists 200 to 299 as permission errors.
_PERMISSION = _e("sender", N_("The access token lacks a permission this needs."))


def describe(code: int | str | None, http_status: int | None = None) -> ErrorInfo:
    """The meaning of a Meta error code; without a code, the HTTP status decides (§4.3)."""
    number: int | None
    try:
        number = int(code) if code not in (None, "") else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = None
    if number is not None:
        entry = _TABLE.get(number)
        if entry is None and 200 <= number <= 299:
            entry = _PERMISSION
        if entry is not None:
            kind, sentence, effect, backoff = entry
            return ErrorInfo(str(number), kind, sentence, effect, backoff)
        # An unlisted code: Meta says to branch on the code, so do not guess it is transient.
        return ErrorInfo(
            str(number),
            "recipient",
            said("Meta refused the message (error %(code)s).", code=number),
        )
    status = http_status or 0
    if status == 429 or status >= 500:
        return ErrorInfo(
            f"http_{status}", "retry", N_("Meta did not answer properly; trying again."), backoff=30
        )
    if status in (401, 403):
        return ErrorInfo(f"http_{status}", "sender", N_("Meta refused the access token."))
    return ErrorInfo(
        f"http_{status}" if status else "no_answer",
        "retry" if not status else "recipient",
        N_("No answer from Meta; trying again.")
        if not status
        else said("Meta refused the message (HTTP %(status)s).", status=status),
        backoff=30 if not status else 0.0,
    )
