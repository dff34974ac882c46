"""Campaigns, read only: one campaign's parts swapped in while it runs (recipients,
outcomes, the figures polled), its report (CSV, XLSX) and its printable summary."""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    after_this_request,
    jsonify,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import current_user

from ...campaigns import funnel, lifecycle, report
from ...campaigns import service as campaigns
from ...campaigns.media import find_media
from ...events import campaign_events
from ...models import Event, Role, utcnow
from ..helpers import cursor_value, db_session, format_datetime, get_settings, shown_text
from ..i18n import translated
from ..security import requires
from .page import (
    LIVE,
    LOG_SIZE,
    STATUS_LABELS,
    actions_shown,
    bp,
    eta_text_of,
    funnel_context,
    held_json,
    message_sample,
    recipients_context,
)


@bp.get("/<int:campaign_id>/outcomes")
@requires(Role.VIEWER)
def outcomes(campaign_id: int) -> str:
    """Failures by reason and the latest replies alone: campaign.js swaps them in when the
    funnel's figures move."""
    campaign = lifecycle.get_campaign(db_session(), campaign_id)
    return render_template(
        "campaigns/_outcomes.html", campaign=campaign, **funnel_context(campaign)
    )


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
        **recipients_context(campaign),
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
        sample=message_sample(session, s.campaign, s.body, media),
        labels=STATUS_LABELS,
        printed_at=utcnow(),
    )


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
            "eta_text": eta_text_of(p.eta),
            "actions": actions_shown(campaign),
            "live": campaign.status in LIVE,
            "finished_at": format_datetime(campaign.finished_at) if campaign.finished_at else None,
            "events": [_event_json(e) for e in events],
            "hearing": funnel.still_hearing(campaign),
            "funnel": _funnel_json(figures),
            **held_json(campaign),
        }
    )


def _funnel_json(figures: funnel.Funnel) -> dict[str, Any]:
    return {
        **figures.as_dict(),
        "steps": [
            {"key": s.key, "n": s.n, "percent": s.percent, "base": s.base} for s in figures.steps()
        ],
        "billed_list": [
            {"category": b.category, "label": translated(b.label), "count": b.count}
            for b in figures.billed
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
