"""Follow-ups over the API: a draft's steps, set all at once, and each step's funnel.

The same rules as the campaign page's Follow-ups section (`campaigns.followups`): steps
change only on a draft; at launch each becomes a campaign of its own (`run_campaign_id`,
readable with GET /campaigns/{id}).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...campaigns import followup_funnel, followups, lifecycle
from ...campaigns.followups import BODY_MAX, MAX_DELAY_MINUTES, MAX_STEPS, StepInput
from ...models import Role, utcnow
from .registry import Call, Id, Input, Output, Text, operation

Condition = Literal["not_replied", "not_read", "everyone"]
# The service names a step's wait `delay`; the API calls it `delay_minutes`.
FIELDS = {f"steps.{i}.delay": f"steps.{i}.delay_minutes" for i in range(MAX_STEPS)}


class StepIn(Input):
    delay_minutes: int = Field(
        ge=1,
        le=MAX_DELAY_MINUTES,
        description="Wait after the recipient's own previous message, in minutes.",
        examples=[2880],
    )
    condition: Condition = Field(
        "not_replied",
        description="Who gets it: those who have not replied (to any message of the "
        "campaign), those who have not read the previous one (nor replied), or everyone "
        "who got the previous one. Never anyone who opted out.",
    )
    template_id: Id | None = Field(None, description="A template; its text is used.")
    body: Text = Field("", max_length=BODY_MAX, description="The text, when no template.")
    media_id: Id | None = None


class StepsIn(Input):
    steps: list[StepIn] = Field(max_length=MAX_STEPS, description="In order; empty removes all.")


class StepOut(Output):
    position: int
    delay_minutes: int
    condition: Condition
    template_id: int | None
    body: str
    media_id: int | None
    run_campaign_id: int | None = Field(
        description="The step's own campaign, made at launch; null before."
    )
    status: str | None = Field(description="The step campaign's status; null before launch.")
    recipients: int = Field(description="Customers added to the step so far.")
    waiting: int = Field(description="Customers whose wait is not over yet.")
    queued: int = Field(description="Due and on their way.")
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    skipped: int
    stopped_replied: int = Field(description="Skipped: replied between being due and the send.")
    opted_out: int = Field(description="Skipped: opted out between being due and the send.")


class StepsOut(Output):
    campaign_id: int
    steps: list[StepOut]


def _out(call: Call, campaign_id: int) -> StepsOut:
    lifecycle.get_campaign(call.session, campaign_id)  # 404 for a campaign that is not there
    funnels = followup_funnel.step_funnels(call.session, campaign_id, utcnow())
    return StepsOut(
        campaign_id=campaign_id,
        steps=[
            StepOut(
                position=f.position,
                delay_minutes=f.delay_minutes,
                condition=f.condition.value,  # type: ignore[arg-type]
                template_id=f.template_id,
                body=f.body,
                media_id=f.media_id,
                run_campaign_id=f.run_campaign_id,
                status=f.status,
                recipients=f.recipients,
                waiting=f.waiting,
                queued=f.queued,
                sent=f.sent,
                delivered=f.delivered,
                read=f.read,
                replied=f.replied,
                failed=f.failed,
                skipped=f.skipped,
                stopped_replied=f.stopped_replied,
                opted_out=f.opted_out,
            )
            for f in funnels
        ],
    )


@operation(
    "GET",
    "/campaigns/{campaign_id}/steps",
    summary="List a campaign's follow-ups with their funnels",
    tag="Campaigns",
    response=StepsOut,
)
def list_steps(call: Call, campaign_id: int) -> StepsOut:
    """Each follow-up's wait, condition and message; once launched, its numbers so far."""
    return _out(call, campaign_id)


@operation(
    "PUT",
    "/campaigns/{campaign_id}/steps",
    summary="Set a draft's follow-ups",
    tag="Campaigns",
    role=Role.OPERATOR,
    body=StepsIn,
    response=StepsOut,
    renames=FIELDS,
)
def set_steps(call: Call, campaign_id: int, body: StepsIn) -> StepsOut:
    """Replaces every follow-up of a draft (409 once launched). Each is sent, per customer,
    the given minutes after their previous message of the campaign, at the senders' pace
    and active hours, and stops for whoever replied or opted out in between."""
    followups.set_steps(
        call.session,
        call.user,
        campaign_id,
        [
            StepInput(s.delay_minutes, s.condition, s.template_id, s.body, s.media_id)
            for s in body.steps
        ],
    )
    call.session.flush()
    return _out(call, campaign_id)
