"""Campaigns: the wizard that writes a draft, and its live audience count."""

from __future__ import annotations

from flask import Response, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response as WResponse

from ...campaigns import audience, lifecycle
from ...campaigns import service as campaigns
from ...errors import DomainError
from ...models import Campaign, CampaignStatus, Role, Segment
from .. import campaign_form
from ..form_state import FormState, attachment
from ..helpers import db_session, id_value, id_values
from ..security import requires
from .page import bp


@bp.get("/new")
@requires(Role.OPERATOR)
def new() -> str:
    template_id = request.args.get("template_id", type=id_value)
    segment_id = request.args.get("segment_id", type=id_value)
    # Opened for a segment (its page, a retarget button): the campaign is named after it.
    segment = db_session().get(Segment, segment_id) if segment_id is not None else None
    values = campaign_form.new_values(template_id, segment_id, segment.name if segment else "")
    return _render_wizard(None, FormState(values))


@bp.post("/new")
@requires(Role.OPERATOR)
def create() -> WResponse | tuple[str, int]:
    return _save(None)


@bp.get("/<int:campaign_id>/edit")
@requires(Role.OPERATOR)
def edit(campaign_id: int) -> WResponse | str:
    campaign = lifecycle.get_campaign(db_session(), campaign_id)
    if campaign.status != CampaignStatus.DRAFT:
        flash(_("Only a draft can be edited; duplicate the campaign to change it."), "warning")
        return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    return _render_wizard(campaign, FormState(campaign_form.values_of(campaign)))


@bp.post("/<int:campaign_id>/edit")
@requires(Role.OPERATOR)
def update(campaign_id: int) -> WResponse | tuple[str, int]:
    lifecycle.get_campaign(db_session(), campaign_id)  # 404 before anything is stored
    return _save(campaign_id)


def _save(campaign_id: int | None) -> WResponse | tuple[str, int]:
    session = db_session()
    state = FormState(campaign_form.values_from_request())
    ok, media_id = attachment(session, state)
    if ok:
        try:
            data = campaign_form.draft_input(state.values, media_id)
            saved = campaigns.save_draft(session, current_user, data, campaign_id)
        except DomainError as exc:
            session.rollback()
            state.fail(exc, campaign_form.KNOWN, campaign_form.RENAME)
        else:
            session.commit()
            flash(
                _("Draft %(name)s saved. Check it below, then launch.", name=repr(saved.name)),
                "success",
            )
            return redirect(url_for("campaigns.detail", campaign_id=saved.id))
    campaign = lifecycle.get_campaign(session, campaign_id) if campaign_id else None
    return _render_wizard(campaign, state), 400


def _render_wizard(campaign: Campaign | None, state: FormState) -> str:
    return render_template(
        "campaigns/wizard.html",
        campaign=campaign,
        **campaign_form.wizard_context(db_session(), state),
    )


@bp.get("/audience.json")
@requires(Role.VIEWER)
def audience_json() -> Response:
    """Recipients of the chosen lists, and the opted-out members left out; or of the chosen
    segment (`segment_id`), as a launch now would reach them, counted up to a cap."""
    session = db_session()
    segment_id = request.args.get("segment_id", type=id_value)
    if segment_id is not None:
        n, capped = campaign_form.segment_recipients(session, segment_id)
        opted_out = campaign_form.segment_opted_out(session, segment_id)
        return jsonify(
            {
                "recipients": n,
                "capped": capped,
                "opted_out": opted_out,
                "segment": True,
                "lists": 0,
            }
        )
    chosen = id_values(request.args.getlist("list_ids")[: campaign_form.MAX_CHOSEN])
    return jsonify(
        {
            "recipients": audience.count(session, chosen),
            "opted_out": audience.opted_out_count(session, chosen),
            "lists": len(chosen),
        }
    )
