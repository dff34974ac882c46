"""Webhook endpoints over the API (admin tokens): the same service as Settings → Webhooks.

The signing secret is in an answer only when it is made: creating an endpoint, or
rotating its secret. Every other answer has just `secret_hint` (its last four characters).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy import select

from ...models import OutboxEvent, Role, WebhookEndpoint, utcnow
from ...outbox import endpoints
from .registry import Answer, Call, Input, Output, Page, Paged, PageQuery, Text, keyset, operation

EventName = Literal[
    "message.status",
    "message.replied",
    "contact.opted_out",
    "campaign.completed",
    "import.completed",
]
TAG = "Webhooks"


class EndpointIn(Input):
    name: Annotated[Text, Field(min_length=1, max_length=endpoints.MAX_NAME)]
    url: Annotated[Text, Field(min_length=1, max_length=endpoints.MAX_URL)] = Field(
        description="http(s) address that receives the events; no user:password in it. "
        "Redirects are not followed."
    )
    events: list[EventName] = Field(min_length=1, max_length=5, description="Events to send.")
    active: bool = Field(True, description="False: nothing is sent to it.")


class EndpointCreate(EndpointIn):
    secret: Annotated[Text, Field(max_length=200)] = Field(
        "", description="A signing secret of your own (16 to 200 characters); empty: one is made."
    )


class SecretIn(Input):
    secret: Annotated[Text, Field(max_length=200)] = Field(
        "", description="A signing secret of your own (16 to 200 characters); empty: one is made."
    )


class EndpointOut(Output):
    id: int
    name: str
    url: str
    events: list[str]
    active: bool
    secret_hint: str = Field(description="The signing secret's last four characters.")
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="The signing secret in full: shown in this answer only.")


class TestOut(Output):
    event_id: str = Field(description="The test event's id, as the receiver sees it.")


class DeliveryOut(Output):
    id: int
    event_id: str = Field(description="The event's id (the same on a retry): dedupe on it.")
    event: str
    status: str = Field(description="pending (waiting or retrying), delivered or failed.")
    attempts: int
    last_code: int | None = Field(description="The endpoint's last answer code; null: none.")
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime
    delivered_at: datetime | None


def _out(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    values = {
        "id": endpoint.id,
        "name": endpoint.name,
        "url": endpoint.url,
        "events": list(endpoint.events or []),
        "active": endpoint.active,
        "secret_hint": endpoint.secret_hint,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }
    return values | ({"secret": secret} if secret is not None else {})


@operation(
    "GET",
    "/webhook-endpoints",
    summary="List webhook endpoints",
    tag=TAG,
    role=Role.ADMIN,
    query=PageQuery,
    response=Page[EndpointOut],
)
def list_webhook_endpoints(call: Call, query: PageQuery) -> Paged:
    """Oldest first. Secrets are never listed, only their last four characters."""
    page = keyset(call.session, select(WebhookEndpoint), WebhookEndpoint.id, query)
    return Paged([_out(e) for e in page.rows], page.next_id)


@operation(
    "POST",
    "/webhook-endpoints",
    summary="Add a webhook endpoint",
    tag=TAG,
    role=Role.ADMIN,
    body=EndpointCreate,
    response=EndpointWithSecret,
    status=201,
)
def create_webhook_endpoint(call: Call, body: EndpointCreate) -> dict[str, Any]:
    """The answer holds the signing secret in full, this once; store it with the receiver."""
    endpoint, secret = endpoints.create(
        call.session,
        call.user,
        call.settings.secret_key,
        name=body.name,
        url=body.url,
        events_wanted=list(body.events),
        secret=body.secret,
        active=body.active,
    )
    return _out(endpoint, secret)


@operation(
    "GET",
    "/webhook-endpoints/{endpoint_id}",
    summary="Get a webhook endpoint",
    tag=TAG,
    role=Role.ADMIN,
    response=EndpointOut,
)
def get_webhook_endpoint(call: Call, endpoint_id: int) -> dict[str, Any]:
    return _out(endpoints.get(call.session, call.user, endpoint_id))


@operation(
    "PUT",
    "/webhook-endpoints/{endpoint_id}",
    summary="Change a webhook endpoint",
    tag=TAG,
    role=Role.ADMIN,
    body=EndpointIn,
    response=EndpointOut,
)
def update_webhook_endpoint(call: Call, endpoint_id: int, body: EndpointIn) -> dict[str, Any]:
    """Replaces its name, address, events and on/off state; the secret stays."""
    return _out(
        endpoints.update(
            call.session,
            call.user,
            endpoint_id,
            name=body.name,
            url=body.url,
            events_wanted=list(body.events),
            active=body.active,
        )
    )


@operation(
    "DELETE",
    "/webhook-endpoints/{endpoint_id}",
    summary="Delete a webhook endpoint",
    tag=TAG,
    role=Role.ADMIN,
    status=204,
)
def delete_webhook_endpoint(call: Call, endpoint_id: int) -> None:
    """With its delivery log; events waiting for it are dropped."""
    endpoints.delete(call.session, call.user, endpoint_id)


@operation(
    "POST",
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    summary="Give a webhook endpoint a new signing secret",
    tag=TAG,
    role=Role.ADMIN,
    body=SecretIn,
    response=EndpointWithSecret,
)
def rotate_webhook_secret(call: Call, endpoint_id: int, body: SecretIn) -> dict[str, Any]:
    """Deliveries are signed with the new secret at once; the answer holds it in full,
    this once."""
    secret = endpoints.rotate_secret(
        call.session, call.user, call.settings.secret_key, endpoint_id, body.secret
    )
    return _out(endpoints.get(call.session, call.user, endpoint_id), secret)


@operation(
    "POST",
    "/webhook-endpoints/{endpoint_id}/test",
    summary="Send a test event to a webhook endpoint",
    tag=TAG,
    role=Role.ADMIN,
    response=TestOut,
    status=202,
)
def test_webhook_endpoint(call: Call, endpoint_id: int) -> Answer:
    """Queues a `webhook.test` event for this endpoint alone; its delivery shows in the
    endpoint's deliveries within seconds."""
    event_id = endpoints.send_test(call.session, call.user, endpoint_id, utcnow())
    return Answer({"event_id": event_id}, 202)


@operation(
    "GET",
    "/webhook-endpoints/{endpoint_id}/deliveries",
    summary="List a webhook endpoint's deliveries",
    tag=TAG,
    role=Role.ADMIN,
    query=PageQuery,
    response=Page[DeliveryOut],
)
def list_webhook_deliveries(call: Call, endpoint_id: int, query: PageQuery) -> Paged:
    """Newest first."""
    endpoints.get(call.session, call.user, endpoint_id)
    rows = select(OutboxEvent).where(OutboxEvent.endpoint_id == endpoint_id)
    return keyset(call.session, rows, OutboxEvent.id, query, newest_first=True)
