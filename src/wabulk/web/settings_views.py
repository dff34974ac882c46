"""Settings: your own account for everyone; user management for administrators."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext, refresh
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from .. import app_settings
from ..auth import service as users
from ..auth import sessions as signed_in
from ..auth import tokens as api_tokens
from ..errors import DomainError
from ..inbound import keywords as opt_out_keywords
from ..models import Role
from . import i18n
from .forms import (
    ChangePasswordForm,
    EmptyForm,
    InviteForm,
    LanguageForm,
    ProfileForm,
    ResetPasswordForm,
    RoleForm,
)
from .helpers import apply_action, db_session
from .security import requires

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.get("/")
@requires(Role.VIEWER)
def index() -> str:
    return _render_account()


def _render_account(
    password_form: ChangePasswordForm | None = None,
    profile_form: ProfileForm | None = None,
    status: int = 200,
    language_form: LanguageForm | None = None,
) -> str:
    profile_form = profile_form or ProfileForm(timezone=current_user.timezone or "")
    language_form = language_form or LanguageForm(language=current_user.language or "")
    mine = db_session().scalars(signed_in.of_user(current_user.id).limit(50)).all()
    return render_template(
        "settings/account.html",
        password_form=password_form or ChangePasswordForm(),
        profile_form=profile_form,
        language_form=language_form,
        timezone_names=users.timezone_names(),
        sessions=[(row, signed_in.is_current(row, current_user.session_key)) for row in mine],
        button_form=EmptyForm(),
    ), status  # type: ignore[return-value]


@bp.post("/sessions/end-others")
@requires(Role.VIEWER)
def end_other_sessions() -> Response:
    def run(session: Session) -> str:
        return _others_ended(users.sign_out_everywhere(session, current_user, current_user.id))

    apply_action(run)
    return redirect(url_for("settings.index"))


def _others_ended(n: int) -> str:
    if not n:
        return _("You had no other sessions; this browser stays signed in.")
    return ngettext(
        "Signed out 1 other session elsewhere; this browser stays signed in.",
        "Signed out %(num)d other sessions elsewhere; this browser stays signed in.",
        n,
    )


@bp.post("/password")
@requires(Role.VIEWER)
def change_password() -> Response | str:
    form = ChangePasswordForm()
    if form.validate_on_submit():
        session = db_session()
        try:
            users.change_own_password(
                session, current_user, form.current_password.data or "", form.password.data or ""
            )
        except DomainError as exc:
            form.current_password.errors = [str(exc)]  # field() reads it back
        else:
            session.commit()
            flash(_("Your password is changed. Other devices are signed out."), "success")
            return redirect(url_for("settings.index"))
    return _render_account(password_form=form, status=400)


@bp.post("/profile")
@requires(Role.VIEWER)
def profile() -> Response | str:
    form = ProfileForm()
    if form.validate_on_submit():
        session = db_session()
        try:
            users.set_timezone(session, current_user, form.timezone.data or "")
        except DomainError as exc:
            form.timezone.errors = [i18n.translated(str(exc))]
        else:
            session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("settings.index"))
    return _render_account(profile_form=form, status=400)


@bp.post("/language")
@requires(Role.VIEWER)
def language() -> Response | str:
    form = LanguageForm()
    if form.validate_on_submit():
        session = db_session()
        session.merge(current_user._get_current_object()).language = form.language.data or None
        session.commit()
        current_user.language = form.language.data or None
        refresh()  # the sentence below is in the language just chosen
        flash(_("Saved."), "success")
        return redirect(url_for("settings.index"))
    return _render_account(language_form=form, status=400)


@bp.get("/users")
@requires(Role.ADMIN)
def user_list() -> str:
    return _render_users(InviteForm())


def _render_users(invite: InviteForm, status: int = 200) -> str:
    rows = db_session().scalars(users.list_users()).all()
    return render_template(
        "settings/users.html",
        users=rows,
        invite=invite,
        role_form=RoleForm(),
        button_form=EmptyForm(),
        reset_form=ResetPasswordForm(),
    ), status  # type: ignore[return-value]


@bp.post("/users")
@requires(Role.ADMIN)
def invite_user() -> Response | str:
    form = InviteForm()
    if form.validate_on_submit():
        session = db_session()
        try:
            user = users.create_user(
                session,
                current_user,
                form.email.data or "",
                form.password.data or "",
                form.role.data or "",
            )
        except DomainError as exc:
            session.rollback()
            form.email.errors = [str(exc)]  # field() reads it back
        else:
            session.commit()
            flash(
                _(
                    "%(email)s can now sign in with the password you set. "
                    "Hand it over privately; they can change it under Settings.",
                    email=user.email,
                ),
                "success",
            )
            return redirect(url_for("settings.user_list"))
    return _render_users(form, 400)


def _apply(action: str, user_id: int) -> Response:
    def run(session: Session) -> str:
        if action == "role":
            form = RoleForm()
            if not form.validate_on_submit():
                raise DomainError(_("Pick a role from the list."))
            user = users.change_role(session, current_user, user_id, form.role.data or "")
            return _(
                "%(email)s is now %(role)s.",
                email=user.email,
                role=i18n.translated(user.role.value),
            )
        if action == "reset":
            reset = ResetPasswordForm()
            if not reset.validate_on_submit():
                errors = [str(e) for errs in reset.errors.values() for e in errs]
                raise DomainError(" ".join(errors) or _("Type the new password twice."))
            user = users.reset_password(session, current_user, user_id, reset.password.data or "")
            return _("New password set for %(email)s.", email=user.email)
        user = users.set_active(session, current_user, user_id, action == "enable")
        if user.is_active:
            return _("%(email)s is enabled.", email=user.email)
        return _("%(email)s is disabled.", email=user.email)

    apply_action(run)
    return redirect(url_for("settings.user_list"))


@bp.post("/users/<int:user_id>/role")
@requires(Role.ADMIN)
def set_role(user_id: int) -> Response:
    return _apply("role", user_id)


@bp.post("/users/<int:user_id>/disable")
@requires(Role.ADMIN)
def disable(user_id: int) -> Response:
    return _apply("disable", user_id)


@bp.post("/users/<int:user_id>/enable")
@requires(Role.ADMIN)
def enable(user_id: int) -> Response:
    return _apply("enable", user_id)


@bp.post("/users/<int:user_id>/password")
@requires(Role.ADMIN)
def reset_password(user_id: int) -> Response:
    return _apply("reset", user_id)


@bp.post("/users/<int:user_id>/sign-out")
@requires(Role.ADMIN)
def sign_out_user(user_id: int) -> Response:
    def run(session: Session) -> str:
        user = users.get_user(session, user_id)
        ended = users.sign_out_everywhere(session, current_user, user_id)
        if user.id == current_user.id:
            return _others_ended(ended)
        return ngettext(
            "Signed out %(email)s everywhere (%(num)d session ended). "
            "Their API tokens still work; revoke them under API tokens if needed.",
            "Signed out %(email)s everywhere (%(num)d sessions ended). "
            "Their API tokens still work; revoke them under API tokens if needed.",
            ended,
            email=user.email,
        )

    apply_action(run)
    return redirect(url_for("settings.user_list"))


@bp.get("/general")
@requires(Role.ADMIN)
def general() -> str:
    return _render_general()


def _render_general(
    keywords_text: str | None = None, keywords_error: str | None = None, status: int = 200
) -> str:
    from ..contacts.phones import country_choices

    session = db_session()
    return render_template(
        "settings/general.html",
        regions=i18n.country_choices(country_choices()),
        country=app_settings.default_country(session) or "",
        keywords_text=keywords_text
        if keywords_text is not None
        else "\n".join(opt_out_keywords.keywords(session)),
        keywords_error=keywords_error,
        keyword_limits=(opt_out_keywords.MAX_KEYWORDS, opt_out_keywords.MAX_KEYWORD_CHARS),
    ), status  # type: ignore[return-value]


@bp.post("/general")
@requires(Role.ADMIN)
def save_general() -> Response:
    def run(session: Session) -> str:
        code = app_settings.set_default_country(
            session, current_user, request.form.get("default_country", "")
        )
        return _("Numbers without a country code are now read as %(code)s by default.", code=code)

    apply_action(run)
    return redirect(url_for("settings.general"))


@bp.post("/opt-out-keywords")
@requires(Role.ADMIN)
def save_opt_out_keywords() -> Response | str:
    session = db_session()
    text = request.form.get("opt_out_keywords", "")
    try:
        if request.form.get("reset"):
            words = opt_out_keywords.reset_keywords(session, current_user)
        else:
            words = opt_out_keywords.set_keywords(session, current_user, text)
    except DomainError as exc:
        session.rollback()
        return _render_general(keywords_text=text, keywords_error=str(exc), status=400)
    session.commit()
    flash(
        _(
            "Saved %(n)s opt-out keyword(s): a reply that is exactly one of them opts "
            "the customer out.",
            n=len(words),
        ),
        "success",
    )
    return redirect(url_for("settings.general"))


# --- API tokens: everyone their own; administrators see and revoke everyone's ---------------


@bp.get("/tokens")
@requires(Role.VIEWER)
def tokens() -> str:
    return _render_tokens()


def _render_tokens(
    secret: str | None = None, name: str = "", error: str | None = None, status: int = 200
) -> str:
    rows = db_session().execute(api_tokens.visible_tokens(current_user).limit(500)).all()
    return render_template(
        "settings/tokens.html", tokens=rows, secret=secret, name=name, error=error
    ), status  # type: ignore[return-value]


@bp.post("/tokens")
@requires(Role.VIEWER)
def create_token() -> str:
    session = db_session()
    name = request.form.get("name", "")
    try:
        issued = api_tokens.create_token(session, current_user, name)
    except DomainError as exc:
        session.rollback()
        return _render_tokens(name=name, error=str(exc), status=400)  # the page reads it back
    session.commit()
    # Rendered here, not after a redirect: the secret must not travel through the session.
    return _render_tokens(secret=issued.secret)


@bp.post("/tokens/<int:token_id>/revoke")
@requires(Role.VIEWER)
def revoke_token(token_id: int) -> Response:
    def run(session: Session) -> str:
        token = api_tokens.revoke_token(session, current_user, token_id)
        return _(
            "The token %(name)s is revoked; programs using it are refused from now on.",
            name=repr(token.name),
        )

    apply_action(run)
    return redirect(url_for("settings.tokens"))
