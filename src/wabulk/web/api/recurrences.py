"""Recurring campaigns over the API: repeat a draft, list, read with its runs, pause, resume,
stop. Every move goes through `campaigns.recurrence`, like the buttons of the series' page."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field
from sqlalchemy.orm import Session

from ...campaigns import recurrence as series_service
from ...campaigns.recurrence import RuleInput
from ...campaigns.recurrence_rules import last_day, run_day
from ...models import Campaign, Recurrence, Role
from .registry import Call, Id, Input, Output, Page, Paged, PageQuery, Text, keyset, operation

TAG = "Recurring campaigns"
RUNS_SHOWN = 100
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["10:00"])]
Zone = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")]


class RecurrenceIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "campaign_id": 1,
                    "frequency": "monthly",
                    "day_of_month": 1,
                    "time_of_day": "10:00",
                    "timezone": None,
                    "ends_on": "2027-03-31",
                }
            ]
        }
    )

    campaign_id: Id = Field(description="The draft to repeat; it becomes the series' model.")
    name: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        None, description="Left out: the draft's name. Each run is named after it and its date."
    )
    frequency: Literal["daily", "weekly", "monthly"]
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=list,
        max_length=7,
        description="Weekly: the days, Monday = 0 … Sunday = 6.",
    )
    day_of_month: int | None = Field(
        None, ge=1, le=31, description="Monthly: 1 to 31; a shorter month runs on its last day."
    )
    time_of_day: HHMM = "10:00"
    timezone: Zone | None = Field(
        None,
        description="An IANA zone such as Asia/Kolkata; null: each customer's local time "
        "(from their number; customers whose zone is unknown get the creator's zone).",
    )
    starts_on: date | None = Field(None, description="First run on or after; left out: today.")
    ends_on: date | None = Field(None, description="Last run on or before; left out: no end.")


class RunOut(Output):
    id: int = Field(description="The run's campaign: see /campaigns/{campaign_id}.")
    name: str
    status: str
    total: int
    sent: int = Field(description="Messages sent (still sent, delivered or read).")
    delivered: int
    read: int
    replied: int
    launched_at: datetime | None
    finished_at: datetime | None


class RecurrenceOut(Output):
    id: int
    name: str
    model_campaign_id: int = Field(description="The draft each run copies.")
    rule: str = Field(
        description="The rule in words.",
        examples=["Every month on the 1st at 10:00, each customer's local time"],
    )
    frequency: Literal["daily", "weekly", "monthly"]
    weekdays: list[int]
    day_of_month: int | None
    time_of_day: str
    timezone: str | None = Field(description="Null: each customer's local time.")
    starts_at: datetime
    ends_on: date | None = Field(description="The last day a run may fall on; null: no end.")
    next_run_at: datetime | None = Field(
        description="When the next run is prepared (in customers' local time: when the day "
        "begins at UTC+14; each message then waits for its customer's time)."
    )
    next_run_on: date | None = Field(description="The day of the next run.")
    state: Literal["active", "paused", "stopped"]
    state_reason: str | None = Field(
        description="Why it waits, skipped a run, or stopped, in plain words."
    )
    runs: int = Field(description="Runs started so far.")
    created_at: datetime


class RecurrenceDetail(RecurrenceOut):
    recent_runs: list[RunOut] = Field(description=f"The newest {RUNS_SHOWN} runs, newest first.")


def _out(series: Recurrence) -> dict[str, Any]:
    rule = series_service.rule_of(series)
    return {
        "id": series.id,
        "name": series.name,
        "model_campaign_id": series.model_campaign_id,
        "rule": series_service.words(series),
        "frequency": series.frequency.value,
        "weekdays": list(series.weekdays or []),
        "day_of_month": series.day_of_month,
        "time_of_day": series.time_of_day,
        "timezone": series.timezone,
        "starts_at": series.starts_at,
        "ends_on": last_day(rule),
        "next_run_at": series.next_run_at,
        "next_run_on": run_day(rule, series.next_run_at) if series.next_run_at else None,
        "state": series.state.value,
        "state_reason": series.state_reason,
        "runs": series.runs,
        "created_at": series.created_at,
    }


def _run(run: Campaign) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status.value,
        "total": run.total,
        **series_service.run_figures(run),
        "launched_at": run.launched_at,
        "finished_at": run.finished_at,
    }


def _detail(session: Session, series: Recurrence) -> RecurrenceDetail:
    runs = session.scalars(series_service.runs(series.id).limit(RUNS_SHOWN))
    return RecurrenceDetail.model_validate({**_out(series), "recent_runs": [_run(r) for r in runs]})


@operation(
    "GET",
    "/recurrences",
    summary="List recurring campaigns",
    tag=TAG,
    query=PageQuery,
    response=Page[RecurrenceOut],
)
def list_recurrences(call: Call, query: PageQuery) -> Paged:
    """Newest first, each with its rule in words and its next run."""
    page = keyset(
        call.session, series_service.series_newest_first(), Recurrence.id, query, newest_first=True
    )
    return Paged([_out(s) for s in page.rows], page.next_id)


@operation(
    "GET",
    "/recurrences/{recurrence_id}",
    summary="Get a recurring campaign with its runs",
    tag=TAG,
    response=RecurrenceDetail,
)
def get_recurrence(call: Call, recurrence_id: int) -> RecurrenceDetail:
    """Each run is a campaign of its own: its recipients and report are under /campaigns."""
    return _detail(call.session, series_service.get(call.session, recurrence_id))


@operation(
    "POST",
    "/recurrences",
    summary="Repeat a draft campaign",
    tag=TAG,
    role=Role.OPERATOR,
    body=RecurrenceIn,
    response=RecurrenceDetail,
    status=201,
    renames={"lists": "campaign_id", "senders": "campaign_id", "body": "campaign_id"},
)
def create_recurrence(call: Call, body: RecurrenceIn) -> RecurrenceDetail:
    """The draft becomes the series' model: it is no longer launched by itself, and editing
    it changes the runs to come. Refused (422) when the draft lacks what a launch needs, and
    (409) when it is not a draft or already repeats. A run never starts while the previous
    run is still sending."""
    data = RuleInput(
        frequency=body.frequency,
        time_of_day=body.time_of_day,
        weekdays=list(body.weekdays),
        day_of_month=body.day_of_month,
        timezone=body.timezone,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        name=body.name,
    )
    series = series_service.create(call.session, call.user, body.campaign_id, data)
    return _detail(call.session, series)


def _move(name: str, doc: str) -> None:
    verb = getattr(series_service, name)

    def handler(call: Call, recurrence_id: int) -> RecurrenceDetail:
        verb(call.session, call.user, recurrence_id)
        return _detail(call.session, series_service.get(call.session, recurrence_id))

    handler.__name__ = f"{name}_recurrence"
    handler.__doc__ = doc
    operation(
        "POST",
        f"/recurrences/{{recurrence_id}}/{name}",
        summary=f"{name.capitalize()} a recurring campaign",
        tag=TAG,
        role=Role.OPERATOR,
        response=RecurrenceDetail,
    )(handler)


_move("pause", "No new run starts until resumed; a run already sending carries on.")
_move("resume", "Runs start again from the next one after now; those missed are not sent late.")
_move(
    "stop",
    "For good: no new run starts; past runs keep their reports, and a run already sending "
    "carries on (cancel it as a campaign).",
)
