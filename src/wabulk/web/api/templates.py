"""Message templates over the API: the same service as the Templates page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy import select

from ...campaigns import cloud_template, templates
from ...campaigns.queries import templates_by_name
from ...models import CloudTemplate, Role, Template
from .registry import Call, Id, Input, Output, Page, Paged, PageQuery, Text, keyset, operation

MAPPING_HELP = (
    "What fills each variable of the WhatsApp template, by slot: `header.1`, `body.1`, "
    "`body.customer_name`, `button.0` (by the button's position). A value is a small "
    "message: `{{ first_name }}` for a contact field, or a fixed text. A quick-reply "
    f"button's value is the answer sent back when it is tapped; `{cloud_template.OPT_OUT_PAYLOAD}` "
    "opts out whoever taps it."
)


class CloudLink(Input):
    name: Annotated[Text, Field(min_length=1, max_length=512)] = Field(
        description="The approved WhatsApp template's name, as synced from the account."
    )
    language: Annotated[Text, Field(min_length=1, max_length=15)] = Field(
        description="Its language code, such as en_US."
    )
    mapping: dict[
        Annotated[str, Field(max_length=120)], Annotated[Text, Field(max_length=4096)]
    ] = Field(default_factory=dict, max_length=100, description=MAPPING_HELP)


class CloudLinkOut(Output):
    name: str
    language: str
    mapping: dict[str, str] = Field(description=MAPPING_HELP)


class TemplateOut(Output):
    id: int
    name: str
    body: str
    media_id: int | None = Field(description="The attachment, if any.")
    cloud: CloudLinkOut | None = Field(
        description="The approved WhatsApp template a Cloud API sender sends instead, if any."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, template: Template) -> TemplateOut:
        cloud = None
        if template.cloud_template_name and template.cloud_language:
            mapping = (
                template.cloud_parameters if isinstance(template.cloud_parameters, dict) else {}
            )
            cloud = CloudLinkOut(
                name=template.cloud_template_name,
                language=template.cloud_language,
                mapping=mapping,
            )
        return cls(
            id=template.id,
            name=template.name,
            body=template.body,
            media_id=template.media_id,
            cloud=cloud,
            created_at=template.created_at,
            updated_at=template.updated_at,
        )


class VariableOut(Output):
    slot: str = Field(description="The key of this variable in a template's `cloud.mapping`.")
    where: str = Field(description="header, body or button.")
    key: str
    example: str
    button_index: int | None
    button_type: str | None = Field(description="url, copy_code or quick_reply.")
    label: str = Field(description="The variable in words.")


class CloudTemplateOut(Output):
    id: int
    sender_id: int
    name: str
    language: str
    category: str
    status: str = Field(description="Only APPROVED templates can be linked and sent.")
    quality: str | None
    parameter_format: str
    header_media: str | None = Field(
        description="image, video or document when it starts with one."
    )
    variables: list[VariableOut]
    components: list[Any] = Field(description="As Meta gives them.")
    synced_at: datetime

    @field_validator("components", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []


class TemplateIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Welcome", "body": "Hi {{ name }}, thanks for shopping with us!"}]
        }
    )

    name: Annotated[Text, Field(min_length=1, max_length=120)]
    body: Annotated[Text, Field(max_length=templates.MAX_BODY)] = Field(
        description="Placeholders such as {{ name }} or {{ city | default('there') }}. "
        "Needed unless a WhatsApp template is linked."
    )
    media_id: Id | None = Field(None, description="An attachment already uploaded.")
    cloud: CloudLink | None = Field(
        None,
        description="Link an approved WhatsApp template (Cloud API senders send it). The body "
        "may then be empty.",
    )


def _cloud(body: TemplateIn) -> templates.CloudChoice | None:
    if body.cloud is None:
        return None
    return templates.CloudChoice(body.cloud.name, body.cloud.language, body.cloud.mapping)


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
    page = keyset(call.session, templates_by_name(), Template.id, query)
    return Paged([TemplateOut.of(t) for t in page.rows], page.next_id)


@operation(
    "GET",
    "/templates/{template_id}",
    summary="Get a template",
    tag="Templates",
    response=TemplateOut,
)
def get_template(call: Call, template_id: int) -> Any:
    return TemplateOut.of(templates.get_template(call.session, template_id))


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
    """A mistake in the placeholders is refused (422), naming the line; a WhatsApp template
    that is not approved, or a variable left unmapped, is refused naming it."""
    return TemplateOut.of(
        templates.create_template(
            call.session, call.user, body.name, body.body, body.media_id, cloud=_cloud(body)
        )
    )


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
    """Campaigns already launched keep the text they were launched with. Without `cloud`
    the template is no longer linked to a WhatsApp template."""
    return TemplateOut.of(
        templates.update_template(
            call.session,
            call.user,
            template_id,
            body.name,
            body.body,
            body.media_id,
            cloud=_cloud(body),
        )
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


@operation(
    "GET",
    "/cloud-templates",
    summary="List synced WhatsApp templates",
    tag="Templates",
    query=PageQuery,
    response=Page[CloudTemplateOut],
)
def list_cloud_templates(call: Call, query: PageQuery) -> Paged:
    """The Cloud API senders' message templates as last synced, each with the variables a
    template's `cloud.mapping` must fill. Oldest first."""
    page = keyset(call.session, select(CloudTemplate), CloudTemplate.id, query)
    return Paged([_cloud_out(row) for row in page.rows], page.next_id)


def _cloud_out(row: CloudTemplate) -> CloudTemplateOut:
    return CloudTemplateOut(
        id=row.id,
        sender_id=row.sender_id,
        name=row.name,
        language=row.language,
        category=row.category,
        status=row.status,
        quality=row.quality,
        parameter_format=row.parameter_format,
        header_media=cloud_template.header_media_kind(row.components or []),
        variables=[
            VariableOut(
                slot=v.slot,
                where=v.where,
                key=v.key,
                example=v.example,
                button_index=v.index,
                button_type=v.sub_type,
                label=v.describe(),
            )
            for v in cloud_template.variables(row.components or [])
        ],
        components=row.components,
        synced_at=row.synced_at,
    )
