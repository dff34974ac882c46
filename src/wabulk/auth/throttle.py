"""Failed sign-in throttling per account and per address over a sliding minute.

Kept in the database so every web process (and machine) sees the same counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..models import LoginFailure, utcnow

WINDOW = timedelta(minutes=1)


def keys_for(email: str, address: str | None) -> list[str]:
    keys = [f"account:{email.strip().lower()}"]
    if address:
        keys.append(f"address:{address}")
    return keys


def seconds_until_allowed(
    session: Session, keys: list[str], limit: int, now: datetime | None = None
) -> int:
    """0 when another attempt is allowed, else how long to wait."""
    now = now or utcnow()
    since = now - WINDOW
    wait = 0
    for key in keys:
        rows = (
            session.execute(
                select(LoginFailure.at)
                .where(LoginFailure.key == key, LoginFailure.at > since)
                .order_by(LoginFailure.at.desc())
                .limit(limit)
            )
            .scalars()
            .all()
        )
        if len(rows) >= limit:
            # Allowed again once the oldest of the last `limit` failures leaves the window.
            oldest = rows[-1]
            wait = max(wait, int((oldest + WINDOW - now).total_seconds()) + 1)
    return wait


def record_failure(session: Session, keys: list[str], now: datetime | None = None) -> None:
    now = now or utcnow()
    session.add_all(LoginFailure(key=key, at=now) for key in keys)
    # Old rows are useless; trimming here keeps the table small without a cron job.
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - 10 * WINDOW))


def clear_account(session: Session, email: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.key == keys_for(email, None)[0]))
