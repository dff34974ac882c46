"""Settings → Webhooks: endpoints, their health and delivery log, "send a test event".

- Admins only. "Add" and "Make a new secret" answer with a redirect, so a reload makes no
  second endpoint or secret; the redirect carries a signed token (shown_once.py) for the
  one page that shows the new secret; after that only its last four characters are shown.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as browser_session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ...errors import DomainError, NotFound, ValidationError
from ...models import DeliveryStatus, Role, WebhookEndpoint, utcnow
from ...outbox import EVENTS, endpoints
from ...outbox.signing import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)
from ..helpers import MAX_ID, apply_action, db_session, get_settings
from ..security import requires
from . import shown_once

bp = Blueprint("integrations", __name__, url_prefix="/settings/webhooks")

LABELS = {
    "message.status": _l("Message status"),
    "message.replied": _l("Customer replied"),
    "contact.opted_out": _l("Customer opted out"),
    "campaign.completed": _l("Campaign finished"),
    "import.completed": _l("Import finished"),
    "webhook.test": _l("Test event"),
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
def create() -> Response | str:
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
    same = session.scalars(
        select(WebhookEndpoint.name)
        .where(WebhookEndpoint.url == endpoint.url, WebhookEndpoint.id != endpoint.id)
        .limit(3)
    ).all()
    session.commit()
    if same:
        flash(
            _(
                "The webhook %(name)s already sends to this address, so each event now goes "
                "there twice. Delete one of them unless that is what you want.",
                name=same[0],
            ),
            "warning",
        )
    return _shown_once(endpoint.id, secret, created=True)


def _shown_once(endpoint_id: int, secret: str, *, created: bool) -> Response:
    token = shown_once.keep(
        get_settings().secret_key, current_user.id, endpoint_id, secret, created
    )
    return redirect(url_for("integrations.show", endpoint_id=endpoint_id, secret=token))


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
    secret_gone: bool = False,
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
        secret_gone=secret_gone,
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
def show(endpoint_id: int) -> Response | str:
    endpoint = db_session().get(WebhookEndpoint, endpoint_id)
    held = None
    if endpoint is not None and "secret" in request.args:
        held = shown_once.take(
            get_settings().secret_key,
            request.args["secret"],
            current_user.id,
            endpoint_id,
            endpoint.secret,
            browser_session,
        )
    if held is None:
        return _render_endpoint(endpoint_id, secret_gone="secret" in request.args)
    answer = make_response(
        _render_endpoint(endpoint_id, new_secret=held.secret, created=held.created)
    )
    answer.headers["Cache-Control"] = "no-store"  # Back must not show the secret again
    return answer


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
    flash(_("Saved."), "success")
    return redirect(url_for("integrations.show", endpoint_id=endpoint_id))


@bp.post("/<int(max=2147483647):endpoint_id>/rotate")
@requires(Role.ADMIN)
def rotate(endpoint_id: int) -> Response:
    session = db_session()
    try:
        secret = endpoints.rotate_secret(
            session, current_user, get_settings().secret_key, endpoint_id
        )
    except NotFound:
        abort(404)
    session.commit()
    return _shown_once(endpoint_id, secret, created=False)


@bp.post("/<int(max=2147483647):endpoint_id>/test")
@requires(Role.ADMIN)
def send_test(endpoint_id: int) -> Response:
    def run(session: Session) -> str:
        endpoints.send_test(session, current_user, endpoint_id, utcnow())
        return _(
            "A test event is on its way: press Refresh above the log in a few seconds to "
            "see how it went."
        )

    apply_action(run)
    return redirect(url_for("integrations.show", endpoint_id=endpoint_id))


@bp.post("/<int(max=2147483647):endpoint_id>/delete")
@requires(Role.ADMIN)
def delete(endpoint_id: int) -> Response:
    def run(session: Session) -> str:
        name = endpoints.delete(session, current_user, endpoint_id)
        return _("The webhook %(name)s is deleted; nothing more is sent to it.", name=name)

    apply_action(run)
    return redirect(url_for("integrations.index"))
