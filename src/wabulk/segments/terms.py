"""A segment's conditions as data (STYLE 29): checked, normalised and described here.

Terms are `{"match": "all" | "any", "conditions": [condition, ...]}`; `compile.py` turns
them into one query. Nothing here reads contacts; `describe` and `field_choices` read only
small tables (lists, campaigns, import mappings).

- Bounds come first (number of conditions, length of texts, size of id lists), before any
  condition is looked at, so a huge body costs nothing.
- Messages name the condition by its number (1 = the first) and its field, for a person;
  `ValidationError.field` is `conditions.<i>.<part>` with `i` counted from 0 (the index in
  the list a form or API client sent).
"""

from __future__ import annotations

import math
import re
from datetime import date
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from babel import Locale
from babel.lists import format_list
from babel.numbers import format_decimal
from flask_babel import get_locale, pgettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..contacts.regions import NAMES as COUNTRY_NAMES
from ..errors import ValidationError
from ..models import Campaign, CampaignStatus, ContactList
from ..words import N_, said

MAX_CONDITIONS = 20
MAX_VALUE_CHARS = 200
MAX_IDS = 200
MAX_KEY_CHARS = 100
MAX_DAYS = 36_500

MATCHES = ("all", "any")

TEXT_OPS = ("eq", "neq", "contains", "not_contains")
NUMBER_OPS = ("gt", "gte", "lt", "lte")
DATE_OPS = ("before", "after")
DAYS_OPS = ("within_days", "not_within_days")
PRESENCE_OPS = ("empty", "not_empty")
ATTRIBUTE_OPS = TEXT_OPS + PRESENCE_OPS + NUMBER_OPS + DATE_OPS + DAYS_OPS
OUTCOMES = (
    "received",
    "not_delivered",
    "delivered_not_read",
    "read_not_replied",
    "replied",
    "failed",
    "failed_retryable",
)
OPT_IN_VALUES = ("never_opted_out", "opted_back_in")

# What a person reads, for messages and `describe`.
FIELD_LABELS = {
    "list": "List",
    "attribute": "Attribute",
    "country": "Country",
    "timezone": "Timezone",
    "name": "Name",
    "opt_in": "Opt-in",
    "not_on_whatsapp": "Not on WhatsApp",
    "outcome": "Earlier campaign",
}
OP_WORDS = {
    "eq": "is",
    "neq": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "empty": "is empty",
    "not_empty": "is not empty",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "before": "is before",
    "after": "is after",
    "within_days": "is within the last",
    "not_within_days": "is more than",
    "in": "is",
    "not_in": "is not",
}
OUTCOME_WORDS = {
    "received": "received",
    "not_delivered": "was sent but did not receive",
    "delivered_not_read": "received but did not read",
    "read_not_replied": "read but did not reply to",
    "replied": "replied to",
    "failed": "failed to get",
    "failed_retryable": "failed for a reason worth retrying to get",
}

# Safe to write inside a JSON path and an SQL string literal (compile.py relies on it):
# letters, digits, underscore, space, dot, hyphen; what imports make ("due_amount") fits.
_KEY = re.compile(r"^[\w][\w .\-]*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def label(key: str) -> str:
    """'due_amount' → 'Due Amount': attribute names as a shop owner wrote them."""
    return key.replace("_", " ").title() if key == key.lower() else key


class _Bad(Exception):
    def __init__(self, part: str, text: str) -> None:
        self.part, self.text = part, text


def validate(raw: object) -> dict[str, Any]:
    """Normalised terms, or ValidationError naming the condition and its field."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValidationError(
            N_("The conditions are not in the expected form."), field="conditions"
        )
    conditions = raw.get("conditions", [])
    if conditions is None:
        conditions = []
    if not isinstance(conditions, list):
        raise ValidationError(
            N_("The conditions are not in the expected form."), field="conditions"
        )
    if len(conditions) > MAX_CONDITIONS:
        raise ValidationError(
            said(
                "A segment may have at most %(most)d conditions; this one has %(count)d.",
                most=MAX_CONDITIONS,
                count=len(conditions),
            ),
            field="conditions",
        )
    match = raw.get("match", "all")
    if match not in MATCHES:
        raise ValidationError(
            N_("Choose whether all or any of the conditions must match."), "match"
        )
    for i, condition in enumerate(conditions):
        _check_bounds(i, condition)
    return {"match": match, "conditions": [_condition(i, c) for i, c in enumerate(conditions)]}


def _check_bounds(i: int, condition: object) -> None:
    """Sizes only, for every condition, before any is interpreted."""
    where = f"conditions.{i}"
    if not isinstance(condition, dict) or len(condition) > 8:
        raise ValidationError(
            said("Condition %(n)d is not in the expected form.", n=i + 1), field=where
        )
    for part, value in condition.items():
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise ValidationError(
                said(
                    "Condition %(n)d: the %(part)s is longer than %(most)d characters.",
                    n=i + 1,
                    part=part,
                    most=MAX_VALUE_CHARS,
                ),
                field=f"{where}.{part}",
            )
        if isinstance(value, list) and len(value) > MAX_IDS:
            raise ValidationError(
                said("Condition %(n)d: choose at most %(most)d values.", n=i + 1, most=MAX_IDS),
                field=f"{where}.{part}",
            )


def _condition(i: int, raw: dict[str, Any]) -> dict[str, Any]:
    field = raw.get("field")
    field = field if isinstance(field, str) else ""
    try:
        check = _CHECKS.get(field)
        if check is None:
            raise _Bad("field", N_("needs what to look at chosen (list, attribute, country…)."))
        return check(raw)
    except _Bad as bad:
        raise ValidationError(
            _condition_problem(i + 1, field, raw, bad.text), field=f"conditions.{i}.{bad.part}"
        ) from None


# "Condition 2: Country needs …": one whole sentence per field, so the pages can read it back
# in their language (the problem is itself one of ours, translated too).
_CONDITION_PROBLEMS = {
    "list": N_("Condition %(n)d: List %(problem)s"),
    "country": N_("Condition %(n)d: Country %(problem)s"),
    "timezone": N_("Condition %(n)d: Timezone %(problem)s"),
    "name": N_("Condition %(n)d: Name %(problem)s"),
    "opt_in": N_("Condition %(n)d: Opt-in %(problem)s"),
    "not_on_whatsapp": N_("Condition %(n)d: Not on WhatsApp %(problem)s"),
    "outcome": N_("Condition %(n)d: Earlier campaign %(problem)s"),
}


def _condition_problem(n: int, field: str, raw: dict[str, Any], problem: str) -> str:
    if field == "attribute":
        key = label(str(raw.get("key") or ""))
        return said("Condition %(n)d: “%(key)s” %(problem)s", n=n, key=key, problem=problem)
    msgid = _CONDITION_PROBLEMS.get(field, N_("Condition %(n)d %(problem)s"))
    return said(msgid, n=n, problem=problem)


def _op(raw: dict[str, Any], allowed: tuple[str, ...]) -> str:
    op = raw.get("op")
    if op not in allowed:
        raise _Bad("op", N_("needs one of the offered comparisons."))
    return str(op)


def _text(value: object, what: str = N_("needs a value.")) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Bad("value", what)
    text = " ".join(str(value).split())
    if not text:
        raise _Bad("value", what)
    if not storable(text):
        raise _Bad("value", N_("has a character that cannot be stored; type it again."))
    return text


def storable(text: str) -> bool:
    """False for a NUL (PostgreSQL text refuses it) or a lone surrogate (no UTF-8 for it),
    both of which JSON can carry; either would fail the query, not the check."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ids(value: object) -> list[int]:
    """List ids (the only ids a condition's value holds)."""
    if not isinstance(value, list) or not value:
        raise _Bad("value", N_("needs at least one list."))
    offered = N_("needs lists chosen from the offered ones.")
    ids: dict[int, None] = {}
    for v in value:
        if isinstance(v, bool):
            raise _Bad("value", offered)
        try:
            n = int(v)
        except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's Infinity
            raise _Bad("value", offered) from None
        if not 0 < n < 2**63:
            raise _Bad("value", offered)
        ids[n] = None
    return list(ids)


_DAYS_WORD = re.compile(r"\s*days?\s*$", re.IGNORECASE)


def _number(value: object) -> int | float:
    if isinstance(value, bool):
        raise _Bad("value", N_("needs a number."))
    if isinstance(value, str):
        value = value.strip().replace(",", "")
    try:
        n = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int of 400 digits
        raise _Bad("value", N_("needs a number.")) from None
    if not math.isfinite(n) or abs(n) >= 1e15:
        raise _Bad("value", N_("needs a number."))
    return int(n) if n.is_integer() else n


def _list(raw: dict[str, Any]) -> dict[str, Any]:
    op = _op(raw, ("in", "not_in"))
    return {"field": "list", "op": op, "value": _ids(raw.get("value"))}


def _attribute(raw: dict[str, Any]) -> dict[str, Any]:
    key = raw.get("key")
    if not isinstance(key, str) or not key.strip():
        raise _Bad("key", N_("needs an attribute chosen."))
    key = key.strip()
    if len(key) > MAX_KEY_CHARS or not _KEY.match(key):
        raise _Bad("key", N_("needs an attribute name of letters, digits, spaces or _ . -"))
    op = _op(raw, ATTRIBUTE_OPS)
    out: dict[str, Any] = {"field": "attribute", "key": key, "op": op}
    value = raw.get("value")
    if op in PRESENCE_OPS:
        out["value"] = None
    elif op in TEXT_OPS:
        out["value"] = _text(value)
    elif op in NUMBER_OPS:
        out["value"] = _number(value)
    elif op in DATE_OPS:
        needs_date = N_("needs a date (YYYY-MM-DD).")
        text = _text(value, needs_date)
        if not _ISO_DATE.match(text):
            raise _Bad("value", needs_date)
        try:
            out["value"] = date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            raise _Bad("value", needs_date) from None
    else:
        if isinstance(value, str):  # the condition reads "in the last … days": "90 days" too
            value = _DAYS_WORD.sub("", value)
        days = _number(value)
        if days != int(days) or not 0 < days <= MAX_DAYS:
            raise _Bad(
                "value",
                said("needs a whole number of days from 1 to %(most)s.", most=f"{MAX_DAYS:,}"),
            )
        out["value"] = int(days)
    return out


def _country(raw: dict[str, Any]) -> dict[str, Any]:
    op = _op(raw, ("in", "not_in"))
    value = raw.get("value")
    if not isinstance(value, list) or not value:
        raise _Bad("value", N_("needs at least one country."))
    codes = [str(v).strip().upper() for v in value]
    for code in codes:
        if not _COUNTRY.match(code) or code not in COUNTRY_NAMES:
            raise _Bad(
                "value",
                said(
                    "needs countries from the offered ones (%(code)s is not).", code=repr(code[:10])
                ),
            )
    return {"field": "country", "op": op, "value": list(dict.fromkeys(codes))}


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _timezone(raw: dict[str, Any]) -> dict[str, Any]:
    op = _op(raw, ("in", "not_in"))
    value = raw.get("value")
    if not isinstance(value, list) or not value:
        raise _Bad("value", N_("needs at least one timezone."))
    zones = [str(v).strip() for v in value]
    for name in zones:
        if name not in _zones():
            raise _Bad(
                "value",
                said(
                    "needs timezones from the offered ones (%(zone)s is not).", zone=repr(name[:40])
                ),
            )
    return {"field": "timezone", "op": op, "value": list(dict.fromkeys(zones))}


def _name(raw: dict[str, Any]) -> dict[str, Any]:
    op = _op(raw, ("contains", "empty", "not_empty"))
    value = _text(raw.get("value")) if op == "contains" else None
    return {"field": "name", "op": op, "value": value}


def _opt_in(raw: dict[str, Any]) -> dict[str, Any]:
    _op(raw, ("eq",))
    if raw.get("value") not in OPT_IN_VALUES:
        raise _Bad("value", N_("needs “never opted out” or “opted back in”."))
    return {"field": "opt_in", "op": "eq", "value": raw["value"]}


def _not_on_whatsapp(raw: dict[str, Any]) -> dict[str, Any]:
    _op(raw, ("eq",))
    value = raw.get("value")
    if value not in (True, False, "true", "false"):
        raise _Bad("value", N_("needs yes or no."))
    return {"field": "not_on_whatsapp", "op": "eq", "value": value in (True, "true")}


def _outcome(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        campaign_id = int(raw.get("campaign_id"))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise _Bad("campaign_id", N_("needs a campaign chosen.")) from None
    if not 0 < campaign_id < 2**63:
        raise _Bad("campaign_id", N_("needs a campaign chosen."))
    op = _op(raw, OUTCOMES)
    value = raw.get("value")
    value = _text(value) if op == "failed" and value not in (None, "") else None
    return {"field": "outcome", "campaign_id": campaign_id, "op": op, "value": value}


_CHECKS = {
    "list": _list,
    "attribute": _attribute,
    "country": _country,
    "timezone": _timezone,
    "name": _name,
    "opt_in": _opt_in,
    "not_on_whatsapp": _not_on_whatsapp,
    "outcome": _outcome,
}


# --- words for pages --------------------------------------------------------------


def describe(terms: dict[str, Any], session: Session) -> str:
    """One plain sentence: "In list Pune and Due Amount > 500", in the reader's language.

    - Its pieces are in the catalogue under the context "segment condition" (short words
      such as "on WhatsApp" that mean this only here).

    - English outside a request and over the API (unless it asks with Accept-Language);
      what is stored (an Event) is described under `force_locale("en")`.
    """
    conditions = terms.get("conditions") or []
    if not conditions:
        return pgettext("segment condition", "Everyone who can be messaged")
    list_ids = {i for c in conditions if c["field"] == "list" for i in c["value"]}
    campaign_ids = {c["campaign_id"] for c in conditions if c["field"] == "outcome"}
    lists: dict[int, str] = {
        i: n
        for i, n in session.execute(
            select(ContactList.id, ContactList.name).where(ContactList.id.in_(list_ids))
        )
    }
    campaigns: dict[int, str] = {
        i: n
        for i, n in session.execute(
            select(Campaign.id, Campaign.name).where(Campaign.id.in_(campaign_ids))
        )
    }
    parts = [_phrase(c, lists, campaigns) for c in conditions]
    sentence = _joined(parts, "and" if terms.get("match", "all") == "all" else "or")
    return sentence[0].upper() + sentence[1:]


def _reader() -> Locale | None:
    """The reader's locale, None for English (and outside a request)."""
    locale = get_locale()
    return None if locale is None or locale.language == "en" else locale


def _joined(parts: list[str], kind: str) -> str:
    """ "a and b and c" in English; in other languages as their own lists go ("a, b और c")."""
    locale = _reader()
    if locale is None:
        return f" {kind} ".join(parts)
    return format_list(parts, style="standard" if kind == "and" else "or", locale=locale)


def _either(names: list[str]) -> str:
    return _joined(names, "or")


def country_name(code: str) -> str:
    """A country's name in the reader's language (Babel's), in English outside a request."""
    locale = _reader()
    english = str(COUNTRY_NAMES.get(code, code))
    return locale.territories.get(code, english) if locale is not None else english


def _phrase(c: dict[str, Any], lists: dict[int, str], campaigns: dict[int, str]) -> str:
    field, op, value = c["field"], c["op"], c.get("value")
    values: list[Any] = value if isinstance(value, list) else []
    if field == "list":
        names = _either([lists.get(i, f"#{i}") for i in values])
        if op == "in":
            return pgettext("segment condition", "in list %(names)s", names=names)
        return pgettext("segment condition", "not in list %(names)s", names=names)
    if field in ("country", "timezone"):
        shown = _either([country_name(v) if field == "country" else str(v) for v in values])
        if field == "country":
            if op == "in":
                return pgettext("segment condition", "country is %(names)s", names=shown)
            return pgettext("segment condition", "country is not %(names)s", names=shown)
        if op == "in":
            return pgettext("segment condition", "timezone is %(names)s", names=shown)
        return pgettext("segment condition", "timezone is not %(names)s", names=shown)
    if field == "name":
        if op == "contains":
            return pgettext("segment condition", "name contains “%(value)s”", value=value)
        if op == "empty":
            return pgettext("segment condition", "name is empty")
        return pgettext("segment condition", "name is not empty")
    if field == "opt_in":
        return (
            pgettext("segment condition", "never opted out")
            if value == "never_opted_out"
            else pgettext("segment condition", "opted back in")
        )
    if field == "not_on_whatsapp":
        return (
            pgettext("segment condition", "not on WhatsApp")
            if value
            else pgettext("segment condition", "on WhatsApp")
        )
    if field == "outcome":
        name = campaigns.get(c["campaign_id"])
        if name is None:
            name = pgettext("segment condition", "campaign #%(id)s", id=c["campaign_id"])
        return _outcome_phrase(op, name, value)
    key = label(c["key"])
    if op == "empty":
        return pgettext("segment condition", "%(key)s is empty", key=key)
    if op == "not_empty":
        return pgettext("segment condition", "%(key)s is not empty", key=key)
    if op == "within_days":
        return pgettext(
            "segment condition", "%(key)s is within the last %(days)s days", key=key, days=value
        )
    if op == "not_within_days":
        return pgettext(
            "segment condition", "%(key)s is more than %(days)s days ago", key=key, days=value
        )
    if op == "eq":
        return pgettext("segment condition", "%(key)s is “%(value)s”", key=key, value=value)
    if op == "neq":
        return pgettext("segment condition", "%(key)s is not “%(value)s”", key=key, value=value)
    if op == "contains":
        return pgettext("segment condition", "%(key)s contains “%(value)s”", key=key, value=value)
    if op == "not_contains":
        return pgettext(
            "segment condition", "%(key)s does not contain “%(value)s”", key=key, value=value
        )
    if op == "before":
        return pgettext("segment condition", "%(key)s is before %(date)s", key=key, date=value)
    if op == "after":
        return pgettext("segment condition", "%(key)s is after %(date)s", key=key, date=value)
    # > ≥ < ≤: the same in every language; the number as the reader writes it ("300,5")
    locale = _reader()
    if locale is not None and isinstance(value, int | float) and not isinstance(value, bool):
        value = format_decimal(value, locale=locale)
    return f"{key} {OP_WORDS[op]} {value}"


def _outcome_phrase(op: str, name: str, value: object) -> str:
    """ "received “Diwali offer”", one whole phrase per outcome."""
    if op == "received":
        return pgettext("segment condition", "received “%(campaign)s”", campaign=name)
    if op == "not_delivered":
        return pgettext(
            "segment condition", "was sent but did not receive “%(campaign)s”", campaign=name
        )
    if op == "delivered_not_read":
        return pgettext(
            "segment condition", "received but did not read “%(campaign)s”", campaign=name
        )
    if op == "read_not_replied":
        return pgettext(
            "segment condition", "read but did not reply to “%(campaign)s”", campaign=name
        )
    if op == "replied":
        return pgettext("segment condition", "replied to “%(campaign)s”", campaign=name)
    if op == "failed" and value:
        return pgettext(
            "segment condition",
            "failed to get “%(campaign)s” (reason “%(text)s”)",
            campaign=name,
            text=value,
        )
    if op == "failed":
        return pgettext("segment condition", "failed to get “%(campaign)s”", campaign=name)
    return pgettext(
        "segment condition",
        "failed for a reason worth retrying to get “%(campaign)s”",
        campaign=name,
    )


def field_choices(session: Session, campaigns_shown: int = 50) -> list[dict[str, Any]]:
    """What the builder offers: each field with its comparisons and choices."""
    from ..contacts.service import placeholder_keys

    lists = session.execute(select(ContactList.id, ContactList.name).order_by(ContactList.name))
    recent = session.execute(
        select(Campaign.id, Campaign.name)
        .where(Campaign.status.not_in([CampaignStatus.DRAFT]))
        .order_by(Campaign.id.desc())
        .limit(campaigns_shown)
    )
    return [
        {
            "field": "list",
            "label": "List",
            "ops": _ops(("in", "not_in")),
            "options": [{"value": i, "label": n} for i, n in lists],
        },
        {
            "field": "attribute",
            "label": "Attribute",
            "ops": _ops(ATTRIBUTE_OPS),
            "keys": [{"value": k, "label": label(k)} for k in placeholder_keys(session)],
        },
        {
            "field": "country",
            "label": "Country",
            "ops": _ops(("in", "not_in")),
            "options": [
                {"value": code, "label": name}
                for code, name in sorted(COUNTRY_NAMES.items(), key=lambda kv: kv[1])
                if _COUNTRY.match(code)
            ],
        },
        {
            "field": "timezone",
            "label": "Timezone",
            "ops": _ops(("in", "not_in")),
            "options": [{"value": z, "label": z} for z in sorted(_zones())],
        },
        {"field": "name", "label": "Name", "ops": _ops(("contains", "empty", "not_empty"))},
        {
            "field": "opt_in",
            "label": "Opt-in",
            "ops": _ops(("eq",)),
            "options": [
                {"value": "never_opted_out", "label": "Never opted out"},
                {"value": "opted_back_in", "label": "Opted back in"},
            ],
        },
        {
            "field": "not_on_whatsapp",
            "label": "Not on WhatsApp",
            "ops": _ops(("eq",)),
            "options": [{"value": True, "label": "Yes"}, {"value": False, "label": "No"}],
        },
        {
            "field": "outcome",
            "label": "Earlier campaign",
            "ops": [{"value": o, "label": OUTCOME_WORDS[o].capitalize()} for o in OUTCOMES],
            "campaigns": [{"value": i, "label": n} for i, n in recent],
        },
    ]


FIELD_CHOICES = field_choices  # the contract's name


def _ops(ops: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"value": op, "label": OP_WORDS[op]} for op in ops]
