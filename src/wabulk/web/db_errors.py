"""A database that is busy or out of reach answers 503 with a sentence, not a 500.

SQLite lets one writer at a time: a request whose write waits longer than the busy timeout
(another writer held the lock that long) gets "database is locked" from the driver, and a
PostgreSQL connection can end under a request (a restart, a failover). Neither is a bug
to report: the request's transaction is rolled back at teardown, nothing it asked for was
done, and trying again in a moment works. The driver's own words go to the log only.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, g, make_response, render_template
from flask_babel import gettext as _
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ..words import N_
from .security import api_error, is_api_request

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
# English for the API; the error page shows them in the reader's language (|translated).
BUSY = N_(
    "The database is busy with other work just now; nothing was changed. Try again in a moment."
)
AWAY = N_(
    "The database could not be reached just now. Try again in a moment; if you were saving "
    "something, check afterwards that it was saved."
)


def _on_operational_error(error: OperationalError) -> Any:
    locked = "locked" in str(error.orig).lower()
    log.warning("answered 503: %s", str(error.orig).splitlines()[0] if error.orig else error)
    message = BUSY if locked else AWAY
    session = g.get("db_session")
    if session is not None:
        session.rollback()  # the page below reads the signed-in user through it
    if is_api_request():
        response, status = api_error(503, "busy" if locked else "unavailable", message)
    else:
        response, status = make_response(_page(message)), 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, status


def _page(message: str) -> str:
    """The sentence in the page's frame, even while the database is still away.

    The error may have come from reading the signed-in user (every page does first), and
    the frame reads that user again, as does the rollback above (it expires the user's
    row): either would raise inside this handler and answer a 500. Then the sentence goes
    in the signed-out frame, which reads nothing from the database.
    """
    if "_login_user" not in g:  # reading the user is what failed
        _signed_out_frame()
    try:
        return _error_page(message)
    except SQLAlchemyError:
        session = g.get("db_session")
        if session is not None:
            session.rollback()
        _signed_out_frame()
        return _error_page(message)


def _signed_out_frame() -> None:
    g._login_user = current_app.login_manager.anonymous_user()  # type: ignore[attr-defined]


def _error_page(message: str) -> str:
    return render_template(
        "errors/error.html", code=503, title=_("Please try again"), message=message
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(OperationalError, _on_operational_error)
