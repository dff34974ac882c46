"""Read-only areas of the shell: the Dashboard, its live figures, Analytics, and what the
campaign wizard foresees as its boxes change (how long, until when, who got a message lately).

- Live figures are polled (static/js/live.js) from small JSON answers built from
  maintained counters: a poll holds a request thread for milliseconds, where a
  server-sent stream would hold one of waitress's few threads for as long as the page is open.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, url_for
from flask_babel import gettext as _

from ..analytics import dashboard as dash
from ..analytics import export as analytics_export
from ..analytics import overview as analytics_overview
from ..campaigns.funnel import Funnel
from ..errors import ValidationError
from ..models import Campaign, Role, Sender, SenderState
from . import campaign_form, i18n
from .campaigns.page import status_word
from .helpers import db_session, format_datetime, id_values, shown_text, user_zone
from .security import requires
from .sender_words import channel_words, event_words, state_words

bp = Blueprint("pages", __name__)

FILTER_KEYS = ("from", "to", "campaign", "sender")


@bp.app_template_filter("event_text")
def event_text(text: str | None) -> str | None:
    """An Event's text as the Activity log and the Dashboard show it: an older event's code
    name put in words first, so the sentence is then read in the reader's language."""
    return None if text is None else shown_text(event_words(text))


bp.add_app_template_global(channel_words, "channel_words")


def sender_label(s: dash.SenderHealth) -> str:
    if s.state == SenderState.LINKED and s.capped:
        return _("capped today")
    return state_words(s.state, s.channel)


# The card's results before any campaign has finished: every step at 0, no percentages.
NO_RESULTS = Funnel(total=0, sent=0, delivered=0, read=0, replied=0, failed=0, limited=0)


def _result_steps(funnel: Funnel) -> list[dict[str, Any]]:
    """A campaign's results in the order its page shows its funnel."""
    return [
        {
            "key": step.key,
            "label": _(step.label),
            "n": step.n,
            # Sent and failed are shares of the recipients; the rest of what was sent.
            "percent": ""
            if step.percent is None
            else _("%(percent)s%% of sent", percent=i18n.format_fixed(step.percent, 1))
            if step.base == "sent"
            else i18n.format_percent(step.percent),
        }
        for step in funnel.steps()
    ]


def last_finished_view(last: dash.FinishedCampaign | None) -> dict[str, Any]:
    """The Dashboard's last-finished card, for the page and its live answer alike."""
    if last is None:
        return {"id": None, "name": "", "url": "", "when": "", "steps": _result_steps(NO_RESULTS)}
    when = format_datetime(last.finished_at)
    return {
        "id": last.id,
        "name": last.name,
        "url": url_for("campaigns.detail", campaign_id=last.id),
        "when": _("Cancelled %(when)s", when=when)
        if last.status == "cancelled"
        else _("Finished %(when)s", when=when),
        "steps": _result_steps(last.funnel),
    }


def _campaign_json(c: dash.CampaignProgress) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "url": url_for("campaigns.detail", campaign_id=c.id),
        "status": c.status,
        "status_label": status_word(c.status),
        "reason": shown_text(c.reason),
        "total": c.total,
        "done": c.done,
        "percent": c.percent,
        "sent": c.sent,
        "failed": c.failed,
        "scheduled_at": format_datetime(c.scheduled_at) if c.scheduled_at else None,
        "live": c.live,
    }


@bp.get("/")
@requires(Role.VIEWER)
def dashboard() -> str:
    board = dash.dashboard(db_session(), user_zone())
    return render_template(
        "pages/dashboard.html",
        d=board,
        last=last_finished_view(board.last_finished),
        sender_label=sender_label,
        linked=SenderState.LINKED,
    )


@bp.get("/live.json")
@requires(Role.VIEWER)
def live() -> Response:
    """The Dashboard's moving figures, polled every few seconds by every open dashboard."""
    session = db_session()
    f = dash.live_figures(session, user_zone())
    return jsonify(
        {
            "live": f.live,
            # The poll that sees a campaign finish brings its results, then stops.
            "last_finished": last_finished_view(dash.last_finished(session)),
            "today": f.today.as_dict(),
            "running": [_campaign_json(c) for c in f.running],
            "scheduled": [_campaign_json(c) for c in f.scheduled],
            "senders": [
                {
                    "id": s.id,
                    "label": sender_label(s),
                    "state": "capped" if s.capped and s.state == SenderState.LINKED else s.state,
                    "sent_today": s.sent_today,
                    "daily_cap": s.daily_cap,
                }
                for s in f.senders
            ],
        }
    )


@bp.get("/live/campaigns.json")
@requires(Role.VIEWER)
def live_campaigns() -> Response:
    """Progress of the campaigns a page shows (?ids=1,2,3), for the campaigns list."""
    ids = id_values(request.args.get("ids", "").split(","))
    found = dash.campaigns_progress(db_session(), ids)
    return jsonify(
        {"live": any(c.live for c in found), "campaigns": [_campaign_json(c) for c in found]}
    )


@bp.get("/campaigns/plan.json")
@requires(Role.OPERATOR)
def wizard_plan() -> Response:
    """The wizard's estimate, finish-by warnings and recent overlap for the boxes as typed
    (its query string: lists, senders, schedule, pacing), each bounded before any query."""
    plan = campaign_form.wizard_plan(db_session(), campaign_form.plan_values(request.args))
    return jsonify(plan)


def _translated_chart_data(data: dict[str, Any]) -> dict[str, Any]:
    """The charts' labels in the reader's language (the JSON export keeps them English)."""
    data["labels"] = {k: _(label) for k, label in data["labels"].items()}
    for block in ("funnel", "failures", "billed"):
        data[block]["labels"] = [i18n.translated(label) for label in data[block]["labels"]]
    data["senders"]["labels"] = [
        i18n.translated(name) if not sid else name
        for sid, name in zip(data["senders"]["ids"], data["senders"]["labels"], strict=True)
    ]
    return data


def _filtered() -> tuple[dict[str, str], Any, ValidationError | None]:
    session = db_session()
    kept = {k: v for k in FILTER_KEYS if (v := request.args.get(k, "").strip()[:40])}
    try:
        return kept, analytics_overview.parse_filters(session, kept, user_zone()), None
    except ValidationError as exc:
        return kept, None, exc


@bp.get("/analytics")
@requires(Role.VIEWER)
def analytics() -> tuple[str, int]:
    kept, filters, error = _filtered()
    session = db_session()
    o = analytics_overview.overview(session, filters) if filters else None
    data = _translated_chart_data(analytics_overview.chart_data(o)) if o else None
    campaigns, senders = analytics_overview.filter_choices(session, filters)
    shown = filters or analytics_overview.default_filters(user_zone())
    return render_template(
        "pages/analytics.html",
        o=o,
        data=data,
        error=error,
        kept=kept,
        shown=shown,
        campaigns=campaigns,
        senders=senders,
        labels=data["labels"] if data else {},  # the tables' headers, as the charts' legends
        timezone=shown.period.tz.key,
    ), 400 if error else 200


@bp.get("/analytics.json")
@requires(Role.VIEWER)
def analytics_json() -> tuple[Response, int]:
    """The Analytics page's numbers for the same filter, to export or script against."""
    _, filters, error = _filtered()
    if error is not None:
        return jsonify({"error": str(error), "field": error.field}), 400
    o = analytics_overview.overview(db_session(), filters)
    return jsonify(analytics_overview.chart_data(o)), 200


@bp.get("/analytics.<any(xlsx, csv):extension>")
@requires(Role.VIEWER)
def analytics_download(extension: str) -> Response:
    """The Analytics page's tables for the same filter, as Excel or CSV."""
    _, filters, error = _filtered()
    if error is not None:
        return Response(f"{i18n.translated(str(error))}\n", 400, mimetype="text/plain")
    session = db_session()
    o = analytics_overview.overview(session, filters)
    campaign = session.get(Campaign, filters.campaign_id) if filters.campaign_id else None
    sender = session.get(Sender, filters.sender_id) if filters.sender_id else None
    tables = analytics_export.tables(
        o,
        campaign.name if campaign else None,
        sender.name if sender else None,
        words=lambda text: i18n.translated(text) or text,
    )
    if extension == "xlsx":
        body, mimetype = analytics_export.xlsx_bytes(tables), analytics_export.XLSX_MIME
    else:
        body, mimetype = analytics_export.csv_text(tables).encode(), "text/csv"
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": (
                f'attachment; filename="{analytics_export.filename(o, extension)}"'
            )
        },
    )
