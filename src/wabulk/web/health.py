"""Health and metrics for load balancers and Prometheus: no sign-in, no session, GET only.

- `/healthz` answers from the process alone: a load balancer restarts or drops a process
  that does not answer it, so it must not fail when only the database is away.
- `/readyz` asks the database one trivial question within READY_TIMEOUT and checks that
  its migrations are this version's; it names what failed, never a URL or the driver's
  words (those go to the log).
- `/metrics` (docs/monitoring.md) is off until WABULK_METRICS_TOKEN or WABULK_METRICS_FROM
  is set; then it answers a request bearing the token or coming from a listed address.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, request
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from .. import metrics, migrate
from ..config import Settings
from ..models import utcnow
from .helpers import db_session, get_db, get_settings
from .security import public

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
bp.record_once(lambda state: state.app.extensions.setdefault("wabulk.readiness", Readiness()))

READY_TIMEOUT = 3.0  # seconds; load balancers commonly give a check 5


def _plain(body: str, status: int = 200, **headers: str) -> Response:
    return Response(body + "\n", status=status, mimetype="text/plain", headers=headers)


@bp.get("/healthz")
@public
def healthz() -> Response:
    return _plain("ok")


@functools.cache
def _revisions() -> tuple[str | None, frozenset[str]]:
    """(head, every revision) of this version's migrations: read from the package's own
    files, so fixed for the life of the process."""
    script = ScriptDirectory(str(migrate.MIGRATIONS_DIR))
    return script.get_current_head(), frozenset(r.revision for r in script.walk_revisions())


def _check_database(engine: Engine) -> str | None:
    """None when ready, else what is wrong, in one line."""
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # A query stuck behind a lock gives up instead of holding the connection.
                conn.execute(text(f"SET LOCAL statement_timeout = {int(READY_TIMEOUT * 1000)}"))
            conn.execute(text("SELECT 1"))
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        log.warning("readyz: the database did not answer: %s", str(exc).splitlines()[0])
        return f"database: not reachable ({type(exc).__name__}; the log has the details)"
    head, known = _revisions()
    if current == head:
        return None
    if current is not None and current not in known:
        # An upgrade in progress: the schema moved on and this process is the old version.
        return f"database: at migration {current}, newer than this version's {head}"
    at = f"at migration {current}" if current else "not migrated"
    return f"database: {at}, this version needs {head}; run `wabulk db upgrade`"


class Readiness:
    """One database check in flight per process: when the database hangs, probes wait on
    the same check instead of each leaving a thread and a connection behind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Future[str | None] | None = None

    def check(self, engine: Engine) -> str | None:
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = Future()
                threading.Thread(
                    target=self._run, args=(engine, self._pending), daemon=True
                ).start()
            pending = self._pending
        try:
            return pending.result(timeout=READY_TIMEOUT)
        except FutureTimeout:
            return f"database: no answer within {READY_TIMEOUT:g} s"

    @staticmethod
    def _run(engine: Engine, future: Future[str | None]) -> None:
        try:
            future.set_result(_check_database(engine))
        except BaseException as exc:  # anything else is still "not ready", and logged
            log.exception("readyz: the check failed")
            future.set_result(f"database: check failed ({type(exc).__name__})")


@bp.get("/readyz")
@public
def readyz() -> Response:
    readiness: Readiness = current_app.extensions["wabulk.readiness"]
    reason = readiness.check(get_db().engine)
    if reason is not None:
        return _plain(f"not ready: {reason}", 503)
    return _plain("ok")


def _from_allowed_address(settings: Settings) -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.5 from a dual-stack socket
    candidates = [address] if mapped is None else [address, mapped]
    return any(
        a in ipaddress.ip_network(block) for block in settings.metrics_from for a in candidates
    )


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _refusal(settings: Settings) -> Response | None:
    token = settings.metrics_token
    if not token and not settings.metrics_from:
        return _plain(
            "Metrics are off. Set WABULK_METRICS_TOKEN (sent by Prometheus as a bearer "
            "token) or WABULK_METRICS_FROM (addresses allowed to read them) to turn them on.",
            404,
        )
    offered = _bearer()
    if token and offered is not None and hmac.compare_digest(offered.encode(), token.encode()):
        return None
    if settings.metrics_from and _from_allowed_address(settings):
        return None
    if token and offered is not None:
        return _plain(
            "This metrics token is wrong.",
            401,
            **{"WWW-Authenticate": 'Bearer realm="metrics", error="invalid_token"'},
        )
    if token:
        also = (
            " or a request from an address in WABULK_METRICS_FROM" if settings.metrics_from else ""
        )
        return _plain(
            f"Metrics need the token of WABULK_METRICS_TOKEN as `Authorization: Bearer …`{also}.",
            401,
            **{"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return _plain(
        f"Metrics are not served to {request.remote_addr} (see WABULK_METRICS_FROM).", 403
    )


@bp.get("/metrics")
@public
def metrics_page() -> Response:
    refused = _refusal(get_settings())
    if refused is not None:
        return refused
    try:
        body = metrics.exposition(db_session(), utcnow())
    except SQLAlchemyError as exc:
        log.warning("metrics: the database did not answer: %s", str(exc).splitlines()[0])
        return _plain("The database did not answer; no metrics this time.", 503)
    return Response(body, status=200, content_type=metrics.CONTENT_TYPE)
