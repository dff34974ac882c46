"""Cloud API templates at launch and in the wizard: the approved template a campaign's
Cloud API senders need, frozen at launch, and how many of an audience a one-off message
reaches (the 24-hour window: only customers who wrote to the sender within it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from ..errors import ValidationError
from ..models import CloudTemplate, Inbound, Media, Sender, Template
from ..words import N_, said
from .cloud_template import (
    APPROVED,
    WINDOW,
    check_media,
    cloud_senders,
    snapshot,
    validate_mapping,
)

# The wizard's 24-hour window note counts an audience up to this many.
AUDIENCE_CAP = 100_000


def synced(session: Session, sender_id: int, name: str, language: str) -> CloudTemplate | None:
    return session.scalar(
        select(CloudTemplate).where(
            CloudTemplate.sender_id == sender_id,
            CloudTemplate.name == name,
            CloudTemplate.language == language,
        )
    )


def launch_snapshot(
    session: Session, template: Template | None, senders: Sequence[Sender], media_id: int | None
) -> dict[str, Any] | None:
    """The Cloud API snapshot of a campaign about to launch, or None when it needs none.

    - None when the campaign is a one-off message (on a Cloud API sender only contacts
      whose 24-hour window is open get it), and when no sender is a Cloud API sender and
      the template has a message of its own.
    - A template with no message of its own but a WhatsApp template: other senders send
      that template's words, filled in (from any sender's approved copy).
    - Raises ValidationError saying what to do when the template is not linked to a
      WhatsApp template, or that template is not approved (any more) for one of the senders.
    """
    cloud = cloud_senders(senders)
    if template is None:
        return None
    if not cloud:
        if template.body.strip() or not template.cloud_template_name:
            return None
        return _words_only(session, template, media_id)
    if not template.cloud_template_name or not template.cloud_language:
        raise ValidationError(
            said(
                "%(sender)s sends through the WhatsApp Cloud API, which starts conversations "
                "only with a template approved by Meta; the template %(template)s is not "
                "linked to one. Choose one in the template editor.",
                sender=cloud[0].name,
                template=repr(template.name),
            ),
            field="template_id",
        )
    rows = []
    for sender in cloud:
        row = synced(session, sender.id, template.cloud_template_name, template.cloud_language)
        if row is None:
            raise ValidationError(
                said(
                    "The WhatsApp template %(name)s (%(language)s) is not among %(sender)s's "
                    "templates; sync the sender's templates, or choose another.",
                    name=template.cloud_template_name,
                    language=template.cloud_language,
                    sender=sender.name,
                ),
                field="template_id",
            )
        if row.status.upper() != APPROVED:
            raise ValidationError(
                said(
                    "The WhatsApp template %(name)s (%(language)s) is %(status)s for "
                    "%(sender)s, not approved; Meta sends only approved templates.",
                    name=row.name,
                    language=row.language,
                    status=row.status.lower().replace("_", " "),
                    sender=sender.name,
                ),
                field="template_id",
            )
        rows.append(row)
    mapping = template.cloud_parameters if isinstance(template.cloud_parameters, dict) else {}
    for row in rows:  # senders of different accounts may hold different versions
        validate_mapping(row.components, mapping)
    check_media(rows[0].components, session.get(Media, media_id) if media_id else None)
    return snapshot(rows[0], mapping, media_id)


def _words_only(session: Session, template: Template, media_id: int | None) -> dict[str, Any]:
    row = session.scalar(
        select(CloudTemplate)
        .where(
            CloudTemplate.name == template.cloud_template_name,
            CloudTemplate.language == template.cloud_language,
            func.upper(CloudTemplate.status) == APPROVED,
        )
        .order_by(CloudTemplate.id)
        .limit(1)
    )
    if row is None:
        raise ValidationError(
            said(
                "The template %(template)s has no message of its own, and its WhatsApp "
                "template %(name)s is no longer among the approved ones; write its message "
                "in the template editor.",
                template=repr(template.name),
                name=template.cloud_template_name,
            ),
            field="template_id",
        )
    mapping = template.cloud_parameters if isinstance(template.cloud_parameters, dict) else {}
    check_media(row.components, session.get(Media, media_id) if media_id else None)
    return snapshot(row, mapping, media_id)


def window_open_count(
    session: Session,
    people: Select[tuple[int, str]] | None,
    sender_ids: Sequence[int],
    now: datetime,
) -> int:
    """Of an audience (`people`: (contact id, phone), audience.of: lists or a segment),
    those who wrote to one of the senders within the last 24 hours."""
    if people is None or not sender_ids:
        return 0
    chosen = people.subquery()
    recent = exists().where(
        Inbound.contact_id == chosen.c.id,
        Inbound.sender_id.in_(list(sender_ids)),
        Inbound.received_at >= now - WINDOW,
    )
    return session.scalar(select(func.count()).select_from(chosen).where(recent)) or 0


def audience_size(session: Session, people: Select[tuple[int, str]] | None) -> tuple[int, bool]:
    """(how many, whether the count stopped at AUDIENCE_CAP): a segment of a million is
    not counted to its end for a sentence in the wizard."""
    if people is None:
        return 0, False
    n = session.scalar(select(func.count()).select_from(people.limit(AUDIENCE_CAP + 1).subquery()))
    return (AUDIENCE_CAP, True) if (n or 0) > AUDIENCE_CAP else (n or 0, False)


@dataclass(frozen=True)
class Note:
    """A sentence for the wizard; `blocking` when the campaign cannot launch as it is."""

    text: str
    blocking: bool = False


def wizard_notes(
    session: Session,
    template: Template | None,
    senders: Sequence[Sender],
    people: Select[tuple[int, str]] | None,
    now: datetime,
    media_id: int | None = None,
) -> list[Note]:
    """What the wizard says about Cloud API senders for this template and audience.

    `people`: the audience chosen (audience.of: its lists or its segment; None: none yet).
    `media_id`: the campaign's own attachment, which replaces the template's.
    """
    cloud = cloud_senders(senders)
    if not cloud:
        return []
    if template is None:
        total, capped = audience_size(session, people)
        n = window_open_count(session, people, [s.id for s in cloud], now)
        sentence = (
            N_(
                "Only customers who wrote to you in the last 24 hours can get a free-form "
                "message; %(n)s of more than %(total)s in this audience. The others are "
                "skipped; choose a template linked to an approved WhatsApp template to reach "
                "everyone."
            )
            if capped
            else N_(
                "Only customers who wrote to you in the last 24 hours can get a free-form "
                "message; %(n)s of %(total)s in this audience. The others are skipped; choose "
                "a template linked to an approved WhatsApp template to reach everyone."
            )
        )
        return [Note(said(sentence, n=f"{n:,}", total=f"{total:,}"))]
    try:
        launch_snapshot(session, template, senders, media_id or template.media_id)
    except ValidationError as exc:
        return [Note(str(exc), blocking=True)]
    return [
        Note(
            said(
                "%(senders)s will send the approved WhatsApp template %(name)s (%(language)s).",
                senders=", ".join(s.name for s in cloud),
                name=template.cloud_template_name,
                language=template.cloud_language,
            )
        )
    ]
