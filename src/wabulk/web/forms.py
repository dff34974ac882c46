"""WTForms for the pages; CSRF comes with FlaskForm."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from ..auth.passwords import MAX_LENGTH, MIN_LENGTH
from ..models import Role

ROLE_CHOICES = [
    SelectChoice(Role.VIEWER.value, "Viewer: sees everything, changes nothing"),
    SelectChoice(
        Role.OPERATOR.value, "Operator: contacts, templates, campaigns and answering in the Inbox"
    ),
    SelectChoice(Role.ADMIN.value, "Admin: everything, including users and senders"),
]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me signed in on this device")


class _NewPassword(FlaskForm):
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(min=MIN_LENGTH, max=MAX_LENGTH)],
        description=f"At least {MIN_LENGTH} characters.",
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
    )


class SetupForm(_NewPassword):
    setup_code = StringField(
        "Setup code",
        validators=[DataRequired()],
        description="Printed in the terminal where wabulk is running.",
    )
    email = EmailField("Your email", validators=[DataRequired()])


class InviteForm(_NewPassword):
    email = EmailField("Email", validators=[DataRequired()])
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.OPERATOR.value)


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value.title()) for r in Role])


class ResetPasswordForm(_NewPassword):
    pass


class ChangePasswordForm(_NewPassword):
    current_password = PasswordField("Current password", validators=[DataRequired()])


class ProfileForm(FlaskForm):
    timezone = StringField(
        "Timezone",
        validators=[Length(max=64)],
        description="For example Asia/Kolkata or Europe/London. Dates are shown in it.",
    )


class ListForm(FlaskForm):
    name = StringField("List name", validators=[DataRequired(), Length(max=120)])
    description = StringField("Description (optional)", validators=[Length(max=500)])


class EmptyForm(FlaskForm):
    """A bare form that carries only the CSRF token, for buttons that POST."""
