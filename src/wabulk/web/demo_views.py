"""Loading and removing the demo data from the dashboard, and the shell's demo banner."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from .. import demo
from ..models import Role
from .helpers import apply_action, db_session, get_settings
from .security import requires

bp = Blueprint("demo", __name__, url_prefix="/demo")


# Admins only: the data set adds a sender, which only an admin may do.
@bp.post("")
@requires(Role.ADMIN)
def load() -> Response:
    def run(session: Session) -> str:
        return demo.load_demo(session, current_user, get_settings().instance_path).sentence()

    apply_action(run)
    return redirect(url_for("pages.dashboard"))


@bp.post("/remove")
@requires(Role.ADMIN)
def remove() -> Response:
    def run(session: Session) -> str:
        return demo.remove_demo(session, current_user, get_settings().instance_path).sentence()

    apply_action(run)
    return redirect(url_for("pages.dashboard"))


@bp.app_context_processor
def demo_state() -> dict[str, Any]:
    """`demo_loaded` for the banner: one primary-key read per request, signed-in pages only."""
    if "demo_loaded" not in g:
        try:
            g.demo_loaded = bool(current_user.is_authenticated and demo.is_loaded(db_session()))
        except SQLAlchemyError:  # an error page after a failed transaction still renders
            g.demo_loaded = False
    return {"demo_loaded": g.demo_loaded}
