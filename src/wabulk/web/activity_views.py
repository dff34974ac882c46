"""The Activity page: the audit log of Events, filtered and paged by id."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user

from .. import events
from ..errors import ValidationError
from ..models import EventLevel, Role
from .helpers import cursor_value, db_session
from .security import requires

bp = Blueprint("activity", __name__)

ACTIVITY_PAGE_SIZE = 50
FILTER_KEYS = ("campaign", "user", "level", "from", "to")


@bp.get("/activity")
@requires(Role.VIEWER)
def index() -> tuple[str, int]:
    session = db_session()
    # What the person typed, kept in the form and in the Older/Newer links.
    kept = {k: v for k in FILTER_KEYS if (v := request.args.get(k, "").strip()[:40])}
    error: ValidationError | None = None
    try:
        f = events.EventFilter.parse(kept, current_user.timezone)
    except ValidationError as exc:
        f, error = events.EventFilter(), exc
    page = None
    if error is None:
        page = events.activity_page(
            session,
            f,
            before=request.args.get("before", type=cursor_value),
            after=request.args.get("after", type=cursor_value),
            size=ACTIVITY_PAGE_SIZE,
        )
    campaigns, users = events.activity_choices(session, f)
    return render_template(
        "pages/activity.html",
        page=page,
        f=f,
        kept=kept,
        error=error,
        campaigns=campaigns,
        users=users,
        levels=[lv.value for lv in EventLevel],
        timezone=current_user.timezone or "UTC",
    ), 400 if error else 200
