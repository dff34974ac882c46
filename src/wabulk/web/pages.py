"""Read-only areas of the shell: dashboard, analytics, activity."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from .. import events
from ..analytics.summary import dashboard_summary
from ..models import Role
from .helpers import db_session
from .security import requires

bp = Blueprint("pages", __name__)

ACTIVITY_PAGE_SIZE = 50


@bp.get("/")
@requires(Role.VIEWER)
def dashboard() -> str:
    summary = dashboard_summary(db_session())
    return render_template("pages/dashboard.html", summary=summary)


@bp.get("/analytics")
@requires(Role.VIEWER)
def analytics() -> str:
    summary = dashboard_summary(db_session())
    return render_template("pages/analytics.html", summary=summary)


@bp.get("/activity")
@requires(Role.VIEWER)
def activity() -> str:
    before = request.args.get("before", type=int)
    rows = db_session().execute(events.recent_events(ACTIVITY_PAGE_SIZE + 1, before)).all()
    has_more = len(rows) > ACTIVITY_PAGE_SIZE
    rows = rows[:ACTIVITY_PAGE_SIZE]
    return render_template(
        "pages/activity.html",
        rows=rows,
        next_before=rows[-1][0].id if has_more else None,
    )
