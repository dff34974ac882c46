"""Signed-in sessions, kept on the server so that signing out really ends them.

- Each sign-in gets a random key. The browser's session and "keep me signed in" cookies carry
  only that key (User.get_id); the table keeps its SHA-256, so a copy of the database
  signs nobody in.
- A cookie works only while its row exists and the user is active: signing out deletes this
  session's row, a new password deletes the others, disabling a user and "sign out
  everywhere" delete them all. A cookie saved earlier and replayed later finds nothing.
- Re-enabling a user revives nothing: their rows were deleted when they were disabled.
- A session unused for IDLE_LIMIT ends, whatever its cookie's own expiry says.
- `last_seen_at` is written at most once a minute per session, so browsing does not turn
  every request into a write (SQLite has one writer at a time).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..models import User, UserSession, utcnow

log = logging.getLogger(__name__)

IDLE_LIMIT = timedelta(days=30)
TOUCH_EVERY = timedelta(minutes=1)
MAX_USER_AGENT = 200
# A real key is 43 characters; anything much longer is not one and is not hashed.
MAX_KEY = 100


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def start(session: Session, user: User, user_agent: str | None = None) -> str:
    """A new session for `user`; returns its key and sets it on `user` for login_user.

    Also drops every session that passed the idle limit, so browsers closed without signing
    out do not pile up rows (the table stays at the size of recent use).
    """
    now = utcnow()
    session.execute(delete(UserSession).where(UserSession.last_seen_at < now - IDLE_LIMIT))
    key = secrets.token_urlsafe(32)
    agent = " ".join((user_agent or "").split())[:MAX_USER_AGENT] or None
    session.add(
        UserSession(
            user_id=user.id, key_hash=_hash(key), created_at=now, last_seen_at=now, user_agent=agent
        )
    )
    session.flush()
    user.session_key = key
    return key


def resume(session: Session, key: str) -> User | None:
    """The active user whose session `key` names, or None (signed out, ended, idle, disabled).

    Commits a `last_seen_at` stamp when the stored one is a minute old or more.
    """
    if not key or len(key) > MAX_KEY:
        return None
    row = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.key_hash == _hash(key))
    ).first()
    if row is None:
        return None
    found, user = row
    now = utcnow()
    if not user.is_active or now - found.last_seen_at > IDLE_LIMIT:
        return None
    if now - found.last_seen_at >= TOUCH_EVERY:
        _touch(session, found.id, now)
    user.session_key = key
    return user


def _touch(session: Session, row_id: int, now: datetime) -> None:
    """Stamp `last_seen_at`; best effort, because it only informs the sessions list.

    A database that cannot take the write now (SQLite busy with a long write, a read-only
    moment) must not turn a page view into an error; the next request a minute on tries again.
    """
    try:
        # Conditional, so concurrent requests of one session write the stamp once.
        session.execute(
            update(UserSession)
            .where(UserSession.id == row_id, UserSession.last_seen_at <= now - TOUCH_EVERY)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    except OperationalError:
        session.rollback()
        log.warning("Could not record a session's last use; the database was busy.")


def end(session: Session, key: str | None) -> None:
    """Sign out the one session `key` names (nothing happens for an unknown key)."""
    if key and len(key) <= MAX_KEY:
        session.execute(delete(UserSession).where(UserSession.key_hash == _hash(key)))


def end_all(session: Session, user_id: int, keep: str | None = None) -> int:
    """Sign out every session of a user, except the one `keep` names; returns how many ended."""
    query = delete(UserSession).where(UserSession.user_id == user_id)
    if keep:
        query = query.where(UserSession.key_hash != _hash(keep))
    result = session.execute(query)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def of_user(user_id: int) -> Select[tuple[UserSession]]:
    """A user's live sessions, the most recently used first."""
    return (
        select(UserSession)
        .where(UserSession.user_id == user_id, UserSession.last_seen_at >= utcnow() - IDLE_LIMIT)
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )


def is_current(row: UserSession, key: str | None) -> bool:
    return bool(key) and row.key_hash == _hash(key or "")
