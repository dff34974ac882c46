"""Message templates over the API: the same service as the Templates page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from ...campaigns import templates
from ...campaigns.queries import templates_by_name
from ...models import Role, Template
from .registry import Call, Id, Input, Output, Page, Paged, PageQuery, Text, keyset, operation


class TemplateOut(Output):
    id: int
    name: str
    body: str
    media_id: int | None = Field(description="The attachment, if any.")
    created_at: datetime
    updated_at: datetime


class TemplateIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Welcome", "body": "Hi {{ name }}, thanks for shopping with us!"}]
        }
    )

    name: Annotated[Text, Field(min_length=1, max_length=120)]
    body: Annotated[Text, Field(min_length=1, max_length=templates.MAX_BODY)] = Field(
        description="Placeholders such as {{ name }} or {{ city | default('there') }}."
    )
    media_id: Id | None = Field(None, description="An attachment already uploaded.")


@operation(
    "GET",
    "/templates",
    summary="List templates",
    tag="Templates",
    query=PageQuery,
    response=Page[TemplateOut],
)
def list_templates(call: Call, query: PageQuery) -> Paged:
    """Oldest first."""
    return keyset(call.session, templates_by_name(), Template.id, query)


@operation(
    "GET",
    "/templates/{template_id}",
    summary="Get a template",
    tag="Templates",
    response=TemplateOut,
)
def get_template(call: Call, template_id: int) -> Any:
    return templates.get_template(call.session, template_id)


@operation(
    "POST",
    "/templates",
    summary="Create a template",
    tag="Templates",
    role=Role.OPERATOR,
    body=TemplateIn,
    response=TemplateOut,
    status=201,
    renames={"media": "media_id"},
)
def create_template(call: Call, body: TemplateIn) -> Any:
    """A mistake in the placeholders is refused (422), naming the line."""
    return templates.create_template(call.session, call.user, body.name, body.body, body.media_id)


@operation(
    "PUT",
    "/templates/{template_id}",
    summary="Replace a template",
    tag="Templates",
    role=Role.OPERATOR,
    body=TemplateIn,
    response=TemplateOut,
    renames={"media": "media_id"},
)
def update_template(call: Call, template_id: int, body: TemplateIn) -> Any:
    """Campaigns already launched keep the text they were launched with."""
    return templates.update_template(
        call.session, call.user, template_id, body.name, body.body, body.media_id
    )


@operation(
    "DELETE",
    "/templates/{template_id}",
    summary="Delete a template",
    tag="Templates",
    role=Role.OPERATOR,
    status=204,
)
def delete_template(call: Call, template_id: int) -> None:
    """Refused (409) while a draft campaign uses it."""
    templates.delete_template(call.session, call.user, template_id)
