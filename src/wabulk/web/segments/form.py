"""The segment builder's form: condition rows to terms and back, in words for shop owners.

- Each condition is a row of boxes named `c-<n>-<part>`; a row whose "what" is not chosen
  is ignored, so an untouched new row never blocks saving.
- Every row carries every kind of value box; the page (segments.js) shows the ones its
  field needs, and without JavaScript the "Refresh" button re-renders the rows from the
  server (the hidden ones stay hidden).
- A ValidationError from `segments.terms` names "conditions.<i>.<part>"; `row_error` puts
  its sentence next to the row it came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from babel.numbers import NumberFormatError, parse_decimal
from flask import has_request_context
from flask_babel import pgettext
from werkzeug.datastructures import MultiDict

from .. import i18n
from ..helpers import id_values

# (field, what the builder calls it). The words are marked with pgettext and its context
# (outside a request it returns them as they are); the page and `spec` translate them with
# the same context, as `describe` does.
FIELDS: tuple[tuple[str, str], ...] = (
    ("list", pgettext("segment condition", "In a list")),
    ("attribute", pgettext("segment condition", "Sheet column")),
    ("name", pgettext("segment condition", "Name")),
    ("country", pgettext("segment condition", "Country")),
    ("timezone", pgettext("segment condition", "Timezone")),
    ("outcome", pgettext("segment condition", "An earlier campaign")),
    ("opt_in", pgettext("segment condition", "Opt-out history")),
    ("not_on_whatsapp", pgettext("segment condition", "WhatsApp account")),
)
FIELD_NAMES = frozenset(f for f, _ in FIELDS)
IN_OUT = (
    ("in", pgettext("segment condition", "is one of")),
    ("not_in", pgettext("segment condition", "is none of")),
)
OPS: dict[str, tuple[tuple[str, str], ...]] = {
    "list": (
        ("in", pgettext("segment condition", "is in any of")),
        ("not_in", pgettext("segment condition", "is in none of")),
    ),
    "attribute": (
        ("eq", pgettext("segment condition", "is")),
        ("neq", pgettext("segment condition", "is not")),
        ("contains", pgettext("segment condition", "contains")),
        ("not_contains", pgettext("segment condition", "does not contain")),
        ("empty", pgettext("segment condition", "is empty")),
        ("not_empty", pgettext("segment condition", "is filled in")),
        ("gt", pgettext("segment condition", "is more than")),
        ("gte", pgettext("segment condition", "is at least")),
        ("lt", pgettext("segment condition", "is less than")),
        ("lte", pgettext("segment condition", "is at most")),
        ("before", pgettext("segment condition", "is a date before")),
        ("after", pgettext("segment condition", "is a date after")),
        ("within_days", pgettext("segment condition", "is a date in the last … days")),
        ("not_within_days", pgettext("segment condition", "is not a date in the last … days")),
    ),
    "name": (
        ("contains", pgettext("segment condition", "contains")),
        ("empty", pgettext("segment condition", "is missing")),
        ("not_empty", pgettext("segment condition", "is known")),
    ),
    "country": IN_OUT,
    "timezone": IN_OUT,
    "outcome": (
        ("received", pgettext("segment condition", "got the message")),
        ("not_delivered", pgettext("segment condition", "message was not delivered")),
        ("delivered_not_read", pgettext("segment condition", "did not read")),
        ("read_not_replied", pgettext("segment condition", "read but did not reply")),
        ("replied", pgettext("segment condition", "replied")),
        ("failed", pgettext("segment condition", "message failed")),
        (
            "failed_retryable",
            pgettext("segment condition", "message failed (reasons worth retrying)"),
        ),
    ),
    "opt_in": (("eq", pgettext("segment condition", "is")),),
    "not_on_whatsapp": (("eq", pgettext("segment condition", "is")),),
}
OPT_IN = (
    ("never_opted_out", pgettext("segment condition", "never opted out")),
    ("opted_back_in", pgettext("segment condition", "opted out, then back in")),
)
WHATSAPP = (
    ("1", pgettext("segment condition", "not on WhatsApp")),
    ("0", pgettext("segment condition", "on WhatsApp, or not known yet")),
)
# Which value boxes each field shows (the template and segments.js read the same table).
WIDGETS: dict[str, tuple[str, ...]] = {
    "list": ("lists",),
    "attribute": ("key", "value"),
    "name": ("value",),
    "country": ("countries",),
    "timezone": ("zones",),
    "outcome": ("campaign", "reason"),
    "opt_in": ("optin",),
    "not_on_whatsapp": ("wa",),
}
NO_VALUE = frozenset({"empty", "not_empty"})
NUMBER_OPS = frozenset({"gt", "gte", "lt", "lte", "within_days", "not_within_days"})
# The form reads at most this many rows (terms.validate refuses more than its own limit).
MAX_ROWS = 40
MAX_TEXT = 500
_ROW = re.compile(r"^c-(\d{1,3})-field$")
_PART = re.compile(r"^conditions\.(\d+)(?:\.(\w+))?$")


def blank_row() -> dict[str, Any]:
    return {
        "field": "",
        "op": "",
        "key": "",
        "value": "",
        "reason": "",
        "lists": [],
        "countries": [],
        "zones": [],
        "campaign": "",
        "optin": "never_opted_out",
        "wa": "1",
        "error": None,
    }


def rows_from_request(form: MultiDict[str, str]) -> list[dict[str, Any]]:
    """The condition rows as posted, in their order, each box kept as typed."""
    found = sorted({int(m.group(1)) for key in form if (m := _ROW.match(key))})[:MAX_ROWS]
    rows = []
    for n in found:

        def text(part: str, n: int = n) -> str:
            return form.get(f"c-{n}-{part}", "").strip()[:MAX_TEXT]

        def many(part: str, n: int = n) -> list[str]:
            return [v.strip()[:64] for v in form.getlist(f"c-{n}-{part}")[:500] if v.strip()]

        row = blank_row()
        row["n"] = n
        field = text("field")
        row.update(
            field=field if field in FIELD_NAMES else "",
            op=text("op"),
            key=text("key"),
            value=text("value"),
            reason=text("reason"),
            lists=id_values(many("lists")),
            countries=[c.upper() for c in many("countries")],
            zones=many("zones"),
            campaign=text("campaign"),
            optin=text("optin") or "never_opted_out",
            wa=text("wa") or "1",
        )
        rows.append(row)
    return rows


def terms_of(match: str, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[int]]:
    """Raw terms from the rows (for `terms.validate`), and each condition's row number."""
    conditions, where = [], []
    for i, row in enumerate(rows):
        if not row["field"]:
            continue
        conditions.append(condition_of(row))
        where.append(i)
    return {"match": "any" if match == "any" else "all", "conditions": conditions}, where


def condition_of(row: Mapping[str, Any]) -> dict[str, Any]:
    field, op = row["field"], row["op"]
    value: Any
    if field == "list":
        return {"field": field, "op": op, "value": list(row["lists"])}
    if field == "country":
        return {"field": field, "op": op, "value": list(row["countries"])}
    if field == "timezone":
        return {"field": field, "op": op, "value": list(row["zones"])}
    if field == "opt_in":
        return {"field": field, "op": "eq", "value": row["optin"]}
    if field == "not_on_whatsapp":
        return {"field": field, "op": "eq", "value": row["wa"] == "1"}
    if field == "outcome":
        campaign = row["campaign"]
        return {
            "field": field,
            "campaign_id": int(campaign) if campaign.isdigit() else None,
            "op": op,
            "value": row["reason"] or None,
        }
    value = None if op in NO_VALUE else row["value"]
    if op in NUMBER_OPS and isinstance(value, str):
        value = _number(value)
    out = {"field": field, "op": op, "value": value}
    if field == "attribute":
        out["key"] = row["key"]
    return out


def _number(text: str) -> Any:
    """A number typed in a box, read as the reader writes numbers ("1,500.5" in English and
    Hindi, "1.500,5" in Portuguese, Spanish and Indonesian); kept as a plain int or float
    (the terms store numbers canonically). The text itself when it is none (the terms'
    check then names the row)."""
    bare = text.strip()
    if not has_request_context() or i18n.current_language() == i18n.DEFAULT:
        bare = bare.replace(",", "")  # English as it always was ("1,000.50")
        try:
            return int(bare)
        except ValueError:
            try:
                return float(bare)
            except ValueError:
                return text
    try:
        number = parse_decimal(bare, locale=i18n.format_locale())
    except NumberFormatError:
        return text
    if not number.is_finite():
        return text
    return int(number) if number == number.to_integral_value() else float(number)


def shown_number(value: Any) -> str:
    """A stored number as the reader writes it, for the box it goes back into."""
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and has_request_context()
        and i18n.current_language() != i18n.DEFAULT
    ):
        return i18n.format_number(value)
    return "" if value is None else str(value)


def rows_of(terms: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A saved segment's conditions as form rows."""
    rows = []
    for cond in (terms or {}).get("conditions") or []:
        row = blank_row()
        field, value = cond.get("field", ""), cond.get("value")
        row.update(field=field, op=cond.get("op", ""))
        if field == "list":
            row["lists"] = list(value or [])
        elif field == "country":
            row["countries"] = list(value or [])
        elif field == "timezone":
            row["zones"] = list(value or [])
        elif field == "opt_in":
            row["optin"] = str(value or "never_opted_out")
        elif field == "not_on_whatsapp":
            row["wa"] = "1" if value else "0"
        elif field == "outcome":
            row["campaign"] = str(cond.get("campaign_id") or "")
            row["reason"] = "" if value is None else str(value)
        else:
            row["key"] = cond.get("key", "")
            op = cond.get("op", "")
            row["value"] = (
                shown_number(value) if op in NUMBER_OPS else "" if value is None else str(value)
            )
        rows.append(row)
    return rows


def row_error(field: str | None, where: list[int]) -> tuple[int, str] | None:
    """(row number, box) of a terms error naming "conditions.<i>.<part>", else None."""
    match = _PART.match(field or "")
    if not match:
        return None
    i = int(match.group(1))
    if i >= len(where):
        return None
    return where[i], match.group(2) or "field"


def spec() -> dict[str, Any]:
    """What segments.js needs to rebuild a row's choices when its field changes (the
    comparisons in the reader's language)."""
    return {
        "ops": {
            f: [[op, pgettext("segment condition", words)] for op, words in ops]
            for f, ops in OPS.items()
        },
        "widgets": {f: list(w) for f, w in WIDGETS.items()},
        "noValue": sorted(NO_VALUE),
        "numberOps": sorted(NUMBER_OPS),
    }
