"""Replies over the API: what customers wrote back, per campaign and per contact.

Keyset pages, newest first, like every other list. A reply that opted its sender out says
so (`opted_out`); the opt-out itself is on the contact.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from ...campaigns import funnel, lifecycle
from ...contacts.service import get_contact
from ...models import Inbound
from .registry import Call, Output, Page, Paged, PageQuery, keyset, operation


class ReplyOut(Output):
    id: int
    contact_id: int | None = Field(description="Null when no contact matched the sender.")
    campaign_id: int | None = Field(description="The campaign whose message it answers.")
    message_id: int | None = Field(description="The campaign message it answers.")
    phone: str | None = Field(description="Null when WhatsApp gave only a user id.")
    kind: str = Field(description="text, button, image, …")
    body: str | None
    payload: str | None = Field(description="The quick-reply button's payload, when tapped.")
    opted_out: bool = Field(description="This reply opted the contact out (STOP or a button).")
    received_at: datetime


@operation(
    "GET",
    "/campaigns/{campaign_id}/replies",
    summary="List a campaign's replies",
    tag="Campaigns",
    query=PageQuery,
    response=Page[ReplyOut],
)
def list_campaign_replies(call: Call, campaign_id: int, query: PageQuery) -> Paged:
    """What customers answered to this campaign's messages, newest first."""
    lifecycle.get_campaign(call.session, campaign_id)
    return keyset(
        call.session, funnel.replies_of_campaign(campaign_id), Inbound.id, query, newest_first=True
    )


@operation(
    "GET",
    "/contacts/{contact_id}/replies",
    summary="List a contact's replies",
    tag="Contacts",
    query=PageQuery,
    response=Page[ReplyOut],
)
def list_contact_replies(call: Call, contact_id: int, query: PageQuery) -> Paged:
    """Everything the contact wrote to your senders, newest first, whether or not it
    answers a campaign."""
    get_contact(call.session, contact_id)
    return keyset(
        call.session, funnel.replies_of_contact(contact_id), Inbound.id, query, newest_first=True
    )
