"""Answers written in the Inbox: checked, rendered and queued for the sender of the conversation.

An answer is a `Message` with no campaign (DESIGN §3): the lane holding the conversation's
sender claims it ahead of campaign traffic, within the sender's pace, sends it through the
same channel call and settles it with the same lease-guarded statements, so it has the
ledger, states and crash safety of a campaign message and is never sent twice
(dispatch/answer_queue.py). `Answer` keeps its conversation, author, quick reply and
template.

`write_answer(..., text=..., quick_reply_id=..., template=...)`:
- `text`: the answer, with the same placeholders as templates ({{ first_name }}…); rendered
  for the contact now, so what the Inbox shows is what goes. Without `text`, the quick
  reply's body is used.
- `template` (a Cloud API sender, needed once the customer's 24-hour window has closed):
  `{"template_id": <CloudTemplate.id>, "values": {<slot>: <text>}}`, slots as
  `campaigns.cloud_template.Variable.slot` ("body.1", "header.customer_name", "button.0")
  and each text mapped as a campaign maps it (`cloud_template.validate_mapping`): a contact
  field as `{{ first_name }}`, a fixed text as itself; a quick-reply button's slot holds its
  payload. `templates_for` lists the templates offered and their slots. When `template` is
  given, `text` is ignored: the template's own words are the answer.

Refusals raise `AnswerRefused` with a sentence for the shop owner; a viewer is refused with
`PermissionDenied` like any other change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..campaigns import cloud_template
from ..campaigns.render_budget import TEXT_LIMIT
from ..campaigns.rendering import TemplateError, compile_body, context_for
from ..errors import ValidationError
from ..models import (
    Answer,
    Channel,
    CloudTemplate,
    Contact,
    Conversation,
    Message,
    MessageStatus,
    QuickReply,
    Role,
    Sender,
    SenderState,
    User,
)
from ..words import N_, said
from . import conversations

# Bounds checked before anything is compiled or rendered.
MAX_VALUES = 30
MAX_VALUE_LENGTH = 1000


class AnswerRefused(ValidationError):
    """An answer that cannot go; the message says why and what to do instead."""


@dataclass(frozen=True)
class TemplateChoice:
    """An approved template an answer can go as, with the values it asks for."""

    id: int
    name: str
    language: str
    category: str
    text: str  # the message as Meta shows it, with its {{1}}… variables
    variables: list[cloud_template.Variable]


def _short_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit


def _when(at: datetime) -> str:
    return at.strftime("%d %b %Y at %H:%M UTC").lstrip("0")


def _template_snapshot(
    session: Session, sender: Sender, template: Any
) -> tuple[dict[str, Any], CloudTemplate]:
    """The answer's template frozen as a campaign freezes one (`cloud_template.snapshot`)."""
    if not isinstance(template, dict):
        raise AnswerRefused(N_("Choose an approved template."), field="template")
    if sender.channel != Channel.CLOUD_API:
        raise AnswerRefused(
            said(
                "%(sender)s is a WhatsApp Web number: write the answer as text.", sender=sender.name
            ),
            field="template",
        )
    template_id = template.get("template_id")
    values = template.get("values") or {}
    if not isinstance(template_id, int) or isinstance(template_id, bool):
        raise AnswerRefused(N_("Choose an approved template."), field="template")
    if not isinstance(values, dict) or len(values) > MAX_VALUES:
        raise AnswerRefused(N_("The template's values could not be read."), field="template")
    if any(
        not isinstance(k, str)
        or not isinstance(v, str)
        or len(k) > 100
        or len(v) > MAX_VALUE_LENGTH
        for k, v in values.items()
    ):
        raise AnswerRefused(
            said(
                "Each of the template's values must be text of at most %(max)s characters.",
                max=MAX_VALUE_LENGTH,
            ),
            field="template",
        )
    row = session.get(CloudTemplate, template_id)
    if row is None or row.sender_id != sender.id:
        raise AnswerRefused(
            said(
                "That template is not one of %(sender)s's; choose one from the list.",
                sender=sender.name,
            ),
            field="template",
        )
    if str(row.status).upper() != cloud_template.APPROVED:
        raise AnswerRefused(
            said(
                "The template %(name)s is not approved by WhatsApp; choose an approved one.",
                name=row.name,
            ),
            field="template",
        )
    if cloud_template.header_media_kind(row.components) is not None:
        raise AnswerRefused(
            said(
                "The template %(name)s starts with a photo, video or document, which an answer "
                "cannot carry; choose one without.",
                name=row.name,
            ),
            field="template",
        )
    why = cloud_template.unsupported(row.components)
    if why:
        raise AnswerRefused(
            said(
                "The template %(name)s cannot be sent: %(reason)s",
                name=row.name,
                reason=f"{why[:1].lower()}{why[1:]}",
            ),
            field="template",
        )
    try:
        return cloud_template.snapshot(row, values, None), row
    except ValidationError as exc:
        raise AnswerRefused(str(exc), field="template") from None


def _words(session: Session, text: str | None, quick_reply_id: int | None) -> str:
    if quick_reply_id is not None:
        saved = session.get(QuickReply, quick_reply_id)
        if saved is None:
            raise AnswerRefused(
                N_("That saved answer was deleted; choose another or write one."), field="text"
            )
        if text is None:  # picked and sent as it is (the page may send it edited)
            text = saved.body
    if text is None or not text.strip():
        raise AnswerRefused(N_("Write an answer first."), field="text")
    if len(text) > TEXT_LIMIT:
        raise AnswerRefused(
            said(
                "The answer has %(count)s characters; WhatsApp allows %(max)s.",
                count=f"{len(text):,}",
                max=f"{TEXT_LIMIT:,}",
            ),
            field="text",
        )
    return text


def write_answer(
    session: Session,
    actor: User | None,
    conversation_id: int,
    *,
    text: str | None = None,
    quick_reply_id: int | None = None,
    template: dict[str, Any] | None = None,
    now: datetime,
) -> int:
    """Queue an answer in this conversation, in the caller's transaction; its message id."""
    require_role(actor, Role.OPERATOR)
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise AnswerRefused(N_("This conversation no longer exists."))
    contact = session.get(Contact, conversation.contact_id)
    sender = session.get(Sender, conversation.sender_id)
    if contact is None or sender is None:
        raise AnswerRefused(N_("This conversation no longer exists."))
    if sender.state == SenderState.DISABLED:
        raise AnswerRefused(
            said(
                "The number %(sender)s is turned off; turn it on in Senders to answer.",
                sender=sender.name,
            )
        )
    if contact.opted_out_at is not None:
        raise AnswerRefused(
            said(
                "%(name)s opted out on %(date)s: wabulk sends them nothing.",
                name=contact.name or contact.phone,
                date=_when(contact.opted_out_at),
            )
        )
    snapshot: dict[str, Any] | None = None
    chosen: CloudTemplate | None = None
    words = ""
    if template is not None:
        snapshot, chosen = _template_snapshot(session, sender, template)
    else:
        words = _words(session, text, quick_reply_id)
        closes = conversations.window_closes_at(session, conversation)
        if closes is not None and closes <= now:
            if closes == conversations.NEVER_OPENED:
                refusal = N_(
                    "This customer has not written to this number yet: WhatsApp lets a "
                    "business send free text only within 24 hours of the customer's last "
                    "message. Choose an approved template."
                )
            else:
                refusal = said(
                    "The 24-hour window closed on %(date)s: WhatsApp lets a business send "
                    "free text only within 24 hours of the customer's last message. Choose "
                    "an approved template.",
                    date=_when(closes),
                )
            raise AnswerRefused(refusal, field="template")
    ctx = context_for(contact.phone, contact.name, contact.country, contact.attributes or {})
    # The seed fixes spintax choices; the conversation's id keeps a re-render the same.
    params: dict[str, Any] | None = None
    try:
        if snapshot is not None:
            body, params = cloud_template.render_params(snapshot, ctx, seed=conversation.id)
        else:
            body = compile_body(words).render(ctx, seed=conversation.id, limit=TEXT_LIMIT)
    except TemplateError as exc:
        raise AnswerRefused(
            said("The answer could not be written: %(reason)s", reason=str(exc)),
            field="template" if snapshot is not None else "text",
        ) from None
    if not body.strip():
        raise AnswerRefused(N_("The answer comes out empty once filled in."), field="text")
    message = Message(
        campaign_id=None,
        contact_id=contact.id,
        phone=contact.phone,
        body=body,
        status=MessageStatus.QUEUED,
        sender_id=sender.id,
        next_attempt_at=now,
        queued_at=now,
        template_params=params,
        updated_at=now,
    )
    session.add(message)
    session.flush()
    session.add(
        Answer(
            message_id=message.id,
            conversation_id=conversation.id,
            author_id=actor.id if actor is not None else None,
            template=snapshot,
            quick_reply_id=quick_reply_id if snapshot is None else None,
            created_at=now,
        )
    )
    conversations.touch_on_answer(session, conversation.id, now, body)
    who = contact.name or contact.phone
    if chosen is not None:
        text = said(
            "Answer to %(name)s queued with the template %(template)s on %(sender)s.",
            name=who,
            template=chosen.name,
            sender=sender.name,
        )
    else:
        text = said("Answer to %(name)s queued on %(sender)s.", name=who, sender=sender.name)
    events.record(
        session,
        "inbox.answered",
        text,
        user=actor,
        message_id=message.id,
    )
    session.flush()
    return message.id


def templates_for(session: Session, sender_id: int) -> list[TemplateChoice]:
    """The approved templates an answer from this sender can go as, by name.

    Those starting with a photo, video or document are left out (an answer carries no
    file), as are those wabulk cannot send; a WhatsApp Web sender has none.
    """
    rows = session.scalars(
        select(CloudTemplate)
        .join(Sender, Sender.id == CloudTemplate.sender_id)
        .where(
            CloudTemplate.sender_id == sender_id,
            CloudTemplate.status == cloud_template.APPROVED,
            Sender.channel == Channel.CLOUD_API,
        )
        .order_by(CloudTemplate.name, CloudTemplate.language)
        .limit(500)
    ).all()
    out = []
    for row in rows:
        components = row.components or []
        if cloud_template.header_media_kind(components) is not None:
            continue
        if cloud_template.unsupported(components):
            continue
        body = cloud_template.part(components, "BODY") or {}
        out.append(
            TemplateChoice(
                id=row.id,
                name=row.name,
                language=row.language,
                category=str(row.category or "").upper(),
                text=str(body.get("text") or ""),
                variables=cloud_template.variables(components),
            )
        )
    return out
