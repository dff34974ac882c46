"""Settings → Workers: every computer process that sends for this installation, as of its
last heartbeat (dispatch/registry.py).

- Admins and operators read it; viewers do not (it names machines and processes).
- The table refreshes itself every 10 seconds (workers.js swaps in `table`); without
  JavaScript the page shows the server's table and a link to look again.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from ..dispatch import registry
from ..models import Channel, Role, Sender, utcnow
from .helpers import db_session
from .security import requires

bp = Blueprint("workers", __name__, url_prefix="/settings/workers")
REFRESH_SECONDS = 10


@bp.get("")
@requires(Role.OPERATOR)
def index() -> str:
    return render_template("settings/workers.html", refresh_seconds=REFRESH_SECONDS, **_table())


@bp.get("/table")
@requires(Role.OPERATOR)
def table() -> str:
    """The table alone, for workers.js."""
    return render_template("settings/_workers_table.html", **_table())


def _table() -> dict[str, Any]:
    session = db_session()
    now = utcnow()
    views = registry.overview(session, now)
    sender_ids = [h.id for v in views for h in v.holds if h.kind == "senders"]
    cloud: set[int] = set()
    if sender_ids:  # a Cloud API sender has a page of its own to link to
        cloud = set(
            session.scalars(
                select(Sender.id).where(
                    Sender.id.in_(sorted(set(sender_ids))), Sender.channel == Channel.CLOUD_API
                )
            )
        )
    return {"workers": views, "now": now, "cloud_senders": cloud}


@bp.app_template_filter("ago")
def ago(seconds: float) -> str:
    """ "12 seconds ago", "3 minutes ago", "2 hours ago", "5 days ago"."""
    seconds = max(0, int(seconds))
    if seconds >= 86400:
        return ngettext("%(num)d day ago", "%(num)d days ago", seconds // 86400)
    if seconds >= 3600:
        return ngettext("%(num)d hour ago", "%(num)d hours ago", seconds // 3600)
    if seconds >= 60:
        return ngettext("%(num)d minute ago", "%(num)d minutes ago", seconds // 60)
    if seconds < 2:
        return _("just now")
    return ngettext("%(num)d second ago", "%(num)d seconds ago", seconds)


@bp.app_template_filter("whole_minutes")
def whole_minutes(seconds: float) -> int:
    """How long a lost worker has been silent, in whole minutes (at least one), counted as
    "… minutes ago" beside it counts them."""
    return max(1, int(seconds // 60))
