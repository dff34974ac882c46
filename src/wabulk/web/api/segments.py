"""Segments over the API: saved audiences defined by conditions, their live count and sample.

The conditions are data (`segments.terms`), checked by the same service as the Segments
page; a mistake is answered 422 naming the condition's part, e.g. `conditions.2.value`.
A draft campaign takes a segment with `segment_id` (see campaigns.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, WithJsonSchema, field_validator
from sqlalchemy import select

from ...models import Role, Segment
from ...segments import service as segments
from ...segments import terms as segment_terms
from ...words import N_, said
from .contacts import ContactOut
from .registry import (
    Call,
    Id,
    Input,
    Output,
    Page,
    Paged,
    PageQuery,
    Text,
    keyset,
    operation,
    storable,
)

SAMPLE = 10
CAP = 100_000

FieldName = Literal[
    "list", "attribute", "country", "timezone", "name", "opt_in", "not_on_whatsapp", "outcome"
]
Op = Literal[
    "in",
    "not_in",
    "eq",
    "neq",
    "contains",
    "not_contains",
    "empty",
    "not_empty",
    "gt",
    "gte",
    "lt",
    "lte",
    "before",
    "after",
    "within_days",
    "not_within_days",
    "received",
    "not_delivered",
    "delivered_not_read",
    "read_not_replied",
    "replied",
    "failed",
    "failed_retryable",
]
# Documented as the shapes the service accepts; checked there, so its message names the
# condition (a union here would answer with pydantic's branch names instead).
VALUE_SCHEMA = {
    "anyOf": [
        {"type": "string", "maxLength": segment_terms.MAX_VALUE_CHARS},
        {"type": "number"},
        {"type": "boolean"},
        {
            "type": "array",
            "maxItems": segment_terms.MAX_IDS,
            "items": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 64}]},
        },
        {"type": "null"},
    ]
}
CONDITION_HELP = """One condition; `field` says which shape:
- `list`: op `in`/`not_in`, value: list ids;
- `attribute`: `key` (an imported column, e.g. `due_amount`), op `eq`, `neq`, `contains`,
  `not_contains`, `empty`, `not_empty`, `gt`, `gte`, `lt`, `lte` (numbers), `before`,
  `after` (dates YYYY-MM-DD), `within_days`, `not_within_days` (a number of days);
- `country`: op `in`/`not_in`, value: ISO codes such as `IN`;
- `timezone`: op `in`/`not_in`, value: zones such as `Asia/Kolkata`;
- `name`: op `contains` (a text), `empty`, `not_empty`;
- `opt_in`: op `eq`, value `never_opted_out` or `opted_back_in`;
- `not_on_whatsapp`: op `eq`, value true or false;
- `outcome`: `campaign_id` and op `received`, `not_delivered`, `delivered_not_read`,
  `read_not_replied`, `replied`, `failed` (value: an error code or reason text, or null),
  `failed_retryable`."""


def _storable_value(value: Any) -> Any:
    """Texts PostgreSQL can store, one level of list at most (the service checks the rest)."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and len(value) > segment_terms.MAX_IDS:
        raise ValueError(said("choose at most %(most)s values", most=segment_terms.MAX_IDS))
    for item in items:
        if isinstance(item, list | dict):
            raise ValueError(N_("must be a text, a number, true/false or a list of them"))
        if isinstance(item, str):
            storable(item)
            if "\x00" in item:  # PostgreSQL's JSONB refuses it
                raise ValueError(N_("must not contain the NUL character (\\u0000)"))
    return value


class ConditionIn(Input):
    model_config = ConfigDict(json_schema_extra={"description": CONDITION_HELP})

    field: FieldName
    op: Op
    key: Annotated[Text, Field(max_length=segment_terms.MAX_KEY_CHARS)] | None = Field(
        None, description="The attribute's name, for `attribute`."
    )
    campaign_id: Id | None = Field(None, description="The earlier campaign, for `outcome`.")
    value: Annotated[Any, WithJsonSchema(VALUE_SCHEMA)] = None

    @field_validator("value")
    @classmethod
    def _value(cls, value: Any) -> Any:
        return _storable_value(value)


class TermsIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "match": "all",
                    "conditions": [
                        {"field": "attribute", "key": "city", "op": "eq", "value": "Pune"},
                        {
                            "field": "attribute",
                            "key": "last_purchase",
                            "op": "within_days",
                            "value": 90,
                        },
                        {
                            "field": "outcome",
                            "campaign_id": 1,
                            "op": "delivered_not_read",
                            "value": None,
                        },
                    ],
                }
            ]
        }
    )

    match: Literal["all", "any"] = Field(
        "all", description="`all`: every condition must hold; `any`: at least one."
    )
    conditions: list[ConditionIn] = Field(
        default_factory=list,
        max_length=segment_terms.MAX_CONDITIONS,
        description="Empty: everyone who can be messaged. Opted-out contacts are never in.",
    )

    def terms(self) -> dict[str, Any]:
        return {
            "match": self.match,
            "conditions": [c.model_dump(exclude_unset=True) for c in self.conditions],
        }


class SegmentIn(TermsIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Pune, bought lately",
                    "description": "For the monsoon offer",
                    "match": "all",
                    "conditions": [
                        {"field": "attribute", "key": "city", "op": "eq", "value": "Pune"},
                        {
                            "field": "attribute",
                            "key": "last_purchase",
                            "op": "within_days",
                            "value": 90,
                        },
                    ],
                }
            ]
        }
    )

    name: Annotated[Text, Field(min_length=1, max_length=120)]
    description: Annotated[Text, Field(max_length=500)] | None = None


class TermsOut(Output):
    match: Literal["all", "any"]
    conditions: list[dict[str, Any]] = Field(description="As normalised by the service.")


class SegmentOut(Output):
    id: int
    name: str
    description: str | None
    terms: TermsOut
    summary: str = Field(description="The conditions in one sentence, as the pages show them.")
    created_at: datetime
    updated_at: datetime


class PreviewOut(Output):
    count: int = Field(description="Who would be messaged now (at most `cap`).")
    capped: bool = Field(description="True: there are more than `cap`; the count stops there.")
    cap: int
    summary: str
    sample: list[ContactOut] = Field(description=f"Up to {SAMPLE} of them.")


def _out(call: Call, segment: Segment) -> SegmentOut:
    terms = segment.terms or {}
    return SegmentOut(
        id=segment.id,
        name=segment.name,
        description=segment.description,
        terms=TermsOut(
            match=terms.get("match", "all"), conditions=list(terms.get("conditions") or [])
        ),
        summary=segment_terms.describe(terms, call.session),
        created_at=segment.created_at,
        updated_at=segment.updated_at,
    )


def _preview(call: Call, terms: dict[str, Any]) -> PreviewOut:
    count, capped = segments.count(call.session, terms, cap=CAP)
    return PreviewOut(
        count=count,
        capped=capped,
        cap=CAP,
        summary=segment_terms.describe(terms, call.session),
        sample=[
            ContactOut.model_validate(c) for c in segments.sample(call.session, terms, n=SAMPLE)
        ],
    )


@operation(
    "GET",
    "/segments",
    summary="List segments",
    tag="Segments",
    query=PageQuery,
    response=Page[SegmentOut],
)
def list_segments(call: Call, query: PageQuery) -> Paged:
    """Oldest first."""
    page = keyset(call.session, select(Segment), Segment.id, query)
    return Paged([_out(call, s) for s in page.rows], page.next_id)


@operation(
    "GET",
    "/segments/{segment_id}",
    summary="Get a segment",
    tag="Segments",
    response=SegmentOut,
)
def get_segment(call: Call, segment_id: int) -> SegmentOut:
    return _out(call, segments.get(call.session, segment_id))


@operation(
    "POST",
    "/segments",
    summary="Create a segment",
    tag="Segments",
    role=Role.OPERATOR,
    body=SegmentIn,
    response=SegmentOut,
    status=201,
)
def create_segment(call: Call, body: SegmentIn) -> SegmentOut:
    """A name already taken is refused (422 on `name`); a bad condition is refused naming
    it, e.g. `conditions.2.value`."""
    segment = segments.create(call.session, call.user, body.name, body.description, body.terms())
    return _out(call, segment)


@operation(
    "PUT",
    "/segments/{segment_id}",
    summary="Replace a segment",
    tag="Segments",
    role=Role.OPERATOR,
    body=SegmentIn,
    response=SegmentOut,
)
def update_segment(call: Call, segment_id: int, body: SegmentIn) -> SegmentOut:
    """Campaigns already launched keep the conditions they were launched with; drafts and
    series use the new ones at their launch."""
    segment = segments.update(
        call.session, call.user, segment_id, body.name, body.description, body.terms()
    )
    return _out(call, segment)


@operation(
    "DELETE",
    "/segments/{segment_id}",
    summary="Delete a segment",
    tag="Segments",
    role=Role.OPERATOR,
    status=204,
)
def delete_segment(call: Call, segment_id: int) -> None:
    """Refused (409) while a draft, scheduled, running or paused campaign, or an active
    series, uses it."""
    segments.delete(call.session, call.user, segment_id)


@operation(
    "POST",
    "/segments/preview",
    summary="Count and sample unsaved conditions",
    tag="Segments",
    role=Role.OPERATOR,
    body=TermsIn,
    response=PreviewOut,
)
def preview_segment(call: Call, body: TermsIn) -> PreviewOut:
    """What the segment builder shows while conditions are edited: how many contacts match
    now (counting stops at `cap`) and ten of them. Nothing is saved; for those who build
    segments (a viewer counts a saved one with GET /segments/{segment_id}/preview)."""
    return _preview(call, segment_terms.validate(body.terms()))


@operation(
    "GET",
    "/segments/{segment_id}/preview",
    summary="Count and sample a segment",
    tag="Segments",
    response=PreviewOut,
)
def preview_saved_segment(call: Call, segment_id: int) -> PreviewOut:
    """Evaluated now: contacts who opted out meanwhile are no longer counted."""
    return _preview(call, segments.get(call.session, segment_id).terms or {})
