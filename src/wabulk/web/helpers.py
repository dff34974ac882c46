"""Request-scoped database session, settings access and template helpers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, flash, g
from flask_login import current_user
from sqlalchemy.orm import Session

from ..config import Settings
from ..db import Database
from ..errors import DomainError
from ..models import Role
from ..zones import zone


def get_db() -> Database:
    return current_app.extensions["wabulk.db"]  # type: ignore[no-any-return]


def get_settings() -> Settings:
    return current_app.extensions["wabulk.settings"]  # type: ignore[no-any-return]


def db_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    return g.db_session  # type: ignore[no-any-return]


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def apply_action(
    action: Callable[[Session], object], success: str | None = None, category: str = "success"
) -> bool:
    """Run one service call in the request's session: commit and flash the success sentence
    (`success`, or else what the action returned), or roll back and flash the domain error's
    sentence. Returns whether it succeeded."""
    session = db_session()
    try:
        result = action(session)
    except DomainError as exc:
        session.rollback()
        flash(str(exc), "danger")
        return False
    session.commit()
    flash(success if success is not None else str(result), category)
    return True


def user_zone() -> ZoneInfo:
    """The signed-in user's timezone (UTC when unset or unknown)."""
    return zone(getattr(current_user, "timezone", None))


def format_datetime(value: datetime | None) -> str:
    """Shown in the user's timezone when set, else UTC with the zone named."""
    if value is None:
        return "—"
    local = value.astimezone(user_zone())
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "")


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)
    app.jinja_env.filters["datetime"] = format_datetime
    app.jinja_env.globals["Role"] = Role
