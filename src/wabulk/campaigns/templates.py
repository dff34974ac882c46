"""Templates: reusable message bodies with an optional attachment, and their preview."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..errors import Conflict, NotFound, ValidationError
from ..models import (
    Campaign,
    CampaignStatus,
    CloudTemplate,
    Contact,
    Media,
    Role,
    Template,
    User,
    list_members,
)
from ..words import N_, said
from . import cloud_template
from .fields import check_fields
from .render_budget import TEXT_LIMIT
from .rendering import TemplateError, compile_body, context_for, empty_placeholders

MAX_BODY = TEXT_LIMIT  # WhatsApp's own limit for a text message


def get_template(session: Session, template_id: int) -> Template:
    found = session.get(Template, template_id)
    if found is None:
        raise NotFound(said("There is no template #%(id)s.", id=template_id))
    return found


@dataclass(frozen=True)
class CloudChoice:
    """The approved WhatsApp template a template maps to, and what fills its variables
    (`cloud_template.validate_mapping`'s shape)."""

    name: str
    language: str
    mapping: Mapping[str, Any]


def _check(
    session: Session,
    name: str,
    body: str,
    media_id: int | None,
    except_id: int | None,
    cloud: CloudChoice | None = None,
    linked: bool = False,
):
    """The clean name and WhatsApp mapping; the body may be empty when a WhatsApp template
    is chosen (`cloud`) or stays linked (`linked`): it carries its own words."""
    name = " ".join(name.split())
    if not name:
        raise ValidationError(N_("Give the template a name."), field="name")
    if len(name) > 120:
        raise ValidationError(N_("A template name can have at most 120 characters."), field="name")
    clash = select(Template.id).where(func.lower(Template.name) == name.lower())
    if except_id is not None:
        clash = clash.where(Template.id != except_id)
    if session.scalar(clash) is not None:
        raise Conflict(said("There is already a template called %(name)s.", name=repr(name)))
    if not body.strip() and cloud is None and not linked:
        raise ValidationError(N_("Write the message."), field="body")
    if len(body) > MAX_BODY:
        raise ValidationError(_too_long(body), field="body")
    if body.strip():
        check_fields(session, compile_body(body).placeholders, body)
    media = session.get(Media, media_id) if media_id is not None else None
    if media_id is not None and media is None:
        raise ValidationError(said("There is no attachment #%(id)s.", id=media_id), field="media")
    return name, (_cloud_mapping(session, cloud, media) if cloud else None)


def synced_templates(session: Session) -> list[CloudTemplate]:
    """Every sender's synced WhatsApp templates, by sender then name and language."""
    return list(
        session.scalars(
            select(CloudTemplate).order_by(
                CloudTemplate.sender_id, CloudTemplate.name, CloudTemplate.language
            )
        )
    )


def approved_row(session: Session, name: str, language: str) -> CloudTemplate | None:
    """A synced copy of the WhatsApp template, an approved one when any sender has one."""
    rows = session.scalars(
        select(CloudTemplate)
        .where(CloudTemplate.name == name, CloudTemplate.language == language)
        .order_by(CloudTemplate.sender_id)
    ).all()
    approved = [r for r in rows if r.status.upper() == cloud_template.APPROVED]
    return next(iter(approved or rows), None)


def _cloud_mapping(session: Session, cloud: CloudChoice, media: Media | None) -> dict[str, str]:
    row = approved_row(session, cloud.name, cloud.language)
    if row is None:
        raise ValidationError(
            said(
                "There is no WhatsApp template %(name)s (%(language)s); sync the sender's "
                "templates on its page, then choose one.",
                name=cloud.name,
                language=cloud.language,
            ),
            field="cloud",
        )
    if row.status.upper() != cloud_template.APPROVED:
        raise ValidationError(
            said(
                "The WhatsApp template %(name)s (%(language)s) is %(status)s; only templates "
                "Meta approved can be used.",
                name=row.name,
                language=row.language,
                status=row.status.lower().replace("_", " "),
            ),
            field="cloud",
        )
    mapping = cloud_template.validate_mapping(row.components, cloud.mapping)
    cloud_template.check_media(row.components, media)
    return mapping


def _apply_cloud(template: Template, cloud: CloudChoice | None, mapping: dict[str, str] | None):
    template.cloud_template_name = cloud.name if cloud else None
    template.cloud_language = cloud.language if cloud else None
    template.cloud_parameters = mapping or {}


def _too_long(body: str) -> str:
    return said(
        "The message has %(count)s characters; WhatsApp allows %(max)s.",
        count=f"{len(body):,}",
        max=f"{MAX_BODY:,}",
    )


def create_template(
    session: Session,
    actor: User | None,
    name: str,
    body: str,
    media_id: int | None = None,
    cloud: CloudChoice | None = None,
) -> Template:
    """A new template; `cloud` links it to an approved WhatsApp template (then the body
    may be empty: the WhatsApp template carries its own words)."""
    require_role(actor, Role.OPERATOR)
    clean, mapping = _check(session, name, body, media_id, None, cloud)
    template = Template(name=clean, body=body, media_id=media_id)
    _apply_cloud(template, cloud, mapping)
    session.add(template)
    session.flush()
    events.record(
        session,
        "template.created",
        said(
            "%(actor)s created the template %(name)s.",
            actor=events.actor_name(actor),
            name=repr(clean),
        ),
        user=actor,
    )
    return template


def update_template(
    session: Session,
    actor: User | None,
    template_id: int,
    name: str,
    body: str,
    media_id: int | None,
    cloud: CloudChoice | None = None,
    keep_cloud: bool = False,
) -> Template:
    """Edit a template; campaigns already launched keep the text they were launched with.

    `cloud` None unlinks it from a WhatsApp template, unless `keep_cloud` (the form had no
    WhatsApp part: no Cloud API sender today) leaves the link as it is."""
    require_role(actor, Role.OPERATOR)
    template = get_template(session, template_id)
    kept = keep_cloud and bool(template.cloud_template_name)
    template.name, mapping = _check(session, name, body, media_id, template_id, cloud, linked=kept)
    template.body = body
    template.media_id = media_id
    if not kept:
        _apply_cloud(template, cloud, mapping)
    events.record(
        session,
        "template.edited",
        said(
            "%(actor)s edited the template %(name)s.",
            actor=events.actor_name(actor),
            name=repr(template.name),
        ),
        user=actor,
    )
    return template


def delete_template(session: Session, actor: User | None, template_id: int) -> str:
    require_role(actor, Role.OPERATOR)
    template = get_template(session, template_id)
    drafts = session.scalar(
        select(func.count())
        .select_from(Campaign)
        .where(Campaign.template_id == template_id, Campaign.status == CampaignStatus.DRAFT)
    )
    if drafts:
        raise Conflict(
            said(
                "%(count)s draft campaign(s) use %(name)s; change or delete them first.",
                count=drafts,
                name=repr(template.name),
            )
        )
    name = template.name
    session.delete(template)
    events.record(
        session,
        "template.deleted",
        said(
            "%(actor)s deleted the template %(name)s.",
            actor=events.actor_name(actor),
            name=repr(name),
        ),
        user=actor,
    )
    return name


@dataclass(frozen=True)
class PreviewSample:
    phone: str
    name: str | None
    text: str


@dataclass(frozen=True)
class Preview:
    samples: list[PreviewSample]
    warnings: list[str]
    error: str | None
    checked: int  # recipients the empty-placeholder warnings looked at
    placeholders: list[str]


def preview(
    session: Session,
    body: str,
    list_ids: list[int],
    samples: int = 3,
    check: int = 500,
    limit: int = TEXT_LIMIT,
    chosen: list[int] | None = None,
    among: list[int] | None = None,
) -> Preview:
    """The message as real recipients of the chosen lists would get it.

    - Renders the first `samples` recipients (or the contacts `chosen`, at most `samples`
      of them: a search or a random pick), and counts over the first `check` which
      placeholders would be empty, so a sheet with a missing column is noticed before launch.
    - `among`: the recipients as ids instead of the lists' members (a segment's first ones).
    - A placeholder no contact has is an error, with the closest field as a suggestion.
    - Each sample has the budget a sent message has, and `limit` is WhatsApp's length for
      it (`CAPTION_LIMIT` with a photo or video): a body the dispatcher would refuse is
      refused here with the same sentence.
    """
    if len(body) > MAX_BODY:
        return Preview([], [], _too_long(body), 0, [])
    try:
        compiled = compile_body(body)
        check_fields(session, compiled.placeholders, body)
    except TemplateError as exc:
        return Preview([], [], str(exc), 0, [])
    query = select(Contact).where(Contact.opted_out_at.is_(None)).order_by(Contact.id)
    if among is not None:
        query = query.where(Contact.id.in_(among[:check]))
    elif list_ids:
        members = select(list_members.c.contact_id).where(list_members.c.list_id.in_(list_ids))
        query = query.where(Contact.id.in_(members))
    people = list(session.scalars(query.limit(check)))
    contexts = [_context(c) for c in people]
    shown_people = people[:samples]
    if chosen:
        by_id = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(chosen)))}
        shown_people = [by_id[i] for i in chosen[:samples] if i in by_id]
    shown: list[PreviewSample] = []
    try:
        for contact in shown_people:
            text = compiled.render(_context(contact), contact.id, limit=limit)
            shown.append(PreviewSample(contact.phone, contact.name, text))
    except TemplateError as exc:
        return Preview(shown, [], str(exc), len(people), sorted(compiled.placeholders))
    warning = (
        N_("{{ %(name)s }} is empty for %(count)s of %(total)s recipient(s) checked.")
        if len(people) == check
        else N_("{{ %(name)s }} is empty for %(count)s of %(total)s recipient(s).")
    )
    warnings = [
        said(warning, name=name, count=f"{n:,}", total=f"{len(people):,}")
        for name, n in sorted(empty_placeholders(compiled, contexts).items())
    ]
    return Preview(shown, warnings, None, len(people), sorted(compiled.placeholders))


def _context(contact: Contact) -> dict[str, Any]:
    return context_for(contact.phone, contact.name, contact.country, contact.attributes or {})


@dataclass(frozen=True)
class CloudPreview:
    """A WhatsApp template filled in for real contacts: each sample is `Rendered.shown`'s
    parts plus who it is for; `error` names the variable (and the contact) that failed."""

    samples: list[dict[str, Any]]
    error: str | None


def cloud_preview(
    session: Session,
    components: list[Any],
    mapping: Mapping[str, Any],
    list_ids: list[int],
    phone: str | None = None,
    samples: int = 3,
) -> CloudPreview:
    """The template as the first recipients of the lists (or the contact with `phone`)
    will get it, each value rendered with the budget a sent message has."""
    try:
        clean = cloud_template.validate_mapping(components, mapping)
    except ValidationError as exc:
        return CloudPreview([], str(exc))
    query = select(Contact).where(Contact.opted_out_at.is_(None)).order_by(Contact.id)
    if phone:
        query = query.where(Contact.phone == phone)
    elif list_ids:
        members = select(list_members.c.contact_id).where(list_members.c.list_id.in_(list_ids))
        query = query.where(Contact.id.in_(members))
    shown: list[dict[str, Any]] = []
    for contact in session.scalars(query.limit(samples)):
        ctx = context_for(contact.phone, contact.name, contact.country, contact.attributes or {})
        try:
            filled = cloud_template.render(components, clean, ctx, contact.id)
        except TemplateError as exc:
            return CloudPreview(
                shown,
                said(
                    "For %(name)s: %(problem)s",
                    name=contact.name or contact.phone,
                    problem=str(exc),
                ),
            )
        shown.append(
            {
                "phone": contact.phone,
                "name": contact.name,
                "heading": filled.heading,
                "message": filled.message,
                "footer": filled.footer,
                "buttons": filled.shown_buttons,
                "media": cloud_template.header_media_kind(components),
                "text": filled.text,
            }
        )
    return CloudPreview(shown, None)
