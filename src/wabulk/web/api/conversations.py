"""The Inbox over the API: conversations, their timeline, answers, team work, quick replies.

The same services as the Inbox page (wabulk.inbox). Conversations page on their last
activity, newest first, so the cursor carries a time and an id; every other list pages
like the rest of the API.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy import select

from ...errors import NotFound
from ...inbox import answers, quick_replies
from ...inbox import conversations as inbox
from ...models import ConversationNote, Message, QuickReply, Role, utcnow
from ...words import N_, said
from ..helpers import MAX_ID
from .registry import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Call,
    Id,
    Input,
    Output,
    Page,
    Paged,
    PageQuery,
    Query,
    Text,
    keyset,
    operation,
)

TAG = "Inbox"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
NOT_A_CURSOR = N_("is not a cursor this API gave out; use the next_cursor of a page")


# --- conversations -----------------------------------------------------------------------


def encode_before(before: tuple[datetime, int]) -> str:
    at, last_id = before
    text = f"{(at - EPOCH) // MICROSECOND}.{last_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_before(cursor: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    micros, _, last_id = text.partition(".")
    if not (micros.isdigit() and last_id.isdigit() and len(micros) <= 17):
        raise ValueError(NOT_A_CURSOR)
    if not 1 <= int(last_id) <= MAX_ID:
        raise ValueError(NOT_A_CURSOR)
    try:
        return EPOCH + int(micros) * MICROSECOND, int(last_id)
    except OverflowError:
        raise ValueError(NOT_A_CURSOR) from None


class ConversationQuery(Query):
    filter: Literal["all", "unread", "mine", "unassigned", "done"] = Field(
        "all",
        description="all, unread, mine (assigned to you), unassigned: open conversations; "
        "done: the ones marked done.",
    )
    q: Annotated[Text, Field(max_length=inbox.MAX_QUERY)] = Field(
        "",
        description="Search in contact names and (3 digits or more) phone numbers, in every "
        "conversation, open and done, whatever the filter.",
    )
    limit: int = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Rows per page, 1 to {MAX_LIMIT}."
    )
    cursor: str = Field(
        "",
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="The `next_cursor` of the previous page; empty for the first page.",
    )

    @field_validator("cursor")
    @classmethod
    def _known_cursor(cls, value: str) -> str:
        if value:
            decode_before(value)
        return value


class ConversationOut(Output):
    id: int
    contact_id: int
    contact_name: str | None
    phone: str = Field(description="E.164.")
    opted_out: bool = Field(description="The contact opted out: nothing can be sent to them.")
    sender_id: int
    sender_name: str
    channel: str = Field(description="whatsapp_web, cloud_api or dry_run.")
    assignee_id: int | None = Field(description="The teammate it is assigned to, if any.")
    assignee_name: str | None = Field(description="That teammate's email.")
    state: str = Field(description="open or done.")
    unread: int = Field(description="Replies nobody has read yet.")
    last_activity_at: datetime
    preview: str = Field(description="The newest line, either way, cut to fit.")
    campaign_id: int | None = Field(description="The campaign whose message started it.")
    campaign_name: str | None


class ListRefOut(Output):
    id: int
    name: str


class ItemOut(Output):
    key: str = Field(description="Pass as `before` for the items before this one.")
    kind: str = Field(description="out (a campaign message or an answer), in, or note.")
    id: int = Field(description="The message, reply or note id.")
    at: datetime
    text: str
    status: str | None = Field(description="out: queued, sending, sent, delivered, read, …")
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    error: str | None = Field(description="out: why it failed, in words.")
    campaign_id: int | None
    campaign_name: str | None
    author: str | None = Field(description="The email of an answer's or a note's author.")
    is_answer: bool = Field(description="out: written in the Inbox, not by a campaign.")
    reply_kind: str | None = Field(description="in: text, button, image, …")
    opted_out: bool = Field(description="in: this message opted the contact out.")


class ConversationDetail(ConversationOut):
    attributes: dict[str, Any] = Field(description="The contact's fields.")
    lists: list[ListRefOut] = Field(description="The contact's lists (at most 50).")
    opted_out_at: datetime | None
    opt_out_reason: str | None
    sender_state: str
    last_inbound_at: datetime | None = Field(description="The customer's last message.")
    created_at: datetime
    window_closes_at: datetime | None = Field(
        description="Cloud API: free text can be sent until then (the customer's last "
        "message + 24 h); after it, only an approved template. Null: no such rule."
    )
    window_open: bool = Field(description="Free text can be sent now.")
    timeline: list[ItemOut] = Field(description="The newest 100 items, oldest first.")
    earlier: str | None = Field(
        description="Pass as `before` to the timeline operation for older items; null: none."
    )


class TimelineQuery(Query):
    before: Annotated[str, Field(max_length=40, pattern=r"^((out|in|note):[0-9]{1,18})?$")] = Field(
        "", description="An item's `key`: only items before it. Empty: the newest."
    )
    limit: int = Field(100, ge=1, le=inbox.MAX_TIMELINE, description="Items, 1 to 200.")


class Timeline(Output):
    data: list[ItemOut] = Field(description="Oldest first.")
    earlier: str | None = Field(description="Pass as `before` for older items; null: none.")


class Unread(Output):
    unread: int = Field(
        description="Open conversations with a reply nobody has read yet, counted up to 100 "
        "(100 means 100 or more; the Inbox's badge shows 99+)."
    )


class NewConversation(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"contact_id": 1, "sender_id": 1}]})

    contact_id: Id
    sender_id: Id = Field(description="The number that writes to the contact.")


class Assignment(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"assignee_id": 2}]})

    assignee_id: Id | None = Field(description="An operator or admin; null to unassign.")


class NoteIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"body": "Wants the blue one in size 8."}]}
    )

    body: Annotated[Text, Field(min_length=1, max_length=inbox.MAX_NOTE)] = Field(
        description="Seen by the team only; never sent to the customer."
    )


class NoteOut(Output):
    id: int
    conversation_id: int
    body: str
    author: str | None
    at: datetime


class TemplateAnswer(Input):
    template_id: Id = Field(description="An approved WhatsApp template of this sender.")
    values: dict[Annotated[str, Field(max_length=120)], Annotated[Text, Field(max_length=1000)]] = (
        Field(
            default_factory=dict,
            max_length=answers.MAX_VALUES,
            description="What fills each variable, by slot (`body.1`, `header.name`, "
            "`button.0`): a contact field as `{{ first_name }}`, or a fixed text.",
        )
    )


class AnswerIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": "Yes {{ name }}, we deliver to Pune."}]}
    )

    text: Annotated[Text, Field(max_length=4096)] | None = Field(
        None, description="The answer, with the same placeholders as templates."
    )
    quick_reply_id: Id | None = Field(None, description="A saved answer, used when no text.")
    template: TemplateAnswer | None = Field(
        None,
        description="Cloud API, once the 24-hour window has closed: an approved template "
        "(the text is then ignored).",
    )


class AnswerOut(Output):
    message_id: int = Field(description="The answer's message: it moves like any message.")
    conversation_id: int
    status: str
    text: str = Field(description="As it goes, placeholders filled in.")


def _view(call: Call, conversation_id: int) -> inbox.ConversationView:
    view = inbox.get(call.session, conversation_id)
    if view is None:
        raise NotFound(said("There is no conversation #%(id)s.", id=conversation_id))
    return view


def _summary(call: Call, conversation_id: int) -> ConversationOut:
    # Read back in SQL (autoflushed first): some actions change rows with UPDATE statements.
    return ConversationOut.model_validate(_view(call, conversation_id))


def _earlier(call: Call, conversation_id: int, items: list[inbox.Item]) -> str | None:
    if not items:
        return None
    older = inbox.timeline(call.session, conversation_id, before_id=items[0].key, limit=1)
    return items[0].key if older else None


@operation(
    "GET",
    "/conversations",
    summary="List conversations",
    tag=TAG,
    query=ConversationQuery,
    response=Page[ConversationOut],
)
def list_conversations(call: Call, query: ConversationQuery) -> dict[str, Any]:
    """Newest activity first."""
    page = inbox.list_page(
        call.session,
        filter=query.filter,
        user_id=call.user.id,
        q=query.q,
        before=decode_before(query.cursor) if query.cursor else None,
        limit=query.limit,
    )
    return {
        "data": page.rows,
        "next_cursor": encode_before(page.next_before) if page.next_before else None,
    }


@operation(
    "GET",
    "/conversations/unread",
    summary="Count unread conversations",
    tag=TAG,
    response=Unread,
)
def count_unread_conversations(call: Call) -> Unread:
    """Open conversations with a reply nobody has opened yet (the Inbox's badge)."""
    return Unread(unread=inbox.unread_count(call.session))


@operation(
    "POST",
    "/conversations",
    summary="Start or find a conversation",
    tag=TAG,
    role=Role.OPERATOR,
    body=NewConversation,
    response=ConversationOut,
)
def start_conversation(call: Call, body: NewConversation) -> ConversationOut:
    """The conversation of this contact and sender, made empty when there is none yet,
    so that you can answer someone who has not written."""
    conversation_id = inbox.ensure(call.session, body.contact_id, body.sender_id, utcnow())
    return _summary(call, conversation_id)


@operation(
    "GET",
    "/conversations/{conversation_id}",
    summary="Get a conversation and its timeline",
    tag=TAG,
    response=ConversationDetail,
)
def get_conversation(call: Call, conversation_id: int) -> ConversationDetail:
    """With the contact's fields and lists, the 24-hour window, and the newest 100 items
    both ways (campaign messages, replies, answers) with the team's notes. Reading it does
    not mark it read."""
    view = _view(call, conversation_id)
    items = inbox.timeline(call.session, conversation_id)
    closes = view.window_closes_at
    return ConversationDetail.model_validate(
        {
            **{
                name: getattr(view, name)
                for name in ConversationDetail.model_fields
                if hasattr(view, name)
            },
            "window_open": closes is None or closes > utcnow(),
            "timeline": items,
            "earlier": _earlier(call, conversation_id, items),
        }
    )


@operation(
    "GET",
    "/conversations/{conversation_id}/timeline",
    summary="Page back through a conversation",
    tag=TAG,
    query=TimelineQuery,
    response=Timeline,
)
def conversation_timeline(call: Call, conversation_id: int, query: TimelineQuery) -> Timeline:
    """The items before `before` (the newest without it), oldest first."""
    _view(call, conversation_id)
    items = inbox.timeline(
        call.session, conversation_id, before_id=query.before or None, limit=query.limit
    )
    return Timeline.model_validate(
        {"data": items, "earlier": _earlier(call, conversation_id, items)}
    )


@operation(
    "POST",
    "/conversations/{conversation_id}/read",
    summary="Mark a conversation read",
    tag=TAG,
    role=Role.OPERATOR,
    response=ConversationOut,
)
def mark_conversation_read(call: Call, conversation_id: int) -> ConversationOut:
    inbox.mark_read(call.session, call.user, conversation_id)
    return _summary(call, conversation_id)


@operation(
    "POST",
    "/conversations/{conversation_id}/assign",
    summary="Assign a conversation",
    tag=TAG,
    role=Role.OPERATOR,
    body=Assignment,
    response=ConversationOut,
)
def assign_conversation(call: Call, conversation_id: int, body: Assignment) -> ConversationOut:
    """To an active operator or admin, or to nobody (null)."""
    inbox.assign(call.session, call.user, conversation_id, body.assignee_id)
    return _summary(call, conversation_id)


@operation(
    "POST",
    "/conversations/{conversation_id}/done",
    summary="Mark a conversation done",
    tag=TAG,
    role=Role.OPERATOR,
    response=ConversationOut,
)
def mark_conversation_done(call: Call, conversation_id: int) -> ConversationOut:
    """It leaves the open lists until the customer writes again."""
    inbox.set_done(call.session, call.user, conversation_id, True)
    return _summary(call, conversation_id)


@operation(
    "POST",
    "/conversations/{conversation_id}/reopen",
    summary="Reopen a conversation",
    tag=TAG,
    role=Role.OPERATOR,
    response=ConversationOut,
)
def reopen_conversation(call: Call, conversation_id: int) -> ConversationOut:
    inbox.set_done(call.session, call.user, conversation_id, False)
    return _summary(call, conversation_id)


@operation(
    "POST",
    "/conversations/{conversation_id}/notes",
    summary="Add a note to a conversation",
    tag=TAG,
    role=Role.OPERATOR,
    body=NoteIn,
    response=NoteOut,
    status=201,
)
def add_conversation_note(call: Call, conversation_id: int, body: NoteIn) -> NoteOut:
    """For the team; the customer never sees it."""
    note_id = inbox.add_note(call.session, call.user, conversation_id, body.body)
    note = call.session.get(ConversationNote, note_id)
    assert note is not None
    return NoteOut(
        id=note.id,
        conversation_id=conversation_id,
        body=note.body,
        author=call.user.email,
        at=note.at,
    )


@operation(
    "POST",
    "/conversations/{conversation_id}/opt-out",
    summary="Opt the contact out from a conversation",
    tag=TAG,
    role=Role.OPERATOR,
    response=ConversationOut,
)
def opt_out_from_conversation(call: Call, conversation_id: int) -> ConversationOut:
    """The customer's last message is the reason. No campaign and no answer reaches them
    again; a contact already opted out keeps their first reason."""
    inbox.opt_out(call.session, call.user, conversation_id)
    return _summary(call, conversation_id)


@operation(
    "POST",
    "/conversations/{conversation_id}/answers",
    summary="Answer in a conversation",
    tag=TAG,
    role=Role.OPERATOR,
    body=AnswerIn,
    response=AnswerOut,
    status=201,
)
def answer_conversation(call: Call, conversation_id: int, body: AnswerIn) -> AnswerOut:
    """Queued for the sender that wrote to this contact, ahead of campaign traffic but
    within the sender's pace, and sent once. On the Cloud API, free text only within 24
    hours of the customer's last message; after that, an approved `template`. Refused
    (422) for an opted-out contact or a sender that is turned off."""
    _view(call, conversation_id)
    template = body.template.model_dump() if body.template is not None else None
    message_id = answers.write_answer(
        call.session,
        call.user,
        conversation_id,
        text=body.text,
        quick_reply_id=body.quick_reply_id,
        template=template,
        now=utcnow(),
    )
    message = call.session.get(Message, message_id)
    assert message is not None
    return AnswerOut(
        message_id=message_id,
        conversation_id=conversation_id,
        status=str(message.status),
        text=message.body or "",
    )


# --- quick replies -------------------------------------------------------------------------


class QuickReplyOut(Output):
    id: int
    name: str
    body: str = Field(description="With placeholders such as {{ name }}.")
    created_at: datetime
    updated_at: datetime


class QuickReplyIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Opening hours", "body": "Hi {{ name }}, we open at 10."}]
        }
    )

    name: Annotated[Text, Field(min_length=1, max_length=quick_replies.MAX_NAME)]
    body: Annotated[Text, Field(min_length=1, max_length=quick_replies.MAX_BODY)] = Field(
        description="Placeholders as in templates; a field no contact has is refused."
    )


@operation(
    "GET",
    "/quick-replies",
    summary="List quick replies",
    tag=TAG,
    query=PageQuery,
    response=Page[QuickReplyOut],
)
def list_quick_replies(call: Call, query: PageQuery) -> Paged:
    """Oldest first."""
    return keyset(call.session, select(QuickReply), QuickReply.id, query)


@operation(
    "GET",
    "/quick-replies/{quick_reply_id}",
    summary="Get a quick reply",
    tag=TAG,
    response=QuickReplyOut,
)
def get_quick_reply(call: Call, quick_reply_id: int) -> Any:
    return quick_replies.get(call.session, quick_reply_id)


@operation(
    "POST",
    "/quick-replies",
    summary="Create a quick reply",
    tag=TAG,
    role=Role.ADMIN,
    body=QuickReplyIn,
    response=QuickReplyOut,
    status=201,
)
def create_quick_reply(call: Call, body: QuickReplyIn) -> Any:
    return quick_replies.create(call.session, call.user, body.name, body.body)


@operation(
    "PUT",
    "/quick-replies/{quick_reply_id}",
    summary="Edit a quick reply",
    tag=TAG,
    role=Role.ADMIN,
    body=QuickReplyIn,
    response=QuickReplyOut,
)
def update_quick_reply(call: Call, quick_reply_id: int, body: QuickReplyIn) -> Any:
    reply = quick_replies.update(call.session, call.user, quick_reply_id, body.name, body.body)
    call.session.flush()
    return reply


@operation(
    "DELETE",
    "/quick-replies/{quick_reply_id}",
    summary="Delete a quick reply",
    tag=TAG,
    role=Role.ADMIN,
    status=204,
)
def delete_quick_reply(call: Call, quick_reply_id: int) -> None:
    """Answers already sent with it keep their words."""
    quick_replies.delete(call.session, call.user, quick_reply_id)
