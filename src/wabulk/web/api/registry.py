"""The REST API's operations, each declared once.

An `@operation` names the method, path, least role and the pydantic models of its query,
body and response. From that one declaration the API:
- routes the request and checks the role (the security gate reads `required_role`);
- validates the path, query and body (422 naming each bad field);
- calls the handler, which makes one service call, and commits if the operation writes;
- maps domain errors to the JSON error shape and serialises the answer through the
  response model;
- writes the operation into the OpenAPI document and the /api/docs page (openapi.py).
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from flask import Blueprint, Response, jsonify, request
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as InputError
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from ...config import Settings
from ...errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationError
from ...models import Role, User
from ...words import N_
from ..helpers import MAX_ID, db_session, get_settings
from ..i18n import translated
from ..security import api_error, error_json

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def storable(value: str) -> str:
    # PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded: both would
    # otherwise surface as a server error instead of a named bad field.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(N_("must be valid Unicode text")) from None
    return value


# Every string the API accepts: NUL is excluded in the schema itself, so generated clients
# and property-based tests know it too.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Field(pattern=NO_NUL), AfterValidator(storable)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused, so a typo is reported, not lost."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Query(BaseModel):
    """Base of query-string models: values arrive as text and are converted."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise ValueError(N_("is not a cursor this API gave out; use the next_cursor of a page"))
    return int(text)


class PageQuery(Query):
    """Keyset pagination: `cursor` is the `next_cursor` of the page before."""

    limit: int = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Rows per page, 1 to {MAX_LIMIT}."
    )
    cursor: str = Field(
        "",
        max_length=24,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="The `next_cursor` of the previous page; empty for the first page.",
    )

    @field_validator("cursor")
    @classmethod
    def _known_cursor(cls, value: str) -> str:
        if value:
            decode_cursor(value)
        return value

    @property
    def after(self) -> int | None:
        """The id the previous page ended on."""
        return decode_cursor(self.cursor) if self.cursor else None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


@dataclass(frozen=True)
class Answer:
    """A handler's answer with a success status other than its operation's usual one (one
    of the operation's `also` statuses)."""

    value: Any
    status: int


@dataclass(frozen=True)
class Paged:
    """What a list handler returns: the rows and the id to continue from (None: last page)."""

    rows: Sequence[Any]
    next_id: int | None


class ErrorDetail(BaseModel):
    field: str | None = Field(description="The input at fault, e.g. `limit` or `lists.0`.")
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, for programs: e.g. `invalid`, `not_found`.")
    message: str = Field(description="For people.")
    details: list[ErrorDetail]


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS = {
    400: "The body is not JSON, or a signed-in browser sent no CSRF token.",
    401: "No valid API token (or session).",
    403: "The token's user lacks the role this needs.",
    404: "Nothing with that id.",
    409: "Clashes with the current state (a duplicate name, a campaign not in that status).",
    413: "The upload is larger than the limit.",
    422: "A parameter or field is invalid; the details name each one.",
    500: "Something went wrong on our side; it is logged.",
}


@dataclass(frozen=True)
class Call:
    """What a handler gets besides its inputs."""

    session: Session
    user: User
    settings: Settings


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI form, e.g. /contacts/{contact_id}
    handler: Callable[..., Any]
    summary: str
    tag: str
    role: Role
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    form: type[BaseModel] | None  # multipart fields besides the uploaded `file`
    response: type[BaseModel] | None
    status: int
    also: tuple[int, ...]  # other success statuses, same response model
    extra_errors: tuple[int, ...]
    # The service's field names (the pages' form fields) → this operation's input names.
    renames: dict[str, str]
    # Media types of a file it answers with (its handler returns a Flask Response).
    produces: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def description(self) -> str:
        return inspect.getdoc(self.handler) or ""

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def writes(self) -> bool:
        return self.method in WRITES

    @property
    def flask_rule(self) -> str:
        return re.sub(r"{(\w+)}", rf"<int(min=1, max={MAX_ID}):\1>", self.path)

    @property
    def error_statuses(self) -> list[int]:
        codes = {401, 403, 500, *self.extra_errors}
        if self.query or self.body or self.form:
            codes.add(422)
        if self.writes:
            codes |= {400, 409, 422}  # services refuse what is not ready (a launch, a draft)
        if self.path_params:
            codes.add(404)
        if self.form:
            codes.add(413)
        return sorted(codes)


OPERATIONS: list[Operation] = []


def operation(
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    role: Role = Role.VIEWER,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    form: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    also: tuple[int, ...] = (),
    errors: tuple[int, ...] = (),
    renames: dict[str, str] | None = None,
    produces: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an API operation; the handler's docstring becomes its description.

    - The handler is called as `handler(call, <path params>, query=…, body=…, form=…,
      file=…)` with only the inputs it declared, and returns the response (ORM objects
      are read through the response model) or a `Paged`; one that `produces` a file
      returns the Flask Response sending it.
    """

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        OPERATIONS.append(
            Operation(
                method,
                path,
                handler,
                summary,
                tag,
                role,
                query,
                body,
                form,
                response,
                status,
                also,
                errors,
                renames or {},
                produces,
            )
        )
        return handler

    return register


def install(bp: Blueprint) -> None:
    """Route every declared operation on the blueprint."""
    for op in OPERATIONS:
        view = _view(op)
        view.required_role = op.role  # type: ignore[attr-defined]
        bp.add_url_rule(op.flask_rule, endpoint=op.name, view_func=view, methods=[op.method])


def keyset(
    session: Session, query: Select[Any], key: Any, page: PageQuery, newest_first: bool = False
) -> Paged:
    """A page of a service's query in `key` (an id column) order, after the cursor.

    - The query's own order is replaced: pages by id cost the same however deep.
    """
    if page.after is not None:
        query = query.where(key < page.after if newest_first else key > page.after)
    order = key.desc() if newest_first else key
    rows = list(session.scalars(query.order_by(None).order_by(order).limit(page.limit + 1)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Paged(rows, getattr(rows[-1], key.key) if more else None)


# Pydantic's own words for the commonest bad inputs, read back in the client's language when
# it asks with Accept-Language (_message; the rest stay as pydantic writes them).
PYDANTIC_WORDS = (
    N_("Field required"),
    N_("Extra inputs are not permitted"),
    N_("Input should be a valid integer, unable to parse string as an integer"),
    N_("Input should be a valid integer"),
    N_("Input should be a valid string"),
    N_("Input should be a valid boolean, unable to interpret input"),
    N_("Input should be greater than or equal to %(limit)s"),
    N_("Input should be less than or equal to %(limit)s"),
    N_("String should have at most %(limit)s characters"),
    N_("String should match pattern '%(pattern)s'"),
)


class Problem(Exception):
    """An error answer decided while reading the request, in the request's language."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.details = status, code, details or []


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_body() -> Any:
    if not request.is_json:
        raise Problem(
            400, "bad_request", _("Send a JSON body with Content-Type: application/json.")
        )
    try:
        return json.loads(request.get_data(cache=True), parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[…" thousands deep
        raise Problem(
            400, "bad_request", _("The body is not valid JSON: %(error)s.", error=exc)
        ) from None


def _message(err: Any) -> str:
    """A bad field's message in the request's language (our validators' and pydantic's
    English read back through the catalogue)."""
    if err["type"] == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == NO_NUL:
        return _("Must not contain the NUL character (\\u0000)")
    if err["type"] == "value_error":
        text = translated(str(err["ctx"]["error"])) or ""
        return text[:1].upper() + text[1:]
    return translated(str(err["msg"])) or str(err["msg"])


def _field_errors(exc: InputError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(part) for part in err["loc"]) or None, "message": _message(err)}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _inputs(op: Operation) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    try:
        if op.query is not None:
            kwargs["query"] = op.query.model_validate(request.args.to_dict())
        if op.body is not None:
            kwargs["body"] = op.body.model_validate(_json_body())
        if op.form is not None:
            if not request.mimetype.startswith("multipart/form-data"):
                raise Problem(400, "bad_request", _("Send the file as multipart/form-data."))
            kwargs["form"] = op.form.model_validate(request.form.to_dict())
            file = request.files.get("file")
            if not isinstance(file, FileStorage) or not file.filename:
                raise Problem(
                    422,
                    "invalid",
                    _("Attach the file as the form field `file`, with a file name."),
                    [{"field": "file", "message": _("Field required")}],
                )
            kwargs["file"] = file
    except InputError as exc:
        details = _field_errors(exc)
        raise Problem(422, "invalid", _summary(details), details) from None
    return kwargs


def _summary(details: list[dict[str, Any]]) -> str:
    """ "limit: Input should be … (and 2 more)." in the request's language (as the details
    are already)."""
    first = details[0] if details else {"field": None, "message": _("Invalid input")}
    where = f"{first['field']}: " if first["field"] else ""
    more = " " + _("(and %(n)s more)", n=len(details) - 1) if len(details) > 1 else ""
    return f"{where}{first['message']}{more}."


def _domain_error(op: Operation, exc: DomainError) -> tuple[Response, int]:
    """A service's refusal: its English sentence, read back in the client's language only
    when it asks with Accept-Language (`api_error`)."""
    message = str(exc)
    if isinstance(exc, NotFound):
        return api_error(404, "not_found", message)
    if isinstance(exc, Conflict):
        return api_error(409, "conflict", message)
    if isinstance(exc, PermissionDenied):
        return api_error(403, "forbidden", message)
    field = exc.field if isinstance(exc, ValidationError) else None
    field = op.renames.get(field, field) if field else None
    shown = translated(message) or message  # once, for the message and its field's detail
    return error_json(422, "invalid", shown, [{"field": field, "message": shown}])


def _view(op: Operation) -> Callable[..., Any]:
    def view(**path: int) -> Any:
        try:
            kwargs = _inputs(op)
        except Problem as exc:
            return error_json(exc.status, exc.code, str(exc), exc.details)
        session = db_session()
        call = Call(session, current_user._get_current_object(), get_settings())
        try:
            result = op.handler(call, **path, **kwargs)
            if op.writes:
                session.commit()
        except DomainError as exc:
            session.rollback()
            return _domain_error(op, exc)
        except IntegrityError:
            # Two requests racing to create the same name: the loser learns it plainly.
            session.rollback()
            return error_json(
                409, "conflict", _("This clashes with a change made at the same time.")
            )
        return _respond(op, result)

    view.__name__ = op.name
    view.__doc__ = op.description
    return view


def _respond(op: Operation, result: Any) -> Any:
    if op.produces and isinstance(result, Response):
        return result
    status = op.status
    if isinstance(result, Answer):
        result, status = result.value, result.status
    if op.response is None:
        return Response(status=status)
    if isinstance(result, Paged):
        result = {
            "data": result.rows,
            "next_cursor": encode_cursor(result.next_id) if result.next_id is not None else None,
        }
    model = (
        result
        if isinstance(result, op.response)
        else op.response.model_validate(result, from_attributes=True)
    )
    return jsonify(model.model_dump(mode="json", by_alias=True)), status
