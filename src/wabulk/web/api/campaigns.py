"""Campaigns over the API: drafts, the lifecycle moves, progress and recipients.

Every move goes through `campaigns.lifecycle`, like the buttons of the campaign page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field
from sqlalchemy.orm import Session

from ...campaigns import funnel as funnels
from ...campaigns import lifecycle
from ...campaigns import service as campaigns
from ...campaigns.queries import campaigns_newest_first
from ...models import Campaign, Role, User
from ...words import N_
from ..helpers import shown_text
from .registry import (
    Call,
    Id,
    Input,
    Output,
    Page,
    Paged,
    PageQuery,
    Text,
    keyset,
    operation,
)

Status = Literal["draft", "scheduled", "running", "paused", "completed", "cancelled"]
MessageState = Literal[
    "queued", "sending", "sent", "delivered", "read", "failed", "skipped", "unknown"
]
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["09:00"])]


def _in_range(value: datetime) -> datetime:
    # Far-off years overflow once moved to UTC or into an estimated finish; nobody schedules
    # a campaign for year 1 or 9000.
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not 2000 <= utc.year <= 2100:
        raise ValueError(N_("must be a time between the years 2000 and 2100"))
    return utc


class PacingIn(Input):
    """Overrides of the senders' pacing for this campaign; left out: the sender's own."""

    min_delay_seconds: float | None = Field(None, ge=0, le=86_400)
    max_delay_seconds: float | None = Field(None, ge=0, le=86_400)
    daily_cap: int | None = Field(None, ge=1, le=1_000_000)
    active_from: HHMM | None = Field(None, description="Recipient's local time, HH:MM.")
    active_until: HHMM | None = None
    break_every: int | None = Field(None, ge=1, le=1_000_000)
    break_seconds: float | None = Field(None, ge=0, le=86_400)


class CampaignIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Diwali offer",
                    "list_ids": [1],
                    "sender_ids": [1],
                    "template_id": 1,
                    "scheduled_at": "2030-10-20T09:00:00+05:30",
                    "pacing": {"daily_cap": 200},
                }
            ]
        }
    )

    name: Annotated[Text, Field(min_length=1, max_length=200)]
    list_ids: list[Id] = Field(default_factory=list, max_length=100)
    segment_id: Id | None = Field(
        None, description="Send to this saved segment instead of lists (leave list_ids empty)."
    )
    sender_ids: list[Id] = Field(default_factory=list, max_length=100)
    template_id: Id | None = Field(None, description="Send this template's text (and file).")
    body: Annotated[Text, Field(max_length=4096)] = Field(
        "", description="Or this text, when no template is chosen."
    )
    media_id: Id | None = None
    scheduled_at: Annotated[AwareDatetime, AfterValidator(_in_range)] | None = Field(
        None, description="Start time with its offset; left out: as soon as launched."
    )
    ends_at: Annotated[AwareDatetime, AfterValidator(_in_range)] | None = Field(
        None,
        description="Finish by, with its offset: a campaign still sending then pauses, "
        "saying so, with nothing skipped. Left out: no end.",
    )
    pacing: PacingIn = Field(default_factory=PacingIn)
    max_attempts: int = Field(3, ge=1, le=campaigns.MAX_ATTEMPTS)
    retry_seconds: int = Field(campaigns.DEFAULT_RETRY_SECONDS, ge=1, le=86_400)
    text_before_document: bool = False


class Counts(Output):
    queued: int
    sending: int
    sent: int
    delivered: int
    read: int
    failed: int
    skipped: int
    unknown: int


class FunnelOut(Output):
    sent: int = Field(description="Messages sent: still sent, delivered or read.")
    delivered: int = Field(description="Delivered or read.")
    read: int
    replied: int = Field(description="Messages a customer answered.")
    failed: int
    limited: int = Field(
        description="Of the failed, those Meta held back because the customer reached "
        "WhatsApp's daily limit of marketing messages from businesses (error 131049)."
    )
    billed: dict[str, int] = Field(
        description="Messages Meta billed, per pricing category as Meta names it "
        "(marketing, utility, authentication, service, marketing_lite, …).",
        examples=[{"marketing": 120, "utility": 4}],
    )


class CampaignSummary(Output):
    id: int
    name: str
    status: Status
    status_reason: str | None
    held_reason: str | None = Field(
        description="Why a running campaign waits although it has messages left: Meta's "
        "daily limit of customers for the sender's WhatsApp account is reached. "
        "Null when nothing holds it back."
    )
    held_until: datetime | None = Field(
        description="About when sending resumes by itself while held; null when not held."
    )
    total: int
    counts: Counts
    replied: int
    funnel: FunnelOut
    created_at: datetime
    launched_at: datetime | None
    finished_at: datetime | None


class CampaignOut(CampaignSummary):
    template_id: int | None
    body: str = Field(description="Frozen at launch; a draft on a template shows ''.")
    media_id: int | None
    scheduled_at: datetime | None
    ends_at: datetime | None = Field(description="Finish by; null: no end.")
    list_ids: list[int]
    segment_id: int | None = Field(description="The saved segment it sends to, if any.")
    audience_terms: dict[str, Any] | None = Field(
        description="The segment's conditions as they were at launch (null for lists)."
    )
    sender_ids: list[int]
    pacing: dict[str, Any]
    max_attempts: int
    text_before_document: bool
    done: int = Field(description="Recipients settled one way or the other.")
    percent: float
    eta: datetime | None = Field(description="Estimated finish while scheduled or running.")
    actions: list[str] = Field(description="The moves allowed now, e.g. pause, cancel.")


# The wizard's field names, as the service reports them, → this API's.
FIELDS = {"lists": "list_ids", "senders": "sender_ids", "segment": "segment_id"}


def _counts(campaign: Campaign) -> dict[str, int]:
    return {
        k: getattr(campaign, f"n_{k}")
        for k in MessageState.__args__  # type: ignore[attr-defined]
    }


def _summary(campaign: Campaign, funnel: funnels.Funnel) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status.value,
        "status_reason": shown_text(campaign.status_reason),  # server paths to admins only
        "held_reason": campaign.held_reason,
        "held_until": campaign.held_until if campaign.held_reason else None,
        "total": campaign.total,
        "counts": _counts(campaign),
        "replied": campaign.n_replied,
        "funnel": funnel.as_dict(),
        "created_at": campaign.created_at,
        "launched_at": campaign.launched_at,
        "finished_at": campaign.finished_at,
    }


def _detail(session: Session, campaign: Campaign) -> CampaignOut:
    progress = campaigns.progress(session, campaign)
    return CampaignOut.model_validate(
        {
            **_summary(campaign, funnels.funnel(session, campaign)),
            "template_id": campaign.template_id,
            "body": campaign.body,
            "media_id": campaign.media_id,
            "scheduled_at": campaign.scheduled_at,
            "ends_at": campaign.ends_at,
            "list_ids": [lst.id for lst in campaign.lists],
            "segment_id": campaign.segment_id,
            "audience_terms": campaign.audience_terms,
            "sender_ids": [s.id for s in campaign.senders],
            "pacing": campaign.pacing or {},
            "max_attempts": campaign.max_attempts,
            "text_before_document": campaign.text_before_document,
            "done": progress.done,
            "percent": progress.percent,
            "eta": progress.eta,
            "actions": lifecycle.actions_for(campaign),
        }
    )


def _draft(body: CampaignIn) -> campaigns.DraftInput:
    return campaigns.DraftInput(
        name=body.name,
        list_ids=body.list_ids,
        segment_id=body.segment_id,
        sender_ids=body.sender_ids,
        template_id=body.template_id,
        body=body.body,
        media_id=body.media_id,
        scheduled_at=body.scheduled_at,
        ends_at=body.ends_at,
        pacing=body.pacing.model_dump(exclude_none=True),
        max_attempts=body.max_attempts,
        retry_seconds=body.retry_seconds,
        text_before_document=body.text_before_document,
    )


class CampaignQuery(PageQuery):
    pass


@operation(
    "GET",
    "/campaigns",
    summary="List campaigns",
    tag="Campaigns",
    query=CampaignQuery,
    response=Page[CampaignSummary],
)
def list_campaigns(call: Call, query: CampaignQuery) -> Paged:
    """Newest first, with their maintained counters."""
    page = keyset(call.session, campaigns_newest_first(), Campaign.id, query, newest_first=True)
    found = funnels.funnels(call.session, list(page.rows))
    return Paged([_summary(c, found[c.id]) for c in page.rows], page.next_id)


@operation(
    "GET",
    "/campaigns/{campaign_id}",
    summary="Get a campaign with its progress",
    tag="Campaigns",
    response=CampaignOut,
)
def get_campaign(call: Call, campaign_id: int) -> CampaignOut:
    return _detail(call.session, lifecycle.get_campaign(call.session, campaign_id))


@operation(
    "POST",
    "/campaigns",
    summary="Create a draft campaign",
    tag="Campaigns",
    role=Role.OPERATOR,
    body=CampaignIn,
    response=CampaignOut,
    status=201,
    renames=FIELDS,
)
def create_campaign(call: Call, body: CampaignIn) -> CampaignOut:
    """Nothing is sent until it is launched."""
    return _detail(call.session, campaigns.save_draft(call.session, call.user, _draft(body)))


@operation(
    "PUT",
    "/campaigns/{campaign_id}",
    summary="Replace a draft campaign",
    tag="Campaigns",
    role=Role.OPERATOR,
    body=CampaignIn,
    response=CampaignOut,
    renames=FIELDS,
)
def update_campaign(call: Call, campaign_id: int, body: CampaignIn) -> CampaignOut:
    """Only a draft changes (409 otherwise)."""
    campaign = campaigns.save_draft(call.session, call.user, _draft(body), campaign_id)
    return _detail(call.session, campaign)


@operation(
    "DELETE",
    "/campaigns/{campaign_id}",
    summary="Delete a draft campaign",
    tag="Campaigns",
    role=Role.OPERATOR,
    status=204,
)
def delete_campaign(call: Call, campaign_id: int) -> None:
    """Only a draft; cancel a launched campaign instead (409)."""
    lifecycle.delete_draft(call.session, call.user, campaign_id)


def _move(name: str, verb: Callable[[Session, User, int], object], doc: str) -> None:
    def handler(call: Call, campaign_id: int) -> CampaignOut:
        verb(call.session, call.user, campaign_id)
        return _detail(call.session, lifecycle.get_campaign(call.session, campaign_id))

    handler.__name__ = f"{name}_campaign"
    handler.__doc__ = doc
    operation(
        "POST",
        f"/campaigns/{{campaign_id}}/{name}",
        summary=f"{name.capitalize()} a campaign",
        tag="Campaigns",
        role=Role.OPERATOR,
        response=CampaignOut,
        renames=FIELDS,
    )(handler)


_move(
    "launch",
    lifecycle.launch,
    "Freeze the message and queue one message per recipient (opted-out contacts left out); "
    "it starts now, or at its start time. Refused (422) naming what is missing.",
)
_move("pause", lifecycle.pause, "Messages being sent finish; nothing new starts.")
_move("resume", lifecycle.resume, "Refused (409) when none of its senders can send.")
_move("cancel", lifecycle.cancel, "For good: every message not yet sent is skipped.")
_move(
    "retry",
    lifecycle.retry_failed,
    "Queue the failed and unknown messages of a finished campaign again.",
)


class FinishByIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ends_at": "2030-10-24T18:00:00+05:30"}]}
    )

    ends_at: Annotated[AwareDatetime, AfterValidator(_in_range)] | None = Field(
        description="The new finish-by time with its offset; null: no end."
    )


@operation(
    "PUT",
    "/campaigns/{campaign_id}/finish-by",
    summary="Move a launched campaign's finish-by time",
    tag="Campaigns",
    role=Role.OPERATOR,
    body=FinishByIn,
    response=CampaignOut,
    renames=FIELDS,
)
def set_finish_by(call: Call, campaign_id: int, body: FinishByIn) -> CampaignOut:
    """A scheduled, running or paused campaign; a campaign paused at its finish-by time
    resumes once it has a later one (or none). A draft's is set with PUT /campaigns/{id}."""
    campaign = lifecycle.set_finish_by(call.session, call.user, campaign_id, body.ends_at)
    return _detail(call.session, campaign)


class RecipientQuery(PageQuery):
    status: Literal[
        "all", "queued", "sending", "sent", "delivered", "read", "failed", "skipped", "unknown"
    ] = "all"


class RecipientOut(Output):
    id: int = Field(description="The message's id.")
    contact_id: int
    phone: str
    name: str | None
    status: MessageState
    attempts: int
    sender_id: int | None
    body: str | None = Field(description="The text as rendered for them (once claimed).")
    error_code: str | None
    error_detail: str | None = Field(description="What the failure means, in plain words.")
    billed_category: str | None = Field(
        description="What Meta billed this message as (its pricing category), once heard."
    )
    queued_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    replied_at: datetime | None


@operation(
    "GET",
    "/campaigns/{campaign_id}/recipients",
    summary="List a campaign's recipients",
    tag="Campaigns",
    query=RecipientQuery,
    response=Page[RecipientOut],
)
def list_recipients(call: Call, campaign_id: int, query: RecipientQuery) -> Paged:
    """One row per recipient with where their message stands, in the order queued."""
    lifecycle.get_campaign(call.session, campaign_id)
    rows, next_id = campaigns.recipients_page(
        call.session, campaign_id, query.status, query.after, query.limit
    )
    fields = [f for f in RecipientOut.model_fields if f not in ("name", "status", "phone")]
    out = [
        {
            **{f: getattr(message, f) for f in fields},
            "phone": message.phone,
            "name": name,
            "status": message.status.value,
        }
        for message, name in rows
    ]
    return Paged(out, next_id)
