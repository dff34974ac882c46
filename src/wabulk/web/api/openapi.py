"""The OpenAPI 3.1 document and the /api/docs page, written from the operation registry.

Both read the same declarations that route and validate requests, so the document cannot
drift from what the API accepts and answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ...words import N_
from .registry import ERRORS, NO_NUL, OPERATIONS, ErrorResponse, Operation

COMPONENTS = "#/components/schemas/"
TITLE = "wabulk REST API"
INTRO = """\
Everything the pages do with contacts, lists, imports, templates, campaigns and senders,
for your own programs and your shop's site.

- **Authentication**: `Authorization: Bearer <token>`. Create tokens under Settings → API
  tokens; a token acts as its user, with that user's role (viewer: read only).
- **Errors** always look like `{"error": {"code", "message", "details"}}`; `details` name
  each invalid field.
- **Pages**: list operations take `limit` (1 to 200) and `cursor`, and answer
  `{"data": [...], "next_cursor"}`; pass `next_cursor` back until it is null.
- **Language**: `message` is in English unless the request sends `Accept-Language` (`hi`,
  `pt-BR`, `es`, `id`); `code` is the same in every language.
"""
# Tag names are marked: the docs page shows them in the reader's language (`|translated`).
TAGS = [
    (N_("Account"), "Who is calling."),
    (N_("Contacts"), "Customers: search, opt-outs."),
    (N_("Lists"), "Named audiences."),
    (N_("Imports"), "Sheets of contacts or opt-outs: upload, confirm, follow."),
    (N_("Templates"), "Reusable messages."),
    (N_("Campaigns"), "Drafts, launch, pause, resume, cancel, progress and recipients."),
    (N_("Recurring campaigns"), "A draft repeated daily, weekly or monthly; each run a campaign."),
    (N_("Segments"), "Saved audiences by conditions: lists, attributes, earlier outcomes; count."),
    (N_("Senders"), "Sending accounts and their state; Cloud API senders added and checked."),
    (N_("Analytics"), "Outcomes over time, from maintained counters."),
    (N_("Webhooks"), "Endpoints that receive signed events (replies, statuses, opt-outs, …)."),
    (
        N_("Inbox"),
        "Conversations with customers who reply: answers, assignment, notes, quick replies.",
    ),
]
PATH_PARAM = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def _drop_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: keep only the non-null branch."""
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1 and len(schema["anyOf"]) == 2:
        rest = {
            k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)
        }
        return {**options[0], **rest}
    return schema


def _clean(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "title"}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(mode="validation")
    if "$defs" in schema:
        raise TypeError(f"{model.__name__}: query models must hold plain values only")
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema["properties"].items():
        prop = _drop_null(_clean(prop))
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            param["description"] = prop.pop("description")
        param["schema"] = prop
        out.append(param)
    return out


def _form_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    properties = {name: _clean(prop) for name, prop in schema["properties"].items()}
    properties["file"] = {
        "type": "string",
        "format": "binary",
        "description": "The sheet: .xlsx, .xls, .ods or .csv.",
    }
    return {"type": "object", "properties": properties, "required": ["file"]}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(op: Operation, refs: dict[tuple[type[BaseModel], str], Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": PATH_PARAM} for p in op.path_params
    ]
    if op.query is not None:
        params += query_parameters(op.query)
    doc: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "description": (op.description + "\n\n" if op.description else "")
        + f"Needs the **{op.role.value}** role or higher.",
        "tags": [op.tag],
        "x-role": op.role.value,
    }
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": _json(refs[(op.body, "validation")])}
    if op.form is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": _form_schema(op.form)}},
        }
    responses: dict[str, Any] = {}
    if op.produces:
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses[str(op.status)] = {
            "description": "The file, as an attachment.",
            "content": {media: binary for media in op.produces},
        }
    elif op.response is None:
        responses[str(op.status)] = {"description": "Done; nothing to return."}
    else:
        for status in (op.status, *op.also):
            responses[str(status)] = {
                "description": "Created." if status == 201 else "OK.",
                "content": _json(refs[(op.response, "serialization")]),
            }
    for code in op.error_statuses:
        responses[str(code)] = {
            "description": ERRORS[code],
            "content": _json({"$ref": COMPONENTS + "ErrorResponse"}),
        }
    doc["responses"] = responses
    return doc


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered operation (built once per process)."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorResponse, "serialization"): None
    }
    for op in OPERATIONS:
        if op.body is not None:
            wanted[(op.body, "validation")] = None
        if op.response is not None:
            wanted[(op.response, "serialization")] = None
    refs, defs = models_json_schema(list(wanted), ref_template=COMPONENTS + "{model}")
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)  # type: ignore[arg-type]
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": "1", "description": INTRO},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from Settings → API tokens.",
                }
            },
        },
    }


# --- the readable page -----------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    where: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class DocEntry:
    """One operation as the docs page shows it."""

    id: str
    method: str
    path: str
    summary: str
    description: str
    role: str
    parameters: list[Field]
    body: list[Field]
    body_schema: str | None
    returns: list[Field]
    paged: bool  # `returns` describes each item of `data`
    responses: list[tuple[str, str]]
    curl: str


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return components[ref.removeprefix(COMPONENTS)] if ref else schema


def type_name(schema: dict[str, Any], components: dict[str, Any]) -> str:
    """A short human name for a schema: `integer ≥ 1`, `list of integer`, `"a" or "b"`."""
    if "$ref" in schema:
        target = _resolve(schema, components)
        return "object" if target.get("type") == "object" else type_name(target, components)
    if "anyOf" in schema:
        names = [type_name(s, components) for s in schema["anyOf"]]
        return " or ".join(dict.fromkeys(names))
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {type_name(schema.get('items', {}), components)}"
    bounds = []
    for key, sign in (("minimum", "≥"), ("maximum", "≤")):
        if key in schema and not (key == "maximum" and schema[key] == 2**31 - 1):
            bounds.append(f"{sign} {schema[key]}")
    lo, hi = schema.get("minLength"), schema.get("maxLength")
    if lo is not None and hi is not None:
        bounds.append(f"of {lo} to {hi} characters" if lo != hi else f"of {lo} characters")
    elif hi is not None:
        bounds.append(f"of at most {hi} characters")
    elif lo is not None:
        bounds.append(f"of at least {lo} characters")
    if schema.get("pattern") and schema["pattern"] != NO_NUL:
        bounds.append(f"matching {schema['pattern']}")
    if "format" in schema:
        kind = f"{kind} ({schema['format']})"
    return " ".join([kind, *bounds]) if bounds else kind


def _fields(schema: dict[str, Any], components: dict[str, Any], where: str) -> list[Field]:
    target = _resolve(schema, components)
    required = set(target.get("required", []))
    return [
        Field(
            name,
            where,
            type_name(prop, components),
            name in required,
            prop.get("description", ""),
        )
        for name, prop in target.get("properties", {}).items()
    ]


def _returns(
    doc: dict[str, Any], status: int, components: dict[str, Any]
) -> tuple[list[Field], bool]:
    content = doc["responses"][str(status)].get("content")
    if not content or "application/json" not in content:  # nothing, or a file
        return [], False
    schema = _resolve(content["application/json"]["schema"], components)
    props = schema.get("properties", {})
    if set(props) == {"data", "next_cursor"}:
        return _fields(props["data"]["items"], components, "data"), True
    return _fields(schema, components, "response"), False


def _example(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    schema = _resolve(schema, components)
    if "examples" in schema:
        return schema["examples"][0]
    if "anyOf" in schema:
        return _example(next(s for s in schema["anyOf"] if s.get("type") != "null"), components)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        required = schema.get("required", [])
        props = schema.get("properties", {})
        return {k: _example(props[k], components) for k in required if k in props}
    if kind == "array":
        return [_example(schema.get("items", {}), components)]
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if schema.get("format") == "date-time":
        return "2030-01-31T09:00:00+05:30"
    return "text"


def _curl(op: Operation, doc: dict[str, Any], components: dict[str, Any], base: str) -> str:
    path = op.path
    for name in op.path_params:
        path = path.replace("{" + name + "}", "1")
    lines = [f'curl -X {op.method} "{base}/api/v1{path}"', '-H "Authorization: Bearer $TOKEN"']
    if op.produces:
        lines.append("-OJ")  # saved under the name the answer gives
    if op.form is not None:
        lines.append('-F "file=@customers.xlsx"')
    elif op.body is not None:
        body = _example(doc["requestBody"]["content"]["application/json"]["schema"], components)
        lines += ['-H "Content-Type: application/json"', f"-d '{json.dumps(body)}'"]
    return " \\\n  ".join(lines)


def doc_entries(base_url: str) -> list[tuple[str, list[DocEntry]]]:
    """Every operation, grouped by tag in the document's order, for the docs page."""
    spec = document()
    components = spec["components"]["schemas"]
    by_tag: dict[str, list[DocEntry]] = {name: [] for name, _ in TAGS}
    for op in OPERATIONS:
        doc = spec["paths"][op.path][op.method.lower()]
        params = [
            Field(
                p["name"],
                p["in"],
                type_name(p["schema"], components),
                p["required"],
                p.get("description", ""),
            )
            for p in doc.get("parameters", [])
        ]
        body: list[Field] = []
        body_schema = None
        content = doc.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            schema = content["application/json"]["schema"]
            body = _fields(schema, components, "body")
            body_schema = json.dumps(_resolve(schema, components), indent=2, ensure_ascii=False)
        elif "multipart/form-data" in content:
            body = _fields(content["multipart/form-data"]["schema"], components, "form")
        returns, paged = _returns(doc, op.status, components)
        by_tag[op.tag].append(
            DocEntry(
                id=op.name,
                method=op.method,
                path="/api/v1" + op.path,
                summary=op.summary,
                description=op.description,
                role=op.role.value,
                parameters=params,
                body=body,
                body_schema=body_schema,
                returns=returns,
                paged=paged,
                responses=[(code, r["description"]) for code, r in doc["responses"].items()],
                curl=_curl(op, doc, components, base_url.rstrip("/")),
            )
        )
    return [(tag, entries) for tag, entries in by_tag.items() if entries]
