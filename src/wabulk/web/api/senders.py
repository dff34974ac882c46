"""Senders over the API: every sender's state; Cloud API senders are added, changed,
checked and have their templates synced here as on their page.

- Secrets (access token, app secret, verify token) are accepted on write and never
  answered: a sender shows only their last four characters, as `hints`.
- WhatsApp Web and dry-run senders are added on the Senders page (one needs a QR code).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from ...config import LABEL
from ...errors import ValidationError
from ...models import Channel, CloudTemplate, Role, Sender
from ...senders import cloud, cloud_input
from ...senders import service as senders
from ...senders.queries import senders_by_name
from ...words import said
from ..helpers import shown_reason
from .registry import Call, Input, Output, Page, Paged, PageQuery, Text, keyset, operation

State = Literal["linked", "needs_link", "in_use", "browser_failed", "limited", "disabled"]
Digits = Annotated[str, Field(pattern=r"^[0-9]{1,30}$", examples=["106540352242922"])]
Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["09:00"])]
TTL_LO, TTL_HI = cloud_input.TTL_RANGE
# One label, as `wabulk worker --label` takes them.
WorkerLabel = Annotated[str, Field(pattern=LABEL.pattern, examples=["shop-pc"])]


class CloudOut(Output):
    """A Cloud API sender's settings and what Meta last said; secrets only as hints."""

    phone_number_id: str
    waba_id: str
    api_version: str
    use_marketing_messages: bool
    marketing_ttl_seconds: int | None
    hints: dict[str, str] = Field(
        description="The last four characters of each saved secret (access_token, "
        "app_secret, verify_token); the secrets themselves are never answered."
    )
    display_name: str | None
    display_phone: str | None
    quality_rating: str | None = Field(description="GREEN, YELLOW or RED, as Meta rates it.")
    throughput_level: str | None
    messaging_tier: str | None = Field(description="For example TIER_250 or TIER_UNLIMITED.")
    messaging_limit: int | None = Field(
        description="Customers a rolling day the tier allows; null: no limit."
    )
    checked_at: datetime | None = Field(description="When the connection was last checked.")
    problem: str | None = Field(description="What the last failed check said.")
    templates_synced_at: datetime | None


class SenderOut(Output):
    """A sending account; its channel settings (profiles, tokens) are never shown."""

    id: int
    name: str
    channel: Literal["whatsapp_web", "cloud_api", "dry_run"]
    state: State = Field(description="Only `linked` senders send.")
    state_reason: str | None
    phone: str | None = Field(description="The account's own number, once known.")
    timezone: str
    min_delay_seconds: float
    max_delay_seconds: float
    max_per_second: float | None = Field(description="Cloud API: messages a second at most.")
    daily_cap: int | None
    active_from: str | None = Field(description="Recipient's local time, HH:MM.")
    active_until: str | None
    break_every: int | None
    break_seconds: int | None
    limited_until: datetime | None = Field(
        description="A `limited` sender goes back into rotation by itself at this time."
    )
    worker_label: str | None = Field(
        description="Only workers carrying this label send for it; null: any worker."
    )
    cloud_api: CloudOut | None = Field(description="Cloud API senders only.")
    created_at: datetime
    updated_at: datetime


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _cloud(sender: Sender) -> dict[str, Any] | None:
    if sender.channel != Channel.CLOUD_API:
        return None
    settings, health = sender.settings or {}, sender.health or {}
    return {
        "phone_number_id": str(settings.get("phone_number_id") or ""),
        "waba_id": str(settings.get("waba_id") or ""),
        "api_version": str(settings.get("api_version") or ""),
        "use_marketing_messages": bool(settings.get("use_marketing_messages")),
        "marketing_ttl_seconds": settings.get("marketing_ttl_seconds"),
        "hints": {k: str(v) for k, v in (settings.get("hints") or {}).items()},
        "display_name": health.get("display_name") or None,
        "display_phone": health.get("display_phone") or None,
        "quality_rating": health.get("quality_rating") or None,
        "throughput_level": health.get("throughput_level") or None,
        "messaging_tier": health.get("messaging_tier") or None,
        "messaging_limit": cloud.messaging_tier_limit(health),
        "checked_at": _when(health.get("checked_at")),
        "problem": health.get("problem") or None,
        "templates_synced_at": _when(health.get("templates_synced_at")),
    }


def _out(sender: Sender) -> dict[str, Any]:
    data = {f: getattr(sender, f) for f in SenderOut.model_fields if f != "cloud_api"}
    data["channel"], data["state"] = sender.channel.value, sender.state.value
    data["state_reason"] = shown_reason(sender.state_reason)  # server details to admins only
    for key in ("active_from", "active_until"):
        value: time | None = data[key]
        data[key] = value.strftime("%H:%M") if value else None
    data["cloud_api"] = _cloud(sender)
    return data


class _CloudFields(Input):
    name: Annotated[Text, Field(min_length=1, max_length=100)]
    timezone: Annotated[Text, Field(max_length=64)] = Field(
        "UTC", description="The account's own: its daily cap (if any) resets at its midnight."
    )
    phone_number_id: Digits = Field(description="Meta's id of the number (not the number).")
    waba_id: Digits = Field(description="The WhatsApp Business Account id.")
    api_version: Annotated[str, Field(pattern=r"^v[0-9]{1,3}\.[0-9]{1,2}$")] | None = Field(
        None, description="Graph API version; null: the installation's default (v26.0)."
    )
    use_marketing_messages: bool = Field(
        False, description="Send marketing templates through the Marketing Messages API."
    )
    marketing_ttl_seconds: Annotated[int, Field(ge=TTL_LO, le=TTL_HI)] | None = Field(
        None, description="How long Meta keeps trying a marketing message; null: its default."
    )
    max_per_second: Annotated[float, Field(gt=0, le=cloud_input.MAX_RATE)] | None = Field(
        None, description="Messages a second at most; null: Meta's default of 80."
    )
    daily_cap: Annotated[int, Field(ge=1, le=10_000_000)] | None = Field(
        None, description="Usually null: Meta's messaging limit is the budget."
    )
    active_from: Clock | None = Field(None, description="Recipient's local time; both or none.")
    active_until: Clock | None = None
    worker_label: WorkerLabel | None = Field(
        None,
        description="Only workers started with this label (`wabulk worker --label`) send for "
        "this sender; null: any worker.",
    )


Secret = Annotated[Text, Field(min_length=1, max_length=4096)]
VerifyToken = Annotated[Text, Field(min_length=8, max_length=200)]


class CloudSenderIn(_CloudFields):
    """A new Cloud API sender; it can send once a connection check succeeds."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Shop (Cloud API)",
                    "phone_number_id": "106540352242922",
                    "waba_id": "102290129340398",
                    "access_token": "EAAG…",
                    "app_secret": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                    "verify_token": "a-long-random-string",
                }
            ]
        }
    )

    access_token: Secret = Field(description="Write only: never answered.")
    app_secret: Secret = Field(description="Write only: checks webhook signatures.")
    verify_token: VerifyToken = Field(description="Write only: Meta's webhook verify token.")


class CloudSenderUpdate(_CloudFields):
    """A Cloud API sender's settings, replaced; a secret left out or null keeps the saved one."""

    access_token: Secret | None = None
    app_secret: Secret | None = None
    verify_token: VerifyToken | None = None


class ConnectionOut(Output):
    ok: bool
    problem: str | None = Field(description="What is wrong, in one sentence, when not ok.")
    sender: SenderOut


class SyncOut(Output):
    ok: bool
    added: int
    updated: int
    removed: int = Field(description="Templates gone from the account (kept, marked DELETED).")
    problem: str | None


class SyncedTemplateOut(Output):
    id: int
    name: str
    language: str
    category: str
    status: str = Field(description="Meta's: APPROVED, PENDING, REJECTED, PAUSED, DELETED …")
    quality: str | None
    parameter_format: Literal["positional", "named"]
    components: list[dict[str, Any]]
    synced_at: datetime


def _input(body: _CloudFields) -> senders.SenderInput:
    settings: dict[str, Any] = {
        "phone_number_id": body.phone_number_id,
        "waba_id": body.waba_id,
        "api_version": body.api_version or "",
        "use_marketing_messages": body.use_marketing_messages,
        "marketing_ttl_seconds": body.marketing_ttl_seconds,
    }
    for key in ("access_token", "app_secret", "verify_token"):
        settings[key] = getattr(body, key) or ""
    pacing = {
        "daily_cap": body.daily_cap,
        "active_from": body.active_from,
        "active_until": body.active_until,
    }
    return senders.SenderInput(
        name=body.name,
        channel=Channel.CLOUD_API.value,
        timezone=body.timezone,
        pacing={k: v for k, v in pacing.items() if v is not None},
        settings=settings,
        max_per_second=body.max_per_second,
        worker_label=body.worker_label,
    )


def _keys(call: Call) -> senders.Keys:
    return senders.Keys(call.settings.secret_key, call.settings.cloud_api_version)


def _cloud_sender(call: Call, sender_id: int) -> Sender:
    sender = senders.get_sender(call.session, sender_id)
    if sender.channel != Channel.CLOUD_API:
        raise ValidationError(
            said(
                "%(sender)s is not a Cloud API sender: change it on the Senders page.",
                sender=sender.name,
            )
        )
    return sender


@operation(
    "GET",
    "/senders",
    summary="List senders and their state",
    tag="Senders",
    query=PageQuery,
    response=Page[SenderOut],
)
def list_senders(call: Call, query: PageQuery) -> Paged:
    """Oldest first."""
    page = keyset(call.session, senders_by_name(), Sender.id, query)
    return Paged([_out(s) for s in page.rows], page.next_id)


@operation(
    "GET", "/senders/{sender_id}", summary="Get a sender's state", tag="Senders", response=SenderOut
)
def get_sender(call: Call, sender_id: int) -> dict[str, Any]:
    return _out(senders.get_sender(call.session, sender_id))


@operation(
    "POST",
    "/senders",
    summary="Add a Cloud API sender",
    tag="Senders",
    role=Role.ADMIN,
    body=CloudSenderIn,
    response=SenderOut,
    status=201,
)
def create_cloud_sender(call: Call, body: CloudSenderIn) -> dict[str, Any]:
    """It starts as `needs_link`; check its connection to start sending. A phone-number id
    another sender uses is refused (422)."""
    sender = senders.create_sender(call.session, call.user, _input(body), _keys(call))
    call.session.flush()
    return _out(sender)


@operation(
    "PUT",
    "/senders/{sender_id}",
    summary="Change a Cloud API sender",
    tag="Senders",
    role=Role.ADMIN,
    body=CloudSenderUpdate,
    response=SenderOut,
)
def update_cloud_sender(call: Call, sender_id: int, body: CloudSenderUpdate) -> dict[str, Any]:
    """Replaces its settings. A new number, account id or access token needs a new
    connection check before it sends again."""
    _cloud_sender(call, sender_id)
    sender = senders.update_sender(call.session, call.user, sender_id, _input(body), _keys(call))
    call.session.flush()
    return _out(sender)


@operation(
    "POST",
    "/senders/{sender_id}/check-connection",
    summary="Check a Cloud API sender's connection",
    tag="Senders",
    role=Role.ADMIN,
    response=ConnectionOut,
)
def check_connection(call: Call, sender_id: int) -> dict[str, Any]:
    """Asks Meta for the number's name, quality rating, throughput and messaging limit. A
    failure is answered with `ok: false` and the sentence, and kept as the sender's reason."""
    sender = _cloud_sender(call, sender_id)
    result = cloud.check_connection(
        call.session, sender, call.settings.secret_key, call.settings.channel_options(), call.user
    )
    call.session.flush()
    return {"ok": result.ok, "problem": result.problem, "sender": _out(sender)}


@operation(
    "POST",
    "/senders/{sender_id}/sync-templates",
    summary="Sync a Cloud API sender's templates",
    tag="Senders",
    role=Role.OPERATOR,
    response=SyncOut,
)
def sync_templates(call: Call, sender_id: int) -> dict[str, Any]:
    """Reads every template of the account from Meta. Also done every hour for linked
    senders."""
    sender = _cloud_sender(call, sender_id)
    result = cloud.sync_templates(
        call.session, sender, call.settings.secret_key, call.settings.channel_options(), call.user
    )
    return {
        "ok": result.ok,
        "added": result.added,
        "updated": result.updated,
        "removed": result.removed,
        "problem": result.problem,
    }


@operation(
    "GET",
    "/senders/{sender_id}/templates",
    summary="List a Cloud API sender's synced templates",
    tag="Senders",
    query=PageQuery,
    response=Page[SyncedTemplateOut],
)
def list_sender_templates(call: Call, sender_id: int, query: PageQuery) -> Paged:
    """As of the last sync, oldest first; only `APPROVED` ones can be sent."""
    sender = _cloud_sender(call, sender_id)
    return keyset(call.session, cloud.templates_of(sender.id), CloudTemplate.id, query)


@operation(
    "POST",
    "/senders/{sender_id}/resume",
    summary="Resume a limited sender",
    tag="Senders",
    role=Role.ADMIN,
    response=SenderOut,
)
def resume_sender(call: Call, sender_id: int) -> dict[str, Any]:
    """Puts a `limited` sender back in rotation before its cool-down ends; any other state
    is refused (409)."""
    return _out(senders.resume(call.session, call.user, sender_id))
