"""Campaigns: the user's moves on one campaign (launch, pause, resume, cancel, send again,
finish-by time, duplicate, delete) and test sends."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WResponse

from ...campaigns import lifecycle
from ...campaigns import service as campaigns
from ...errors import DomainError, NotFound, ValidationError
from ...models import Role
from ...words import N_
from .. import campaign_form
from ..form_state import FormState, ids
from ..helpers import apply_action, db_session, format_datetime, get_settings
from ..security import requires
from .page import ACTIONS, bp, render_detail

DONE = {
    "launch": N_("Launched."),
    "pause": N_("Paused. Messages already being sent finish; nothing new starts."),
    "resume": N_("Resumed."),
    "cancel": N_("Cancelled. Messages not yet sent were skipped."),
}
TEST_FIELDS = frozenset({"phone", "sender_id"})


@bp.post("/<int:campaign_id>/actions/<action>")
@requires(Role.OPERATOR)
def act(campaign_id: int, action: str) -> WResponse:
    move = ACTIONS.get(action)
    if move is None:
        raise NotFound(f"There is no campaign action {action!r}.")
    apply_action(
        lambda s: move(s, current_user, campaign_id), _(DONE[action]) if action in DONE else None
    )
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/finish-by")
@requires(Role.OPERATOR)
def finish_by(campaign_id: int) -> WResponse:
    """Move a launched campaign's finish-by time (empty: no end), e.g. to resume it."""
    typed = request.form.get("ends_at", "").strip()

    def run(session: Session) -> str:
        ends = (
            campaign_form.local_time(typed, "ends_at", campaign_form.FINISH_WRONG)
            if typed
            else None
        )
        lifecycle.set_finish_by(session, current_user, campaign_id, ends)
        if ends is None:
            return _("The campaign has no finish-by time now.")
        return _("The campaign now finishes by %(when)s.", when=format_datetime(ends))

    apply_action(run)
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/duplicate")
@requires(Role.OPERATOR)
def duplicate(campaign_id: int) -> WResponse:
    copies: list[int] = []

    def run(session: Session) -> str:
        copy = lifecycle.duplicate(session, current_user, campaign_id)
        copies.append(copy.id)
        return _(
            "Copied as the draft %(name)s: change what you need, then launch.", name=repr(copy.name)
        )

    if apply_action(run):
        return redirect(url_for("campaigns.detail", campaign_id=copies[0]))
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/delete")
@requires(Role.OPERATOR)
def delete(campaign_id: int) -> WResponse:
    if apply_action(
        lambda s: _(
            "Draft %(name)s deleted.",
            name=repr(lifecycle.delete_draft(s, current_user, campaign_id)),
        )
    ):
        return redirect(url_for("campaigns.index"))
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/test")
@requires(Role.OPERATOR)
def send_test(campaign_id: int) -> WResponse | tuple[str, int]:
    session = db_session()
    phone = request.form.get("phone", "")
    chosen = ids("sender_id")
    test = FormState({"phone": phone, "sender_id": chosen[0] if chosen else None})
    try:
        if not chosen:
            raise ValidationError(N_("Choose the sender to send the test from."), field="sender_id")
        settings = get_settings()
        text = campaigns.send_test(
            session,
            current_user,
            campaign_id,
            phone,
            chosen[0],
            settings.instance_path,
            options=settings.channel_options(),
        )
    except DomainError as exc:
        session.rollback()
        test.fail(exc, TEST_FIELDS)
        return render_detail(campaign_id, test), 400
    session.commit()
    flash(_("Test sent to %(phone)s: “%(text)s”", phone=phone.strip(), text=text), "success")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
