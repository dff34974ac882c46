"""Sign in, sign out and first-run setup."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from .. import app_settings, events
from ..auth import service as users
from ..auth import sessions as signed_in
from ..contacts.phones import country_choices, is_region
from ..contacts.regions import zone_countries
from ..errors import DomainError, PermissionDenied, ValidationError
from ..models import Role
from ..words import said
from . import i18n
from .forms import LoginForm, SetupForm
from .helpers import db_session, get_settings
from .security import public, requires

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so a crafted link cannot bounce a user to another site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("pages.dashboard")


def _client_address() -> str | None:
    # Behind a proxy, run with ProxyFix so remote_addr is the client; never trust headers here.
    return request.remote_addr


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | str:
    session = db_session()
    if not users.has_users(session):
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    error, status = None, 200
    if form.validate_on_submit():
        try:
            user = users.authenticate(
                session,
                form.email.data or "",
                form.password.data or "",
                _client_address(),
                get_settings().login_attempts_per_minute,
            )
        except users.LoginThrottled as exc:
            error, status = i18n.translated(str(exc)), 429
        except ValidationError as exc:
            session.commit()  # keep the recorded failure
            error, status = i18n.translated(str(exc)), 400
        else:
            users.adopt_browser_timezone(user, request.form.get("timezone"))
            events.record(
                session, "user.login", said("%(email)s signed in.", email=user.email), user=user
            )
            signed_in.start(session, user, request.user_agent.string)
            session.commit()
            login_user(user, remember=bool(form.remember.data))
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form, error=error), status


@bp.route("/setup", methods=["GET", "POST"])
@public
def setup() -> Response | str:
    session = db_session()
    if users.has_users(session):
        return redirect(url_for("auth.login"))
    form = SetupForm()
    error = None
    country = request.form.get("country", "")[:8].strip().upper()
    if form.validate_on_submit():
        try:
            if not is_region(country):
                raise ValidationError(
                    _(
                        "Choose your country: phone numbers written without a country code "
                        "are read as numbers there."
                    ),
                    field="country",
                )
            user = users.create_first_admin(
                session,
                form.email.data or "",
                form.password.data or "",
                form.setup_code.data or "",
            )
            session.flush()
            # Asked once here, so imports, tests and the API read "98765 43210" as it is meant.
            app_settings.set_default_country(session, user, country)
            users.adopt_browser_timezone(user, request.form.get("timezone"))
            signed_in.start(session, user, request.user_agent.string)
            session.commit()
        except PermissionDenied:
            return redirect(url_for("auth.login"))
        except DomainError as exc:
            session.rollback()
            error = i18n.translated(str(exc))
        else:
            login_user(user)
            flash(_("Welcome! Your administrator account is ready."), "success")
            return redirect(url_for("pages.dashboard"))
    return render_template(
        "auth/setup.html",
        form=form,
        error=error,
        country=country,
        regions=i18n.country_choices(country_choices()),
        zone_countries=zone_countries(),
    ), 400 if error else 200


@bp.route("/logout", methods=["POST"])
@requires(Role.VIEWER)
def logout() -> Response:
    # The row goes, so this session's cookies, and any copies of them, stop working.
    session = db_session()
    signed_in.end(session, current_user.session_key)
    session.commit()
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))
