"""WTForms for the pages; CSRF comes with FlaskForm."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from ..auth.passwords import MAX_LENGTH, MIN_LENGTH
from ..models import Role
from ..words import N_
from .i18n import LANGUAGES


# WTForms' own messages, in our catalogue: WTForms ships no Hindi or Indonesian.
def _required() -> DataRequired:
    return DataRequired(message=_l("This field is required."))


def _between(least: int, most: int) -> Length:
    return Length(
        min=least,
        max=most,
        message=_l("Field must be between %(min)d and %(max)d characters long."),
    )


def _at_most(most: int) -> Length:
    return Length(max=most, message=_l("Field cannot be longer than %(max)d characters."))


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
# A role as a sentence names it ("Signed in as viewer", an Event's role): stored and written
# in English as its value, shown with `|translated`.
ROLE_WORDS = (N_("viewer"), N_("operator"), N_("admin"))


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[_required()])
    password = PasswordField(_l("Password"), validators=[_required()])
    remember = BooleanField(_l("Keep me signed in on this device"))


class _NewPassword(FlaskForm):
    password = PasswordField(
        _l("Password"),
        validators=[_required(), _between(MIN_LENGTH, MAX_LENGTH)],
        description=_l("At least %(count)s characters.", count=MIN_LENGTH),
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[_required(), EqualTo("password", message=_l("The two passwords differ."))],
    )


class SetupForm(_NewPassword):
    setup_code = StringField(
        _l("Setup code"),
        validators=[_required()],
        description=_l("Printed in the terminal where wabulk is running."),
    )
    email = EmailField(_l("Your email"), validators=[_required()])


class InviteForm(_NewPassword):
    email = EmailField(_l("Email"), validators=[_required()])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, default=Role.OPERATOR.value)


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[SelectChoice(r.value, ROLE_NAMES[r]) for r in Role])


class ResetPasswordForm(_NewPassword):
    pass


class ChangePasswordForm(_NewPassword):
    current_password = PasswordField(_l("Current password"), validators=[_required()])


class ProfileForm(FlaskForm):
    timezone = StringField(
        _l("Timezone"),
        validators=[_at_most(64)],
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
    name = StringField(_l("List name"), validators=[_required(), _at_most(120)])
    description = StringField(_l("Description (optional)"), validators=[_at_most(500)])


class EmptyForm(FlaskForm):
    """A bare form that carries only the CSRF token, for buttons that POST."""
