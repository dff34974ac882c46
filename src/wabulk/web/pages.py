"""Read-only areas of the shell: dashboard and analytics."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..analytics.summary import dashboard_summary
from ..models import Role
from .helpers import db_session
from .security import requires

bp = Blueprint("pages", __name__)


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
