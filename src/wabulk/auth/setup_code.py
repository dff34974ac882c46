"""The one-time code that guards first-run setup.

A server reachable by others before its first administrator exists must not be claimable
by a stranger: creating that administrator needs a code printed in the operator's terminal.
Only its SHA-256 is stored; it is gone once the first user exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..models import AppSetting

KEY = "setup_code_sha256"
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I/L to misread


def _digest(code: str) -> str:
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalised.encode()).hexdigest()


def issue(session: Session) -> str:
    """Make a new code (replacing any earlier one) and return it; only its hash is kept."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    code = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
    setting = session.get(AppSetting, KEY)
    if setting is None:
        session.add(AppSetting(key=KEY, value=_digest(code)))
    else:
        setting.value = _digest(code)
    return code


def matches(session: Session, code: str) -> bool:
    stored = session.scalar(select(AppSetting.value).where(AppSetting.key == KEY))
    return stored is not None and hmac.compare_digest(stored, _digest(code))


def clear(session: Session) -> None:
    session.execute(delete(AppSetting).where(AppSetting.key == KEY))
