"""Recurring campaigns: "Repeat this campaign" on a draft, a series' page with its runs, and
pause / resume / stop. The rules are in `campaigns/recurrence.py`; this is only the HTTP.

The campaign pages show where a campaign stands in a series through template globals
(`series_of`, `recurring_series`), so the campaign pages (web/campaigns/) stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from babel.dates import format_date
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WResponse

from ...campaigns import lifecycle
from ...campaigns import recurrence as series_service
from ...campaigns.recurrence import RuleInput
from ...campaigns.recurrence_rules import WEEKDAY_NAMES, describe, run_day
from ...errors import DomainError, NotFound, ValidationError
from ...models import Campaign, CampaignStatus, Recurrence, RecurrenceState, Role
from ...words import N_, said
from ...zones import zone
from .. import i18n
from ..form_state import FormState
from ..helpers import apply_action, db_session
from ..security import requires

bp = Blueprint("recurrences", __name__, url_prefix="/recurrences")

KNOWN = frozenset(
    {
        "name",
        "frequency",
        "weekdays",
        "day_of_month",
        "time_of_day",
        "timezone",
        "starts_on",
        "ends_on",
    }
)
RUNS_SHOWN = 100
LOG_SIZE = 20
MAX_FIELD = 200  # no box of this form needs more characters than a name


# --- repeat a draft --------------------------------------------------------------------


@bp.get("/new/<int:campaign_id>")
@requires(Role.OPERATOR)
def new(campaign_id: int) -> str:
    model = lifecycle.get_campaign(db_session(), campaign_id)
    user_zone = getattr(current_user, "timezone", None) or ""
    state = FormState(
        {
            "name": model.name,
            "frequency": "monthly",
            "weekdays": [0],
            "day_of_month": "1",
            "time_of_day": "10:00",
            "zone_mode": "local",
            "timezone": user_zone,
            "starts_on": "",
            "ends_on": "",
        }
    )
    return _render_form(model, state)


@bp.post("/new/<int:campaign_id>")
@requires(Role.OPERATOR)
def create(campaign_id: int) -> WResponse | tuple[str, int]:
    session = db_session()
    model = lifecycle.get_campaign(session, campaign_id)
    state = FormState(_form_values())
    try:
        data = _rule_input(state.values)
        series = series_service.create(session, current_user, model.id, data)
    except DomainError as exc:
        session.rollback()
        state.fail(exc, KNOWN)
        return _render_form(model, state), 400
    session.commit()
    flash(
        _(
            "%(name)s now repeats: %(rule)s. First run: %(next)s.",
            name=repr(series.name),
            rule=_words(series),
            next=_next_text(series),
        ),
        "success",
    )
    return redirect(url_for("recurrences.detail", recurrence_id=series.id))


def _form_values() -> dict[str, Any]:
    form = request.form
    return {
        "name": form.get("name", "")[:MAX_FIELD],
        "frequency": form.get("frequency", "")[:MAX_FIELD],
        "weekdays": [int(d) for d in form.getlist("weekdays")[:7] if d in "0123456" and d],
        "day_of_month": form.get("day_of_month", "").strip()[:MAX_FIELD],
        "time_of_day": form.get("time_of_day", "").strip()[:MAX_FIELD],
        "zone_mode": "fixed" if form.get("zone_mode") == "fixed" else "local",
        "timezone": form.get("timezone", "").strip()[:MAX_FIELD],
        "starts_on": form.get("starts_on", "").strip()[:MAX_FIELD],
        "ends_on": form.get("ends_on", "").strip()[:MAX_FIELD],
    }


def _day(raw: str, field: str, label: str) -> date | None:
    if not raw:
        return None
    wrong = ValidationError(
        said("%(what)s must be a date, such as 2027-03-31.", what=label), field=field
    )
    if len(raw) != 10:  # YYYY-MM-DD, as the date box sends it
        raise wrong
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise wrong from None


def _rule_input(values: dict[str, Any]) -> RuleInput:
    day_of_month = None
    if values["frequency"] == "monthly":
        raw = values["day_of_month"]
        if not (raw.isascii() and raw.isdigit()):  # "³" is a digit to isdigit, not to int
            raise ValidationError(
                N_("Choose the day of the month, from 1 to 31."), field="day_of_month"
            )
        day_of_month = int(raw[:3])
    fixed = values["zone_mode"] == "fixed"
    if fixed and not values["timezone"]:
        raise ValidationError(N_("Choose the timezone the time is in."), field="timezone")
    return RuleInput(
        frequency=values["frequency"],
        time_of_day=values["time_of_day"],
        weekdays=values["weekdays"],
        day_of_month=day_of_month,
        timezone=values["timezone"] if fixed else None,
        starts_on=_day(values["starts_on"], "starts_on", N_("The first run date")),
        ends_on=_day(values["ends_on"], "ends_on", N_("The end date")),
        name=values["name"],
    )


def _render_form(model: Campaign, state: FormState) -> str:
    return render_template(
        "recurrences/new.html",
        model=model,
        state=state,
        weekday_names=[(n, _(name)) for n, name in enumerate(WEEKDAY_NAMES)],
        zones=sorted(series_service.zone_names()),
        is_draft=model.status == CampaignStatus.DRAFT,
    )


# --- a series' page --------------------------------------------------------------------


@bp.get("/<int:recurrence_id>")
@requires(Role.VIEWER)
def detail(recurrence_id: int) -> str:
    session = db_session()
    series = series_service.get(session, recurrence_id)
    runs = list(session.scalars(series_service.runs(series.id).limit(RUNS_SHOWN)))
    return render_template(
        "recurrences/detail.html",
        series=series,
        words=_words(series),
        next_text=_next_text(series),
        model=session.get(Campaign, series.model_campaign_id),
        runs=[(run, series_service.run_figures(run)) for run in runs],
        more_runs=len(runs) == RUNS_SHOWN,
        events=session.scalars(series_service.series_events(series, LOG_SIZE)).all(),
        Active=RecurrenceState.ACTIVE,
        Paused=RecurrenceState.PAUSED,
        Stopped=RecurrenceState.STOPPED,
    )


def _day_words(day: date) -> str:
    """A day as the reader writes it ("31 March 2027" in English)."""
    return format_date(day, "d MMMM y", locale=i18n.format_locale())


def _words(series: Recurrence) -> str:
    """The series' rule in the reader's words."""
    return describe(series_service.rule_of(series), _, _day_words)


def _next_text(series: Recurrence) -> str:
    """When the next run comes, as the shop owner reads it."""
    if series.next_run_at is None or series.state == RecurrenceState.STOPPED:
        return _("none")
    if series.timezone is None:
        day = run_day(series_service.rule_of(series), series.next_run_at)
        return _(
            "%(day)s, %(time)s in each customer's local time",
            day=_day_words(day),
            time=series.time_of_day,
        )
    local = series.next_run_at.astimezone(zone(series.timezone))
    return _(
        "%(day)s, %(time)s %(zone)s time",
        day=_day_words(local.date()),
        time=f"{local:%H:%M}",
        zone=series.timezone,
    )


MOVES: dict[str, tuple[Callable[[Session, Any, int], object], str]] = {
    "pause": (series_service.pause, N_("Paused: no new run starts until you resume.")),
    "resume": (series_service.resume, N_("Resumed.")),
    "stop": (
        series_service.stop,
        N_("Stopped: no new run starts. Past runs keep their reports."),
    ),
}


@bp.post("/<int:recurrence_id>/<action>")
@requires(Role.OPERATOR)
def act(recurrence_id: int, action: str) -> WResponse:
    move = MOVES.get(action)
    if move is None:
        raise NotFound(f"There is no recurring campaign action {action!r}.")
    verb, done = move
    apply_action(lambda s: verb(s, current_user, recurrence_id), _(done))
    return redirect(url_for("recurrences.detail", recurrence_id=recurrence_id))


# --- what the campaign pages show ------------------------------------------------------


@bp.app_template_global()
def series_of(campaign: Campaign) -> dict[str, Any]:
    """The series a campaign belongs to: as its model (a draft) or as one of its runs."""
    session = db_session()
    if campaign.recurrence_id is not None:
        run_of = session.get(Recurrence, campaign.recurrence_id)
        return {"run_of": run_of, "model_of": None}
    model_of = (
        series_service.series_of_model(session, campaign.id)
        if campaign.status == CampaignStatus.DRAFT
        else None
    )
    return {"run_of": None, "model_of": model_of}


@bp.app_template_global()
def recurring_series() -> list[dict[str, Any]]:
    """The campaigns list's Recurring section: each series, its rule, next and latest run."""
    session = db_session()
    rows = list(session.scalars(series_service.series_newest_first().limit(100)))
    latest = series_service.recent_runs(session, [s.id for s in rows])
    return [
        {
            "series": s,
            "words": _words(s),
            "next": _next_text(s),
            "latest": (latest.get(s.id) or [None])[0],
        }
        for s in rows
    ]
