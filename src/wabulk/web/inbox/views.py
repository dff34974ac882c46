"""The Inbox: the conversations of customers who reply, answered by the team.

- Thin views: every rule (roles, the Cloud API's 24-hour window, opted-out contacts, an
  answer never sent twice) lives in wabulk.inbox; a refused action flashes its sentence.
- Live without a reload: static/js/inbox.js polls `live.json`, built from the first page of
  the list and the open conversation's newest items (both read by index, so the cost does
  not grow with the number of conversations); the navigation's count polls `unread.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ...campaigns import rendering
from ...errors import DomainError
from ...inbox import answers, conversations
from ...inbox import quick_replies as saved
from ...inbox import timeline as thread
from ...models import Contact, Conversation, Role, User, utcnow
from ...words import N_
from .. import i18n
from ..helpers import cursor_value, db_session, id_value, optional_id
from ..security import requires
from . import once

bp = Blueprint("inbox", __name__)

FILTERS = (
    ("all", N_("Open")),
    ("unread", N_("Unread")),
    ("mine", N_("Mine")),
    ("unassigned", N_("Unassigned")),
    ("done", N_("Done")),
)
PAGE_SIZE = 50
SEARCH_MAX = 100
ANSWER_MAX = 4096
NOTE_MAX = conversations.MAX_NOTE
# A template's variables as typed in the answer box: few and short.
TEMPLATE_VALUES_MAX = 30
TEMPLATE_VALUE_MAX = 1000
# Quick replies offered in the answer box, each filled for the contact.
QUICK_REPLIES_SHOWN = 200


# --- the list's filter, search and page ---------------------------------------------------


@dataclass(frozen=True)
class ListArgs:
    filter: str = "all"
    q: str = ""
    before: tuple[datetime, int] | None = None

    def kept(self) -> dict[str, str]:
        """What goes into every link and form of the page, so they keep the list in view."""
        out = {}
        if self.filter != "all":
            out["f"] = self.filter
        if self.q:
            out["q"] = self.q
        return out


def _cursor(text: str) -> tuple[datetime, int] | None:
    at, _, ident = text[:64].rpartition("~")
    try:
        when = datetime.fromisoformat(at)
        row = cursor_value(ident)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)), row


def cursor_text(before: tuple[datetime, int]) -> str:
    return f"{before[0].isoformat()}~{before[1]}"


def _list_args() -> ListArgs:
    source = request.args if request.method == "GET" else request.form
    wanted = source.get("f", "all")
    return ListArgs(
        filter=wanted if wanted in dict(FILTERS) else "all",
        q=" ".join(source.get("q", "").split())[:SEARCH_MAX],
        before=_cursor(request.args.get("before", "")),
    )


def _list_page(session: Session, args: ListArgs) -> Any:
    return conversations.list_page(
        session,
        filter=args.filter,
        user_id=current_user.id,
        q=args.q,
        before=args.before,
        limit=PAGE_SIZE,
    )


def nav_unread() -> int | None:
    """The navigation's count. None when the database cannot say: an error page is drawn
    with the navigation too, and must not fail a second time because of it."""
    if not current_user.is_authenticated:
        return None
    try:
        return conversations.unread_count(db_session())
    except SQLAlchemyError:
        return None


@bp.app_context_processor
def _navigation() -> dict[str, Any]:
    # A function, so that only pages drawing the navigation pay for the count.
    return {"inbox_unread": nav_unread}


# --- pages -------------------------------------------------------------------------------


@bp.get("/inbox")
@requires(Role.VIEWER)
def index() -> Response | str:
    contact_id = request.args.get("contact", type=id_value)
    if contact_id is not None:
        return _open_for_contact(contact_id)
    return _render(None)


def _open_for_contact(contact_id: int) -> Response:
    """The contact page's "Open in Inbox": their newest conversation, else a search for them."""
    session = db_session()
    found = session.scalar(
        select(Conversation.id)
        .where(Conversation.contact_id == contact_id)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(1)
    )
    if found is not None:
        return redirect(url_for("inbox.show", conversation_id=found))
    phone = session.scalar(select(Contact.phone).where(Contact.id == contact_id))
    if phone is None:
        abort(404)
    flash(_("No conversation with this contact yet: it starts when they reply."), "info")
    return redirect(url_for("inbox.index", q=phone))


@bp.get("/inbox/<int:conversation_id>")
@requires(Role.VIEWER)
def show(conversation_id: int) -> str:
    session = db_session()
    view = conversations.get(session, conversation_id)
    if view is None:
        abort(404)
    _mark_read(session, view)
    return _render(view)


def _mark_read(session: Session, view: Any) -> None:
    # Opening a conversation is reading it; only a change is written. A viewer changes
    # nothing: their reading leaves the team's unread count as it is.
    if view.unread and current_user.role.includes(Role.OPERATOR):
        conversations.mark_read(session, current_user, view.id)
        session.commit()


def _render(view: Any) -> str:
    session = db_session()
    args = _list_args()
    page = _list_page(session, args)
    context: dict[str, Any] = {
        "page": page,
        "args": args,
        "filters": FILTERS,
        "view": view,
        "cursor_text": cursor_text,
        "can_act": current_user.role.includes(Role.OPERATOR),
    }
    if view is not None:
        context.update(_conversation_context(session, view))
    return render_template("inbox/index.html", **context)


def _conversation_context(session: Session, view: Any) -> dict[str, Any]:
    closes_at = view.window_closes_at
    now = utcnow()
    window_open = closes_at is None or closes_at > now
    return {
        "items": thread.with_actions(session, view.id, thread.timeline(session, view.id)),
        "closes_at": closes_at,
        "never_opened": closes_at == conversations.NEVER_OPENED,
        "once": once.new_token(),
        "note_max": NOTE_MAX,
        "window_open": window_open,
        "left": _left(closes_at - now) if closes_at is not None and window_open else None,
        "templates": [] if window_open else answers.templates_for(session, view.sender_id),
        "quick": _quick_replies(session, view),
        "teammates": conversations.assignable(session),
    }


def _left(delta: Any) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes)
    return _("%(minutes)s min", minutes=minutes)


@dataclass(frozen=True)
class Quick:
    id: int
    name: str
    text: str | None  # filled for this contact; None when it cannot be filled
    problem: str | None


def _quick_replies(session: Session, view: Any) -> list[Quick]:
    """Each saved answer filled for this contact, shown before it is sent."""
    values = rendering.context_for(view.phone, view.contact_name, None, view.attributes or {})
    out = []
    for reply in list(saved.list_all(session))[:QUICK_REPLIES_SHOWN]:
        try:
            text = rendering.compile_body(reply.body).render(values, seed=view.id)
        except DomainError as exc:
            out.append(Quick(reply.id, reply.name, None, str(exc)))
        else:
            out.append(Quick(reply.id, reply.name, text, None))
    return out


# --- live ----------------------------------------------------------------------------------


@bp.get("/inbox/unread.json")
@requires(Role.VIEWER)
def unread() -> Response:
    return jsonify({"unread": conversations.unread_count(db_session())})


@bp.get("/inbox/live.json")
@requires(Role.VIEWER)
def live() -> Response:
    session = db_session()
    args = _list_args()
    selected = request.args.get("c", type=id_value)
    out: dict[str, Any] = {}
    view = conversations.get(session, selected) if selected is not None else None
    if view is not None:
        _mark_read(session, view)
        out["thread"] = render_template(
            "inbox/_thread.html",
            view=view,
            items=thread.with_actions(session, view.id, thread.timeline(session, view.id)),
        )
        out["state"] = view.state
    out["unread"] = conversations.unread_count(session)
    # Only the first page follows new activity: a later page would shift under the reader.
    if args.before is None:
        out["list"] = render_template(
            "inbox/_list.html",
            page=_list_page(session, args),
            args=args,
            view=view,
            cursor_text=cursor_text,
        )
    return jsonify(out)


# --- actions --------------------------------------------------------------------------------


def _back(conversation_id: int) -> Response:
    return redirect(url_for("inbox.show", conversation_id=conversation_id, **_list_args().kept()))


def _act(conversation_id: int, run: Any) -> Response:
    """Run one team action; the refusal's own sentence is shown when it is refused."""
    session = db_session()
    try:
        said = run(session)
    except (DomainError, answers.AnswerRefused) as exc:
        session.rollback()
        flash(str(exc), "danger")  # _flashes.html reads it in the reader's language
    else:
        session.commit()
        flash(said, "success")
    return _back(conversation_id)


@bp.post("/inbox/<int:conversation_id>/answer")
@requires(Role.OPERATOR)
def answer(conversation_id: int) -> Response:
    text = request.form.get("text", "")
    if len(text) > ANSWER_MAX:
        flash(
            _(
                "An answer can be at most %(max)s characters; shorten it.",
                max=i18n.format_number(ANSWER_MAX),
            ),
            "danger",
        )
        return _back(conversation_id)
    quick_reply_id = request.form.get("quick_reply_id", type=id_value)
    template = _template_choice()
    token = request.form.get("once", "")

    def run(session: Session) -> str:
        now = utcnow()
        once.claim(session, token, now)
        answers.write_answer(
            session,
            current_user,
            conversation_id,
            text=text.strip() or None,
            quick_reply_id=quick_reply_id,
            template=template,
            now=now,
        )
        return _("Answer queued: it goes out in a moment, and its ticks show when it arrives.")

    try:
        return _act(conversation_id, run)
    except once.AlreadyUsed:
        db_session().rollback()
        flash(_("This answer was already sent: the form went twice, so it was kept once."), "info")
        return _back(conversation_id)


def _template_choice() -> dict[str, Any] | None:
    """The approved template picked when the 24-hour window is closed, with its values."""
    template_id = request.form.get("template_id", type=id_value)
    if template_id is None:
        return None
    values = {}
    for key in request.form:
        if key.startswith("var.") and len(values) < TEMPLATE_VALUES_MAX:
            values[key[4:][:60]] = request.form.get(key, "")[:TEMPLATE_VALUE_MAX]
    return {"template_id": template_id, "values": values}


@bp.post("/inbox/<int:conversation_id>/assign")
@requires(Role.OPERATOR)
def assign(conversation_id: int) -> Response:
    # "Nobody" is the empty choice; anything that is not an id means nobody too.
    assignee = optional_id(request.form.get("assignee", ""))

    def run(session: Session) -> str:
        conversations.assign(session, current_user, conversation_id, assignee)
        if assignee is None:
            return _("Nobody is assigned to this conversation now.")
        if assignee == current_user.id:
            return _("This conversation is yours now.")
        user = session.get(User, assignee)
        if user is None:
            return _("Assigned to the teammate.")
        return _("Assigned to %(email)s.", email=user.email)

    return _act(conversation_id, run)


@bp.post("/inbox/<int:conversation_id>/done")
@requires(Role.OPERATOR)
def done(conversation_id: int) -> Response:
    finished = request.form.get("done", "1") == "1"

    def run(session: Session) -> str:
        conversations.set_done(session, current_user, conversation_id, finished)
        if finished:
            return _("Marked done. It opens again when the customer writes.")
        return _("Opened again.")

    return _act(conversation_id, run)


@bp.post("/inbox/<int:conversation_id>/note")
@requires(Role.OPERATOR)
def note(conversation_id: int) -> Response:
    body = request.form.get("body", "").strip()
    if not body or len(body) > NOTE_MAX:
        flash(
            _("Write a note of 1 to %(max)s characters.", max=i18n.format_number(NOTE_MAX)),
            "danger",
        )
        return _back(conversation_id)

    def run(session: Session) -> str:
        conversations.add_note(session, current_user, conversation_id, body)
        return _("Note added. Only your team sees it.")

    return _act(conversation_id, run)


@bp.post("/inbox/<int:conversation_id>/opt-out")
@requires(Role.OPERATOR)
def opt_out(conversation_id: int) -> Response:
    def run(session: Session) -> str:
        conversations.opt_out(session, current_user, conversation_id)
        return _("Opted out: no campaign or answer will message this contact again.")

    return _act(conversation_id, run)
