"""Role checks used by services (and by the views' decorators, through the same rule)."""

from __future__ import annotations

from ..errors import PermissionDenied
from ..models import Role, User
from ..words import said


def require_role(actor: User | None, role: Role) -> None:
    """Raise PermissionDenied unless `actor` holds `role` or a higher one.

    - `actor=None` is the system itself (CLI run by the server's owner): always allowed.
    - A disabled user holds no role.
    """
    if actor is None:
        return
    if not actor.is_active or not actor.role.includes(role):
        raise PermissionDenied(
            said(
                "This needs the %(role)s role; you are %(current)s.",
                role=role.value,
                current=actor.role.value,
            )
        )
