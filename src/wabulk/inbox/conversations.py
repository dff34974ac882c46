"""Conversations: one per contact and sender, kept current by replies and answers.

- A reply upserts its conversation in the transaction that stores it (one statement, on
  SQLite and PostgreSQL alike), so two replies at once still make one conversation and
  count two unread.
- The list is keyset-paged on (last activity, id), newest first; each filter is a scope
  over state and assignee served by one index of `models/inbox.py`, so a page costs the
  same at 100,000 conversations as at 100.
- A conversation's timeline (timeline.py, re-exported here) merges three small, bounded
  reads (messages out, replies in, notes) and returns them in time order.
- Reading needs no role beyond signing in (every user is at least a viewer); answering,
  assigning, notes, done and opt-out need an operator. Each change records an Event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    String,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from .. import events
from ..auth.permissions import require_role
from ..contacts import service as contacts_service
from ..errors import NotFound, ValidationError
from ..models import (
    Campaign,
    Channel,
    Contact,
    ContactList,
    Conversation,
    ConversationNote,
    ConversationState,
    Inbound,
    Role,
    Sender,
    User,
    list_members,
    utcnow,
)
from ..words import N_, said
from .search import found_ids, keyset, matches
from .timeline import MAX_TIMELINE, Item, timeline  # noqa: F401  (the contract names them here)

conversations = Conversation.__table__
c = conversations.c

ConversationFilter = Literal["all", "unread", "mine", "unassigned", "done"]
FILTERS: tuple[str, ...] = ("all", "unread", "mine", "unassigned", "done")
MAX_QUERY = 100  # characters of a search
MAX_PAGE = 200
PREVIEW_LENGTH = 200  # the column's size
WINDOW = timedelta(hours=24)  # the Cloud API's customer service window
# A Cloud API conversation nobody has written in yet: its window never opened, so it is
# closed (any moment in the past says so; this one is recognisable).
NEVER_OPENED = datetime(1970, 1, 1, tzinfo=UTC)
MAX_NOTE = 4000
MAX_LISTS_SHOWN = 50
MAX_TEAMMATES = 200  # offered in the Assign choice
# The navigation's badge says "99+" past this: counting further reads every unread one.
UNREAD_CAP = 99


def cut(text: str | None, limit: int = PREVIEW_LENGTH) -> str:
    """One line of at most `limit` characters: whitespace folded, an ellipsis when cut."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(conversations)


def _later(column: Any, value: Any) -> Any:
    """The later of a stored time and a new one (a reply heard late must not move it back)."""
    return case((or_(column.is_(None), value > column), value), else_=column)


# --- kept current by replies and answers -----------------------------------------------


def touch_on_reply(
    session: Session,
    *,
    contact_id: int,
    sender_id: int,
    campaign_id: int | None,
    at: datetime,
    preview: str,
) -> int:
    """Record a reply on its conversation (created if new); returns the conversation id.

    - One more unread, activity and the customer's last message moved to `at` (never
      back), the preview follows the newest line, and a done conversation opens again.
    - "Which campaign started it" is the first reply's campaign: set only while empty.
    """
    now = utcnow()
    insert = _insert(session).values(
        contact_id=contact_id,
        sender_id=sender_id,
        campaign_id=campaign_id,
        state=ConversationState.OPEN,
        unread=1,
        last_activity_at=at,
        last_inbound_at=at,
        preview=cut(preview),
        created_at=now,
        updated_at=now,
    )
    new = insert.excluded
    statement = insert.on_conflict_do_update(
        index_elements=[c.contact_id, c.sender_id],
        set_={
            "unread": c.unread + 1,
            "last_activity_at": _later(c.last_activity_at, new.last_activity_at),
            "last_inbound_at": _later(c.last_inbound_at, new.last_inbound_at),
            "preview": case(
                (new.last_activity_at >= c.last_activity_at, new.preview), else_=c.preview
            ),
            "state": new.state,
            "campaign_id": func.coalesce(c.campaign_id, new.campaign_id),
            "updated_at": new.updated_at,
        },
    ).returning(c.id)
    return int(session.execute(statement).scalar_one())


def touch_on_answer(session: Session, conversation_id: int, at: datetime, preview: str) -> None:
    """An answer was written: activity and preview move; unread stays as it is."""
    when = literal(at, type_=c.last_activity_at.type)
    session.execute(
        update(conversations)
        .where(c.id == conversation_id)
        .values(
            last_activity_at=_later(c.last_activity_at, when),
            preview=case((when >= c.last_activity_at, cut(preview)), else_=c.preview),
            updated_at=utcnow(),
        )
    )


def ensure(session: Session, contact_id: int, sender_id: int, now: datetime) -> int:
    """The conversation of this contact and sender, created empty when there is none yet
    (answering someone who has not written, from the contact page)."""
    if session.get(Contact, contact_id) is None:
        raise NotFound(said("There is no contact #%(id)s.", id=contact_id))
    if session.get(Sender, sender_id) is None:
        raise NotFound(said("There is no sender #%(id)s.", id=sender_id))
    statement = (
        _insert(session)
        .values(
            contact_id=contact_id,
            sender_id=sender_id,
            state=ConversationState.OPEN,
            unread=0,
            last_activity_at=now,
            preview="",
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[c.contact_id, c.sender_id])
        .returning(c.id)
    )
    new_id = session.execute(statement).scalar()
    if new_id is not None:
        return int(new_id)
    return int(
        session.execute(
            select(c.id).where(c.contact_id == contact_id, c.sender_id == sender_id)
        ).scalar_one()
    )


# --- the list ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationRow:
    id: int
    contact_id: int
    contact_name: str | None
    phone: str
    opted_out: bool
    sender_id: int
    sender_name: str
    channel: str
    assignee_id: int | None
    assignee_name: str | None  # the teammate's email
    state: str
    unread: int
    last_activity_at: datetime
    preview: str
    campaign_id: int | None
    campaign_name: str | None


@dataclass(frozen=True)
class ListPage:
    rows: list[ConversationRow]
    next_before: tuple[datetime, int] | None  # pass as `before` for the next page


def _summary_query() -> Any:
    assignee = aliased(User)
    return (
        select(
            c.id,
            c.contact_id,
            Contact.name.label("contact_name"),
            Contact.phone,
            Contact.opted_out_at.is_not(None).label("opted_out"),
            c.sender_id,
            Sender.name.label("sender_name"),
            Sender.channel,
            c.assignee_id,
            assignee.email.label("assignee_name"),
            c.state,
            c.unread,
            c.last_activity_at,
            c.preview,
            c.campaign_id,
            Campaign.name.label("campaign_name"),
        )
        .select_from(conversations)
        .join(Contact, Contact.id == c.contact_id)
        .join(Sender, Sender.id == c.sender_id)
        .outerjoin(assignee, assignee.id == c.assignee_id)
        .outerjoin(Campaign, Campaign.id == c.campaign_id)
    )


def _scoped(query: Any, filter: str, user_id: int) -> Any:
    if filter not in FILTERS:
        raise ValidationError(
            said("Choose one of the filters %(filters)s.", filters=", ".join(FILTERS)),
            field="filter",
        )
    if filter == "done":
        return query.where(c.state == ConversationState.DONE)
    if filter == "unread":
        return query.where(*_open_unread())
    query = query.where(c.state == ConversationState.OPEN)
    if filter == "mine":
        return query.where(c.assignee_id == user_id)
    if filter == "unassigned":
        return query.where(c.assignee_id.is_(None))
    return query


def _open_unread() -> tuple[Any, Any]:
    """Open and unread, through the partial index ix_conversations_unread.

    - `unread > 0` is written out, not bound: a partial index serves only a query whose
      condition matches its own.
    - The state is compared as text (`state || ''`) so that no index serves it: SQLite
      would otherwise walk every open conversation to find the few unread ones.
    """
    as_text = type_coerce(c.state, String()).concat(literal_column("''"))
    return c.unread > literal_column("0"), as_text == ConversationState.OPEN.value


def list_page(
    session: Session,
    *,
    filter: str,
    user_id: int,
    q: str = "",
    before: tuple[datetime, int] | None = None,
    limit: int = 50,
) -> ListPage:
    """One page of conversations, newest activity first.

    - `filter`: all, unread, mine, unassigned (open ones) or done; `before` is the
      `next_before` of the page before.
    - `q` searches names and (3 digits or more) numbers in every conversation, open and
      done, whatever the filter: someone looking for a customer wants them wherever they
      are (a done one says so on its row).
    """
    limit = max(1, min(limit, MAX_PAGE))
    searched = matches(q, MAX_QUERY)
    if searched is None:
        query = _scoped(_summary_query(), filter, user_id).where(keyset(before))
    else:
        if filter not in FILTERS:
            _scoped(_summary_query(), filter, user_id)  # the same refusal as without a search
        found = found_ids(searched, before, limit + 1)
        query = _summary_query().where(c.id.in_(select(found.c.id)))
    query = query.order_by(c.last_activity_at.desc(), c.id.desc()).limit(limit + 1)
    found_rows = [ConversationRow(**row._mapping) for row in session.execute(query)]
    more = len(found_rows) > limit
    rows = found_rows[:limit]
    return ListPage(rows, (rows[-1].last_activity_at, rows[-1].id) if more else None)


def unread_count(session: Session) -> int:
    """Open conversations with a reply nobody has opened yet (the navigation's badge).

    - Counted up to UNREAD_CAP + 1 and no further: a badge says "99+" past 99, and the
      count then costs the same at 100 unread as at 100,000.
    """
    capped = select(c.id).where(*_open_unread()).limit(UNREAD_CAP + 1).subquery()
    return int(session.scalar(select(func.count()).select_from(capped)) or 0)


# --- one conversation ----------------------------------------------------------------------


@dataclass(frozen=True)
class ListRef:
    id: int
    name: str


@dataclass(frozen=True)
class ConversationView:
    id: int
    contact_id: int
    contact_name: str | None
    phone: str
    attributes: dict[str, Any]
    lists: list[ListRef]
    opted_out_at: datetime | None
    opt_out_reason: str | None
    sender_id: int
    sender_name: str
    channel: str
    sender_state: str
    assignee_id: int | None
    assignee_name: str | None
    state: str
    unread: int
    last_activity_at: datetime
    last_inbound_at: datetime | None
    preview: str
    campaign_id: int | None
    campaign_name: str | None
    created_at: datetime
    # Cloud API: free-form text may be sent until then; None: no window rule (WhatsApp Web).
    window_closes_at: datetime | None

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None


def _get(session: Session, conversation_id: int) -> Conversation:
    found = session.get(Conversation, conversation_id)
    if found is None:
        raise NotFound(said("There is no conversation #%(id)s.", id=conversation_id))
    return found


def get(session: Session, conversation_id: int) -> ConversationView | None:
    """The conversation with its contact, sender, assignee and campaign; None if absent."""
    row = session.execute(
        _summary_query()
        .add_columns(
            Contact.attributes,
            Contact.opted_out_at,
            Contact.opt_out_reason,
            Sender.state.label("sender_state"),
            c.last_inbound_at,
            c.created_at,
        )
        .where(c.id == conversation_id)
    ).first()
    if row is None:
        return None
    values = dict(row._mapping)
    values.pop("opted_out")
    lists = session.execute(
        select(ContactList.id, ContactList.name)
        .join(list_members, list_members.c.list_id == ContactList.id)
        .where(list_members.c.contact_id == row.contact_id)
        .order_by(ContactList.name)
        .limit(MAX_LISTS_SHOWN)
    ).all()
    values["attributes"] = row.attributes if isinstance(row.attributes, dict) else {}
    return ConversationView(
        **values,
        lists=[ListRef(i, name) for i, name in lists],
        window_closes_at=_closes(row.channel, row.last_inbound_at),
    )


def _closes(channel: Any, last_inbound_at: datetime | None) -> datetime | None:
    if channel != Channel.CLOUD_API:
        return None
    return last_inbound_at + WINDOW if last_inbound_at is not None else NEVER_OPENED


def window_closes_at(session: Session, conversation: Any) -> datetime | None:
    """When free-form text stops being allowed: the customer's last message + 24 h on a
    Cloud API sender; `NEVER_OPENED` when they have not written; None on WhatsApp Web.

    - `conversation`: a `Conversation` or a `ConversationView` (anything with `sender_id`
      and `last_inbound_at`; a `channel` saves a read).
    """
    channel = getattr(conversation, "channel", None)
    if channel is None:
        channel = session.scalar(select(Sender.channel).where(Sender.id == conversation.sender_id))
    return _closes(channel, conversation.last_inbound_at)


# --- the team's actions -------------------------------------------------------------------


def _who(session: Session, conversation: Conversation) -> str:
    contact = session.get(Contact, conversation.contact_id)
    if contact is None:
        return "a customer"
    return f"{contact.name} ({contact.phone})" if contact.name else contact.phone


def _record(
    session: Session,
    actor: User | None,
    kind: str,
    text: str,
    conv_id: int,
    values: dict[str, str],
    **data: Any,
) -> None:
    """`text`: a marked sentence starting with %(actor)s, filled with `values`."""
    events.record(
        session,
        kind,
        said(text, actor=events.actor_name(actor), **values),
        user=actor,
        data={"conversation_id": conv_id, **data},
    )


def mark_read(session: Session, actor: User | None, conversation_id: int) -> None:
    """An operator opened the conversation: its replies are seen.

    - A viewer changes nothing, this included: their reading must not clear the unread
      count the team works from (callers skip the call for a viewer).
    """
    require_role(actor, Role.OPERATOR)
    conversation = _get(session, conversation_id)
    if conversation.unread:
        session.execute(update(conversations).where(c.id == conversation_id).values(unread=0))
        session.expire(conversation, ["unread"])


def assignable(session: Session) -> list[User]:
    """Who a conversation can be given to: active operators and admins (a viewer cannot
    answer), by email."""
    roles = [role for role in Role if role.includes(Role.OPERATOR)]
    return list(
        session.scalars(
            select(User)
            .where(User.is_active.is_(True), User.role.in_(roles))
            .order_by(User.email)
            .limit(MAX_TEAMMATES)
        )
    )


def assign(session: Session, actor: User | None, conversation_id: int, user_id: int | None) -> None:
    """Give the conversation to a teammate who can answer (None: to nobody)."""
    require_role(actor, Role.OPERATOR)
    conversation = _get(session, conversation_id)
    teammate = None
    if user_id is not None:
        teammate = session.get(User, user_id)
        if teammate is None or not teammate.is_active:
            raise ValidationError(
                N_("Choose a teammate whose account is active."), field="assignee_id"
            )
        if not teammate.role.includes(Role.OPERATOR):
            raise ValidationError(
                said(
                    "%(email)s can only read (viewer); choose an operator or an admin.",
                    email=teammate.email,
                ),
                field="assignee_id",
            )
    if conversation.assignee_id == user_id:
        return
    conversation.assignee_id = user_id
    who = _who(session, conversation)
    if teammate is None:
        _record(
            session,
            actor,
            "conversation.unassigned",
            N_("%(actor)s unassigned the conversation with %(who)s."),
            conversation_id,
            {"who": who},
        )
    else:
        _record(
            session,
            actor,
            "conversation.assigned",
            N_("%(actor)s assigned the conversation with %(who)s to %(email)s."),
            conversation_id,
            {"who": who, "email": teammate.email},
            assignee=teammate.email,  # the timeline's line says to whom
        )


def set_done(session: Session, actor: User | None, conversation_id: int, done: bool) -> None:
    """Mark it done (it leaves the open lists until the customer writes again) or reopen it."""
    require_role(actor, Role.OPERATOR)
    conversation = _get(session, conversation_id)
    state = ConversationState.DONE if done else ConversationState.OPEN
    if conversation.state == state:
        return
    conversation.state = state
    if done:
        conversation.unread = 0  # handled: nothing waits to be seen
    who = _who(session, conversation)
    if done:
        _record(
            session,
            actor,
            "conversation.done",
            N_("%(actor)s marked the conversation with %(who)s done."),
            conversation_id,
            {"who": who},
        )
    else:
        _record(
            session,
            actor,
            "conversation.reopened",
            N_("%(actor)s reopened the conversation with %(who)s."),
            conversation_id,
            {"who": who},
        )


def add_note(session: Session, actor: User | None, conversation_id: int, body: str) -> int:
    """An internal note for the team; the customer never sees it. Returns its id."""
    require_role(actor, Role.OPERATOR)
    conversation = _get(session, conversation_id)
    text = body.strip()
    if not text:
        raise ValidationError(N_("Write the note."), field="body")
    if len(text) > MAX_NOTE:
        raise ValidationError(
            said(
                "The note has %(count)s characters; keep it to %(max)s.",
                count=f"{len(text):,}",
                max=f"{MAX_NOTE:,}",
            ),
            field="body",
        )
    note = ConversationNote(
        conversation_id=conversation.id, user_id=actor.id if actor else None, body=text
    )
    session.add(note)
    session.flush()
    _record(
        session,
        actor,
        "conversation.note",
        N_("%(actor)s added a note to the conversation with %(who)s."),
        conversation_id,
        {"who": _who(session, conversation)},
    )
    return note.id


def opt_out(session: Session, actor: User | None, conversation_id: int) -> None:
    """Opt the contact out, with their last message as the reason (the one opt-out path).

    - A contact already opted out stays as they are, with their first reason.
    """
    require_role(actor, Role.OPERATOR)
    conversation = _get(session, conversation_id)
    last = session.scalar(
        select(Inbound.body)
        .where(
            Inbound.contact_id == conversation.contact_id,
            Inbound.sender_id == conversation.sender_id,
        )
        .order_by(Inbound.received_at.desc(), Inbound.id.desc())
        .limit(1)
    )
    last_words = cut(last, 200)
    # What happened is the team's action; their last message is only context (it is
    # rarely a stop request: that would have opted them out by itself).
    by = events.actor_name(actor)
    if last_words:
        reason = said(
            "Opted out from the Inbox by %(actor)s; their last message: \u201c%(said)s\u201d",
            actor=by,
            said=last_words,
        )
    else:
        reason = said("Opted out from the Inbox by %(actor)s.", actor=by)
    contacts_service.opt_out(session, actor, [conversation.contact_id], reason)
