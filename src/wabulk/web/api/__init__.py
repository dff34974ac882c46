"""The REST API under /api/v1, its OpenAPI document, and the readable docs at /api/docs.

- Authentication: a bearer token (see auth/tokens.py and the security gate) or the
  browser's session. Token calls need no CSRF token (no cookie, nothing to forge);
  session calls that write still do.
- CORS only for the origins in WABULK_CORS_ORIGINS, and never with cookies: a shop's own
  site calls the API with a token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from ...models import Role
from ..helpers import get_settings
from ..security import api_error, csrf, is_api_request, requires
from . import (  # noqa: F401
    account,
    analytics,
    campaigns,
    contacts,
    conversations,
    imports,
    recurrences,
    replies,
    segments,
    senders,
    sheet,
    steps,
    templates,
    webhooks,
)
from .openapi import TITLE, doc_entries, document
from .registry import WRITES, install

bp = Blueprint("api", __name__, url_prefix="/api/v1")
docs_bp = Blueprint("api_docs", __name__, url_prefix="/api")
install(bp)
# Checked below instead, for session calls only.
csrf.exempt(bp)

CORS_METHODS = "GET, POST, PUT, DELETE"
CORS_HEADERS = "Authorization, Content-Type"


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin", "")
    return origin if origin.lower() in get_settings().cors_origins else None


@bp.before_request
def _preflight() -> Any:
    if request.method != "OPTIONS" or _allowed_origin() is None:
        return None
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    return response


@bp.before_request
def _csrf_for_sessions() -> None:
    if request.method in WRITES and not g.get("api_token_user"):
        csrf.protect()


@bp.after_request
def _cors(response: Response) -> Response:
    if get_settings().cors_origins:
        response.vary.add("Origin")
    origin = _allowed_origin()
    if origin is not None:
        # No Allow-Credentials: a browser never sends the session cookie cross-site.
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


@bp.app_errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    """Under /api/, every HTTP error (405, 400…) in the API's one JSON shape; pages keep
    their own handling."""
    if not is_api_request() or error.code is None:
        return error
    code = (error.name or "error").lower().replace(" ", "_")
    response, status = api_error(error.code, code, error.description or error.name)
    if "Allow" in error.get_headers():
        response.headers["Allow"] = dict(error.get_headers())["Allow"]
    return response, status


@bp.get("/openapi.json")
@requires(Role.VIEWER)
def openapi_json() -> Response:
    return jsonify(document())


@docs_bp.get("/docs")
@requires(Role.VIEWER)
def docs() -> str:
    return render_template(
        "api/docs.html", title=TITLE, groups=doc_entries(request.host_url), spec=document()
    )


docs.is_page = True  # type: ignore[attr-defined]  # anonymous browsers go to sign in
