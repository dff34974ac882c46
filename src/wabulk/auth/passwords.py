"""Password hashing with Argon2id (argon2-cffi's defaults follow RFC 9106)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import ValidationError
from ..words import N_, said

MIN_LENGTH = 8
MAX_LENGTH = 256  # hashing megabyte "passwords" is a cheap denial of service

_hasher = PasswordHasher()
# Verifying against this when the account does not exist keeps the timing the same,
# so response time does not reveal which emails have accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise ValidationError(
            said("Use at least %(count)s characters.", count=MIN_LENGTH), field="password"
        )
    if len(password) > MAX_LENGTH:
        raise ValidationError(
            said("Use at most %(count)s characters.", count=MAX_LENGTH), field="password"
        )
    if password.strip() == "":
        raise ValidationError(N_("A password cannot be only spaces."), field="password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
