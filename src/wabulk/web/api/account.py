"""Who is calling, and the dashboard's headline numbers."""

from __future__ import annotations

from typing import Literal

from ...analytics.summary import dashboard_summary
from .registry import Call, Output, operation


class MeOut(Output):
    id: int
    email: str
    role: Literal["viewer", "operator", "admin"]
    timezone: str | None


class SummaryOut(Output):
    contacts: int
    opted_out: int
    lists: int
    campaigns: int
    running: int
    scheduled: int
    sent: int
    delivered: int
    read: int
    failed: int
    senders: int
    senders_linked: int


@operation("GET", "/me", summary="The token's user", tag="Account", response=MeOut)
def me(call: Call) -> MeOut:
    """Its role decides what the token may do."""
    user = call.user
    return MeOut(id=user.id, email=user.email, role=user.role.value, timezone=user.timezone)


@operation("GET", "/summary", summary="Headline numbers", tag="Analytics", response=SummaryOut)
def summary(call: Call) -> object:
    """Contacts, lists, campaigns, messages and senders, from maintained counters."""
    return dashboard_summary(call.session)
