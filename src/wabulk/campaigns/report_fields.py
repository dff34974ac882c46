"""The contact fields a campaign's report shows, one column each.

- The names are found by the database (`json_each` on SQLite, `jsonb_object_keys` on
  PostgreSQL) over the campaign's recipients: one query, no million JSON documents decoded
  in Python before the first row can be written.
- Ordered as the imports' columns were (newest import first), then by name: the columns
  come out as the shop's own sheet had them.
- At most `MAX_FIELDS`, as the contacts export: a spreadsheet stays usable.
"""

from __future__ import annotations

import math
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ..contacts.export import neutralise
from ..models import Import

MAX_FIELDS = 500
# The report's own columns: a field of the same name is shown as "status (field)".
OWN_COLUMNS = frozenset(
    {"phone", "name", "status", "error code", "error", "attempts", "sender", "message"}
    | {"reply", "billed as"}
)

_SQLITE = """
SELECT DISTINCT j.key FROM messages AS m
JOIN contacts AS c ON c.id = m.contact_id, json_each(c.attributes) AS j
WHERE m.campaign_id = :campaign AND json_type(c.attributes) = 'object'
LIMIT :limit
"""
_POSTGRES = """
SELECT DISTINCT k FROM messages AS m
JOIN contacts AS c ON c.id = m.contact_id
CROSS JOIN LATERAL jsonb_object_keys(
    CASE WHEN jsonb_typeof(c.attributes) = 'object' THEN c.attributes ELSE '{}'::jsonb END
) AS k
WHERE m.campaign_id = :campaign
LIMIT :limit
"""


def field_names(session: Session, campaign_id: int, limit: int = MAX_FIELDS) -> list[str]:
    """The attribute names held by the campaign's recipients, in the order the sheet had them."""
    sql = _POSTGRES if session.get_bind().dialect.name == "postgresql" else _SQLITE
    found = set(session.scalars(text(sql), {"campaign": campaign_id, "limit": limit}))
    if not found:
        return []
    ordered: dict[str, None] = {}
    for (mapping,) in session.execute(select(Import.mapping).order_by(Import.id.desc())):
        mapping = mapping or {}
        # PostgreSQL's jsonb keeps an object's keys in its own order: the sheet's column
        # order is the "columns" list.
        where = {column: i for i, column in enumerate(mapping.get("columns") or [])}
        chosen = (mapping.get("attributes") or {}).items()
        for _column, key in sorted(chosen, key=lambda item: where.get(item[0], len(where))):
            if key in found:
                ordered.setdefault(key, None)
    return list(ordered) + sorted(found - ordered.keys())


def field_columns(fields: list[str]) -> list[str]:
    """The fields' column headers: neutralised too (the API may name a field "=x")."""
    return [
        neutralise(_("%(name)s (field)", name=key) if key.lower() in OWN_COLUMNS else key)
        for key in fields
    ]


def field_cell(value: Any) -> str | int | float | None:
    """A field's value as a cell: JSON numbers stay numbers; text is kept as typed.

    - Text that looks like a number ("00123", "1250.50") stays text: a customer number
      or a pin code loses its leading zeros as a number.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    return neutralise(value)
