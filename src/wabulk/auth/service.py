"""User accounts: first-run setup, sign-in, and management by administrators.

- Every function that changes an account takes the acting user and checks its role here,
  so the page, the CLI and the API cannot disagree about who may do what.
- Emails are stored lower-cased; comparisons use the stored form.
- Whatever ends a person's access ends their sessions here too (auth.sessions): a new
  password signs out their other browsers, disabling signs out all of them and revokes their
  API tokens, so enabling them again revives neither.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .. import events
from ..errors import Conflict, NotFound, PermissionDenied, ValidationError
from ..models import Role, User, utcnow
from ..words import N_, said
from . import passwords, sessions, setup_code, throttle, tokens
from .permissions import require_role


class InvalidCredentials(ValidationError):
    def __init__(self) -> None:
        super().__init__(N_("That email and password do not match an active account."))


class LoginThrottled(ValidationError):
    def __init__(self, wait_seconds: int) -> None:
        super().__init__(
            said(
                "Too many failed sign-in attempts. Try again in %(seconds)s seconds.",
                seconds=wait_seconds,
            )
        )
        self.wait_seconds = wait_seconds


def normalise_email(email: str) -> str:
    try:
        # Deliverability needs DNS, which a closed network or a local mail server lacks.
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationError(str(exc), field="email") from None


def has_users(session: Session) -> bool:
    return session.scalar(select(User.id).limit(1)) is not None


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(said("There is no user #%(id)s.", id=user_id))
    return user


def list_users() -> Select[tuple[User]]:
    return select(User).order_by(User.email)


def _parse_role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise ValidationError(
            said("Unknown role %(role)s; use one of %(names)s.", role=repr(role), names=names),
            field="role",
        ) from None


def _insert_user(session: Session, email: str, password: str, role: Role) -> User:
    email = normalise_email(email)
    passwords.check_strength(password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(said("A user with the email %(email)s already exists.", email=email))
    user = User(email=email, password_hash=passwords.hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def create_first_admin(session: Session, email: str, password: str, code: str) -> User:
    """The first administrator, allowed only while no user exists and with the setup code."""
    if has_users(session):
        raise PermissionDenied(N_("Setup is already done; sign in instead."))
    if not setup_code.matches(session, code):
        raise ValidationError(
            N_(
                "That setup code is not right. Use the code printed in the terminal where "
                "wabulk is running, or the new one that wabulk setup-code prints there."
            ),
            field="setup_code",
        )
    user = _insert_user(session, email, password, Role.ADMIN)
    user.last_login_at = utcnow()  # setup signs them in
    setup_code.clear(session)
    events.record(
        session,
        "user.setup",
        said("%(email)s created the first administrator account.", email=user.email),
        user=user,
    )
    return user


def create_user(
    session: Session, actor: User | None, email: str, password: str, role: str | Role
) -> User:
    """Add a user with a password the admin hands over (there is no outgoing mail)."""
    require_role(actor, Role.ADMIN)
    user = _insert_user(session, email, password, _parse_role(role))
    setup_code.clear(session)  # once anyone exists, first-run setup is over
    who = events.actor_name(actor)
    events.record(
        session,
        "user.created",
        said(
            "%(who)s added %(email)s as %(role)s.",
            who=who,
            email=user.email,
            role=user.role.value,
        ),
        user=actor,
    )
    return user


def _active_admins(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).where(User.role == Role.ADMIN, User.is_active.is_(True))
        )
        or 0
    )


def _guard_last_admin(session: Session, user: User) -> None:
    if user.role == Role.ADMIN and user.is_active and _active_admins(session) <= 1:
        raise Conflict(
            said(
                "%(email)s is the only active administrator; add another first.",
                email=user.email,
            )
        )


def change_role(session: Session, actor: User | None, user_id: int, role: str | Role) -> User:
    require_role(actor, Role.ADMIN)
    user = get_user(session, user_id)
    new_role = _parse_role(role)
    if new_role == user.role:
        return user
    if new_role != Role.ADMIN:
        _guard_last_admin(session, user)
    old = user.role
    user.role = new_role
    who = events.actor_name(actor)
    events.record(
        session,
        "user.role_changed",
        said(
            "%(who)s changed %(email)s from %(old)s to %(new)s.",
            who=who,
            email=user.email,
            old=old.value,
            new=new_role.value,
        ),
        user=actor,
    )
    return user


def set_active(session: Session, actor: User | None, user_id: int, active: bool) -> User:
    require_role(actor, Role.ADMIN)
    user = get_user(session, user_id)
    if user.is_active == active:
        return user
    if not active:
        if actor is not None and actor.id == user.id:
            raise Conflict(N_("You cannot disable your own account."))
        _guard_last_admin(session, user)
    user.is_active = active
    who = events.actor_name(actor)
    verb = "enabled" if active else "disabled"
    if active:
        text = said("%(who)s enabled %(email)s.", who=who, email=user.email)
    else:
        text = said("%(who)s disabled %(email)s.", who=who, email=user.email)
        sessions.end_all(session, user.id)
        revoked = tokens.revoke_all(session, user.id)
        if revoked:
            text = (
                said(
                    "%(who)s disabled %(email)s and revoked their API token.",
                    who=who,
                    email=user.email,
                )
                if revoked == 1
                else said(
                    "%(who)s disabled %(email)s and revoked their %(count)s API tokens.",
                    who=who,
                    email=user.email,
                    count=revoked,
                )
            )
    events.record(session, f"user.{verb}", text, user=actor)
    return user


def sign_out_everywhere(session: Session, actor: User, user_id: int) -> int:
    """End every session of a user (an admin's action, or anyone's for themselves); the
    actor's own current session is kept when they sign out their own others.

    Returns how many sessions ended. API tokens are left alone: they have their own page.
    """
    if actor.id != user_id:
        require_role(actor, Role.ADMIN)
    user = get_user(session, user_id)
    keep = actor.session_key if actor.id == user.id else None
    ended = sessions.end_all(session, user.id, keep=keep)
    who = events.actor_name(actor)
    text = (
        said("%(who)s signed out their other sessions.", who=who)
        if keep
        else said("%(who)s signed out every session of %(email)s.", who=who, email=user.email)
    )
    events.record(session, "user.signed_out", text, user=actor)
    return ended


def reset_password(session: Session, actor: User | None, user_id: int, password: str) -> User:
    require_role(actor, Role.ADMIN)
    user = get_user(session, user_id)
    passwords.check_strength(password)
    user.password_hash = passwords.hash_password(password)
    throttle.clear_account(session, user.email)
    # Often for a lost or shared device: every session of theirs ends, except the acting
    # admin's own browser when they reset their own password.
    keep = actor.session_key if actor is not None and actor.id == user.id else None
    sessions.end_all(session, user.id, keep=keep)
    who = events.actor_name(actor)
    events.record(
        session,
        "user.password_reset",
        said("%(who)s set a new password for %(email)s.", who=who, email=user.email),
        user=actor,
    )
    return user


def change_own_password(session: Session, user: User, current: str, new: str) -> None:
    if not passwords.verify_password(user.password_hash, current):
        raise ValidationError(N_("Your current password is not right."), field="current_password")
    passwords.check_strength(new)
    user.password_hash = passwords.hash_password(new)
    sessions.end_all(session, user.id, keep=user.session_key)  # this browser stays signed in
    events.record(
        session,
        "user.password_changed",
        said("%(email)s changed their password.", email=user.email),
        user=user,
    )


def authenticate(
    session: Session, email: str, password: str, address: str | None, attempts_per_minute: int
) -> User:
    """Check a sign-in; throttled per account and per address.

    - Raises LoginThrottled before checking the password once either key is over the limit,
      so a locked-out guesser learns nothing more.
    - The failure is recorded in the caller's transaction: the caller must commit on error.
    """
    email_key = email.strip().lower()
    keys = throttle.keys_for(email_key, address)
    wait = throttle.seconds_until_allowed(session, keys, attempts_per_minute)
    if wait:
        raise LoginThrottled(wait)
    user = session.scalar(select(User).where(User.email == email_key))
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        throttle.record_failure(session, keys)
        raise InvalidCredentials()
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = utcnow()
    throttle.clear_account(session, email_key)
    return user


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    """Every IANA zone name a user may pick, sorted (the Settings page offers them)."""
    # "localtime" and "Factory" are files of the database, not places.
    return tuple(sorted(available_timezones() - {"localtime", "Factory"}))


@lru_cache(maxsize=1)
def _zones_by_lower() -> dict[str, str]:
    return {name.lower(): name for name in timezone_names()}


# Browsers report ICU's names, some of them renamed since (the old names still work).
_RENAMED_ZONES = {
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Rangoon": "Asia/Yangon",
    "Asia/Saigon": "Asia/Ho_Chi_Minh",
    "Europe/Kiev": "Europe/Kyiv",
    "Atlantic/Faeroe": "Atlantic/Faroe",
}


def clean_timezone(name: str | None) -> str | None:
    """The zone's IANA name when `name` is one (any case, old names renamed), else None."""
    found = _zones_by_lower().get((name or "").strip().lower())
    if found is None:
        return None
    renamed = _RENAMED_ZONES.get(found, found)
    return renamed if renamed.lower() in _zones_by_lower() else found


def set_timezone(session: Session, user: User, timezone: str) -> None:
    """Dates are shown in this zone; empty means UTC."""
    tz = timezone.strip()
    clean = clean_timezone(tz) if tz else None
    if tz and clean is None:
        raise ValidationError(
            said(
                "%(name)s is not a timezone name such as Asia/Kolkata or Europe/London; "
                "pick one from the list.",
                name=repr(tz[:64]),
            ),
            field="timezone",
        )
    merged = session.merge(user)
    merged.timezone = clean


def adopt_browser_timezone(user: User, reported: str | None) -> bool:
    """Give a user with no timezone the one their browser reported, at sign-in or setup.

    - A choice already made is never overwritten; an unknown name is ignored (the person
      is signing in, not filling in a form, so there is nothing to tell them).
    - Returns whether the zone was set.
    """
    if user.timezone:
        return False
    clean = clean_timezone(reported)
    if clean is None:
        return False
    user.timezone = clean
    return True
