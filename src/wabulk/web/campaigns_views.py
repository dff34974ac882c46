"""Campaigns: the list, the wizard, one campaign's live page, its actions and test sends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    after_this_request,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WResponse

from ..campaigns import (
    audience,
    followups,
    funnel,
    lifecycle,
    outlook,
    recurrence,
    report,
    retry_round,
)
from ..campaigns import service as campaigns
from ..campaigns import templates as message_templates
from ..campaigns.cloud_template import part
from ..campaigns.media import find_media
from ..campaigns.queries import campaigns_newest_first
from ..campaigns.render_budget import limit_for
from ..campaigns.samples import campaign_sample, segment_first_ids
from ..campaigns.wa_format import to_html
from ..contacts import lists
from ..dispatch.hearing import settled_count
from ..errors import DomainError, NotFound, ValidationError
from ..events import campaign_events
from ..models import (
    Campaign,
    CampaignStatus,
    Event,
    Message,
    Role,
    Segment,
    SenderState,
    utcnow,
)
from ..senders.queries import senders_by_name
from . import campaign_form
from .form_state import FormState, attachment, ids
from .helpers import (
    apply_action,
    cursor_value,
    db_session,
    format_datetime,
    get_settings,
    id_value,
    id_values,
    shown_text,
    user_zone,
)
from .security import requires

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")


def _retry_failed(session: Session, actor: Any, campaign_id: int) -> str:
    n = lifecycle.retry_failed(session, actor, campaign_id)
    return f"{n:,} message(s) queued again. This page shows how they did once they are done."


# The user's moves (the engine's own "start" and "complete" are never buttons).
ACTIONS: dict[str, Callable[[Session, Any, int], object]] = {
    "launch": lifecycle.launch,
    "pause": lifecycle.pause,
    "resume": lifecycle.resume,
    "cancel": lifecycle.cancel,
    "retry": _retry_failed,
}
DONE = {
    "launch": "Launched.",
    "pause": "Paused. Messages already being sent finish; nothing new starts.",
    "resume": "Resumed.",
    "cancel": "Cancelled. Messages not yet sent were skipped.",
}
LIVE = frozenset({CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED})
TESTABLE = frozenset({CampaignStatus.DRAFT, CampaignStatus.RUNNING})
TEST_FIELDS = frozenset({"phone", "sender_id"})
LOG_SIZE = 20
PAGE_SIZE = 50
STATUS_LABELS = {
    "queued": "Waiting",
    "sending": "Sending",
    "sent": "Sent",
    "delivered": "Delivered",
    "read": "Read",
    "failed": "Failed",
    "skipped": "Skipped",
    "unknown": "Unknown",
}
# The top card counts what is still moving or stopped short, by current status. Sent,
# delivered and read are left to the funnel: a message's status moves on from "sent" as
# receipts arrive, so a current-status "Sent 0" would contradict the funnel's "Sent 3".
PROGRESS_KEYS = ("queued", "sending", "failed", "skipped", "unknown")


@bp.get("")
@requires(Role.VIEWER)
def index() -> str:
    session = db_session()
    # Series show once each (their Recurring section), their runs on their own page.
    # Follow-ups show under their first campaign (its page's Follow-ups section).
    listed = followups.without_steps(recurrence.without_series(campaigns_newest_first()))
    rows = session.scalars(listed.limit(200)).all()
    # What to do first is only asked while there is no campaign at all.
    empty = not rows
    return render_template(
        "campaigns/index.html",
        campaigns=rows,
        has_senders=empty and session.scalars(senders_by_name().limit(1)).first() is not None,
        has_lists=empty and session.execute(lists.lists_with_counts().limit(1)).first() is not None,
    )


# --- the wizard -----------------------------------------------------------------------


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
        flash("Only a draft can be edited; duplicate the campaign to change it.", "warning")
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
            flash(f"Draft {saved.name!r} saved. Check it below, then launch.", "success")
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


# --- one campaign ----------------------------------------------------------------------


@bp.get("/<int:campaign_id>")
@requires(Role.VIEWER)
def detail(campaign_id: int) -> str:
    return _render_detail(campaign_id, FormState())


def _render_detail(campaign_id: int, test: FormState) -> str:
    session = db_session()
    campaign = lifecycle.get_campaign(session, campaign_id)
    progress = campaigns.progress(session, campaign)
    template = (
        message_templates.get_template(session, campaign.template_id)
        if campaign.template_id
        else None
    )
    body, media_id = lifecycle.effective_message(session, campaign)
    media = find_media(session, media_id)
    draft: dict[str, Any] = {}
    if campaign.status == CampaignStatus.DRAFT:
        recipients, opted_out = campaigns.recipient_count(session, campaign)
        list_ids = [lst.id for lst in campaign.lists]
        now = utcnow()
        start = max(now, campaign.scheduled_at) if campaign.scheduled_at else now
        draft = {
            "outlook": outlook.warnings(
                session,
                campaign.senders,
                campaigns.pace_overrides(campaign),
                recipients,
                start,
                campaign.ends_at,
                now,
                user_zone(),
            ),
            "recipients": recipients,
            "opted_out": opted_out,
            "preview": message_templates.preview(
                session,
                body,
                list_ids,
                limit=limit_for(media.mime_type if media else None),
                # A segment's first recipients, not the first contacts of all.
                among=segment_first_ids(session, campaign.segment_id, 500)
                if campaign.segment_id is not None
                else None,
            )
            if body.strip()
            else None,
        }
    return render_template(
        "campaigns/detail.html",
        campaign=campaign,
        p=progress,
        eta_text=_eta_text(progress.eta),
        actions=_actions(campaign),
        all_actions=list(ACTIONS),
        live=campaign.status in LIVE,
        testable=[s.value for s in TESTABLE],
        body=body,
        template=template,
        media=media,
        document=campaign_form.is_document(media),
        draft=draft,
        overrides=campaigns.pace_overrides(campaign),
        retry_wait=campaigns.retry_seconds(campaign),
        pacing_fields=campaign_form.PACING_FIELDS,
        events=session.scalars(campaign_events(campaign_id, limit=LOG_SIZE)).all(),
        test=test,
        linked=SenderState.LINKED,
        hearing=funnel.still_hearing(campaign),
        settled=settled_count(session, campaign_id),
        progress_labels={key: STATUS_LABELS[key] for key in PROGRESS_KEYS},
        whatsapp=_whatsapp_template(session, campaign),
        sample=_message_sample(session, campaign, body, media),
        held=_held_json(campaign),
        retry_round=None
        if campaign.status == CampaignStatus.DRAFT
        else retry_round.latest(session, campaign_id),
        finish_by=(
            campaign.ends_at.astimezone(user_zone()).strftime("%Y-%m-%dT%H:%M")
            if campaign.ends_at
            else ""
        ),
        **_funnel_context(campaign),
        **_recipients_context(campaign),
    )


def _whatsapp_template(session: Session, campaign: Campaign) -> dict[str, Any] | None:
    """The WhatsApp template a Cloud API campaign sends, with its words as one recipient got
    them (the first message rendered), else the template's own body with its blanks."""
    snapshot = campaign.cloud_template
    if not snapshot:
        return None
    words = session.scalar(
        select(Message.body)
        .where(Message.campaign_id == campaign.id, Message.body.is_not(None))
        .order_by(Message.id)
        .limit(1)
    )
    body = part(snapshot.get("components") or [], "BODY") or {}
    return {
        "name": str(snapshot.get("name") or ""),
        "language": str(snapshot.get("language") or ""),
        "words": words or str(body.get("text") or ""),
        "filled": words is not None,
    }


def _message_sample(
    session: Session, campaign: Campaign, body: str, media: Any
) -> dict[str, Any] | None:
    """The message as one real customer got it (or will), formatted as WhatsApp shows it,
    never the template's code; None for a WhatsApp template (shown its own way)."""
    if campaign.cloud_template:
        return None
    limit = limit_for(media.mime_type if media else None)
    sample = campaign_sample(session, campaign, body, limit)
    if sample is None:
        return None
    who = sample.name or sample.phone
    return {
        "caption": f"As {who} got it:" if sample.sent else f"As {who} will get it:",
        "html": to_html(sample.text),
        "error": sample.error,
    }


def _held_json(campaign: Campaign) -> dict[str, Any]:
    """Whether Meta's daily limit holds the campaign back, why, and when it resumes."""
    until = campaign.held_until if campaign.held_reason else None
    return {
        "held_reason": shown_text(campaign.held_reason),
        "held_until": until.isoformat() if until else None,
        "held_until_text": format_datetime(until) if until else None,
    }


def _funnel_context(campaign: Campaign) -> dict[str, Any]:
    """The funnel, failures by reason and the latest replies (nothing for a draft)."""
    session = db_session()
    if campaign.status == CampaignStatus.DRAFT:
        return {"funnel": None, "failures": [], "replies": []}
    return {
        "funnel": funnel.funnel(session, campaign),
        "failures": funnel.failure_groups(session, campaign.id),
        "replies": funnel.latest_replies(session, campaign.id),
    }


@bp.get("/<int:campaign_id>/outcomes")
@requires(Role.VIEWER)
def outcomes(campaign_id: int) -> str:
    """Failures by reason and the latest replies alone: campaign.js swaps them in when the
    funnel's figures move."""
    campaign = lifecycle.get_campaign(db_session(), campaign_id)
    return render_template(
        "campaigns/_outcomes.html", campaign=campaign, **_funnel_context(campaign)
    )


def _recipients_context(campaign: Campaign) -> dict[str, Any]:
    """One keyset page of the recipients table, filtered by status (?status=, ?after=)."""
    status = request.args.get("status", "all")
    if status not in campaigns.RECIPIENT_FILTERS:
        status = "all"
    after = request.args.get("after", type=cursor_value)
    rows, next_after = campaigns.recipients_page(
        db_session(), campaign.id, status, after, PAGE_SIZE
    )
    return {
        "rows": rows,
        "next_after": next_after,
        "status_filter": status,
        "filters": campaigns.RECIPIENT_FILTERS,
        "first_page": after is None,
        "sender_names": {s.id: s.name for s in campaign.senders},
        "labels": STATUS_LABELS,
        "page_size": PAGE_SIZE,
    }


@bp.get("/<int:campaign_id>/recipients")
@requires(Role.VIEWER)
def recipients(campaign_id: int) -> str:
    """The recipients table alone: campaign.js swaps it in while the campaign runs."""
    session = db_session()
    campaign = lifecycle.get_campaign(session, campaign_id)
    return render_template(
        "campaigns/_recipients.html",
        campaign=campaign,
        p=campaigns.progress(session, campaign),
        **_recipients_context(campaign),
    )


@bp.get("/<int:campaign_id>/report.csv")
@requires(Role.VIEWER)
def report_csv(campaign_id: int) -> Response:
    """Every recipient's outcome, streamed: a million rows never sit in memory."""
    session = db_session()
    campaign = lifecycle.get_campaign(session, campaign_id)
    chunks = report.csv_chunks(session, campaign_id, current_user.timezone)
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{report.filename(campaign, "csv")}"'
        },
    )


@bp.get("/<int:campaign_id>/report.xlsx")
@requires(Role.VIEWER)
def report_xlsx(campaign_id: int) -> Response:
    session = db_session()
    campaign = lifecycle.get_campaign(session, campaign_id)
    path = report.xlsx_file(
        session, campaign_id, current_user.timezone, get_settings().instance_path / "tmp"
    )

    @after_this_request
    def _remove(response: Response) -> Response:
        path.unlink(missing_ok=True)  # send_file holds the open file; the name can go
        return response

    return send_file(
        path,
        as_attachment=True,
        download_name=report.filename(campaign, "xlsx"),
        mimetype=report.XLSX_MIME,
    )


@bp.get("/<int:campaign_id>/summary")
@requires(Role.VIEWER)
def summary(campaign_id: int) -> str:
    """The one-page summary, made to print."""
    session = db_session()
    s = report.summary(session, campaign_id)
    media = find_media(session, lifecycle.effective_message(session, s.campaign)[1])
    return render_template(
        "campaigns/summary.html",
        s=s,
        sample=_message_sample(session, s.campaign, s.body, media),
        labels=STATUS_LABELS,
        printed_at=utcnow(),
    )


def _actions(campaign: Campaign) -> list[str]:
    return [a for a in lifecycle.actions_for(campaign) if a in ACTIONS]


def _eta_text(eta: datetime | None) -> str | None:
    if eta is None:
        return None
    seconds = max(0, int((eta - utcnow()).total_seconds()))
    if seconds < 60:
        about = "less than a minute"
    elif seconds < 3600:
        about = f"about {round(seconds / 60)} min"
    elif seconds < 48 * 3600:
        about = f"about {seconds / 3600:.1f} h"
    else:
        about = f"about {round(seconds / 86400)} days"
    return f"{format_datetime(eta)} (in {about})"


@bp.get("/<int:campaign_id>/progress.json")
@requires(Role.VIEWER)
def progress_json(campaign_id: int) -> Response:
    """Polled by the campaign page: the maintained counters and `message_stats` (the funnel),
    never a count of rows, and the log lines newer than `after_event`."""
    session = db_session()
    campaign = lifecycle.get_campaign(session, campaign_id)
    p = campaigns.progress(session, campaign)
    after = request.args.get("after_event", type=cursor_value)
    events = session.scalars(campaign_events(campaign_id, after, LOG_SIZE)).all()
    figures = funnel.funnel(session, campaign)
    return jsonify(
        {
            "status": p.status,
            "reason": shown_text(p.reason),
            "total": p.total,
            "counts": p.counts,
            "done": p.done,
            "percent": p.percent,
            "eta": p.eta.isoformat() if p.eta else None,
            "eta_text": _eta_text(p.eta),
            "actions": _actions(campaign),
            "live": campaign.status in LIVE,
            "finished_at": format_datetime(campaign.finished_at) if campaign.finished_at else None,
            "events": [_event_json(e) for e in events],
            "hearing": funnel.still_hearing(campaign),
            "funnel": _funnel_json(figures),
            **_held_json(campaign),
        }
    )


def _funnel_json(figures: funnel.Funnel) -> dict[str, Any]:
    return {
        **figures.as_dict(),
        "steps": [
            {"key": s.key, "n": s.n, "percent": s.percent, "base": s.base} for s in figures.steps()
        ],
        "billed_list": [
            {"category": b.category, "label": b.label, "count": b.count} for b in figures.billed
        ],
    }


def _event_json(event: Event) -> dict[str, Any]:
    shot = (event.data or {}).get("screenshot")
    return {
        "id": event.id,
        "at": format_datetime(event.at),
        "level": event.level.value,
        "text": shown_text(event.text),
        # Operators and admins may open what WhatsApp Web showed (senders.screenshot).
        "screenshot": url_for("senders.screenshot", name=shot)
        if shot and current_user.role.includes(Role.OPERATOR)
        else None,
    }


@bp.post("/<int:campaign_id>/actions/<action>")
@requires(Role.OPERATOR)
def act(campaign_id: int, action: str) -> WResponse:
    move = ACTIONS.get(action)
    if move is None:
        raise NotFound(f"There is no campaign action {action!r}.")
    apply_action(lambda s: move(s, current_user, campaign_id), DONE.get(action))
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/finish-by")
@requires(Role.OPERATOR)
def finish_by(campaign_id: int) -> WResponse:
    """Move a launched campaign's finish-by time (empty: no end), e.g. to resume it."""
    typed = request.form.get("ends_at", "").strip()

    def run(session: Session) -> str:
        ends = campaign_form.local_time(typed, "ends_at", "The finish-by time") if typed else None
        lifecycle.set_finish_by(session, current_user, campaign_id, ends)
        if ends is None:
            return "The campaign has no finish-by time now."
        return f"The campaign now finishes by {format_datetime(ends)}."

    apply_action(run)
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/duplicate")
@requires(Role.OPERATOR)
def duplicate(campaign_id: int) -> WResponse:
    copies: list[int] = []

    def run(session: Session) -> str:
        copy = lifecycle.duplicate(session, current_user, campaign_id)
        copies.append(copy.id)
        return f"Copied as the draft {copy.name!r}: change what you need, then launch."

    if apply_action(run):
        return redirect(url_for("campaigns.detail", campaign_id=copies[0]))
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/delete")
@requires(Role.OPERATOR)
def delete(campaign_id: int) -> WResponse:
    if apply_action(
        lambda s: f"Draft {lifecycle.delete_draft(s, current_user, campaign_id)!r} deleted."
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
            raise ValidationError("Choose the sender to send the test from.", field="sender_id")
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
        return _render_detail(campaign_id, test), 400
    session.commit()
    flash(f"Test sent to {phone.strip()}: “{text}”", "success")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
