"""Follow-ups of a campaign: the section on its page and the form of one step.

- The section (templates/campaigns/_followups.html) reads its numbers through
  `followups_of(campaign)`, given to every template, so the campaign page's own view is not
  touched.
- A step is added, changed or removed on its own; the draft's whole list goes to
  `followups.set_steps`, which checks every step. On a refusal the form is shown again
  with what was typed and the sentence next to its box.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from ...campaigns import followup_funnel, followups, lifecycle
from ...campaigns.followups import BODY_MAX, MAX_STEPS, StepInput
from ...campaigns.queries import templates_by_name
from ...errors import Conflict, DomainError, ValidationError
from ...models import Campaign, CampaignStatus, Role, StepCondition, utcnow
from ...words import N_, said
from .. import i18n
from ..form_state import FormState, optional_int
from ..helpers import db_session, id_value
from ..security import requires

bp = Blueprint("followups", __name__)

FIELDS = frozenset({"delay", "days", "hours", "condition", "template_id", "body"})
MAX_DAYS = followups.MAX_DELAY_MINUTES // 1440
CONDITIONS = [
    (StepCondition.NOT_REPLIED.value, _l("Those who have not replied")),
    (StepCondition.NOT_READ.value, _l("Those who have not read it (and not replied)")),
    (StepCondition.EVERYONE.value, _l("Everyone who got the previous message")),
]


@bp.app_context_processor
def _section() -> dict[str, Any]:
    return {"followups_of": followups_of}


def followups_of(campaign: Campaign) -> dict[str, Any]:
    """What the campaign page's Follow-ups section shows."""
    session = db_session()
    if campaign.parent_campaign_id is not None:
        first = session.get(Campaign, campaign.parent_campaign_id)
        position = next(
            (
                s.position
                for s in followups.steps_of(session, campaign.parent_campaign_id)
                if s.run_campaign_id == campaign.id
            ),
            None,
        )
        return {"first": first, "position": position, "steps": [], "max_steps": MAX_STEPS}
    steps = followup_funnel.step_funnels(session, campaign.id, utcnow())
    return {"first": None, "position": None, "steps": steps, "max_steps": MAX_STEPS}


def _input(step: Any) -> StepInput:
    return StepInput(
        delay_minutes=step.delay_minutes,
        condition=step.condition,
        template_id=step.template_id,
        body=step.body,
        media_id=step.media_id,
    )


def _draft(campaign_id: int) -> Campaign:
    campaign = lifecycle.get_campaign(db_session(), campaign_id)
    if campaign.status != CampaignStatus.DRAFT or campaign.parent_campaign_id is not None:
        raise Conflict(N_("Follow-ups can only be changed on a draft, before it is launched."))
    return campaign


def _values_of(step: Any | None) -> dict[str, Any]:
    if step is None:
        return {"days": 2, "hours": 0, "condition": StepCondition.NOT_REPLIED.value}
    days, rest = divmod(step.delay_minutes, 1440)
    return {
        "days": days,
        "hours": rest // 60,
        "condition": step.condition.value,
        "template_id": step.template_id,
        "body": step.body,
    }


def _render(campaign: Campaign, position: int | None, state: FormState, status: int = 200) -> Any:
    return render_template(
        "campaigns/followup_form.html",
        campaign=campaign,
        position=position,
        state=state,
        conditions=CONDITIONS,
        templates=db_session().scalars(templates_by_name()).all(),
        max_days=MAX_DAYS,
    ), status


def _back(campaign_id: int) -> Response:
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id) + "#followups")


def _step_at(campaign_id: int, position: int) -> Any:
    for step in followups.steps_of(db_session(), campaign_id):
        if step.position == position:
            return step
    return None


@bp.get("/campaigns/<int:campaign_id>/followups/new")
@requires(Role.OPERATOR)
def new(campaign_id: int) -> Any:
    try:
        campaign = _draft(campaign_id)
    except Conflict as exc:
        flash(str(exc), "warning")
        return _back(campaign_id)
    return _render(campaign, None, FormState(_values_of(None)))


@bp.get("/campaigns/<int:campaign_id>/followups/<int:position>")
@requires(Role.OPERATOR)
def edit(campaign_id: int, position: int) -> Any:
    try:
        campaign = _draft(campaign_id)
    except Conflict as exc:
        flash(str(exc), "warning")
        return _back(campaign_id)
    step = _step_at(campaign_id, position)
    if step is None:
        flash(_("There is no follow-up %(n)s any more.", n=position), "warning")
        return _back(campaign_id)
    return _render(campaign, position, FormState(_values_of(step)))


def _posted(state: FormState) -> StepInput:
    """The form's step; a ValidationError names the box of the first mistake."""
    form = request.form
    raw_body = form.get("body", "")
    body = raw_body[: BODY_MAX + 1]  # longer is refused by the service with its sentence
    state.values = {
        "days": form.get("days", "").strip()[:6],
        "hours": form.get("hours", "").strip()[:6],
        "condition": form.get("condition", "")[:20],
        "template_id": form.get("template_id", type=id_value),
        "body": body,
    }
    days = optional_int("days", N_("Days"), form={"days": state.values["days"]}) or 0
    hours = optional_int("hours", N_("Hours"), form={"hours": state.values["hours"]}) or 0
    if not 0 <= days <= MAX_DAYS:
        raise ValidationError(said("Days must be between 0 and %(n)s.", n=MAX_DAYS), field="days")
    if not 0 <= hours <= 23:
        raise ValidationError(N_("Hours must be between 0 and 23."), field="hours")
    if days == 0 and hours == 0:
        raise ValidationError(N_("Wait at least an hour before a follow-up."), field="hours")
    return StepInput(
        delay_minutes=days * 1440 + hours * 60,
        condition=state.values["condition"],
        template_id=state.values["template_id"],
        body=body,
    )


def _save(campaign_id: int, position: int | None, change: str) -> Any:
    session = db_session()
    state = FormState()
    try:
        campaign = _draft(campaign_id)
    except Conflict as exc:
        flash(str(exc), "warning")
        return _back(campaign_id)
    try:
        steps = [_input(s) for s in followups.steps_of(session, campaign_id)]
        index: int | None = None
        if change == "delete":
            assert position is not None
            steps = [s for i, s in enumerate(steps, start=1) if i != position]
        else:
            step = _posted(state)
            if position is None:
                steps.append(step)
                index = len(steps) - 1
            else:
                if not 1 <= position <= len(steps):
                    raise Conflict(said("There is no follow-up %(n)s any more.", n=position))
                steps[position - 1] = step
                index = position - 1
        followups.set_steps(session, current_user, campaign_id, steps)
    except DomainError as exc:
        session.rollback()
        if change == "delete" or not isinstance(exc, ValidationError):
            flash(str(exc), "danger")
            return _back(campaign_id)
        field = exc.field or ""
        parts = field.split(".", 2)
        if len(parts) == 3 and parts[0] == "steps":
            at, name = parts[1], parts[2]
            if str(index) != at:
                # Another step is wrong (a template deleted since): say which.
                flash(str(exc), "danger")
                return _render(campaign, position, state, 400)
            field = "hours" if name == "delay" else name
            # The box names the step already; the reader's words, first letter capital.
            words = i18n.translated(str(exc).split(": ", 1)[-1]) or ""
            exc = ValidationError(words[:1].upper() + words[1:], field=field)
        state.fail(exc, FIELDS)
        return _render(campaign, position, state, 400)
    session.commit()
    done = {
        "add": _("Follow-up added."),
        "edit": _("Follow-up saved."),
        "delete": _("Follow-up removed."),
    }
    flash(done[change], "success")
    return _back(campaign_id)


@bp.post("/campaigns/<int:campaign_id>/followups/new")
@requires(Role.OPERATOR)
def add(campaign_id: int) -> Any:
    return _save(campaign_id, None, "add")


@bp.post("/campaigns/<int:campaign_id>/followups/<int:position>")
@requires(Role.OPERATOR)
def update(campaign_id: int, position: int) -> Any:
    return _save(campaign_id, position, "edit")


@bp.post("/campaigns/<int:campaign_id>/followups/<int:position>/delete")
@requires(Role.OPERATOR)
def delete(campaign_id: int, position: int) -> Any:
    return _save(campaign_id, position, "delete")
