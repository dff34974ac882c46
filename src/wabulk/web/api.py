"""JSON API under /api/v1 (grows with the REST API issue). Same services as the pages."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from flask_login import current_user

from ..analytics.summary import dashboard_summary
from ..models import Role
from .helpers import db_session
from .security import requires

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/me")
@requires(Role.VIEWER)
def me() -> Response:
    return jsonify(
        {
            "id": current_user.id,
            "email": current_user.email,
            "role": current_user.role.value,
            "timezone": current_user.timezone,
        }
    )


@bp.get("/summary")
@requires(Role.VIEWER)
def summary() -> Response:
    s = dashboard_summary(db_session())
    return jsonify({k: getattr(s, k) for k in s.__dataclass_fields__})
