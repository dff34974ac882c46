"""Recurring campaigns: a draft repeated on a calendar rule, each run a campaign of its own.

- A person turns a draft into a series (`create`); the draft becomes the series' model:
  it is never launched itself (`refuse_model`), and editing it changes the runs to come.
- The worker's `run_due` copies the model into a new campaign (linked by `recurrence_id`,
  named "<series> · 1 Dec 2026") and launches it, so each run has its own recipients,
  counters and report.
- The claim is a conditional UPDATE of `next_run_at` (after FOR UPDATE SKIP LOCKED on
  PostgreSQL) in the transaction that creates the run: two workers never both run an
  occurrence, and a worker killed before its commit leaves the occurrence due for the next.
- A run never starts while the previous run still has messages waiting or being sent (to
  the same people): the occurrence waits, saying so once; when the following occurrence
  comes first, the waiting one is skipped with an Event. An occurrence missed while no
  worker ran is skipped the same way once the following one has also passed, rather than
  sending two runs back to back.
- In customers' local time, each recipient's message is due at HH:MM in their own zone
  (`due_by_zone`), never in the past; contacts whose zone is unknown get the series
  creator's zone (else UTC).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, cast
from zoneinfo import available_timezones

from sqlalchemy import Select, Table, func, or_, select, update
from sqlalchemy.orm import Session, object_session

from .. import events
from ..auth.permissions import require_role
from ..errors import Conflict, DomainError, NotFound, ValidationError
from ..models import (
    Campaign,
    CampaignStatus,
    Contact,
    Event,
    EventLevel,
    Message,
    Recurrence,
    RecurrenceFrequency,
    RecurrenceState,
    Role,
    User,
    list_members,
    utcnow,
)
from ..words import N_, said
from . import followups, lifecycle
from .recurrence_rules import (
    Rule,
    day_words,
    describe,
    due_in_zone,
    end_of,
    last_day,
    next_occurrence,
    run_day,
    start_of,
)

R = RecurrenceState
C = CampaignStatus
TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
MAX_NAME = 200
LAST_YEAR = 2100
DUE_BATCH = 50  # series handled per worker step; the rest wait for the next step
# A run counts as still sending while it has messages waiting or in flight.
UNFINISHED = (C.SCHEDULED, C.RUNNING, C.PAUSED)
WAITING = "recurrence.waiting"
recurrences = cast(Table, Recurrence.__table__)
messages = cast(Table, Message.__table__)


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """IANA zones a series may be fixed to (read once: the list comes from files)."""
    return frozenset(available_timezones())


@dataclass
class RuleInput:
    """A series as a person chose it (the page's form or the API's body)."""

    frequency: str
    time_of_day: str = "10:00"
    weekdays: list[int] = field(default_factory=list)
    day_of_month: int | None = None
    timezone: str | None = None  # None: each customer's local time
    starts_on: date | None = None  # None: today
    ends_on: date | None = None  # None: no end
    name: str | None = None  # None: the draft's name


def check_rule(data: RuleInput, now: datetime) -> Rule:
    """A Rule, or a ValidationError naming the field at fault."""
    if data.frequency not in {f.value for f in RecurrenceFrequency}:
        raise ValidationError(N_("Choose how often: every day, week or month."), field="frequency")
    if not isinstance(data.time_of_day, str) or not TIME_RE.match(data.time_of_day):
        raise ValidationError(N_("Give the time as HH:MM, e.g. 10:00."), field="time_of_day")
    weekdays: tuple[int, ...] = ()
    day_of_month = None
    if data.frequency == "weekly":
        if len(data.weekdays) > 7 or any(not 0 <= d <= 6 for d in data.weekdays):
            raise ValidationError(
                N_("Weekdays go from Monday (0) to Sunday (6)."), field="weekdays"
            )
        weekdays = tuple(sorted(set(data.weekdays)))
        if not weekdays:
            raise ValidationError(N_("Tick at least one day of the week."), field="weekdays")
    if data.frequency == "monthly":
        if data.day_of_month is None or not 1 <= data.day_of_month <= 31:
            raise ValidationError(
                N_("Choose the day of the month, from 1 to 31."), field="day_of_month"
            )
        day_of_month = data.day_of_month
    zone_name = data.timezone or None
    if zone_name is not None and (len(zone_name) > 64 or zone_name not in zone_names()):
        raise ValidationError(
            N_("Choose a timezone from the list, or each customer's local time."),
            field="timezone",
        )
    rule = Rule(data.frequency, data.time_of_day, weekdays, day_of_month, zone_name)
    today = run_day(rule, now)
    starts_on = data.starts_on or today
    if starts_on < today:
        raise ValidationError(
            N_("The first run date has passed; choose today or a later day."), field="starts_on"
        )
    if starts_on.year > LAST_YEAR:
        raise ValidationError(
            said("Choose a first run date before %(year)s.", year=LAST_YEAR), field="starts_on"
        )
    ends_at = None
    if data.ends_on is not None:
        if data.ends_on < starts_on:
            raise ValidationError(
                N_("The end date must be on or after the first run date."), field="ends_on"
            )
        if data.ends_on.year > LAST_YEAR:
            raise ValidationError(
                said("Choose an end date before %(year)s.", year=LAST_YEAR), field="ends_on"
            )
        ends_at = end_of(data.ends_on, rule)
    return Rule(
        data.frequency,
        data.time_of_day,
        weekdays,
        day_of_month,
        zone_name,
        start_of(starts_on, rule),
        ends_at,
    )


def rule_of(series: Recurrence) -> Rule:
    return Rule(
        series.frequency.value,
        series.time_of_day,
        tuple(series.weekdays or ()),
        series.day_of_month,
        series.timezone,
        series.starts_at,
        series.ends_at,
    )


def words(series: Recurrence) -> str:
    """The rule in words, for pages and the API."""
    return describe(rule_of(series))


# --- reading -------------------------------------------------------------------------


def get(session: Session, recurrence_id: int, lock: bool = False) -> Recurrence:
    query = select(Recurrence).where(Recurrence.id == recurrence_id)
    if lock:
        query = query.with_for_update()
    found = session.scalar(query)
    if found is None:
        raise NotFound(said("There is no recurring campaign #%(id)s.", id=recurrence_id))
    return found


def series_newest_first() -> Select[Any]:
    return select(Recurrence).order_by(Recurrence.id.desc())


def runs(series_id: int) -> Select[Any]:
    """A series' runs, newest first (served by the index on campaigns.recurrence_id)."""
    return select(Campaign).where(Campaign.recurrence_id == series_id).order_by(Campaign.id.desc())


def series_of_model(session: Session, campaign_id: int) -> Recurrence | None:
    """The series whose model is this draft, if any."""
    return session.scalar(select(Recurrence).where(Recurrence.model_campaign_id == campaign_id))


def is_model(campaign: Campaign) -> bool:
    """Whether a draft is a series' model (its own Launch is the series')."""
    session = object_session(campaign)
    if session is None or campaign.status != C.DRAFT:
        return False
    return series_of_model(session, campaign.id) is not None


def refuse_model(session: Session, campaign: Campaign, verb: str) -> None:
    """Called by lifecycle before launching or deleting a draft: a model is the series'."""
    series = series_of_model(session, campaign.id)
    if series is not None:
        raise Conflict(
            said(
                "%(name)s is the model of the recurring campaign %(series)s, which keeps it for "
                "its runs, so you cannot %(verb)s it. To send it once, duplicate it and launch "
                "the copy.",
                name=repr(campaign.name),
                series=repr(series.name),
                verb=verb,
            )
        )


# --- a person's moves ------------------------------------------------------------------


def create(
    session: Session,
    actor: User | None,
    campaign_id: int,
    data: RuleInput,
    now: datetime | None = None,
) -> Recurrence:
    """Turn a draft into a series' model; the first run is the rule's first occurrence."""
    require_role(actor, Role.OPERATOR)
    now = now or utcnow()
    model = lifecycle.get_campaign(session, campaign_id, lock=True)
    if model.status != C.DRAFT:
        raise Conflict(N_("Only a draft can be repeated; duplicate this campaign first."))
    if series_of_model(session, model.id) is not None:
        raise Conflict(
            said("%(name)s already repeats; open its series to change it.", name=repr(model.name))
        )
    name = " ".join((data.name or model.name).split())
    if not name or len(name) > MAX_NAME:
        raise ValidationError(
            said("Give the series a name of at most %(n)s characters.", n=MAX_NAME), field="name"
        )
    rule = check_rule(data, now)
    # Whatever a launch would refuse (no list, no sender, no message) is said now.
    lifecycle.check_ready(model, lifecycle.effective_message(session, model)[0])
    first = next_occurrence(rule, now)
    if first is None:
        raise ValidationError(
            N_("No run falls between the first run date and the end date."), field="ends_on"
        )
    series = Recurrence(
        name=name,
        model_campaign_id=model.id,
        frequency=RecurrenceFrequency(rule.frequency),
        weekdays=list(rule.weekdays),
        day_of_month=rule.day_of_month,
        time_of_day=rule.time_of_day,
        timezone=rule.timezone,
        starts_at=rule.starts_at,
        ends_at=rule.ends_at,
        next_run_at=first,
        state=R.ACTIVE,
        created_by_id=actor.id if actor else None,
    )
    session.add(series)
    session.flush()
    events.record(
        session,
        "recurrence.created",
        said(
            "%(who)s made %(name)s repeat: %(detail)s. First run: %(day)s.",
            who=events.actor_name(actor),
            name=repr(name),
            detail=describe(rule),
            day=day_words(run_day(rule, first)),
        ),
        user=actor,
        campaign_id=model.id,
    )
    return series


def pause(session: Session, actor: User | None, recurrence_id: int) -> Recurrence:
    """No new run starts until resumed; a run already sending carries on."""
    require_role(actor, Role.OPERATOR)
    series = get(session, recurrence_id, lock=True)
    if series.state != R.ACTIVE:
        raise Conflict(
            said(
                "%(name)s is %(what)s; only an active one can pause.",
                name=repr(series.name),
                what=series.state.value,
            )
        )
    series.state = R.PAUSED
    series.state_reason = said("Paused by %(who)s.", who=events.actor_name(actor))
    _record(
        session,
        series,
        "recurrence.paused",
        said("%(who)s paused the series.", who=events.actor_name(actor)),
    )
    return series


def resume(
    session: Session, actor: User | None, recurrence_id: int, now: datetime | None = None
) -> Recurrence:
    """Runs start again from the next occurrence after now (those missed while paused are
    not sent late)."""
    require_role(actor, Role.OPERATOR)
    now = now or utcnow()
    series = get(session, recurrence_id, lock=True)
    if series.state != R.PAUSED:
        raise Conflict(
            said(
                "%(name)s is %(what)s; only a paused one resumes.",
                name=repr(series.name),
                what=series.state.value,
            )
        )
    following = next_occurrence(rule_of(series), now)
    if following is None:
        _end(session, series, now)
        return series
    series.state, series.state_reason, series.next_run_at = R.ACTIVE, None, following
    _record(
        session,
        series,
        "recurrence.resumed",
        said(
            "%(who)s resumed the series; next run %(day)s.",
            who=events.actor_name(actor),
            day=day_words(run_day(rule_of(series), following)),
        ),
    )
    return series


def stop(session: Session, actor: User | None, recurrence_id: int) -> Recurrence:
    """For good: no new run starts; past runs and their reports stay, and a run already
    sending carries on (cancel it on its own page)."""
    require_role(actor, Role.OPERATOR)
    series = get(session, recurrence_id, lock=True)
    if series.state == R.STOPPED:
        raise Conflict(said("%(name)s is already stopped.", name=repr(series.name)))
    series.state = R.STOPPED
    series.state_reason = said("Stopped by %(who)s.", who=events.actor_name(actor))
    series.next_run_at = None
    _record(
        session,
        series,
        "recurrence.stopped",
        said("%(who)s stopped the series.", who=events.actor_name(actor)),
    )
    return series


# --- the worker's move -----------------------------------------------------------------


def run_due(session: Session, now: datetime) -> list[int]:
    """Start the runs whose time has come; returns the ids of the run campaigns created."""
    due = session.scalars(
        select(Recurrence.id)
        .where(Recurrence.state == R.ACTIVE, Recurrence.next_run_at <= now)
        .order_by(Recurrence.next_run_at)
        .limit(DUE_BATCH)
    ).all()
    created = []
    for series_id in due:
        run_id = _run_one(session, series_id, now)
        if run_id is not None:
            created.append(run_id)
    return created


def _run_one(session: Session, series_id: int, now: datetime) -> int | None:
    series = session.scalar(
        select(Recurrence)
        .where(
            Recurrence.id == series_id,
            Recurrence.state == R.ACTIVE,
            Recurrence.next_run_at <= now,
        )
        .with_for_update(skip_locked=True)  # PostgreSQL: another worker has it, skip
    )
    if series is None or series.next_run_at is None:
        return None
    rule = rule_of(series)
    occurrence = series.next_run_at
    day = day_words(run_day(rule, occurrence))
    following = next_occurrence(rule, occurrence)
    overtaken = following is not None and following <= now
    previous = _unfinished_run(session, series.id)
    if previous is not None or overtaken:
        if overtaken:
            why = (
                said("the previous run (%(name)s) was still sending", name=previous.name)
                if previous is not None
                else N_("wabulk was not running at its time")
            )
            if _claim(session, series, occurrence, following):
                _record(
                    session,
                    series,
                    "recurrence.skipped",
                    said(
                        "The %(day)s run was skipped: %(why)s when the next one came.",
                        day=day,
                        why=why,
                    ),
                    EventLevel.WARNING,
                )
            return None
        waiting = said("The %(day)s run waits: the previous run is still sending.", day=day)
        if series.state_reason != waiting:
            series.state_reason = waiting
            _record(session, series, WAITING, waiting, EventLevel.WARNING)
        return None
    if not _claim(session, series, occurrence, following):
        return None  # another worker ran it meanwhile (SQLite: no row lock to skip on)
    run_id = None
    try:
        with session.begin_nested():
            run_id = _launch_run(session, series, rule, occurrence, day, now)
    except DomainError as exc:
        series.state_reason = said(
            "The %(day)s run could not start: %(problem)s", day=day, problem=exc
        )
        _record(session, series, "recurrence.failed", series.state_reason, EventLevel.ERROR)
    else:
        series.runs += 1
    if following is None:
        _end(session, series, now)
    return run_id


def _claim(
    session: Session, series: Recurrence, occurrence: datetime, following: datetime | None
) -> bool:
    """Move the series past `occurrence` if nobody did; the caller's transaction holds it."""
    table = recurrences
    moved = session.execute(
        update(table)
        .where(
            table.c.id == series.id,
            table.c.state == R.ACTIVE,
            table.c.next_run_at == occurrence,
        )
        .values(next_run_at=following, state_reason=None, updated_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]  # a DML statement's result has one
    session.refresh(series)
    return moved == 1


def _unfinished_run(session: Session, series_id: int) -> Campaign | None:
    """A run, or a follow-up of a run, with messages waiting or on their way."""
    runs_of = select(Campaign.id).where(Campaign.recurrence_id == series_id)
    return session.scalar(
        select(Campaign)
        .where(
            or_(Campaign.recurrence_id == series_id, Campaign.parent_campaign_id.in_(runs_of)),
            Campaign.status.in_(UNFINISHED),
            (Campaign.n_queued + Campaign.n_sending) > 0,
        )
        .order_by(Campaign.id.desc())
        .limit(1)
    )


def _launch_run(
    session: Session,
    series: Recurrence,
    rule: Rule,
    occurrence: datetime,
    day: str,
    now: datetime,
) -> int:
    model = lifecycle.get_campaign(session, series.model_campaign_id)
    run = copy_model(session, series, model, occurrence)
    fallback_zone = _creator_zone(session, series)
    dues: dict[str, datetime] = {}
    if rule.timezone is None:
        for name in _audience_zones(session, model):
            dues[name] = max(now, due_in_zone(rule, occurrence, name))
        unzoned = max(now, due_in_zone(rule, occurrence, fallback_zone))
        start = min([unzoned, *dues.values()])
        # Scheduled until the first customer's time: the run's page says when it starts.
        run.scheduled_at = start if start > now else None
    session.flush()
    followups.copy_steps(session, model.id, run.id)  # each run follows up as its model says
    lifecycle.launch(session, None, run.id, now=now, due_by_zone=dues or None)
    if rule.timezone is None:
        _place_unzoned(session, run.id, unzoned)
    _rename_launcher(session, run.id, series.name)
    _record(
        session,
        series,
        "recurrence.run",
        said(
            "The %(day)s run started: %(name)s, %(n)s recipient(s).",
            day=day,
            name=repr(run.name),
            n=f"{run.total:,}",
        ),
    )
    return run.id


def copy_model(
    session: Session, series: Recurrence, model: Campaign, occurrence: datetime
) -> Campaign:
    """A new draft like the model (as `lifecycle.duplicate` copies), linked to the series."""
    day = run_day(rule_of(series), occurrence)
    run = Campaign(
        name=f"{series.name} · {day.day} {day:%b %Y}"[:MAX_NAME],
        template_id=model.template_id,
        body=model.body,
        media_id=model.media_id,
        pacing=dict(model.pacing or {}),
        max_attempts=model.max_attempts,
        text_before_document=model.text_before_document,
        segment_id=model.segment_id,
        recurrence_id=series.id,
        created_by_id=series.created_by_id,
    )
    run.lists = list(model.lists)
    run.senders = list(model.senders)
    session.add(run)
    return run


def _audience_zones(session: Session, model: Campaign) -> list[str]:
    """The distinct zones of the run's audience (all contacts' for a segment: a superset,
    whose extra zones cost nothing)."""
    contacts = Contact.__table__
    query = select(contacts.c.timezone).where(contacts.c.timezone.is_not(None)).distinct()
    if model.segment_id is None:
        ids = [lst.id for lst in model.lists]
        query = query.join(list_members, list_members.c.contact_id == contacts.c.id).where(
            list_members.c.list_id.in_(ids)
        )
    return [z for z in session.scalars(query) if z]


def _creator_zone(session: Session, series: Recurrence) -> str | None:
    if series.created_by_id is None:
        return None
    return session.scalar(select(User.timezone).where(User.id == series.created_by_id))


def _place_unzoned(session: Session, run_id: int, due: datetime) -> None:
    """Recipients with no known zone wait for the series creator's HH:MM."""
    contacts = Contact.__table__
    session.execute(
        update(messages)
        .where(
            messages.c.campaign_id == run_id,
            messages.c.contact_id.in_(select(contacts.c.id).where(contacts.c.timezone.is_(None))),
        )
        .values(next_attempt_at=due, queued_at=due)
    )


def _rename_launcher(session: Session, run_id: int, series_name: str) -> None:
    """The launch's own log line names its actor, none here: the series launched it."""
    session.execute(
        update(Event)
        .where(Event.campaign_id == run_id, Event.kind == "campaign.launched")
        .values(
            text=func.replace(
                Event.text,
                events.actor_name(None),
                said("The recurring campaign %(name)s", name=repr(series_name)),
            )
        )
        .execution_options(synchronize_session=False)
    )


def _end(session: Session, series: Recurrence, now: datetime) -> None:
    rule = rule_of(series)
    series.state = R.STOPPED
    series.next_run_at = None
    last = last_day(rule)
    end = day_words(last) if last else None
    series.state_reason = (
        said("Ended: its end date (%(day)s) has passed.", day=end)
        if end
        else N_("Ended: no run is left.")
    )
    _record(session, series, "recurrence.ended", series.state_reason)


def _record(
    session: Session,
    series: Recurrence,
    kind: str,
    text: str,
    level: EventLevel = EventLevel.INFO,
) -> None:
    """The series' log lives on its model draft (the series page reads it from there)."""
    events.record(session, kind, text, level=level, campaign_id=series.model_campaign_id)


def series_events(series: Recurrence, limit: int = 20) -> Select[Any]:
    return (
        select(Event)
        .where(Event.campaign_id == series.model_campaign_id, Event.kind.like("recurrence.%"))
        .order_by(Event.id.desc())
        .limit(limit)
    )


def run_figures(run: Campaign) -> dict[str, int]:
    """Sent, delivered, read and replied of one run, from its maintained counters (each
    figure counts the messages that got at least that far)."""
    return {
        "sent": run.n_sent + run.n_delivered + run.n_read,
        "delivered": run.n_delivered + run.n_read,
        "read": run.n_read,
        "replied": run.n_replied,
    }


def recent_runs(session: Session, series_ids: Sequence[int], per_series: int = 1) -> dict:
    """The latest run of each series (the campaigns list shows it beside the series)."""
    out: dict[int, list[Campaign]] = {i: [] for i in series_ids}
    for sid in series_ids:
        out[sid] = list(session.scalars(runs(sid).limit(per_series)))
    return out


def without_series(query: Select[Any]) -> Select[Any]:
    """A campaigns query minus the series' runs and models (the campaigns list shows each
    series once, in its Recurring section, and its runs on the series' page)."""
    return query.where(
        Campaign.recurrence_id.is_(None),
        Campaign.id.not_in(select(Recurrence.model_campaign_id)),
    )
