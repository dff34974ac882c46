"""Campaigns: the blueprint, the list and one campaign's page, with the pieces of it that
reports.py serves again on their own (the recipients table, outcomes, the live figures)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from babel.numbers import format_decimal
from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...campaigns import followups, funnel, lifecycle, outlook, recurrence, report, retry_round
from ...campaigns import service as campaigns
from ...campaigns import templates as message_templates
from ...campaigns.cloud_template import part
from ...campaigns.media import find_media
from ...campaigns.queries import campaigns_newest_first
from ...campaigns.render_budget import limit_for
from ...campaigns.samples import campaign_sample, segment_first_ids
from ...campaigns.wa_format import to_html
from ...contacts import lists
from ...dispatch.hearing import settled_count
from ...events import campaign_events
from ...models import Campaign, CampaignStatus, Message, Role, SenderState, utcnow
from ...senders.queries import senders_by_name
from .. import campaign_form, i18n
from ..form_state import FormState
from ..helpers import cursor_value, db_session, format_datetime, shown_text, user_zone
from ..security import requires

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")


def _retry_failed(session: Session, actor: Any, campaign_id: int) -> str:
    n = lifecycle.retry_failed(session, actor, campaign_id)
    return _(
        "%(n)s message(s) queued again. This page shows how they did once they are done.",
        n=i18n.format_number(n),
    )


# The user's moves (the engine's own "start" and "complete" are never buttons).
ACTIONS: dict[str, Callable[[Session, Any, int], object]] = {
    "launch": lifecycle.launch,
    "pause": lifecycle.pause,
    "resume": lifecycle.resume,
    "cancel": lifecycle.cancel,
    "retry": _retry_failed,
}
LIVE = frozenset({CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED})
TESTABLE = frozenset({CampaignStatus.DRAFT, CampaignStatus.RUNNING})
LOG_SIZE = 20
PAGE_SIZE = 50
STATUS_LABELS = {
    "queued": _l("Waiting"),
    "sending": _l("Sending"),
    "sent": _l("Sent"),
    "delivered": _l("Delivered"),
    "read": _l("Read"),
    "failed": _l("Failed"),
    "skipped": _l("Skipped"),
    "unknown": _l("Unknown"),
}
# The badges' words: a campaign's status, a series' state, a log line's level (stored and
# sent to scripts in English; shown in the reader's language).
STATUS_WORDS = {
    "draft": _l("draft"),
    "scheduled": _l("scheduled"),
    "running": _l("running"),
    "paused": _l("paused"),
    "completed": _l("completed"),
    "cancelled": _l("cancelled"),
    "active": _l("active"),
    "stopped": _l("stopped"),
    "info": _l("info"),
    "warning": _l("warning"),
    "error": _l("error"),
}
# The top card counts what is still moving or stopped short, by current status. Sent,
# delivered and read are left to the funnel: a message's status moves on from "sent" as
# receipts arrive, so a current-status "Sent 0" would contradict the funnel's "Sent 3".
PROGRESS_KEYS = ("queued", "sending", "failed", "skipped", "unknown")


# A message's status as its badge reads: the report's words for it (one map for both).
bp.add_app_template_global(report.status_words, "message_status_words")


@bp.app_template_filter("status_word")
def status_word(value: str) -> str:
    """A status, state or level as its badge reads in the reader's language."""
    return str(STATUS_WORDS.get(value, value))


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


# --- one campaign ----------------------------------------------------------------------


@bp.get("/<int:campaign_id>")
@requires(Role.VIEWER)
def detail(campaign_id: int) -> str:
    return render_detail(campaign_id, FormState())


def render_detail(campaign_id: int, test: FormState) -> str:
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
        eta_text=eta_text_of(progress.eta),
        actions=actions_shown(campaign),
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
        sample=message_sample(session, campaign, body, media),
        held=held_json(campaign),
        retry_round=None
        if campaign.status == CampaignStatus.DRAFT
        else retry_round.latest(session, campaign_id),
        finish_by=(
            campaign.ends_at.astimezone(user_zone()).strftime("%Y-%m-%dT%H:%M")
            if campaign.ends_at
            else ""
        ),
        **funnel_context(campaign),
        **recipients_context(campaign),
    )


def _whatsapp_template(session: Session, campaign: Campaign) -> dict[str, Any] | None:
    """The WhatsApp template a Cloud API campaign sends, with its words as one recipient got
    them (the first message rendered, by contact id as the message sample picks it), else
    the template's own body with its blanks."""
    snapshot = campaign.cloud_template
    if not snapshot:
        return None
    words = session.scalar(
        select(Message.body)
        .where(Message.campaign_id == campaign.id, Message.body.is_not(None))
        .order_by(Message.contact_id)
        .limit(1)
    )
    body = part(snapshot.get("components") or [], "BODY") or {}
    return {
        "name": str(snapshot.get("name") or ""),
        "language": str(snapshot.get("language") or ""),
        "words": words or str(body.get("text") or ""),
        "filled": words is not None,
    }


def message_sample(
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
        "caption": _("As %(name)s got it:", name=who)
        if sample.sent
        else _("As %(name)s will get it:", name=who),
        "html": to_html(sample.text),
        "error": sample.error,
    }


def held_json(campaign: Campaign) -> dict[str, Any]:
    """Whether Meta's daily limit holds the campaign back, why, and when it resumes."""
    until = campaign.held_until if campaign.held_reason else None
    return {
        "held_reason": shown_text(campaign.held_reason),
        "held_until": until.isoformat() if until else None,
        "held_until_text": format_datetime(until) if until else None,
    }


def funnel_context(campaign: Campaign) -> dict[str, Any]:
    """The funnel, failures by reason and the latest replies (nothing for a draft)."""
    session = db_session()
    if campaign.status == CampaignStatus.DRAFT:
        return {"funnel": None, "failures": [], "replies": []}
    return {
        "funnel": funnel.funnel(session, campaign),
        "failures": funnel.failure_groups(session, campaign.id),
        "replies": funnel.latest_replies(session, campaign.id),
    }


def recipients_context(campaign: Campaign) -> dict[str, Any]:
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


def actions_shown(campaign: Campaign) -> list[str]:
    return [a for a in lifecycle.actions_for(campaign) if a in ACTIONS]


def eta_text_of(eta: datetime | None) -> str | None:
    if eta is None:
        return None
    seconds = max(0, int((eta - utcnow()).total_seconds()))
    when = format_datetime(eta)
    if seconds < 60:
        return _("%(when)s (in less than a minute)", when=when)
    if seconds < 3600:
        return _("%(when)s (in about %(n)s min)", when=when, n=round(seconds / 60))
    if seconds < 48 * 3600:
        hours = format_decimal(seconds / 3600, format="#,##0.0", locale=i18n.format_locale())
        return _("%(when)s (in about %(n)s h)", when=when, n=hours)
    return _("%(when)s (in about %(n)s days)", when=when, n=round(seconds / 86400))
