"""Secrets of a sender (the Cloud API token, app secret, verify token), encrypted at rest.

- The key is derived from the installation's secret key (HKDF-SHA256 with a fixed label),
  so nothing else needs keeping: a copied database without the instance's secret key
  yields no token. Changing the secret key makes the stored secrets unreadable; the page
  then asks for them again instead of failing.
- Fernet (AES-128-CBC with HMAC-SHA256) authenticates what it decrypts, so a tampered
  value is refused, never half-read.
- Only the last four characters are ever shown back, and only from `hints`.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..words import N_

SECRET_FIELDS = ("access_token", "app_secret", "verify_token")
_LABEL = b"wabulk sender secrets v1"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted (the secret key changed, or it was altered)."""


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(raw))


def encrypt(secret_key: str, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def decrypt(secret_key: str, token: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise SecretUnreadable(
            N_(
                "A saved secret of this sender cannot be read (was the secret key changed?). "
                "Enter it again in the sender's settings."
            )
        ) from None


def hint(plaintext: str) -> str:
    """What the page may show of a secret: its last four characters."""
    return "…" + plaintext[-4:] if len(plaintext) > 4 else "…"


def store(settings: dict[str, Any], secret_key: str, values: dict[str, str]) -> dict[str, Any]:
    """`settings` with these secrets encrypted in; a blank value keeps the stored one."""
    out = dict(settings)
    sealed = dict(out.get("secrets") or {})
    hints = dict(out.get("hints") or {})
    for name, value in values.items():
        if name not in SECRET_FIELDS:
            raise KeyError(name)
        if value:
            sealed[name] = encrypt(secret_key, value)
            hints[name] = hint(value)
    out["secrets"], out["hints"] = sealed, hints
    return out


def reveal(settings: dict[str, Any], secret_key: str, name: str) -> str | None:
    """One secret in clear, for the code that uses it; None when none is stored."""
    sealed = (settings.get("secrets") or {}).get(name)
    return decrypt(secret_key, sealed) if sealed else None


def without_secrets(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings safe to show or export: no encrypted values, only the hints."""
    return {k: v for k, v in settings.items() if k != "secrets"}
