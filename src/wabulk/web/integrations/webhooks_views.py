"""Settings → Webhooks: endpoints, their health and delivery log, "send a test event".

- Admins only. A new or rotated signing secret is rendered in the answer to the POST that
  made it (never flashed or redirected through the session), once; after that only its
  last four characters.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ...errors import DomainError, NotFound, ValidationError
from ...models import DeliveryStatus, Role, utcnow
from ...outbox import EVENTS, endpoints
from ...outbox.signing import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)
from ..helpers import MAX_ID, apply_action, db_session, get_settings
from ..security import requires

bp = Blueprint("integrations", __name__, url_prefix="/settings/webhooks")

LABELS = {
    "message.status": "Message status",
    "message.replied": "Customer replied",
    "contact.opted_out": "Customer opted out",
    "campaign.completed": "Campaign finished",
    "import.completed": "Import finished",
    "webhook.test": "Test event",
}
HEADERS = {
    "signature": SIGNATURE_HEADER,
    "timestamp": TIMESTAMP_HEADER,
    "event": EVENT_HEADER,
    "event_id": EVENT_ID_HEADER,
}


def _form_values() -> dict[str, Any]:
    form = request.form
    return {
        "name": form.get("name", "")[: endpoints.MAX_NAME + 10],
        "url": form.get("url", "")[: endpoints.MAX_URL + 10],
        "events_wanted": form.getlist("events")[: len(EVENTS) * 2],
        "active": form.get("active") == "1",
    }


def _common() -> dict[str, Any]:
    return {
        "labels": LABELS,
        "event_words": endpoints.EVENT_WORDS,
        "all_events": EVENTS,
        "headers": HEADERS,
        "D": DeliveryStatus,
    }


@bp.get("")
@requires(Role.ADMIN)
def index() -> str:
    return _render_index()


def _render_index(
    values: dict[str, Any] | None = None, error: ValidationError | None = None, status: int = 200
) -> str:
    session = db_session()
    rows = endpoints.list_all(session, current_user)
    return render_template(
        "integrations/webhooks.html",
        endpoints=[(e, endpoints.health(session, e.id)) for e in rows],
        values=values or {"name": "", "url": "", "events_wanted": [], "active": True},
        error=error,
        max_endpoints=endpoints.MAX_ENDPOINTS,
        **_common(),
    ), status  # type: ignore[return-value]


@bp.post("")
@requires(Role.ADMIN)
def create() -> str:
    session = db_session()
    values = _form_values()
    try:
        endpoint, secret = endpoints.create(
            session,
            current_user,
            get_settings().secret_key,
            name=values["name"],
            url=values["url"],
            events_wanted=values["events_wanted"],
            secret=request.form.get("secret", "")[:300],
        )
    except ValidationError as exc:
        session.rollback()
        return _render_index(values, exc, 400)
    except DomainError as exc:
        session.rollback()
        return _render_index(values, ValidationError(str(exc)), 400)
    session.commit()
    # Rendered here, not after a redirect: the secret must not travel through the session.
    return _render_endpoint(endpoint.id, new_secret=secret, created=True)


def _before() -> int | None:
    raw = request.args.get("before", "")
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        abort(404)
    return int(raw)


def _render_endpoint(
    endpoint_id: int,
    *,
    new_secret: str | None = None,
    created: bool = False,
    values: dict[str, Any] | None = None,
    error: ValidationError | None = None,
    status: int = 200,
) -> str:
    session = db_session()
    try:
        endpoint = endpoints.get(session, current_user, endpoint_id)
        log, next_before = endpoints.deliveries(session, current_user, endpoint_id, _before())
    except NotFound:
        abort(404)
    return render_template(
        "integrations/endpoint.html",
        endpoint=endpoint,
        health=endpoints.health(session, endpoint.id),
        log=log,
        next_before=next_before,
        paged=request.args.get("before") is not None,
        new_secret=new_secret,
        created=created,
        values=values
        or {
            "name": endpoint.name,
            "url": endpoint.url,
            "events_wanted": list(endpoint.events or []),
            "active": endpoint.active,
        },
        error=error,
        now=utcnow(),
        **_common(),
    ), status  # type: ignore[return-value]


@bp.get("/<int(max=2147483647):endpoint_id>")
@requires(Role.ADMIN)
def show(endpoint_id: int) -> str:
    return _render_endpoint(endpoint_id)


@bp.post("/<int(max=2147483647):endpoint_id>")
@requires(Role.ADMIN)
def save(endpoint_id: int) -> Response | str:
    session = db_session()
    values = _form_values()
    try:
        endpoints.update(session, current_user, endpoint_id, **values)
    except NotFound:
        abort(404)
    except ValidationError as exc:
        session.rollback()
        return _render_endpoint(endpoint_id, values=values, error=exc, status=400)
    session.commit()
    flash("Saved.", "success")
    return redirect(url_for("integrations.show", endpoint_id=endpoint_id))


@bp.post("/<int(max=2147483647):endpoint_id>/rotate")
@requires(Role.ADMIN)
def rotate(endpoint_id: int) -> str:
    session = db_session()
    try:
        secret = endpoints.rotate_secret(
            session, current_user, get_settings().secret_key, endpoint_id
        )
    except NotFound:
        abort(404)
    session.commit()
    return _render_endpoint(endpoint_id, new_secret=secret)


@bp.post("/<int(max=2147483647):endpoint_id>/test")
@requires(Role.ADMIN)
def send_test(endpoint_id: int) -> Response:
    def run(session: Session) -> str:
        endpoints.send_test(session, current_user, endpoint_id, utcnow())
        return (
            "A test event is on its way; it appears in the log below within a few seconds "
            "(reload the page)."
        )

    apply_action(run)
    return redirect(url_for("integrations.show", endpoint_id=endpoint_id))


@bp.post("/<int(max=2147483647):endpoint_id>/delete")
@requires(Role.ADMIN)
def delete(endpoint_id: int) -> Response:
    def run(session: Session) -> str:
        name = endpoints.delete(session, current_user, endpoint_id)
        return f"The endpoint {name} is deleted; it receives nothing more."

    apply_action(run)
    return redirect(url_for("integrations.index"))
