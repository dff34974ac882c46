"""API tokens: bearer secrets for the REST API, acting as their user with that user's role.

- The plain token is returned once, at creation; only its SHA-256 and a short prefix (to
  tell tokens apart in lists) are stored, so a copy of the database reveals no token.
- Everyone manages their own tokens; administrators can also see and revoke everyone's.
- A revoked token, or a token of a disabled user, is refused; disabling a user revokes their
  tokens (revoke_all), so enabling them again does not bring old tokens back.
- A new password leaves tokens working: they belong to programs, not to a browser, and are
  revoked on their own page.
- `last_used_at` is written at most once a minute, so reading through the API does not
  turn every request into a write.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from .. import events
from ..errors import Conflict, NotFound, ValidationError
from ..models import ApiToken, Role, User, utcnow
from ..words import N_, said

# Recognisable in a leaked paste or a log (secret scanners and logs.py look for it).
TOKEN_PREFIX = "wab_"  # noqa: S105 (a marker, not a secret)
SHOWN_PREFIX = 12  # characters kept in clear: "wab_" and 8 random ones
MAX_NAME = 100
# Tokens are few per person; the cap keeps a runaway script from filling the table.
MAX_ACTIVE_PER_USER = 50
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    """A new token and its secret: the only moment the secret exists outside the client."""

    token: ApiToken
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(session: Session, actor: User, name: str) -> IssuedToken:
    """Issue a token for `actor`; it acts as them, with their role at the time of each call."""
    name = " ".join(name.split())
    if not name:
        raise ValidationError(N_("Name the token after what will use it (e.g. shop site)."), "name")
    if len(name) > MAX_NAME:
        raise ValidationError(
            said("A token name can have at most %(limit)s characters.", limit=MAX_NAME), "name"
        )
    active = session.scalar(
        select(ApiToken.id)
        .where(ApiToken.user_id == actor.id, ApiToken.revoked_at.is_(None))
        .offset(MAX_ACTIVE_PER_USER - 1)
        .limit(1)
    )
    if active is not None:
        raise Conflict(
            said(
                "You already have %(limit)s active tokens; revoke unused ones first.",
                limit=MAX_ACTIVE_PER_USER,
            )
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=actor.id, name=name, token_hash=hash_secret(secret), prefix=secret[:SHOWN_PREFIX]
    )
    session.add(token)
    session.flush()
    events.record(
        session,
        "token.created",
        said(
            "%(who)s created the API token %(name)s (%(prefix)s…).",
            who=events.actor_name(actor),
            name=repr(name),
            prefix=token.prefix,
        ),
        user=actor,
        data={"token_id": token.id},
    )
    return IssuedToken(token, secret)


def visible_tokens(actor: User) -> Select[tuple[ApiToken, str]]:
    """Tokens `actor` may see with their owner's email, newest first: their own, or all for
    an administrator."""
    query = (
        select(ApiToken, User.email)
        .join(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.id.desc())
    )
    if not actor.role.includes(Role.ADMIN):
        query = query.where(ApiToken.user_id == actor.id)
    return query


def revoke_token(session: Session, actor: User, token_id: int) -> ApiToken:
    """Revoke a token at once; someone else's token looks absent unless `actor` is an admin."""
    token = session.get(ApiToken, token_id)
    mine = token is not None and token.user_id == actor.id
    if token is None or not (mine or (actor.is_active and actor.role.includes(Role.ADMIN))):
        raise NotFound(said("There is no token #%(id)s.", id=token_id))
    if token.revoked_at is not None:
        raise Conflict(said("The token %(name)s is already revoked.", name=repr(token.name)))
    token.revoked_at = utcnow()
    who, name = events.actor_name(actor), repr(token.name)
    events.record(
        session,
        "token.revoked",
        said(
            "%(who)s revoked the API token %(name)s (%(prefix)s…).",
            who=who,
            name=name,
            prefix=token.prefix,
        )
        if mine
        else said(
            "%(who)s revoked the API token %(name)s of %(email)s (%(prefix)s…).",
            who=who,
            name=name,
            email=token.user.email,
            prefix=token.prefix,
        ),
        user=actor,
        data={"token_id": token.id},
    )
    return token


def revoke_all(session: Session, user_id: int) -> int:
    """Revoke every active token of a user (when they are disabled); returns how many."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def authenticate_token(session: Session, secret: str) -> User | None:
    """The active user a presented token acts for, or None (unknown, revoked, user disabled).

    - Looked up by its hash (unique index), then compared in constant time.
    - Commits a `last_used_at` stamp when the stored one is a minute old or more.
    """
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    digest = hash_secret(secret)
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest)
    ).first()
    if row is None:
        return None
    token, user = row
    if not hmac.compare_digest(token.token_hash, digest):
        return None
    if token.revoked_at is not None or not user.is_active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        # Conditional, so concurrent requests of one token write the stamp once.
        session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token.id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOUCH_EVERY),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return user
