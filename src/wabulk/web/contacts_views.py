"""Contacts area: the contacts table and lists."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..contacts import lists
from ..errors import ValidationError
from ..models import Role
from .forms import ListForm
from .helpers import db_session
from .security import requires

bp = Blueprint("contacts", __name__, url_prefix="/contacts")


@bp.get("/")
@requires(Role.VIEWER)
def index() -> str:
    return _render(ListForm())


def _render(form: ListForm, status: int = 200) -> str:
    session = db_session()
    list_rows = session.execute(lists.lists_with_counts()).all()
    total = lists.count_contacts(session)
    return render_template("contacts/index.html", lists=list_rows, total=total, form=form), status  # type: ignore[return-value]


@bp.post("/lists")
@requires(Role.OPERATOR)
def create_list() -> Response | str:
    form = ListForm()
    if form.validate_on_submit():
        session = db_session()
        try:
            created = lists.create_list(
                session, current_user, form.name.data or "", form.description.data
            )
        except ValidationError as exc:
            form.name.errors = [str(exc)]
        else:
            session.commit()
            flash(f"List {created.name!r} created.", "success")
            return redirect(url_for("contacts.index"))
    return _render(form, 400)
