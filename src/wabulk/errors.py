"""Domain exceptions. Services raise these; the web layer maps them to HTTP."""

from __future__ import annotations


class DomainError(Exception):
    """Something the user asked for cannot be done; the message says why, for a person."""


class ValidationError(DomainError):
    """Bad input; `field` names where, so a form can show it next to the right box."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PermissionDenied(DomainError):
    pass


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate name, the last admin...)."""
