"""Secure by default: every endpoint needs a signed-in user and a role unless marked public.

- Roles are declared on views with `@requires(Role.X)`; an endpoint that declares nothing
  needs ADMIN, so a forgotten decorator fails closed.
- Pages redirect anonymous visitors to the login page; `/api/` answers 401 JSON.
- CSRF on every state-changing request (Flask-WTF), strict security headers on every response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Flask,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from ..auth.service import has_users
from ..auth.sessions import resume as resume_session
from ..auth.tokens import authenticate_token
from ..errors import Conflict, NotFound, PermissionDenied
from ..models import Role, User
from ..words import N_
from . import i18n
from .helpers import db_session, get_settings

F = TypeVar("F", bound=Callable[..., Any])

csrf = CSRFProtect()
login_manager = LoginManager()

# Only the bootstrap's own resources: no inline script or style, nothing from elsewhere.
# img-src allows data: because Bootstrap's CSS draws small icons (select arrows) as data URLs.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


# A year, the length browsers' preload lists ask for; sent only when WABULK_HTTPS=1.
HSTS = "max-age=31536000; includeSubDomains"


def public(view: F) -> F:
    """Mark a view reachable without signing in (login, first-run setup, signed webhooks)."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def requires(role: Role) -> Callable[[F], F]:
    """Declare the least role a view needs; checked centrally before the request."""

    def mark(view: F) -> F:
        view.required_role = role  # type: ignore[attr-defined]
        return view

    return mark


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def error_json(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> tuple[Response, int]:
    """The one JSON error shape of the API; `details` name each bad field. The messages are
    in the request's language already (`_()`; see api_error for one made in English)."""
    return jsonify({"error": {"code": code, "message": message, "details": details or []}}), status


def api_error(status: int, code: str, message: str) -> tuple[Response, int]:
    """An API error whose message was made in English (by a service, werkzeug, the database
    handler): read in the asked language (English unless Accept-Language asks)."""
    return error_json(status, code, i18n.translated(message) or message)


def _bearer_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _authenticate_bearer() -> Any:
    """On /api/, `Authorization: Bearer …` alone decides who is calling (a session cookie
    sent along is ignored); a bad token is refused rather than falling back to the cookie."""
    secret = _bearer_token()
    if secret is None or not is_api_request():
        return None
    user = authenticate_token(db_session(), secret)
    if user is None:
        return error_json(
            401,
            "invalid_token",
            _("This API token is unknown or revoked, or its user is disabled."),
        )
    g.api_token_user = True  # the API blueprint skips CSRF for these: no cookie, no forgery
    # Flask-Login has no public way to set a user for one request without a session cookie.
    login_manager._update_request_context_with_user(user)
    return None


def _view_function(app: Flask) -> Callable[..., Any] | None:
    if request.endpoint is None:
        return None
    return app.view_functions.get(request.endpoint)


def _gate() -> Any:
    view = _view_function(current_app)
    if view is None or request.endpoint == "static" or getattr(view, "is_public", False):
        return None
    if request.method == "OPTIONS":
        return None  # Allow and CORS preflight answers carry no data; browsers send no token
    refused = _authenticate_bearer()
    if refused is not None:
        return refused
    if not current_user.is_authenticated:
        # A page under /api/ (the API docs) sends a browser to sign in; everything else is JSON.
        browsing = getattr(view, "is_page", False) and request.accept_mimetypes.best == "text/html"
        if is_api_request() and not browsing:
            return error_json(401, "unauthorized", _("Sign in or send an API token."))
        if not has_users(db_session()):
            return redirect(url_for("auth.setup"))  # nobody to sign in as yet
        return login_manager.unauthorized()
    needed: Role = getattr(view, "required_role", Role.ADMIN)
    if not current_user.role.includes(needed):
        return _forbidden(
            _(
                "This needs the %(needed)s role; you are %(role)s.",
                needed=_(needed.value),
                role=_(current_user.role.value),
            )
        )
    return None


def _forbidden(message: str) -> Any:
    """`message` in the reader's language (the gate's); a service's English is refused with
    _on_permission_denied."""
    if is_api_request():
        return error_json(403, "forbidden", message)
    return render_template(
        "errors/error.html", code=403, title=_("Not allowed"), message=message
    ), 403


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.endpoint != "static":
        # Pages and downloads (exports, reports, attachments) show customer data: keep them
        # out of shared caches, the back-button cache and the disk. Set, not defaulted:
        # send_file's own "no-cache" would otherwise win.
        response.headers["Cache-Control"] = "no-store"
    if current_app.extensions["wabulk.settings"].https:
        # Only when the site is known to be served over HTTPS (often by a proxy in front):
        # it holds browsers to HTTPS for a year, which would lock out a plain-HTTP install.
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def _load_user(session_key: str) -> User | None:
    # The cookie names a server-side session (auth.sessions); a signed-out one finds no row.
    return resume_session(db_session(), session_key)


def _on_csrf_error(error: CSRFError) -> Any:
    if is_api_request():
        return api_error(400, "csrf_failed", error.description)
    return render_template(
        "errors/error.html",
        code=400,
        title=_("This form has expired"),
        message=_(
            "The page was open too long or was sent from elsewhere. "
            "Go back, reload the page and try again."
        ),
    ), 400


def _on_permission_denied(error: PermissionDenied) -> Any:
    if is_api_request():
        return api_error(403, "forbidden", str(error))
    return _forbidden(str(error))  # the error page reads it in the reader's language


def _on_not_found(error: Exception) -> Any:
    # English either way: the API answer and the error page each read it back once.
    message = str(error) if isinstance(error, NotFound) else N_("There is nothing at this address.")
    if is_api_request():
        return api_error(404, "not_found", message)
    return render_template(
        "errors/error.html", code=404, title=_("Not found"), message=message
    ), 404


def _on_conflict(error: Conflict) -> Any:
    if is_api_request():
        return api_error(409, "conflict", str(error))
    flash(str(error), "danger")
    return redirect(request.referrer or url_for("pages.dashboard"))


def _on_too_large(_error: Exception) -> Any:
    message = _("The file is larger than the %(mb)s MB limit.", mb=get_settings().max_upload_mb)
    if is_api_request():
        return error_json(413, "too_large", message)
    return render_template(
        "errors/error.html", code=413, title=_("File too large"), message=message
    ), 413


def _on_server_error(_error: Exception) -> Any:
    if is_api_request():
        return error_json(500, "server_error", _("Something went wrong on our side; it is logged."))
    return render_template(
        "errors/error.html",
        code=500,
        title=_("Something went wrong"),
        message=_("The error is logged. Try again, or tell your administrator."),
    ), 500


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    # The gate runs before CSRF so an anonymous POST is sent to sign in, not told its form expired.
    app.before_request(_gate)
    csrf.init_app(app)
    login_manager.login_view = "auth.login"
    # Flashed in English; the page shows it in the reader's language (_flashes.html).
    login_manager.login_message = N_("Please sign in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.user_loader(_load_user)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _on_csrf_error)
    app.register_error_handler(PermissionDenied, _on_permission_denied)
    app.register_error_handler(NotFound, _on_not_found)
    app.register_error_handler(404, _on_not_found)
    app.register_error_handler(Conflict, _on_conflict)
    app.register_error_handler(413, _on_too_large)
    app.register_error_handler(500, _on_server_error)
