"""Settings → Quick replies: the saved answers an administrator keeps for the team."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ...errors import DomainError
from ...inbox import quick_replies as saved
from ...models import Role
from ..helpers import db_session
from ..security import requires

# Cut before the domain sees them: it refuses anything longer with its own sentence.
bp = Blueprint("quick_replies", __name__)

NAME_MAX = 200
BODY_MAX = 8192


def _posted() -> tuple[str, str]:
    return (
        request.form.get("name", "").strip()[:NAME_MAX],
        request.form.get("body", "")[:BODY_MAX],
    )


@bp.get("/settings/quick-replies")
@requires(Role.ADMIN)
def index() -> str:
    return _render()


def _render(
    error: str | None = None,
    typed: tuple[str, str] = ("", ""),
    editing: int | None = None,
    status: int = 200,
) -> str:
    return render_template(
        "inbox/quick_replies.html",
        replies=saved.list_all(db_session()),
        error=error,
        typed=typed,
        editing=editing,
    ), status  # type: ignore[return-value]


def _save(run: object, editing: int | None, success: str) -> Response | str:
    session = db_session()
    try:
        run(session)  # type: ignore[operator]
    except DomainError as exc:
        session.rollback()
        return _render(str(exc), _posted(), editing, 400)
    session.commit()
    flash(success, "success")
    return redirect(url_for("quick_replies.index"))


@bp.post("/settings/quick-replies")
@requires(Role.ADMIN)
def add() -> Response | str:
    name, body = _posted()

    def run(session: Session) -> None:
        saved.create(session, current_user, name=name, body=body)

    return _save(run, None, _("Quick reply \u201c%(name)s\u201d saved.", name=name))


@bp.post("/settings/quick-replies/<int:reply_id>")
@requires(Role.ADMIN)
def edit(reply_id: int) -> Response | str:
    name, body = _posted()

    def run(session: Session) -> None:
        saved.update(session, current_user, reply_id, name=name, body=body)

    return _save(run, reply_id, _("Quick reply \u201c%(name)s\u201d saved.", name=name))


@bp.post("/settings/quick-replies/<int:reply_id>/delete")
@requires(Role.ADMIN)
def delete(reply_id: int) -> Response | str:
    def run(session: Session) -> None:
        saved.delete(session, current_user, reply_id)

    return _save(run, None, _("Quick reply deleted."))
