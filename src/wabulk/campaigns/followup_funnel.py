"""Each follow-up's funnel, for the campaign page and the API.

- Sent, delivered, read, replied and failed come from the step campaign's maintained
  counters (sent counts every message that went out, as the campaign funnel does).
- Skipped is split by why: "stopped: replied", "opted out", and anything else.
- Waiting: recipients of the previous message who will get this step once its wait is
  over, unless they reply or opt out first (one count over the previous campaign).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..dispatch.queue import REPLIED
from ..models import Campaign, CampaignStep, Message, MessageStatus, StepCondition, Template
from ..words import said
from . import followups

S = MessageStatus


@dataclass(frozen=True)
class StepFunnel:
    step_id: int
    position: int
    delay_minutes: int
    condition: StepCondition
    template_id: int | None
    body: str
    media_id: int | None
    template_name: str | None
    run_campaign_id: int | None
    status: str | None  # the step campaign's status; None before launch
    recipients: int = 0
    queued: int = 0  # due, on their way (queued or being sent)
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    failed: int = 0
    skipped: int = 0
    stopped_replied: int = 0
    opted_out: int = 0
    waiting: int = 0

    @property
    def when(self) -> str:
        return said(
            "%(detail)s after the previous message",
            detail=followups.describe_delay(self.delay_minutes),
        )

    @property
    def who(self) -> str:
        return said("To those %(what)s", what=followups.CONDITION_WORDS[self.condition])


def _skips(session: Session, campaign_id: int) -> dict[str | None, int]:
    """Skipped messages by code (the claim's index: campaign, status)."""
    rows = session.execute(
        select(Message.error_code, func.count())
        .where(Message.campaign_id == campaign_id, Message.status == S.SKIPPED)
        .group_by(Message.error_code)
    ).all()
    return {code: n for code, n in rows}


def step_funnels(session: Session, campaign_id: int, now: datetime) -> list[StepFunnel]:
    """The follow-ups of a first campaign with their numbers so far (zeros before launch)."""
    steps: list[CampaignStep] = followups.steps_of(session, campaign_id)
    names = {}
    ids = {s.template_id for s in steps if s.template_id}
    if ids:
        names = dict(
            session.execute(select(Template.id, Template.name).where(Template.id.in_(ids))).all()
        )
    out = []
    for step in steps:
        base = {
            "step_id": step.id,
            "position": step.position,
            "delay_minutes": step.delay_minutes,
            "condition": step.condition,
            "template_id": step.template_id,
            "body": step.body,
            "media_id": step.media_id,
            "template_name": names.get(step.template_id) if step.template_id else None,
            "run_campaign_id": step.run_campaign_id,
            "status": None,
        }
        run = session.get(Campaign, step.run_campaign_id) if step.run_campaign_id else None
        if run is None:
            out.append(StepFunnel(**base))  # type: ignore[arg-type]
            continue
        skips = _skips(session, run.id) if run.n_skipped else {}
        base["status"] = run.status.value
        out.append(
            StepFunnel(
                **base,  # type: ignore[arg-type]
                recipients=run.total,
                queued=run.n_queued + run.n_sending,
                sent=run.n_sent + run.n_delivered + run.n_read,
                delivered=run.n_delivered + run.n_read,
                read=run.n_read,
                replied=run.n_replied,
                failed=run.n_failed,
                skipped=run.n_skipped,
                stopped_replied=skips.get(REPLIED, 0),
                opted_out=skips.get("opted_out", 0),
                waiting=followups.not_yet_due(session, run, now),
            )
        )
    return out
