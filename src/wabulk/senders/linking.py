"""Linking a WhatsApp Web sender by QR or by phone number, across processes.

- The Senders page asks (`request_link`): the sender row gets a deadline, and the
  account's number when the user links by phone number instead of scanning.
- The worker that holds the sender runs `link_step` about every second in the sender's
  own browser: it copies the QR WhatsApp shows into the row (or the 8-character code
  WhatsApp gives for that number), and when the phone has scanned the QR or typed the
  code, marks the sender linked with its number. The browser stays open and goes straight
  on sending.
- The number and the code live in the row's `health` under "link" (they are what the
  account is being linked with, and go once it is linked).
- The page polls `link_view`, which only reads the row, so the dashboard and the browser
  may run in different processes or on different machines.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from .. import app_settings, events
from ..auth.permissions import require_role
from ..channels.base import Channel, SenderUnavailable
from ..contacts.phones import normalise
from ..errors import Conflict, ValidationError
from ..models import Channel as ChannelKind
from ..models import EventLevel, Role, Sender, SenderState, User, utcnow
from ..words import N_, said

log = logging.getLogger(__name__)

LINK_WINDOW = timedelta(minutes=5)
POLL_SECONDS = 1.0
IN_USE_REASON = N_(
    "WhatsApp is open for this account in another browser or window. Take it back here "
    "(“Use here”), or close the other one."
)


# Why WhatsApp Web could not be opened, in a shop owner's words. The stored reason stays
# whole (an administrator installing Chrome needs its details); pages lead with these.
# Found in our own reasons (whatsapp_web/browser.py and channel.py), first match wins.
TROUBLES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "unreachable",
        ("could not be reached", "net::ERR_"),
        N_(
            "WhatsApp Web could not be reached from the computer running wabulk: its internet "
            "connection, a firewall or a proxy is in the way."
        ),
    ),
    (
        "profile_in_use",
        ("open in another Chrome",),
        N_(
            "Another Chrome window is using this sender's WhatsApp, so wabulk cannot open it. "
            "Close that Chrome window."
        ),
    ),
    (
        "profile_missing",
        ("profile folder",),
        N_(
            "The Chrome profile chosen for this sender cannot be found on the computer running "
            "wabulk. Check the sender's settings."
        ),
    ),
    (
        "no_desktop",
        ("no desktop",),
        N_(
            "This sender is set to show its browser window, but the computer running wabulk "
            "has no screen. Untick “Show the browser window” in the sender's settings."
        ),
    ),
    (
        "not_installed",
        ("No ChromeDriver", "does not exist", "not an executable", "cannot find Chrome binary"),
        N_(
            "Google Chrome (or Chromium) was not found on the computer running wabulk. Install "
            "it there (the README says how)."
        ),
    ),
)
BROWSER_TROUBLE = N_("Chrome could not open WhatsApp Web for this sender.")


def trouble(reason: str | None) -> tuple[str, str]:
    """(kind, sentence) for why a sender's browser failed, from its stored reason."""
    text = reason or ""
    for kind, marks, sentence in TROUBLES:
        if any(mark in text for mark in marks):
            return kind, sentence
    return "browser", BROWSER_TROUBLE


def link_phone(sender: Sender) -> str | None:
    """The number the sender is being linked by (E.164), None when by QR."""
    return ((sender.health or {}).get("link") or {}).get("phone")


def _set_link(sender: Sender, link: dict[str, str] | None) -> None:
    # A new dict: the JSON column only notices a change of the whole value.
    health = {k: v for k, v in (sender.health or {}).items() if k != "link"}
    sender.health = {**health, "link": link} if link else health


def request_link(
    session: Session,
    actor: User | None,
    sender: Sender,
    takeover: bool = False,
    phone: str | None = None,
) -> Sender:
    """Ask the worker to show this sender's QR (or take the session back) for a while;
    with `phone` (the account's own number, as typed), the code to type on the phone."""
    require_role(actor, Role.ADMIN)
    if sender.channel != ChannelKind.WHATSAPP_WEB:
        raise ValidationError(
            said("%(name)s is not a WhatsApp Web sender: it has no QR to scan.", name=sender.name)
        )
    if sender.state == SenderState.DISABLED:
        raise Conflict(said("%(name)s is disabled; enable it first.", name=sender.name))
    if sender.state == SenderState.LINKED:
        raise Conflict(said("%(name)s is already linked.", name=sender.name))
    e164 = None
    if phone is not None:
        if not phone.strip():
            raise ValidationError(
                N_(
                    "Type the phone's WhatsApp number, with its country code, e.g. +91 98765 43210."
                ),
                field="phone",
            )
        number = normalise(phone, app_settings.default_country(session) or "")
        if number.e164 is None:
            raise ValidationError(
                said(
                    "The number %(problem)s. Type the phone's WhatsApp number, with its country "
                    "code, e.g. +91 98765 43210.",
                    problem=number.error,
                ),
                field="phone",
            )
        e164 = number.e164
    now = utcnow()
    sender.link_requested_until = now + LINK_WINDOW
    sender.link_takeover = takeover
    sender.link_qr = None
    sender.link_qr_at = None
    _set_link(sender, {"phone": e164} if e164 else None)
    if sender.state in (SenderState.IN_USE, SenderState.BROWSER_FAILED):
        sender.state = SenderState.NEEDS_LINK
    events.record(
        session,
        "sender.link_requested",
        _asked(events.actor_name(actor), sender, takeover, e164),
        user=actor,
    )
    return sender


def _asked(who: str, sender: Sender, takeover: bool, e164: str | None) -> str:
    """The Event's sentence for a link request."""
    name = repr(sender.name)
    if takeover and e164:
        return said(
            "%(who)s asked to take back the WhatsApp Web sender %(name)s by its phone number "
            "%(phone)s.",
            who=who,
            name=name,
            phone=e164,
        )
    if takeover:
        return said(
            "%(who)s asked to take back the WhatsApp Web sender %(name)s.", who=who, name=name
        )
    if e164:
        return said(
            "%(who)s asked to link the WhatsApp Web sender %(name)s by its phone number %(phone)s.",
            who=who,
            name=name,
            phone=e164,
        )
    return said("%(who)s asked to link the WhatsApp Web sender %(name)s.", who=who, name=name)


def link_view(sender: Sender, now: datetime | None = None) -> dict[str, object]:
    """What the Senders page shows while linking (JSON for its poll)."""
    now = now or utcnow()
    active = sender.link_requested_until is not None and sender.link_requested_until > now
    fresh_qr = (
        sender.link_qr
        if active
        and sender.link_qr_at is not None
        and now - sender.link_qr_at < timedelta(seconds=90)
        else None
    )
    link = (sender.health or {}).get("link") or {}
    code_at = link.get("code_at")
    fresh_code = (
        link.get("code")
        if active
        and code_at is not None
        and now - datetime.fromisoformat(code_at) < timedelta(seconds=90)
        else None
    )
    failed = sender.state == SenderState.BROWSER_FAILED
    kind, sentence = trouble(sender.state_reason) if failed else ("", "")
    return {
        "id": sender.id,
        "state": sender.state.value,
        # A failed browser: what it means for the shop; its own words go in "detail".
        "reason": sentence if failed else sender.state_reason,
        "trouble": kind or None,
        "detail": sender.state_reason if failed else None,
        "phone": sender.phone,
        "linking": active,
        "qr": fresh_qr,
        # Linking by phone number: the number typed, and WhatsApp's code for it.
        "by_phone": link.get("phone") if active else None,
        "code": fresh_code,
        "seconds_left": int((sender.link_requested_until - now).total_seconds()) if active else 0,
    }


def link_step(session: Session, sender: Sender, channel: Channel, now: datetime) -> float | None:
    """One look at the browser for a sender being linked; seconds until the next look."""
    link_status = getattr(channel, "link_status", None)
    if link_status is None:  # a channel with nothing to link (dry run, Cloud API)
        sender.link_requested_until = None
        session.commit()
        return None
    phone = link_phone(sender)
    try:
        if phone:
            status = link_status(takeover=sender.link_takeover, phone=phone)
        else:
            status = link_status(takeover=sender.link_takeover)
    except SenderUnavailable as exc:
        if exc.state == SenderState.NEEDS_LINK:
            # WhatsApp did not take the number (or offers no code): the page says why and
            # offers the QR and the number again.
            sender.state_reason = str(exc)[:500]
            sender.link_requested_until = None
            _set_link(sender, None)
            events.record(
                session,
                "sender.link_refused",
                said(
                    "Linking %(name)s by phone number failed: %(problem)s",
                    name=sender.name,
                    problem=str(exc),
                ),
                level=EventLevel.WARNING,
                data={"screenshot": exc.screenshot.name} if exc.screenshot else None,
            )
            session.commit()
            return None
        sender.state = SenderState.BROWSER_FAILED
        sender.state_reason = str(exc)[:500]
        sender.link_requested_until = None
        sender.link_qr = None
        events.record(
            session,
            "sender.browser_failed",
            said(
                "Linking %(name)s stopped. %(problem)s (The browser said: %(said)s)",
                name=sender.name,
                problem=trouble(str(exc))[1],
                said=str(exc),
            ),
            level=EventLevel.ERROR,
        )
        session.commit()
        return None
    if status.kind == "qr":
        if status.qr_png and status.qr_png != sender.link_qr:
            sender.link_qr = status.qr_png
            sender.link_qr_at = now
        elif status.qr_png:
            sender.link_qr_at = now  # still shown: still fresh
    elif status.kind == "code" and phone and status.code:
        # Written on every look (the time says it is still on screen), like the QR's.
        _set_link(sender, {"phone": phone, "code": status.code, "code_at": now.isoformat()})
    elif status.kind == "linked":
        sender.state = SenderState.LINKED
        sender.state_reason = None
        sender.phone = status.phone or sender.phone
        sender.link_requested_until = None
        sender.link_takeover = False
        sender.link_qr = None
        _set_link(sender, None)
        events.record(
            session,
            "sender.linked",
            said(
                "WhatsApp Web sender %(name)s is linked as %(phone)s.",
                name=sender.name,
                phone=status.phone,
            )
            if status.phone
            else said("WhatsApp Web sender %(name)s is linked.", name=sender.name),
        )
        session.commit()
        # Chrome writes the new login to the profile folder lazily; quitting cleanly now
        # makes it survive a crash or a restart a few seconds later (the next send reopens).
        channel.close()
        return 0.0
    elif status.kind == "in_use":
        sender.state = SenderState.IN_USE
        sender.state_reason = IN_USE_REASON
        sender.link_requested_until = None
        sender.link_qr = None
    session.commit()
    return POLL_SECONDS
