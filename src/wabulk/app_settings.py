"""Instance-wide settings an administrator changes at run time (stored in app_settings)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from . import events
from .auth.permissions import require_role
from .contacts.phones import is_region
from .errors import ValidationError
from .models import AppSetting, Role, User
from .words import N_, said

DEFAULT_COUNTRY = "default_country"


def get(session: Session, key: str) -> str | None:
    row = session.get(AppSetting, key)
    return row.value if row else None


def default_country(session: Session) -> str | None:
    return get(session, DEFAULT_COUNTRY)


def set_default_country(session: Session, actor: User | None, code: str) -> str:
    require_role(actor, Role.ADMIN)
    code = code.strip().upper()
    if not code:
        raise ValidationError(N_("Choose a country."), field="default_country")
    if not is_region(code):
        raise ValidationError(
            said("%(code)s is not a country code such as IN or US.", code=repr(code)),
            field="default_country",
        )
    row = session.get(AppSetting, DEFAULT_COUNTRY)
    if row is None:
        session.add(AppSetting(key=DEFAULT_COUNTRY, value=code))
    else:
        row.value = code
    who = events.actor_name(actor)
    events.record(
        session,
        "settings.changed",
        said("%(who)s set the default country for phone numbers to %(code)s.", who=who, code=code),
        user=actor,
    )
    return code
