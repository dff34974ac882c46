"""Importing sheets over the API: upload, confirm the columns, follow the status.

The same steps as the import page: an upload is kept as a draft with its columns and a
suggested mapping (the one last confirmed for a sheet with the same header, else a guess);
`start` confirms the mapping (remembered for the next such sheet) and queues it; a worker
runs it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from werkzeug.datastructures import FileStorage

from ... import app_settings
from ...contacts import importer
from ...models import Import, ImportKind, ImportStatus, Role
from .registry import Call, Id, Input, Output, Query, Text, operation

Column = Annotated[Text, Field(min_length=1, max_length=200)]
Duplicates = Literal["first", "last"]
_DUPLICATES = (
    "A number written twice in the sheet: keep its first row (the later ones are left out) "
    "or its last (its filled-in cells replace the earlier ones). The report lists every "
    "repeat with the row it repeats and the values not taken."
)


class Mapping(Input):
    phone: Column = Field(description="The column holding the phone numbers.")
    name: list[Column] = Field(
        default_factory=list, max_length=10, description="Columns joined into the name."
    )
    attributes: dict[Column, Annotated[Text, Field(max_length=64)]] = Field(
        default_factory=dict,
        max_length=500,
        description="Other columns to keep, each under a placeholder name "
        '(e.g. {"City": "city"}); columns left out are skipped.',
    )
    duplicates: Duplicates = Field("first", description=_DUPLICATES)


class MappingOut(Output):
    phone: str | None = Field(description="Null when no column looks like phone numbers.")
    name: list[str]
    attributes: dict[str, str]
    duplicates: Duplicates = Field("first", description=_DUPLICATES)


class ImportOut(Output):
    id: int
    kind: Literal["contacts", "opt_outs"]
    status: Literal["draft", "queued", "running", "completed", "failed"]
    original_name: str
    columns: list[str]
    suggested_mapping: MappingOut | None = Field(
        description="For a draft: the mapping last confirmed for a sheet with the same "
        "columns in the same order, else a guess; to send back to `start` as is or edited."
    )
    list_id: int | None
    rows_total: int | None = Field(description="An estimate, for progress.")
    rows_read: int
    created: int
    updated: int
    unchanged: int
    duplicates: int
    invalid: int
    opted_out: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class UploadForm(Query):
    kind: Literal["contacts", "opt_outs"] = Field(
        "contacts", description="A sheet of contacts, or of numbers to opt out."
    )


class StartIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"default_country": "IN", "new_list": "Shop customers"}]}
    )

    default_country: Annotated[Text, Field(min_length=2, max_length=2)] = Field(
        description="Two-letter country code for numbers written without one, e.g. IN."
    )
    mapping: Mapping | None = Field(
        None, description="Which column is what; the suggested mapping when left out."
    )
    list_id: Id | None = Field(None, description="Put the contacts in this list.")
    new_list: Annotated[Text, Field(max_length=120)] | None = Field(
        None, description="Or in a new list of this name."
    )
    opt_out_reason: Annotated[Text, Field(max_length=500)] | None = Field(
        None, description="For an opt-out sheet: recorded with each opt-out."
    )


def _out(call: Call, imp: Import) -> ImportOut:
    suggested = None
    if imp.status == ImportStatus.DRAFT:
        region = app_settings.default_country(call.session) or "US"
        guess = importer.preview(imp, call.settings.instance_path, region).mapping
        suggested = MappingOut.model_validate(guess)
    return ImportOut(
        id=imp.id,
        kind=imp.kind.value,
        status=imp.status.value,
        original_name=imp.original_name,
        columns=importer.columns_of(imp),
        suggested_mapping=suggested,
        list_id=imp.list_id,
        rows_total=imp.rows_total,
        rows_read=imp.rows_read,
        created=imp.created_count,
        updated=imp.updated_count,
        unchanged=imp.unchanged_count,
        duplicates=imp.duplicate_count,
        invalid=imp.invalid_count,
        opted_out=imp.opted_out_count,
        error=imp.error,
        created_at=imp.created_at,
        finished_at=imp.finished_at,
    )


@operation(
    "POST",
    "/imports",
    summary="Upload a sheet",
    tag="Imports",
    role=Role.OPERATOR,
    form=UploadForm,
    response=ImportOut,
    status=201,
)
def upload_import(call: Call, form: UploadForm, file: FileStorage) -> ImportOut:
    """A .xlsx, .xls, .ods or .csv file as the multipart field `file`.

    Nothing is imported yet: the answer lists the sheet's columns and a suggested mapping;
    `start` confirms it. An unreadable file is refused (422) and not kept.
    """
    imp = importer.save_upload(
        call.session,
        call.user,
        call.settings.instance_path,
        file.stream,
        file.filename or "sheet",
        ImportKind(form.kind),
    )
    return _out(call, imp)


@operation(
    "POST",
    "/imports/{import_id}/start",
    summary="Confirm the columns and start an import",
    tag="Imports",
    role=Role.OPERATOR,
    body=StartIn,
    response=ImportOut,
    renames={f: f"mapping.{f}" for f in ("phone", "name", "attributes", "duplicates")},
)
def start_import(call: Call, import_id: int, body: StartIn) -> ImportOut:
    """The import is queued; a worker runs it. Follow it with `GET /imports/{import_id}`."""
    imp = importer.get_import(call.session, import_id)
    mapping = body.mapping.model_dump() if body.mapping is not None else {}
    if body.mapping is None and imp.status == ImportStatus.DRAFT:
        mapping = importer.preview(imp, call.settings.instance_path, body.default_country).mapping
    importer.configure(
        call.session,
        call.user,
        imp,
        call.settings.instance_path,
        mapping,
        body.default_country,
        list_id=body.list_id,
        new_list_name=body.new_list,
        opt_out_reason=body.opt_out_reason,
    )
    return _out(call, imp)


@operation(
    "GET",
    "/imports/{import_id}",
    summary="Get an import's status and counts",
    tag="Imports",
    response=ImportOut,
)
def get_import(call: Call, import_id: int) -> ImportOut:
    return _out(call, importer.get_import(call.session, import_id))
