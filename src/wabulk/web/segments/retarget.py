"""Retargeting from a campaign's page: "new campaign to those who did not read", and the
segment words the campaign pages show (template globals, so the campaign pages in
web/campaigns/ stay as they are).

- A button makes (or reuses) the outcome's segment and opens the wizard with it chosen.
- Buttons show only after launch, with their count, and only where the count is not zero.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.wrappers import Response as WResponse

from ...errors import DomainError
from ...models import Campaign, CampaignStatus, Role, Segment
from ...segments import service as segments
from ...words import N_
from ..helpers import db_session
from ..security import requires
from .views import LIST_CAP, bp, count_text, describe

# (outcome, button words, its icon)
OUTCOMES: tuple[tuple[str, str, str], ...] = (
    ("delivered_not_read", N_("New campaign to those who got it but did not read it"), "eye-slash"),
    ("replied", N_("New campaign to those who replied"), "reply"),
    (
        "failed_retryable",
        N_("New campaign to those whose message failed (reasons worth retrying)"),
        "arrow-repeat",
    ),
)
OUTCOME_NAMES = frozenset(o for o, _, _ in OUTCOMES)


@bp.post("/retarget/<int:campaign_id>/<outcome>")
@requires(Role.OPERATOR)
def retarget(campaign_id: int, outcome: str) -> WResponse:
    session = db_session()
    if outcome not in OUTCOME_NAMES:
        flash(_("There is no such choice."), "danger")
        return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    try:
        seg = segments.outcome_segment(session, current_user, campaign_id, outcome)
    except DomainError as exc:
        session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    session.commit()
    return redirect(url_for("campaigns.new", segment_id=seg.id))


@bp.app_template_global()
def retarget_buttons(campaign: Campaign) -> list[dict[str, Any]]:
    """The retarget buttons the campaign page shows: after launch, with a count above zero."""
    if campaign.status == CampaignStatus.DRAFT or campaign.launched_at is None:
        return []
    session = db_session()
    out = []
    for outcome, words, icon in OUTCOMES:
        terms = segments.outcome_terms(campaign.id, outcome)
        n, capped = segments.count(session, terms, cap=LIST_CAP)
        if n:
            out.append(
                {
                    "outcome": outcome,
                    "words": _(words),
                    "icon": icon,
                    "count": ngettext(
                        "%(count)s person", "%(count)s people", n, count=count_text(n, capped)
                    ),
                }
            )
    return out


@bp.app_template_global()
def campaign_audience(campaign: Campaign) -> dict[str, Any] | None:
    """A campaign's segment as its page names it: the name and the conditions in a sentence,
    as they were at launch once launched (the segment may have changed since)."""
    if campaign.segment_id is None and not campaign.audience_terms:
        return None
    session = db_session()
    seg = session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    terms = campaign.audience_terms if campaign.audience_terms else (seg.terms if seg else None)
    return {
        "segment": seg,
        "name": seg.name if seg else _("a segment since deleted"),
        "sentence": describe(session, terms),
        "at_launch": bool(campaign.audience_terms),
    }
