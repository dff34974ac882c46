"""The admin's webhook endpoints: checked addresses, sealed secrets, health and log.

- An address is http(s) with a host, no user:password in it and at most MAX_URL
  characters: it is where deliveries go, exactly, and is shown on pages.
- The signing secret is made here (or pasted), sealed with the installation's secret key
  (senders/secrets.py), handed back in clear once by `create` / `rotate_secret`, and only
  as its last four characters after that.
- Admins only, each change an Event (without the secret).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..errors import NotFound, ValidationError
from ..models import DeliveryStatus, OutboxEvent, Role, User, WebhookEndpoint
from ..senders import secrets as sealed
from ..words import N_, said
from . import signing
from .delivery import where
from .emit import EVENTS, TEST_EVENT, envelope, new_event_id

MAX_NAME = 120
MAX_URL = 2000
MAX_ENDPOINTS = 50
HEALTH_WINDOW = 100  # the last deliveries an endpoint's health is read from
LOG_PAGE = 50
D = DeliveryStatus
outbox = OutboxEvent.__table__

# English here; the page translates them where shown.
EVENT_WORDS = {
    "message.status": N_(
        "A message was sent, delivered, read or failed (campaign messages and "
        "answers from the Inbox)."
    ),
    "message.replied": N_(
        "A customer replied (with their number, name, what they wrote and the campaign it answers)."
    ),
    "contact.opted_out": N_(
        "A customer was opted out (they replied STOP, asked WhatsApp, or a teammate did it)."
    ),
    "campaign.completed": N_("A campaign finished sending, with its counts."),
    "import.completed": N_("A contact sheet finished importing, with its counts."),
}


@dataclass
class Health:
    last_delivered_at: datetime | None
    last_attempt_at: datetime | None
    recent: int  # deliveries looked at (up to HEALTH_WINDOW)
    failed: int  # of those, given up
    retrying: int  # of those, pending after a failed try
    last_error: str | None


def check_url(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise ValidationError(N_("Enter the address that should receive the events."), field="url")
    if len(url) > MAX_URL:
        raise ValidationError(
            said("The address is longer than %(limit)s characters.", limit=MAX_URL), field="url"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ValidationError(N_("The address must not contain spaces."), field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError(
            N_("This is not a web address; it looks like https://example.com/hook."), field="url"
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            N_(
                "The address must start with https:// (or http://) and name a server, "
                "e.g. https://example.com/hook."
            ),
            field="url",
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            N_(
                "Remove the user name and password from the address: every delivery is signed "
                "instead (see the signing secret)."
            ),
            field="url",
        )
    host = parts.hostname.strip("[]")
    if ":" not in host:  # an IPv6 literal has no labels to check
        try:
            host.encode("idna")
        except UnicodeError:
            raise ValidationError(
                N_(
                    "The server name in the address is not valid (an empty or too long part "
                    "between dots?)."
                ),
                field="url",
            ) from None
    if port == 0:
        raise ValidationError(N_("The address names port 0, which cannot be reached."), field="url")
    if parts.fragment:
        raise ValidationError(N_("Remove the part after # from the address."), field="url")
    return url


def check_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError(N_("Give the webhook a name (e.g. n8n orders flow)."), field="name")
    if len(name) > MAX_NAME:
        raise ValidationError(
            said("The name is longer than %(limit)s characters.", limit=MAX_NAME), field="name"
        )
    return name


def check_events(chosen: list[str] | tuple[str, ...]) -> list[str]:
    if len(chosen) > len(EVENTS) * 2:
        raise ValidationError(N_("Pick events from the list."), field="events")
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise ValidationError(
            said(
                "Unknown event %(event)s; pick from: %(events)s.",
                event=str(unknown[0])[:40],
                events=", ".join(EVENTS),
            ),
            field="events",
        )
    if not chosen:
        raise ValidationError(N_("Pick at least one event to send."), field="events")
    return [e for e in EVENTS if e in chosen]


def check_secret(secret: str) -> str:
    secret = (secret or "").strip()
    allowed = set(string.ascii_letters + string.digits + "-_.~+/=")
    if not signing.MIN_SECRET <= len(secret) <= signing.MAX_SECRET or set(secret) - allowed:
        raise ValidationError(
            said(
                "A pasted secret must be %(least)s to %(most)s letters, "
                "digits or - _ . ~ + / =; or leave it empty and one is made for you.",
                least=signing.MIN_SECRET,
                most=signing.MAX_SECRET,
            ),
            field="secret",
        )
    return secret


def get(session: Session, actor: User | None, endpoint_id: int) -> WebhookEndpoint:
    require_role(actor, Role.ADMIN)
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(N_("No such webhook; it may have been deleted."))
    return endpoint


def list_all(session: Session, actor: User | None) -> list[WebhookEndpoint]:
    require_role(actor, Role.ADMIN)
    return list(
        session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id).limit(MAX_ENDPOINTS))
    )


def create(
    session: Session,
    actor: User | None,
    secret_key: str,
    *,
    name: str,
    url: str,
    events_wanted: list[str],
    secret: str = "",
    active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret in clear (to be shown this once)."""
    require_role(actor, Role.ADMIN)
    name, url, chosen = check_name(name), check_url(url), check_events(events_wanted)
    plain = check_secret(secret) if secret.strip() else signing.new_secret()
    count = session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0
    if count >= MAX_ENDPOINTS:
        raise ValidationError(
            said("At most %(limit)s webhooks; delete one you no longer use.", limit=MAX_ENDPOINTS)
        )
    endpoint = WebhookEndpoint(
        name=name,
        url=url,
        events=chosen,
        active=active,
        secret=sealed.encrypt(secret_key, plain),
        secret_hint=sealed.hint(plain),
        created_by_id=actor.id if actor else None,
    )
    session.add(endpoint)
    session.flush()
    _record(
        session,
        actor,
        endpoint,
        "webhook_endpoint.created",
        N_("%(who)s added the webhook %(it)s."),
    )
    return endpoint, plain


def update(
    session: Session,
    actor: User | None,
    endpoint_id: int,
    *,
    name: str,
    url: str,
    events_wanted: list[str],
    active: bool,
) -> WebhookEndpoint:
    endpoint = get(session, actor, endpoint_id)
    endpoint.name, endpoint.url = check_name(name), check_url(url)
    endpoint.events, endpoint.active = check_events(events_wanted), bool(active)
    session.flush()
    _record(
        session,
        actor,
        endpoint,
        "webhook_endpoint.changed",
        N_("%(who)s changed the webhook %(it)s."),
    )
    return endpoint


def set_active(
    session: Session, actor: User | None, endpoint_id: int, active: bool
) -> WebhookEndpoint:
    endpoint = get(session, actor, endpoint_id)
    endpoint.active = active
    sentence = (
        N_("%(who)s turned on the webhook %(it)s.")
        if active
        else N_("%(who)s turned off the webhook %(it)s.")
    )
    _record(session, actor, endpoint, "webhook_endpoint.changed", sentence)
    return endpoint


def rotate_secret(
    session: Session, actor: User | None, secret_key: str, endpoint_id: int, secret: str = ""
) -> str:
    """A new secret in clear (shown once); deliveries are signed with it from now on."""
    endpoint = get(session, actor, endpoint_id)
    plain = check_secret(secret) if secret.strip() else signing.new_secret()
    endpoint.secret, endpoint.secret_hint = sealed.encrypt(secret_key, plain), sealed.hint(plain)
    _record(
        session,
        actor,
        endpoint,
        "webhook_endpoint.secret_rotated",
        N_("%(who)s made a new signing secret for the webhook %(it)s."),
    )
    return plain


def delete(session: Session, actor: User | None, endpoint_id: int) -> str:
    endpoint = get(session, actor, endpoint_id)
    name = endpoint.name
    _record(
        session,
        actor,
        endpoint,
        "webhook_endpoint.deleted",
        N_("%(who)s deleted the webhook %(it)s."),
    )
    # Its deliveries go with it (ON DELETE CASCADE): the log is of this endpoint.
    session.execute(outbox.delete().where(outbox.c.endpoint_id == endpoint.id))
    session.delete(endpoint)
    return name


def send_test(session: Session, actor: User | None, endpoint_id: int, now: datetime) -> str:
    """Queue a `webhook.test` event for this endpoint alone; returns its event id."""
    endpoint = get(session, actor, endpoint_id)
    event_id = new_event_id()
    data = {"endpoint_id": endpoint.id, "message": "A test from wabulk: your webhook works."}
    session.execute(
        outbox.insert().values(
            endpoint_id=endpoint.id,
            event_id=event_id,
            event=TEST_EVENT,
            payload=envelope(event_id, TEST_EVENT, data, now),
            status=D.PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
    )
    return event_id


def health(session: Session, endpoint_id: int) -> Health:
    """From the endpoint's last HEALTH_WINDOW deliveries: bounded however long the log."""
    recent = session.execute(
        select(
            outbox.c.status,
            outbox.c.attempts,
            outbox.c.last_attempt_at,
            outbox.c.delivered_at,
            outbox.c.last_error,
        )
        .where(outbox.c.endpoint_id == endpoint_id)
        .order_by(outbox.c.id.desc())
        .limit(HEALTH_WINDOW)
    ).all()
    tried = [r.last_attempt_at for r in recent if r.last_attempt_at]
    delivered = [r.delivered_at for r in recent if r.delivered_at]
    errors = [r for r in recent if r.last_error and r.status != D.DELIVERED]
    return Health(
        last_delivered_at=max(delivered) if delivered else None,
        last_attempt_at=max(tried) if tried else None,
        recent=len(recent),
        failed=sum(1 for r in recent if r.status == D.FAILED),
        retrying=sum(1 for r in recent if r.status == D.PENDING and r.attempts > 0),
        last_error=errors[0].last_error if errors else None,
    )


def deliveries(
    session: Session,
    actor: User | None,
    endpoint_id: int,
    before_id: int | None = None,
    limit: int = LOG_PAGE,
) -> tuple[list[Any], int | None]:
    """A page of the endpoint's delivery log, newest first, and the id to continue before."""
    get(session, actor, endpoint_id)
    query = (
        select(
            outbox.c.id,
            outbox.c.event_id,
            outbox.c.event,
            outbox.c.status,
            outbox.c.attempts,
            outbox.c.created_at,
            outbox.c.last_attempt_at,
            outbox.c.next_attempt_at,
            outbox.c.delivered_at,
            outbox.c.last_code,
            outbox.c.last_error,
        )
        .where(outbox.c.endpoint_id == endpoint_id)
        .order_by(outbox.c.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        query = query.where(outbox.c.id < before_id)
    rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more and rows else None


def _record(
    session: Session, actor: User | None, endpoint: WebhookEndpoint, kind: str, sentence: str
) -> None:
    """`sentence` (a marked msgid) names the actor as %(who)s and the webhook as %(it)s."""
    events.record(
        session,
        kind,
        # Only the server of the address: its path and query are, for Zapier, Make or n8n,
        # the key to post to it.
        said(sentence, who=events.actor_name(actor), it=f"{endpoint.name} ({where(endpoint.url)})"),
        user=actor,
        data={"endpoint_id": endpoint.id},
    )
