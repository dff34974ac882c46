"""Campaign drafts, progress and recipients; the lifecycle moves are in lifecycle.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .. import app_settings, events
from ..auth.permissions import require_role
from ..channels.base import ChannelConfig, ChannelError, OutgoingMessage
from ..channels.registry import EXCLUSIVE, open_channel
from ..contacts.phones import normalise, phone_problem
from ..errors import Conflict, ValidationError
from ..models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactList,
    Media,
    Message,
    MessageStatus,
    Role,
    Segment,
    Sender,
    SenderState,
    Template,
    User,
    utcnow,
)
from ..senders import lease as sender_lease
from ..senders.pace import Pace, overrides_for_storage, validate_overrides
from ..words import N_, said
from . import audience
from .fields import check_fields
from .lifecycle import check_finish_by, effective_message, get_campaign
from .media import find_media, media_path
from .render_budget import limit_for
from .rendering import compile_body, context_for

MAX_ATTEMPTS = 10
DEFAULT_RETRY_SECONDS = 60


@dataclass
class DraftInput:
    """What the wizard (or CLI, or API) sends; every field validated in `save_draft`."""

    name: str
    list_ids: list[int] = field(default_factory=list)
    segment_id: int | None = None  # a saved segment instead of lists
    sender_ids: list[int] = field(default_factory=list)
    template_id: int | None = None
    body: str = ""
    media_id: int | None = None
    scheduled_at: datetime | None = None  # aware; None = as soon as launched
    ends_at: datetime | None = None  # aware; finish by: still sending then, it pauses
    pacing: dict[str, Any] = field(default_factory=dict)
    max_attempts: int = 3
    retry_seconds: int = DEFAULT_RETRY_SECONDS
    # A document attachment goes as its own message: the text after it unless this is set.
    text_before_document: bool = False


def retry_seconds(campaign: Campaign) -> int:
    return int((campaign.pacing or {}).get("retry_seconds", DEFAULT_RETRY_SECONDS))


def pace_overrides(campaign: Campaign) -> dict[str, Any]:
    return {k: v for k, v in (campaign.pacing or {}).items() if k != "retry_seconds"}


def save_draft(
    session: Session, actor: User | None, data: DraftInput, campaign_id: int | None = None
) -> Campaign:
    """Create a draft, or update one (only drafts change; a launched campaign is frozen)."""
    require_role(actor, Role.OPERATOR)
    name = " ".join(data.name.split())
    if not name:
        raise ValidationError(N_("Give the campaign a name."), field="name")
    if len(name) > 200:
        raise ValidationError(N_("A campaign name can have at most 200 characters."), field="name")
    lists = _by_ids(session, ContactList, data.list_ids, N_("There is no list #%(id)s."), "lists")
    if data.segment_id is not None:
        if lists:
            raise ValidationError(
                N_("Send to lists or to a segment, not both."), field="segment_id"
            )
        if session.get(Segment, data.segment_id) is None:
            raise ValidationError(
                said("There is no segment #%(id)s.", id=data.segment_id), field="segment_id"
            )
    senders = _by_ids(
        session, Sender, data.sender_ids, N_("There is no sender #%(id)s."), "senders"
    )
    if data.template_id is not None and session.get(Template, data.template_id) is None:
        raise ValidationError(
            said("There is no template #%(id)s.", id=data.template_id), field="template_id"
        )
    if data.media_id is not None and session.get(Media, data.media_id) is None:
        raise ValidationError(
            said("There is no attachment #%(id)s.", id=data.media_id), field="media_id"
        )
    if data.template_id is None and data.body.strip():
        # Names the line of a mistake, or a misspelt field, now rather than at launch.
        check_fields(session, compile_body(data.body).placeholders, data.body)
    if not 1 <= data.max_attempts <= MAX_ATTEMPTS:
        raise ValidationError(
            said("Attempts must be between 1 and %(most)s.", most=MAX_ATTEMPTS),
            field="max_attempts",
        )
    if not 1 <= data.retry_seconds <= 86_400:
        raise ValidationError(
            N_("The first retry wait must be between 1 second and a day."), field="retry_seconds"
        )
    if data.scheduled_at is not None and data.scheduled_at.tzinfo is None:
        raise ValidationError(N_("The start time needs a timezone."), field="scheduled_at")
    if data.scheduled_at is not None and data.scheduled_at < utcnow() - timedelta(minutes=1):
        raise ValidationError(
            N_("That start time has already passed; leave it empty to start at launch."),
            field="scheduled_at",
        )
    check_finish_by(data.ends_at, data.scheduled_at, utcnow())
    pacing = overrides_for_storage(validate_overrides(data.pacing))
    pacing["retry_seconds"] = data.retry_seconds

    if campaign_id is None:
        campaign = Campaign(created_by_id=actor.id if actor else None)
        session.add(campaign)
        verb = "created"
        said_event = N_("%(actor)s created the draft %(name)s.")
    else:
        campaign = get_campaign(session, campaign_id)
        if campaign.status != CampaignStatus.DRAFT:
            raise Conflict(N_("Only a draft can be edited; duplicate the campaign to change it."))
        verb = "edited"
        said_event = N_("%(actor)s edited the draft %(name)s.")
    campaign.name = name
    campaign.lists = lists
    campaign.segment_id = data.segment_id
    campaign.senders = senders
    campaign.template_id = data.template_id
    campaign.body = "" if data.template_id is not None else data.body
    campaign.media_id = data.media_id
    campaign.scheduled_at = data.scheduled_at
    campaign.ends_at = data.ends_at
    campaign.pacing = pacing
    campaign.max_attempts = data.max_attempts
    campaign.text_before_document = data.text_before_document
    session.flush()
    events.record(
        session,
        f"campaign.{verb}",
        said(said_event, actor=events.actor_name(actor), name=repr(name)),
        user=actor,
        campaign_id=campaign.id,
    )
    return campaign


def _by_ids(
    session: Session, model: Any, ids: list[int], missing_sentence: str, field_name: str
) -> list:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = {row.id: row for row in session.scalars(select(model).where(model.id.in_(wanted)))}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValidationError(said(missing_sentence, id=missing[0]), field=field_name)
    return [found[i] for i in wanted]


def recipient_count(session: Session, campaign: Campaign) -> tuple[int, int]:
    """(recipients, opted out and left out) for a draft's lists or segment."""
    if campaign.segment_id is not None:
        from ..segments import service as segments

        terms = segments.get(session, campaign.segment_id).terms
        return segments.count(session, terms)[0], segments.opted_out_count(session, terms)
    ids = [lst.id for lst in campaign.lists]
    return audience.count(session, ids), audience.opted_out_count(session, ids)


@dataclass(frozen=True)
class Progress:
    status: str
    reason: str | None
    total: int
    counts: dict[str, int]
    done: int
    percent: float
    eta: datetime | None


def completion(campaign: Campaign) -> tuple[int, float]:
    """(messages done, percent done) from the maintained counters: done is what no longer
    waits to be sent, whatever became of it."""
    done = campaign.total - campaign.n_queued - campaign.n_sending
    return done, round(100.0 * done / campaign.total, 1) if campaign.total else 0.0


def progress(session: Session, campaign: Campaign, now: datetime | None = None) -> Progress:
    """Counters as maintained (no counting of rows), and the estimated finish."""
    now = now or utcnow()
    counts = {s.value: getattr(campaign, f"n_{s.value}") for s in MessageStatus}
    remaining = counts["queued"] + counts["sending"]
    done, percent = completion(campaign)
    eta = None
    if campaign.status in (CampaignStatus.RUNNING, CampaignStatus.SCHEDULED) and remaining:
        eta = estimate_finish(campaign, remaining, done, now)
    return Progress(
        campaign.status.value, campaign.status_reason, campaign.total, counts, done, percent, eta
    )


def estimate_finish(campaign: Campaign, remaining: int, done: int, now: datetime) -> datetime:
    """From the pacing of the usable senders; from the observed rate when unpaced."""
    start = max(now, campaign.scheduled_at) if campaign.scheduled_at else now
    overrides = pace_overrides(campaign)
    rate = 0.0  # messages per second, all senders together
    for sender in campaign.senders:
        if sender.state != SenderState.LINKED:
            continue
        pace = Pace.for_sender(sender, overrides)
        if not pace.paced:
            rate = 0.0
            break
        per_message = (pace.min_delay_seconds + pace.max_delay_seconds) / 2
        if pace.break_every and pace.break_seconds:
            per_message += pace.break_seconds / pace.break_every
        rate += 1 / per_message
    if rate == 0.0:
        elapsed = (now - campaign.launched_at).total_seconds() if campaign.launched_at else 0
        if done == 0 or elapsed <= 0:
            return start
        rate = done / elapsed
    return start + timedelta(seconds=remaining / rate)


RECIPIENT_FILTERS = ("all", *(s.value for s in MessageStatus))


def recipients(campaign_id: int, status: str = "all") -> Select[tuple[Message, str | None]]:
    """The recipients table: messages with the contact's name, by id (keyset pages)."""
    if status not in RECIPIENT_FILTERS:
        raise ValidationError(
            said("Unknown status filter %(status)s.", status=repr(status)), field="status"
        )
    query = (
        select(Message, Contact.name)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.campaign_id == campaign_id)
        .order_by(Message.id)
    )
    if status != "all":
        query = query.where(Message.status == status)
    return query


def recipients_page(
    session: Session, campaign_id: int, status: str, after_id: int | None, size: int = 50
) -> tuple[list[tuple[Message, str | None]], int | None]:
    query = recipients(campaign_id, status)
    if after_id is not None:
        query = query.where(Message.id > after_id)
    rows = [tuple(r) for r in session.execute(query.limit(size + 1))]
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1][0].id if more and rows else None)  # type: ignore[return-value]


def campaign_counts_by_status(session: Session, campaign_id: int) -> dict[str, int]:
    """Counted from the rows (the CLI's --json and the tests check counters against it)."""
    rows = session.execute(
        select(Message.status, func.count())
        .where(Message.campaign_id == campaign_id)
        .group_by(Message.status)
    ).all()
    counts = {s.value: 0 for s in MessageStatus}
    counts.update({status.value: n for status, n in rows})
    return counts


def send_test(
    session: Session,
    actor: User | None,
    campaign_id: int,
    phone_text: str,
    sender_id: int,
    instance_path: Path,
    default_region: str | None = None,
    options: dict[str, object] | None = None,
) -> str:
    """Render the campaign's message for `phone_text` and send it now through one sender.

    - If the number belongs to a contact, their fields fill the placeholders; otherwise
      placeholders render empty (or their `default`), exactly as for such a recipient.
    - Returns the text that was sent.
    """
    require_role(actor, Role.OPERATOR)
    campaign = get_campaign(session, campaign_id)
    region = default_region or app_settings.default_country(session) or ""
    result = normalise(phone_text, region)
    if result.e164 is None:
        raise ValidationError(
            phone_problem(phone_text.strip(), result.error, region), field="phone"
        )
    phone = result.e164
    sender = session.get(Sender, sender_id)
    if sender is None or sender not in campaign.senders:
        raise ValidationError(N_("Choose one of this campaign's senders."), field="sender_id")
    if sender.state != SenderState.LINKED:
        raise ValidationError(
            said(
                "%(sender)s cannot send now (%(state)s).",
                sender=sender.name,
                state=sender.state.value,
            )
        )
    body, media_id = effective_message(session, campaign)
    if not body.strip():
        raise ValidationError(N_("Write the message first."), field="body")
    contact = session.scalar(select(Contact).where(Contact.phone == phone))
    ctx = context_for(
        phone,
        contact.name if contact else None,
        contact.country if contact else None,
        contact.attributes if contact else {},
    )
    media = find_media(session, media_id)
    text = compile_body(body).render(
        ctx, seed=0, limit=limit_for(media.mime_type if media else None)
    )
    message = OutgoingMessage(
        message_id=0,  # a test belongs to no recipient row
        phone=phone,
        text=text,
        media_path=media_path(instance_path, media) if media else None,
        media_name=media.original_name if media else None,
        media_mime=media.mime_type if media else None,
        text_after_document=not campaign.text_before_document,
    )
    # A browser-driven account may be open in one place only: borrow it from the worker
    # only while nobody is sending through it.
    exclusive = sender.channel.value in EXCLUSIVE
    owner = f"test:{uuid.uuid4().hex[:12]}"
    if exclusive:
        if not sender_lease.take(session, sender.id, owner, utcnow(), timedelta(minutes=5)):
            raise ValidationError(
                said(
                    "%(sender)s is busy: a worker is using its browser for a campaign. "
                    "Send the test when its campaigns are paused or finished.",
                    sender=sender.name,
                )
            )
        session.commit()
    channel = open_channel(
        sender.channel.value,
        ChannelConfig(sender.name, dict(sender.settings or {}), instance_path, options or {}),
    )
    try:
        channel.send(message)
    except ChannelError as exc:
        raise ValidationError(
            said("The test message was not sent: %(reason)s", reason=str(exc))
        ) from None
    finally:
        channel.close()
        if exclusive:
            sender_lease.release(session, sender.id, owner)
            session.commit()
    events.record(
        session,
        "campaign.test_sent",
        said(
            "%(actor)s sent a test of %(name)s to %(phone)s through %(sender)s.",
            actor=events.actor_name(actor),
            name=repr(campaign.name),
            phone=phone,
            sender=sender.name,
        ),
        user=actor,
        campaign_id=campaign.id,
    )
    return text
