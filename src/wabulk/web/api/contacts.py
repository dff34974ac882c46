"""Contacts and lists over the API: the same services as the Contacts page."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, WithJsonSchema

from ...contacts import lists
from ...contacts import service as contacts
from ...models import Role
from ...words import N_, said
from .registry import (
    NO_NUL,
    Answer,
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


class ContactOut(Output):
    id: int
    phone: str = Field(description="E.164, e.g. +919812345678.")
    name: str | None
    attributes: dict[str, Any] = Field(description="Every other field, usable as a placeholder.")
    country: str | None
    timezone: str | None
    opted_out_at: datetime | None
    opt_out_reason: str | None
    not_on_whatsapp_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ContactQuery(PageQuery):
    q: Annotated[Text, Field(max_length=200)] = Field(
        "", description="Search in names, attributes and (3 digits or more) phone numbers."
    )
    list_id: Id | None = Field(None, description="Only members of this list.")
    status: Literal["all", "subscribed", "opted_out", "not_on_whatsapp"] = Field(
        "all", description="not_on_whatsapp: numbers WhatsApp said have no account."
    )


MAX_ATTRIBUTE_INT = 10**15


def _attribute_value(value: Any) -> str | int | float:
    # One check with one message: a union of types would report each member's complaint.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(N_("must be text or a number"))
    if isinstance(value, str):
        if len(value) > 1000 or "\x00" in value:
            raise ValueError(N_("must be text of at most 1000 characters, without NUL"))
        storable(value)
    elif isinstance(value, int) and abs(value) > MAX_ATTRIBUTE_INT:
        raise ValueError(
            said("must be a number between -%(most)s and %(most)s", most=MAX_ATTRIBUTE_INT)
        )
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(N_("must be a finite number"))
    return value


AttributeValue = Annotated[
    Any,
    AfterValidator(_attribute_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 1000, "pattern": NO_NUL},
                {"type": "integer", "minimum": -MAX_ATTRIBUTE_INT, "maximum": MAX_ATTRIBUTE_INT},
                {"type": "number"},
            ]
        }
    ),
]


class ContactIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "phone": "+919812345678",
                    "name": "Asha Rao",
                    "attributes": {"city": "Pune", "due_amount": 1200},
                    "list_ids": [1],
                }
            ]
        }
    )

    phone: Annotated[Text, Field(min_length=1, max_length=50)] = Field(
        description="With its country code (+91…), or with `default_country`."
    )
    name: Annotated[Text, Field(max_length=200)] | None = Field(
        None, description="Replaces the name only when given."
    )
    attributes: dict[Annotated[Text, Field(min_length=1, max_length=64)], AttributeValue] = Field(
        default_factory=dict,
        max_length=100,
        description="Merged into the contact's fields (names tidied as a sheet's columns "
        "are: 'Due Amount' becomes due_amount); empty values never erase.",
    )
    list_ids: list[Id] = Field(
        default_factory=list, max_length=100, description="Lists to put the contact in."
    )
    default_country: Annotated[Text, Field(min_length=2, max_length=2)] | None = Field(
        None, description="For a number without its country code, e.g. IN."
    )


class Reason(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "Asked by phone to stop"}]}
    )

    reason: Annotated[Text, Field(min_length=1, max_length=500)] = Field(
        description="Recorded in the contact's history."
    )


@operation(
    "GET",
    "/contacts",
    summary="List and search contacts",
    tag="Contacts",
    query=ContactQuery,
    response=Page[ContactOut],
)
def list_contacts(call: Call, query: ContactQuery) -> Paged:
    """Newest first."""
    f = contacts.ContactFilter(q=query.q, list_id=query.list_id, status=query.status)
    rows, next_id = contacts.page(call.session, f, query.after, query.limit)
    return Paged(rows, next_id)


@operation(
    "POST",
    "/contacts",
    summary="Create or update a contact by phone",
    tag="Contacts",
    role=Role.OPERATOR,
    body=ContactIn,
    response=ContactOut,
    status=200,
    also=(201,),
)
def upsert_contact(call: Call, body: ContactIn) -> Answer:
    """201 when the phone was new, 200 when the contact existed and was updated.

    As with a re-import, nothing is erased and an opt-out stays.
    """
    contact, created = contacts.upsert_contact(
        call.session,
        call.user,
        phone=body.phone,
        name=body.name,
        attributes=dict(body.attributes),
        list_ids=list(body.list_ids),
        default_country=body.default_country,
    )
    return Answer(contact, 201 if created else 200)


@operation(
    "GET",
    "/contacts/{contact_id}",
    summary="Get a contact",
    tag="Contacts",
    response=ContactOut,
)
def get_contact(call: Call, contact_id: int) -> Any:
    return contacts.get_contact(call.session, contact_id)


@operation(
    "POST",
    "/contacts/{contact_id}/opt-out",
    summary="Opt a contact out",
    tag="Contacts",
    role=Role.OPERATOR,
    body=Reason,
    response=ContactOut,
)
def opt_out_contact(call: Call, contact_id: int, body: Reason) -> Any:
    """No campaign messages the contact again, including campaigns already running.

    Opting out a contact who already is changes nothing (the first reason is kept).
    """
    contact = contacts.get_contact(call.session, contact_id)
    contacts.opt_out(call.session, call.user, [contact.id], body.reason)
    call.session.refresh(contact)  # the service changes the row in SQL, not through it
    return contact


@operation(
    "POST",
    "/contacts/{contact_id}/opt-in",
    summary="Opt a contact back in",
    tag="Contacts",
    role=Role.OPERATOR,
    body=Reason,
    response=ContactOut,
)
def opt_in_contact(call: Call, contact_id: int, body: Reason) -> Any:
    """Only for a contact who asked to be messaged again; the reason is recorded."""
    return contacts.opt_in(call.session, call.user, contact_id, body.reason)


# --- lists -------------------------------------------------------------------------------


class ListOut(Output):
    id: int
    name: str
    description: str | None
    member_count: int
    created_at: datetime


class ListIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Diwali buyers", "description": "Bought in October"}]
        }
    )

    name: Annotated[Text, Field(min_length=1, max_length=120)]
    description: Annotated[Text, Field(max_length=500)] | None = None


class Members(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"contact_ids": [1, 2, 3]}]})

    contact_ids: list[Id] = Field(min_length=1, max_length=1000)


class MembersChanged(Output):
    list_id: int
    changed: int = Field(description="Contacts added (or removed); ones already so are left.")


@operation(
    "GET",
    "/lists",
    summary="List contact lists",
    tag="Lists",
    query=PageQuery,
    response=Page[ListOut],
)
def list_lists(call: Call, query: PageQuery) -> Paged:
    """Oldest first."""
    return keyset(call.session, lists.lists_with_counts(), lists.ContactList.id, query)


@operation("GET", "/lists/{list_id}", summary="Get a list", tag="Lists", response=ListOut)
def get_list(call: Call, list_id: int) -> Any:
    return lists.get_list(call.session, list_id)


@operation(
    "POST",
    "/lists",
    summary="Create a list",
    tag="Lists",
    role=Role.OPERATOR,
    body=ListIn,
    response=ListOut,
    status=201,
)
def create_list(call: Call, body: ListIn) -> Any:
    return lists.create_list(call.session, call.user, body.name, body.description)


@operation(
    "DELETE",
    "/lists/{list_id}",
    summary="Delete a list",
    tag="Lists",
    role=Role.OPERATOR,
    status=204,
)
def delete_list(call: Call, list_id: int) -> None:
    """Its contacts stay. A list some campaign was sent to is kept (409)."""
    lists.delete_list(call.session, call.user, list_id)


@operation(
    "POST",
    "/lists/{list_id}/members",
    summary="Add contacts to a list",
    tag="Lists",
    role=Role.OPERATOR,
    body=Members,
    response=MembersChanged,
)
def add_members(call: Call, list_id: int, body: Members) -> MembersChanged:
    """Ids that are no contact are ignored."""
    n = contacts.add_to_list(call.session, call.user, list_id, body.contact_ids)
    return MembersChanged(list_id=list_id, changed=n)


@operation(
    "POST",
    "/lists/{list_id}/members/remove",
    summary="Remove contacts from a list",
    tag="Lists",
    role=Role.OPERATOR,
    body=Members,
    response=MembersChanged,
)
def remove_members(call: Call, list_id: int, body: Members) -> MembersChanged:
    """The contacts themselves stay."""
    n = contacts.remove_from_list(call.session, call.user, list_id, body.contact_ids)
    return MembersChanged(list_id=list_id, changed=n)
