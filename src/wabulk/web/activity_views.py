"""The Activity page: the audit log of Events."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from .. import events
from ..models import Role
from .helpers import db_session
from .security import requires

bp = Blueprint("activity", __name__)

ACTIVITY_PAGE_SIZE = 50


@bp.get("/activity")
@requires(Role.VIEWER)
def index() -> str:
    before = request.args.get("before", type=int)
    rows = db_session().execute(events.recent_events(ACTIVITY_PAGE_SIZE + 1, before)).all()
    has_more = len(rows) > ACTIVITY_PAGE_SIZE
    rows = rows[:ACTIVITY_PAGE_SIZE]
    return render_template(
        "pages/activity.html",
        rows=rows,
        next_before=rows[-1][0].id if has_more else None,
    )
