"""Finished demo campaigns: what three past campaigns would have left behind.

Written straight as rows, since the past cannot be replayed through the engine: each
recipient's message with the times a real run gives (sent 30 to 60 s apart from launch,
delivered seconds to minutes later, read later still, a few replies), failures with the
channels' own codes and sentences, the campaign log, and counters equal to the rows.
The story is kept consistent with the rules: numbers found not on WhatsApp and people who
replied STOP are left out of the later campaigns, as the audience query would leave them.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from .. import events
from ..campaigns.rendering import compile_body, context_for
from ..channels.base import NOT_ON_WHATSAPP
from ..inbox import conversations
from ..models import (
    Campaign,
    CampaignStatus,
    ContactList,
    Event,
    EventLevel,
    Inbound,
    Message,
    MessageStatus,
    Sender,
    Template,
)
from ..words import said
from . import samples
from .people import Person

S = MessageStatus
PACING = {"min_delay_seconds": 30, "max_delay_seconds": 60, "retry_seconds": 60}
DELIVERED_SHARE = 0.93
READ_SHARE = 0.72
REPLY_SHARE = 0.12
OTHER_FAILURE_SHARE = 0.02
LATE_OPT_OUTS = 2  # people who opt out while the second campaign is under way


@dataclass
class _Story:
    """What happens in one campaign beyond the odds: replies, STOPs, opt-outs midway."""

    replies: tuple[str, ...]
    stops: int
    late_opt_outs: int


@dataclass
class _Reply:
    message: Message
    person: Person
    text: str


def build(
    session: Session,
    rng: random.Random,
    people: list[Person],
    lists: dict[str, ContactList],
    templates: list[Template],
    sender: Sender,
    created_by_id: int | None,
    now: datetime,
) -> list[int]:
    """Insert the finished campaigns of samples.HISTORY; returns their ids, oldest first."""
    ids = []
    for n, (name, template_index, keys, days_ago, hour) in enumerate(samples.HISTORY):
        launched_at = (now - timedelta(days=days_ago)).replace(
            hour=hour, minute=rng.randrange(0, 60, 5), second=0, microsecond=0
        )
        campaign = Campaign(
            name=name,
            status=CampaignStatus.COMPLETED,
            template_id=templates[template_index].id,
            body=templates[template_index].body,
            pacing=dict(PACING),
            created_by_id=created_by_id,
            created_at=launched_at - timedelta(minutes=rng.randint(20, 90)),
            launched_at=launched_at,
            is_demo=True,
        )
        campaign.lists = [lists[key] for key in keys]
        campaign.senders = [sender]
        session.add(campaign)
        session.flush()
        story = _Story(
            replies=samples.REPLIES[template_index],
            stops=2 if n == 0 else 0,  # the festive offer says "Reply STOP"; two people do
            late_opt_outs=LATE_OPT_OUTS if n == 1 else 0,
        )
        _run(session, rng, campaign, _audience(people, keys, launched_at), sender, now, story)
        ids.append(campaign.id)
    return ids


def _audience(people: list[Person], keys: tuple[str, ...], at: datetime) -> list[Person]:
    """Who a campaign launched at `at` reached: its lists' members, less those left out."""
    return [
        p
        for p in people
        if p.lists.intersection(keys)
        and (p.contact.opted_out_at is None or p.contact.opted_out_at > at)
        and (p.contact.not_on_whatsapp_at is None or p.contact.not_on_whatsapp_at > at)
    ]


def _run(
    session: Session,
    rng: random.Random,
    campaign: Campaign,
    recipients: list[Person],
    sender: Sender,
    now: datetime,
    story: _Story,
) -> None:
    launched = campaign.launched_at
    assert launched is not None
    latest = now - timedelta(minutes=1)  # nothing in the future
    compiled = compile_body(campaign.body)
    late = set(rng.sample(range(len(recipients)), min(story.late_opt_outs, len(recipients))))
    rows: list[Message] = []
    failures: list[Message] = []
    replies: list[_Reply] = []
    stops = story.stops
    clock = launched
    for i, person in enumerate(recipients):
        contact = person.contact
        message = Message(
            campaign_id=campaign.id,
            contact_id=contact.id,
            phone=contact.phone,
            queued_at=launched,
            next_attempt_at=launched,
        )
        rows.append(message)
        if i in late:
            # Opted out at the counter after the launch, before their turn: skipped at claim.
            opted = clock + timedelta(seconds=rng.randint(5, 60))
            contact.opted_out_at = opted
            contact.opt_out_reason = "Asked at the counter not to get messages"
            message.status = S.SKIPPED
            message.error_code, message.error_detail = "opted_out", "Opted out"
            message.updated_at = opted
            continue
        clock += timedelta(seconds=rng.uniform(30, 60))
        message.body = compiled.render(
            context_for(contact.phone, contact.name, contact.country, contact.attributes),
            seed=campaign.id * 1000 + i,
        )
        message.sender_id = sender.id
        message.attempts = 1
        message.sending_at = clock - timedelta(seconds=rng.uniform(1, 4))
        if person.unknown_to_whatsapp or rng.random() < OTHER_FAILURE_SHARE:
            code, detail = samples.FAILURES[0 if person.unknown_to_whatsapp else 1]
            if code == NOT_ON_WHATSAPP:
                contact.not_on_whatsapp_at = clock
                person.unknown_to_whatsapp = False
            else:
                message.attempts = 3
            message.status = S.FAILED
            message.error_code, message.error_detail = code, detail
            message.failed_at = message.updated_at = clock
            failures.append(message)
            continue
        message.status = S.SENT
        message.sent_at = message.updated_at = clock
        message.provider_message_id = f"demo-{uuid.uuid4().hex}"
        if rng.random() > DELIVERED_SHARE:
            continue  # the phone stayed off: sent, never delivered
        # Mostly seconds; now and then a phone that was off for a while.
        delay = rng.uniform(2, 40) if rng.random() < 0.85 else rng.uniform(300, 7200)
        message.delivered_at = min(latest, clock + timedelta(seconds=delay))
        message.status, message.updated_at = S.DELIVERED, message.delivered_at
        if rng.random() > READ_SHARE:
            continue
        read = message.delivered_at + timedelta(seconds=rng.expovariate(1 / 2400))
        message.read_at = min(latest, read)
        message.status, message.updated_at = S.READ, message.read_at
        if rng.random() > REPLY_SHARE and not stops:
            continue
        text = samples.STOP_REPLY if stops else rng.choice(story.replies)
        if stops:
            stops -= 1
        message.replied_at = min(latest, message.read_at + timedelta(seconds=rng.uniform(30, 1800)))
        replies.append(_Reply(message, person, text))
    campaign.finished_at = clock + timedelta(seconds=rng.uniform(1, 5))
    session.add_all(rows)
    session.flush()
    _inbound(session, campaign, sender, replies)
    _counters(campaign, rows)
    _log(session, campaign, failures, len(rows))


def _inbound(session: Session, campaign: Campaign, sender: Sender, replies: list[_Reply]) -> None:
    for reply in replies:
        message, contact = reply.message, reply.person.contact
        assert message.replied_at is not None
        session.add(
            Inbound(
                phone=contact.phone,
                contact_id=contact.id,
                campaign_id=campaign.id,
                message_id=message.id,
                sender_id=sender.id,
                provider_message_id=f"demo-{uuid.uuid4().hex}",
                kind="text",
                body=reply.text,
                received_at=message.replied_at,
            )
        )
        # The Inbox's own hook, as a heard reply takes: one conversation per contact.
        conversations.touch_on_reply(
            session,
            contact_id=contact.id,
            sender_id=sender.id,
            campaign_id=campaign.id,
            at=message.replied_at,
            preview=reply.text,
        )
        if reply.text == samples.STOP_REPLY:
            contact.opted_out_at = message.replied_at
            contact.opt_out_reason = f"Replied STOP to {campaign.name}"


def _counters(campaign: Campaign, rows: list[Message]) -> None:
    by_status = Counter(m.status for m in rows)
    campaign.total = len(rows)
    for status in MessageStatus:
        setattr(campaign, f"n_{status.value}", by_status.get(status, 0))
    campaign.n_replied = sum(1 for m in rows if m.replied_at is not None)


def _log(session: Session, campaign: Campaign, failures: list[Message], total: int) -> None:
    """The campaign log as the engine writes it, at the times it would have."""
    launched, finished = campaign.launched_at, campaign.finished_at
    assert launched is not None and finished is not None

    def add(at: datetime, kind: str, text: str, **extra: object) -> None:
        session.add(Event(at=at, kind=kind, text=text, campaign_id=campaign.id, **extra))

    # The engine's own sentences (wabulk.words), so a reader sees them in their language.
    name = repr(campaign.name)
    add(campaign.created_at, "campaign.created", said("The draft %(name)s was created.", name=name))
    add(
        launched,
        "campaign.launched",
        said(
            "%(who)s launched %(name)s to %(n)s recipient(s), starting now.",
            who=events.actor_name(None),
            name=name,
            n=f"{total:,}",
        ),
    )
    for message in failures:
        assert message.failed_at is not None
        add(
            message.failed_at,
            "message.failed",
            said("%(phone)s: %(detail)s", phone=message.phone, detail=message.error_detail),
            level=EventLevel.WARNING,
            message_id=message.id,
        )
    sent = campaign.n_sent + campaign.n_delivered + campaign.n_read
    add(
        finished,
        "campaign.completed",
        said(
            "Finished: %(sent)s sent, %(failed)s failed, %(skipped)s skipped, %(unknown)s unknown.",
            sent=f"{sent:,}",
            failed=f"{campaign.n_failed:,}",
            skipped=f"{campaign.n_skipped:,}",
            unknown=f"{campaign.n_unknown:,}",
        ),
    )
