"""Senders over the API: read-only status (adding and linking stay on the Senders page)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Literal

from pydantic import Field

from ...models import Sender
from ...senders import service as senders
from ...senders.queries import senders_by_name
from ..helpers import shown_reason
from .registry import Call, Output, Page, Paged, PageQuery, keyset, operation


class SenderOut(Output):
    """A sending account; its channel settings (profiles, tokens) are never shown."""

    id: int
    name: str
    channel: Literal["whatsapp_web", "cloud_api", "dry_run"]
    state: Literal["linked", "needs_link", "in_use", "browser_failed", "disabled"] = Field(
        description="Only `linked` senders send."
    )
    state_reason: str | None
    phone: str | None = Field(description="The account's own number, once known.")
    timezone: str
    min_delay_seconds: float
    max_delay_seconds: float
    daily_cap: int | None
    active_from: str | None = Field(description="Recipient's local time, HH:MM.")
    active_until: str | None
    break_every: int | None
    break_seconds: int | None
    created_at: datetime
    updated_at: datetime


def _out(sender: Sender) -> dict[str, Any]:
    data = {f: getattr(sender, f) for f in SenderOut.model_fields}
    data["channel"], data["state"] = sender.channel.value, sender.state.value
    data["state_reason"] = shown_reason(sender.state_reason)  # server details to admins only
    for key in ("active_from", "active_until"):
        value: time | None = data[key]
        data[key] = value.strftime("%H:%M") if value else None
    return data


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
