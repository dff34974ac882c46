"""WTForms for the pages; CSRF comes with FlaskForm."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from ..auth.passwords import MAX_LENGTH, MIN_LENGTH
from ..models import Role
from .i18n import LANGUAGES

ROLE_CHOICES = [
    SelectChoice(Role.VIEWER.value, _l("Viewer: sees everything, changes nothing")),
    SelectChoice(
        Role.OPERATOR.value,
        _l("Operator: contacts, templates, campaigns and answering in the Inbox"),
    ),
    SelectChoice(Role.ADMIN.value, _l("Admin: everything, including users and senders")),
]


# The role names in the Role list (their English is the value, capitalised).
ROLE_NAMES = {Role.VIEWER: _l("Viewer"), Role.OPERATOR: _l("Operator"), Role.ADMIN: _l("Admin")}


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    remember = BooleanField(_l("Keep me signed in on this device"))


class _NewPassword(FlaskForm):
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(), Length(min=MIN_LENGTH, max=MAX_LENGTH)],
        description=_l("At least %(count)s characters.", count=MIN_LENGTH),
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two passwords differ."))],
    )


class SetupForm(_NewPassword):
    setup_code = StringField(
        _l("Setup code"),
        validators=[DataRequired()],
        description=_l("Printed in the terminal where wabulk is running."),
    )
    email = EmailField(_l("Your email"), validators=[DataRequired()])


class InviteForm(_NewPassword):
    email = EmailField(_l("Email"), validators=[DataRequired()])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, default=Role.OPERATOR.value)


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[SelectChoice(r.value, ROLE_NAMES[r]) for r in Role])


class ResetPasswordForm(_NewPassword):
    pass


class ChangePasswordForm(_NewPassword):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])


class ProfileForm(FlaskForm):
    timezone = StringField(
        _l("Timezone"),
        validators=[Length(max=64)],
        description=_l("For example Asia/Kolkata or Europe/London. Dates are shown in it."),
    )


class LanguageForm(FlaskForm):
    # Each language is named in its own words, so whoever reads any of them finds theirs.
    language = SelectField(
        _l("Language"),
        choices=[SelectChoice("", _l("Same as my browser"))]
        + [SelectChoice(code, name) for code, name in LANGUAGES.items()],
        default="",
    )


class ListForm(FlaskForm):
    name = StringField(_l("List name"), validators=[DataRequired(), Length(max=120)])
    description = StringField(_l("Description (optional)"), validators=[Length(max=500)])


class EmptyForm(FlaskForm):
    """A bare form that carries only the CSRF token, for buttons that POST."""
