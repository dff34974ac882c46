"""Request-scoped database session, settings access and template helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, flash, g
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter
from werkzeug.routing import Map as UrlMap

from ..config import Settings
from ..db import Database
from ..errors import DomainError
from ..models import Role
from ..senders import disclosure
from ..zones import zone
from . import i18n

# Ids are 32-bit on PostgreSQL and SQLite's integers stop at 2**63 - 1: a bigger number in
# an address, a query string or a form names nothing, and must never reach the database
# (OverflowError, "integer out of range": a 500). The API uses the same bound.
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: a number past MAX_ID matches no route, so it answers 404."""

    # Ten digits at most in the pattern itself: a longer number then matches no rule for any
    # method (404), where a refusal by `max` alone reads as 405 when the path has a rule for
    # another method (Werkzeug records the method before the converter refuses).
    regex = r"\d{1,10}"

    def __init__(
        self,
        map: UrlMap,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = MAX_ID,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits, min, MAX_ID if max is None else max, signed)


def _digits(text: str) -> str:
    text = text.strip()
    if not (text.isascii() and text.isdigit()):  # "²" and "١٢" are digits to isdigit()
        raise ValueError("not a number")
    return text.lstrip("0") or "0"


def id_value(text: str) -> int:
    """An id from a query string or form (`form.get(name, type=id_value)`): ASCII digits up
    to MAX_ID, else a ValueError, which Werkzeug turns into the default (or leaves out of
    getlist): a bigger number names nothing, so nothing is done with it."""
    digits = _digits(text)
    if len(digits) > 10 or int(digits) > MAX_ID:
        raise ValueError("not an id")
    return int(digits)


def cursor_value(text: str) -> int:
    """A keyset cursor or a read-only filter's id (`args.get(name, type=cursor_value)`).

    A number past the bound is taken as MAX_ID - 1, so that a page's own +1 or -1 stays
    in range: it names no row, and as a cursor it means "from the newest" or "nothing after".
    """
    digits = _digits(text)
    return MAX_ID - 1 if len(digits) > 10 else min(int(digits), MAX_ID - 1)


def optional_id(value: object) -> int | None:
    """The id in `value` (see id_value), or None when it holds none."""
    try:
        return id_value(str(value))
    except ValueError:
        return None


def id_values(values: Iterable[str]) -> list[int]:
    """The ids among `values`; anything else is ignored."""
    out = []
    for value in values:
        try:
            out.append(id_value(value))
        except ValueError:
            continue
    return out


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
    return i18n.format_local_datetime(value.astimezone(user_zone()), i18n.current_language())


def _role() -> Role | None:
    return current_user.role if current_user.is_authenticated else None


def shown_reason(reason: str | None) -> str | None:
    """A sender's state reason as the signed-in user may read it (server details to admins),
    in the reader's language when it is one of our sentences."""
    return i18n.translated(disclosure.reason_for(reason, _role()))


def shown_text(text: str | None) -> str | None:
    """An Event's or a campaign's text with server paths hidden from all but admins, in the
    reader's language when it is one of our sentences."""
    return None if text is None else i18n.translated(disclosure.text_for(text, _role()))


def init_app(app: Flask) -> None:
    # Before any blueprint: a rule binds its converters when it is added.
    app.url_map.converters["int"] = IdConverter
    app.teardown_appcontext(_close_session)
    i18n.init_app(app)
    app.jinja_env.filters["datetime"] = format_datetime
    app.jinja_env.filters["shown_reason"] = shown_reason
    app.jinja_env.filters["shown_text"] = shown_text
    app.jinja_env.globals["Role"] = Role
