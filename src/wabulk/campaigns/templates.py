"""Templates: reusable message bodies with an optional attachment, and their preview."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..errors import Conflict, NotFound, ValidationError
from ..models import Campaign, CampaignStatus, Contact, Media, Role, Template, User, list_members
from .render_budget import TEXT_LIMIT
from .rendering import TemplateError, compile_body, context_for, empty_placeholders

MAX_BODY = TEXT_LIMIT  # WhatsApp's own limit for a text message


def get_template(session: Session, template_id: int) -> Template:
    found = session.get(Template, template_id)
    if found is None:
        raise NotFound(f"There is no template #{template_id}.")
    return found


def _check(session: Session, name: str, body: str, media_id: int | None, except_id: int | None):
    name = " ".join(name.split())
    if not name:
        raise ValidationError("Give the template a name.", field="name")
    if len(name) > 120:
        raise ValidationError("A template name can have at most 120 characters.", field="name")
    clash = select(Template.id).where(func.lower(Template.name) == name.lower())
    if except_id is not None:
        clash = clash.where(Template.id != except_id)
    if session.scalar(clash) is not None:
        raise Conflict(f"There is already a template called {name!r}.")
    if not body.strip():
        raise ValidationError("Write the message.", field="body")
    if len(body) > MAX_BODY:
        raise ValidationError(_too_long(body), field="body")
    compile_body(body)
    if media_id is not None and session.get(Media, media_id) is None:
        raise ValidationError(f"There is no attachment #{media_id}.", field="media")
    return name


def _too_long(body: str) -> str:
    return f"The message has {len(body):,} characters; WhatsApp allows {MAX_BODY:,}."


def create_template(
    session: Session, actor: User | None, name: str, body: str, media_id: int | None = None
) -> Template:
    require_role(actor, Role.OPERATOR)
    clean = _check(session, name, body, media_id, None)
    template = Template(name=clean, body=body, media_id=media_id)
    session.add(template)
    session.flush()
    events.record(
        session,
        "template.created",
        f"{events.actor_name(actor)} created the template {clean!r}.",
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
) -> Template:
    """Edit a template; campaigns already launched keep the text they were launched with."""
    require_role(actor, Role.OPERATOR)
    template = get_template(session, template_id)
    template.name = _check(session, name, body, media_id, template_id)
    template.body = body
    template.media_id = media_id
    events.record(
        session,
        "template.edited",
        f"{events.actor_name(actor)} edited the template {template.name!r}.",
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
            f"{drafts} draft campaign(s) use {template.name!r}; change or delete them first."
        )
    name = template.name
    session.delete(template)
    events.record(
        session,
        "template.deleted",
        f"{events.actor_name(actor)} deleted the template {name!r}.",
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
) -> Preview:
    """The message as real recipients of the chosen lists would get it.

    - Renders the first `samples` recipients, and counts over the first `check` which
      placeholders would be empty, so a sheet with a missing column is noticed before launch.
    - Each sample has the budget a sent message has, and `limit` is WhatsApp's length for
      it (`CAPTION_LIMIT` with a photo or video): a body the dispatcher would refuse is
      refused here with the same sentence.
    """
    if len(body) > MAX_BODY:
        return Preview([], [], _too_long(body), 0, [])
    try:
        compiled = compile_body(body)
    except TemplateError as exc:
        return Preview([], [], str(exc), 0, [])
    query = select(Contact).where(Contact.opted_out_at.is_(None)).order_by(Contact.id)
    if list_ids:
        members = select(list_members.c.contact_id).where(list_members.c.list_id.in_(list_ids))
        query = query.where(Contact.id.in_(members))
    people = list(session.scalars(query.limit(check)))
    contexts = [context_for(c.phone, c.name, c.country, c.attributes or {}) for c in people]
    shown: list[PreviewSample] = []
    try:
        for contact, ctx in zip(people[:samples], contexts, strict=False):
            text = compiled.render(ctx, contact.id, limit=limit)
            shown.append(PreviewSample(contact.phone, contact.name, text))
    except TemplateError as exc:
        return Preview(shown, [], str(exc), len(people), sorted(compiled.placeholders))
    warnings = [
        f"{{{{ {name} }}}} is empty for {n:,} of {len(people):,} recipient(s)"
        + (" checked" if len(people) == check else "")
        + "."
        for name, n in sorted(empty_placeholders(compiled, contexts).items())
    ]
    return Preview(shown, warnings, None, len(people), sorted(compiled.placeholders))
