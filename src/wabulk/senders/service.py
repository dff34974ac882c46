"""Senders: add, edit, disable and enable; the pacing defaults every campaign starts from.

- A new WhatsApp Web sender starts unlinked and asks at once for its QR (see linking.py).
- A new Cloud API sender starts unlinked until a connection check succeeds (cloud.py); its
  secrets are stored encrypted and its pace is a rate ceiling (80 a second unless set),
  with no delay between messages and no daily cap: Meta's messaging tier is its budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..channels import dry_run
from ..channels.dry_run import SettingError
from ..channels.whatsapp_web import settings as web_settings
from ..config import LABEL
from ..errors import Conflict, NotFound, ValidationError
from ..models import Channel, EventLevel, Message, Role, Sender, SenderState, User, utcnow
from ..words import N_, said
from ..zones import zone
from . import cloud_input, cooldown, warmup
from .cloud import find_by_phone_number_id
from .linking import LINK_WINDOW
from .pace import Pace, validate_overrides

ADDABLE = (Channel.DRY_RUN, Channel.WHATSAPP_WEB, Channel.CLOUD_API)
CHECK_FIRST = N_("Check the connection to start sending.")
# How the activity log and every page name each kind (shop owners read them); the pages
# ask web/sender_words.py, which reads this.
KIND_WORDS = {
    Channel.WHATSAPP_WEB: "WhatsApp Web",
    Channel.CLOUD_API: "WhatsApp Cloud API",
    Channel.DRY_RUN: N_("dry-run"),
}

# Safe defaults for a real account (see the WhatsApp Web notes in docs/senders.md): a
# random 30 to 60 s between messages, a 5-minute break every 30, at most 200 a day.
WEB_PACING = {
    "min_delay_seconds": 30,
    "max_delay_seconds": 60,
    "daily_cap": 200,
    "break_every": 30,
    "break_seconds": 300,
}


@dataclass
class SenderInput:
    name: str
    channel: str = Channel.DRY_RUN.value
    timezone: str = "UTC"
    # Pacing defaults, validated like a campaign's overrides.
    pacing: dict[str, Any] = field(default_factory=dict)
    # Channel settings: for dry run, latency_seconds / failure_rate / transient_rate; for the
    # Cloud API, cloud_input.FIELDS (secrets in clear here, encrypted when stored).
    settings: dict[str, Any] = field(default_factory=dict)
    # Cloud API: messages per second at most (blank: Meta's default of 80).
    max_per_second: float | str | None = None
    # Only workers carrying this label send for it (blank: any worker); for a WhatsApp Web
    # account whose browser profile lives on one machine.
    worker_label: str | None = None


@dataclass(frozen=True)
class Keys:
    """What the Cloud API settings need of the installation: the key that encrypts secrets
    and the API version a new sender starts with."""

    secret_key: str
    api_version: str = cloud_input.DEFAULT_VERSION


def get_sender(session: Session, sender_id: int) -> Sender:
    found = session.get(Sender, sender_id)
    if found is None:
        raise NotFound(said("There is no sender #%(id)s.", id=sender_id))
    return found


def name_key(name: str) -> str:
    """A sender's name as names are matched: spaces collapsed, any case."""
    return " ".join(name.split()).lower()


def find_sender(session: Session, name: str) -> Sender | None:
    return session.scalar(select(Sender).where(func.lower(Sender.name) == name_key(name)))


def _channel_settings(
    session: Session, sender: Sender, raw: dict[str, Any], keys: Keys | None
) -> dict[str, Any]:
    channel = sender.channel
    if channel == Channel.CLOUD_API:
        return _cloud_settings(session, sender, raw, keys)
    try:
        if channel == Channel.WHATSAPP_WEB:
            raw = dict(raw)
            # The form has no box for it: an edit keeps a skipped warm-up skipped.
            raw.setdefault(warmup.SKIPPED, (sender.settings or {}).get(warmup.SKIPPED, False))
            return web_settings.clean_settings(raw)
        return dry_run.clean_settings(raw)
    except SettingError as exc:
        raise ValidationError(str(exc), field=exc.key) from None


def _cloud_settings(
    session: Session, sender: Sender, raw: dict[str, Any], keys: Keys | None
) -> dict[str, Any]:
    if keys is None or not keys.secret_key:
        raise ValidationError(N_("Cloud API senders need the installation's secret key."))
    previous = dict(sender.settings or {})
    clean = cloud_input.clean_settings(
        raw, previous, keys.secret_key, default_version=keys.api_version
    )
    clash = find_by_phone_number_id(session, clean["phone_number_id"])
    if clash is not None and clash is not sender:
        raise ValidationError(
            said(
                "The sender %(name)s already sends from the phone-number id %(id)s: one "
                "number, one sender.",
                name=repr(clash.name),
                id=clean["phone_number_id"],
            ),
            field="phone_number_id",
        )
    if sender.id is not None and sender.state in (SenderState.LINKED, SenderState.NEEDS_LINK):
        # Another number, account or token must prove itself before sending again.
        moved = any(previous.get(k) != clean.get(k) for k in ("phone_number_id", "waba_id"))
        new_token = (previous.get("secrets") or {}).get("access_token") != (
            clean.get("secrets") or {}
        ).get("access_token")
        if moved or new_token:
            sender.state = SenderState.NEEDS_LINK
            sender.state_reason = said("The account details changed. %(next)s", next=CHECK_FIRST)
    return clean


def clean_worker_label(raw: str | None) -> str | None:
    """One label as `--label` and WABULK_WORKER_LABELS take them; blank: any worker."""
    label = (raw or "").strip()
    if not label:
        return None
    if not LABEL.match(label):
        raise ValidationError(
            said(
                "A worker label is one word of letters, digits, '.', '_' and '-' (up to 60 "
                "characters), for example shop-pc; got %(label)s.",
                label=repr(label[:80]),
            ),
            field="worker_label",
        )
    return label


def _apply(session: Session, sender: Sender, data: SenderInput, keys: Keys | None) -> None:
    name = " ".join(data.name.split())
    if not name:
        raise ValidationError(N_("Give the sender a name."), field="name")
    if len(name) > 100:
        raise ValidationError(N_("A sender name can have at most 100 characters."), field="name")
    clash = find_sender(session, name)
    if clash is not None and clash is not sender:
        raise Conflict(said("There is already a sender called %(name)s.", name=repr(name)))
    if zone(data.timezone).key != (data.timezone or "UTC"):
        raise ValidationError(
            said("Unknown timezone %(zone)s.", zone=repr(data.timezone)), field="timezone"
        )
    raw_pacing = dict(data.pacing)
    if sender.channel == Channel.WHATSAPP_WEB and sender.id is None:
        for key, value in WEB_PACING.items():
            raw_pacing.setdefault(key, value)  # absent (the CLI), not left empty on purpose
    pacing = validate_overrides(raw_pacing)
    base = Pace()
    pace = base.with_overrides(pacing)
    if sender.channel == Channel.CLOUD_API:
        sender.max_per_second = cloud_input.clean_rate(data.max_per_second)
    elif data.max_per_second not in (None, ""):
        raise ValidationError(
            N_("Messages per second applies to Cloud API senders only."), field="max_per_second"
        )
    worker_label = clean_worker_label(data.worker_label)
    sender.name = name
    sender.worker_label = worker_label
    sender.timezone = data.timezone or "UTC"
    sender.min_delay_seconds = pace.min_delay_seconds
    sender.max_delay_seconds = pace.max_delay_seconds
    sender.daily_cap = pace.daily_cap
    sender.active_from = pace.active_from
    sender.active_until = pace.active_until
    sender.break_every = pace.break_every
    sender.break_seconds = pace.break_seconds
    sender.settings = _channel_settings(session, sender, data.settings, keys)


def create_sender(
    session: Session, actor: User | None, data: SenderInput, keys: Keys | None = None
) -> Sender:
    """Add a sender; a Cloud API one needs `keys` (its secrets are encrypted with them)."""
    require_role(actor, Role.ADMIN)
    try:
        channel = Channel(data.channel)
    except ValueError:
        raise ValidationError(
            said("Unknown sender kind %(kind)s.", kind=repr(data.channel)), field="channel"
        ) from None
    if channel not in ADDABLE:
        raise ValidationError(
            said("%(kind)s senders are not available in this version yet.", kind=channel.value),
            field="channel",
        )
    # A dry-run sender has nothing to link: it can send as soon as it exists. A WhatsApp
    # Web one shows its QR on the Senders page as soon as the worker opens its browser.
    web = channel == Channel.WHATSAPP_WEB
    unlinked = channel in (Channel.WHATSAPP_WEB, Channel.CLOUD_API)
    sender = Sender(
        channel=channel, state=SenderState.NEEDS_LINK if unlinked else SenderState.LINKED
    )
    _apply(session, sender, data, keys)
    if web:
        sender.state_reason = N_("Scan the QR code with the phone to link it.")
        sender.link_requested_until = utcnow() + LINK_WINDOW
    elif channel == Channel.CLOUD_API:
        sender.state_reason = CHECK_FIRST
    session.add(sender)
    session.flush()
    events.record(
        session,
        "sender.created",
        said(
            "%(who)s added the %(what)s sender %(name)s.",
            who=events.actor_name(actor),
            what=KIND_WORDS[channel],
            name=repr(sender.name),
        ),
        user=actor,
    )
    return sender


def update_sender(
    session: Session,
    actor: User | None,
    sender_id: int,
    data: SenderInput,
    keys: Keys | None = None,
) -> Sender:
    """Edit a sender; for a Cloud API one a blank secret keeps the stored one."""
    require_role(actor, Role.ADMIN)
    sender = get_sender(session, sender_id)
    _apply(session, sender, data, keys)
    events.record(
        session,
        "sender.edited",
        said(
            "%(who)s edited the sender %(name)s.",
            who=events.actor_name(actor),
            name=repr(sender.name),
        ),
        user=actor,
    )
    return sender


def set_enabled(session: Session, actor: User | None, sender_id: int, enabled: bool) -> Sender:
    """Disable (campaigns stop using it) or enable again."""
    require_role(actor, Role.ADMIN)
    sender = get_sender(session, sender_id)
    if enabled:
        if sender.state != SenderState.DISABLED:
            raise Conflict(said("%(name)s is not disabled.", name=sender.name))
        sender.state = (
            SenderState.LINKED if sender.channel == Channel.DRY_RUN else SenderState.NEEDS_LINK
        )
        sender.state_reason = CHECK_FIRST if sender.channel == Channel.CLOUD_API else None
        verb = "enabled"
    else:
        if sender.state == SenderState.DISABLED:
            raise Conflict(said("%(name)s is already disabled.", name=sender.name))
        sender.state = SenderState.DISABLED
        sender.state_reason = N_("Disabled by an admin")
        verb = "disabled"
    events.record(
        session,
        f"sender.{verb}",
        said(
            N_("%(who)s enabled the sender %(name)s.")
            if enabled
            else N_("%(who)s disabled the sender %(name)s."),
            who=events.actor_name(actor),
            name=repr(sender.name),
        ),
        user=actor,
    )
    return sender


def resume(session: Session, actor: User | None, sender_id: int) -> Sender:
    """Put a limited sender back in rotation before its cool-down ends (a person decided)."""
    require_role(actor, Role.ADMIN)
    sender = get_sender(session, sender_id)
    if sender.state != SenderState.LIMITED:
        raise Conflict(
            said("%(name)s is not limited: there is nothing to resume.", name=sender.name)
        )
    reason = sender.state_reason
    cooldown.back_in_rotation(sender)
    events.record(
        session,
        "sender.resumed",
        said(
            "%(who)s resumed the limited sender %(name)s (it was limited: %(reason)s).",
            who=events.actor_name(actor),
            name=repr(sender.name),
            reason=reason,
        )
        if reason
        else said(
            "%(who)s resumed the limited sender %(name)s.",
            who=events.actor_name(actor),
            name=repr(sender.name),
        ),
        user=actor,
        data={"sender_id": sender.id},
    )
    return sender


def set_warmup(session: Session, actor: User | None, sender_id: int, skip: bool) -> Sender:
    """Skip a WhatsApp Web sender's warm-up (it may send up to its own cap at once), or
    turn it back on (the ramp resumes at the day the number has reached)."""
    require_role(actor, Role.ADMIN)
    sender = get_sender(session, sender_id)
    if sender.channel != Channel.WHATSAPP_WEB:
        raise Conflict(N_("Only WhatsApp Web senders have a warm-up."))
    if warmup.skipped(sender) == skip:
        raise Conflict(
            said("The warm-up of %(name)s is already skipped.", name=sender.name)
            if skip
            else said("The warm-up of %(name)s is already on.", name=sender.name)
        )
    settings = dict(sender.settings or {})
    if skip:
        settings[warmup.SKIPPED] = True
    else:
        settings.pop(warmup.SKIPPED, None)
    sender.settings = settings
    who = events.actor_name(actor)
    text = (
        said(
            "%(who)s skipped the warm-up of %(name)s: it may send up to its full daily "
            "cap from now on.",
            who=who,
            name=repr(sender.name),
        )
        if skip
        else said(
            "%(who)s turned the warm-up of %(name)s back on.", who=who, name=repr(sender.name)
        )
    )
    events.record(
        session,
        "sender.warmup_skipped" if skip else "sender.warmup_on",
        text,
        user=actor,
        level=EventLevel.WARNING if skip else EventLevel.INFO,
        data={"sender_id": sender.id},
    )
    return sender


def sent_today(session: Session, sender: Sender, now: datetime | None = None) -> int:
    """Messages this sender sent since midnight in its timezone (the daily cap's count).

    Answers written in the Inbox count too: they are sends of the same WhatsApp account,
    and a ban looks at how much the account sends, not why.
    """
    now = now or utcnow()
    start = Pace(timezone=sender.timezone or "UTC").day_start(now)
    return (
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.sender_id == sender.id, Message.sent_at >= start)
        )
        or 0
    )
