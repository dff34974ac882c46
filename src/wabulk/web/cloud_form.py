"""The template editor's WhatsApp template part: its boxes to and from a mapping.

- Every synced template gets its block of boxes, named after its row (`c<row id>:<slot>:
  kind|field|text`), so the page works without JS (only the chosen block is read) and
  switching templates in the browser keeps what was typed in each.
- A variable is filled by a contact field (`{{ first_name }}`) or a fixed text; a
  quick-reply button's answer is a fixed text or "opt out" (`OPT_OUT_PAYLOAD`).
"""

from __future__ import annotations

import re
from typing import Any

from flask import request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..campaigns import cloud_template
from ..campaigns import templates as service
from ..campaigns.templates import CloudChoice
from ..errors import ValidationError
from ..models import Channel, CloudTemplate, Sender, Template
from ..words import N_
from .form_state import FormState
from .helpers import optional_id

_NAME_RE = re.compile(r"c\d{1,10}:(?:header|body|button)\.[A-Za-z0-9_]{1,100}:(?:kind|field|text)")
_FIELD_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Far more boxes than any template has (Meta allows a few dozen variables and 10 buttons
# per template), times the templates on the page; the rest of a forged form is ignored.
MAX_BOXES = 5000


def box(row_id: int, slot: str, part: str) -> str:
    return f"c{row_id}:{slot}:{part}"


def values_from_request() -> dict[str, Any]:
    """The WhatsApp part of the posted form, kept as typed."""
    fields: dict[str, str] = {}
    for name, value in request.form.items():
        if len(fields) >= MAX_BOXES:
            break
        if _NAME_RE.fullmatch(name):
            fields[name] = value
    return {"cloud_template_id": request.form.get("cloud_template_id", ""), "cloud_fields": fields}


def _split(variable: cloud_template.Variable, value: str) -> tuple[str, str, str]:
    """(kind, field, text) of a mapped value, as the boxes show it."""
    if variable.sub_type == "quick_reply":
        if value == cloud_template.OPT_OUT_PAYLOAD:
            return "opt_out", "", ""
        return "text", "", value
    found = _FIELD_RE.fullmatch(value)
    if found:
        return "field", found.group(1), ""
    return ("text", "", value) if value else ("field", "", "")


def values_of(session: Session, template: Template) -> dict[str, Any]:
    """A saved template's WhatsApp part as the form shows it."""
    if not template.cloud_template_name or not template.cloud_language:
        return {"cloud_template_id": "", "cloud_fields": {}}
    row = service.approved_row(session, template.cloud_template_name, template.cloud_language)
    if row is None:
        missing = f"{template.cloud_template_name} ({template.cloud_language})"
        return {"cloud_template_id": "", "cloud_fields": {}, "cloud_missing": missing}
    mapping = template.cloud_parameters if isinstance(template.cloud_parameters, dict) else {}
    fields = {}
    for variable in cloud_template.variables(row.components):
        value = mapping.get(variable.slot)
        kind, field, text = _split(variable, value if isinstance(value, str) else "")
        fields[box(row.id, variable.slot, "kind")] = kind
        fields[box(row.id, variable.slot, "field")] = field
        fields[box(row.id, variable.slot, "text")] = text
    return {"cloud_template_id": str(row.id), "cloud_fields": fields}


def chosen_row(session: Session, values: dict[str, Any]) -> CloudTemplate | None:
    row_id = optional_id(values.get("cloud_template_id") or "")
    return session.get(CloudTemplate, row_id) if row_id is not None else None


def mapping_of(row: CloudTemplate, values: dict[str, Any]) -> dict[str, str]:
    """The mapping the chosen block's boxes say (checked by the service, not here)."""
    fields = values.get("cloud_fields") or {}
    mapping = {}
    for variable in cloud_template.variables(row.components):
        kind = fields.get(box(row.id, variable.slot, "kind"), "")
        text = fields.get(box(row.id, variable.slot, "text"), "")
        if variable.sub_type == "quick_reply":
            mapping[variable.slot] = cloud_template.OPT_OUT_PAYLOAD if kind == "opt_out" else text
        elif kind == "text":
            mapping[variable.slot] = text
        else:
            field = fields.get(box(row.id, variable.slot, "field"), "").strip()
            # A name that is not one would not compile; the service says so for this box.
            mapping[variable.slot] = f"{{{{ {field} }}}}" if field else ""
    return mapping


def choice(session: Session, values: dict[str, Any]) -> CloudChoice | None:
    """The WhatsApp template the form links to, None for "none"."""
    if not str(values.get("cloud_template_id") or "").strip():
        return None
    row = chosen_row(session, values)
    if row is None:
        raise ValidationError(
            N_("That WhatsApp template is no longer among the synced ones; choose another."),
            field="cloud",
        )
    return CloudChoice(row.name, row.language, mapping_of(row, values))


def error_fields(session: Session, values: dict[str, Any]) -> set[str]:
    """The boxes a service error may name (the rest is flashed)."""
    row = chosen_row(session, values)
    slots = cloud_template.variables(row.components) if row is not None else []
    return {"cloud", *(f"cloud:{v.slot}" for v in slots)}


def phone_of(text: str) -> str | None:
    """The contact to preview for: the digits typed, as stored (E.164)."""
    digits = re.sub(r"\D", "", text)
    return f"+{digits}" if 7 <= len(digits) <= 15 else None


def cloud_senders(session: Session) -> list[Sender]:
    return list(
        session.scalars(
            select(Sender).where(Sender.channel == Channel.CLOUD_API).order_by(Sender.name)
        )
    )


def editor_context(
    session: Session, state: FormState, attribute_keys: list[str]
) -> dict[str, Any] | None:
    """What the editor's WhatsApp section shows; None when there is no Cloud API sender."""
    senders = cloud_senders(session)
    if not senders:
        return None
    names = {s.id: s.name for s in senders}
    selected = str(state.get("cloud_template_id") or "")
    fields = state.get("cloud_fields", {}) or {}
    choices = ["name", "first_name", "phone", "country"]
    choices += [k for k in attribute_keys if _IDENT_RE.fullmatch(k) and k not in choices]
    blocks = []
    for row in service.synced_templates(session):
        if row.sender_id not in names:
            continue
        mine = selected == str(row.id)
        rows = []
        for variable in cloud_template.variables(row.components):
            kind = fields.get(box(row.id, variable.slot, "kind"))
            default = "text" if variable.sub_type == "quick_reply" else "field"
            rows.append(
                {
                    "variable": variable,
                    "label": variable.title,
                    "kind": kind or default,
                    "field": fields.get(box(row.id, variable.slot, "field"), ""),
                    "text": fields.get(box(row.id, variable.slot, "text"), ""),
                    "box": {p: box(row.id, variable.slot, p) for p in ("kind", "field", "text")},
                    "id": f"c{row.id}-{variable.slot.replace('.', '-')}",
                    "error": state.errors.get(f"cloud:{variable.slot}") if mine else None,
                }
            )
        parts = {
            kind: cloud_template.part(row.components, kind.upper()) or {}
            for kind in ("header", "body", "footer")
        }
        blocks.append(
            {
                "row": row,
                "sender": names[row.sender_id],
                "approved": row.status.upper() == cloud_template.APPROVED,
                "selected": mine,
                "variables": rows,
                "media": cloud_template.header_media_kind(row.components),
                "problem": cloud_template.unsupported(row.components),
                "heading": str(parts["header"].get("text") or "")
                if not cloud_template.header_media_kind(row.components)
                else "",
                "body": str(parts["body"].get("text") or ""),
                "footer": str(parts["footer"].get("text") or ""),
                "buttons": cloud_template.buttons(row.components),
            }
        )
    return {
        "senders": senders,
        "blocks": blocks,
        "selected": selected,
        "choices": choices,
        "error": state.errors.get("cloud"),
        "missing": state.get("cloud_missing", None),
        "opt_out": cloud_template.OPT_OUT_PAYLOAD,
    }


def skeleton(row: CloudTemplate) -> dict[str, Any]:
    """The template with its blanks showing, for the preview until each is filled."""
    components = row.components
    media = cloud_template.header_media_kind(components)
    header = cloud_template.part(components, "HEADER") or {}
    shown = []
    for button in cloud_template.buttons(components):
        kind = str(button.get("type", "")).lower()
        item = {"kind": kind, "text": str(button.get("text") or "")}
        if kind == "url":
            item["url"] = str(button.get("url") or "")
        shown.append(item)
    return {
        "media": media,
        "heading": "" if media else str(header.get("text") or ""),
        "message": str((cloud_template.part(components, "BODY") or {}).get("text") or ""),
        "footer": str((cloud_template.part(components, "FOOTER") or {}).get("text") or ""),
        "buttons": shown,
    }
