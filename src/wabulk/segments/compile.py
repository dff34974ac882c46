"""Terms → one query over contacts (STYLE 29): each term only narrows a base select.

The invariant: every query here starts from `contacts WHERE opted_out_at IS NULL` and a term
can only add a WHERE (AND-ed to the base, whatever "all"/"any" says between the terms), so
no condition, however written, brings an opted-out contact back. Terms reach SQL through
the dict `TERMS` of small compilers, never by name lookup (no `getattr`).

Attribute values are stored as text in a JSON column. Three expressions read them, each
rendered the same way in a query and in the expression index that serves it (indexes.py):

- `lower`: the text in lower case, for "is" (an index serves it) and "contains" (a scan).
- `number`: the text as a number when it is one; NULL otherwise, so "abc" never errors and
  never compares. Outer spaces are ignored and a number may be written either way:
  - with a decimal comma, as sheets from Brazil, Spain or Indonesia are ("23,70",
    "1.234,56", "-0,5"): one comma with digits on both sides, only digits and dots before
    it (the dots group thousands and are dropped), only digits after it, and either a dot
    before it or not exactly three digits after it;
  - otherwise with a decimal point, commas grouping digits and ignored ("1,250" is 1250,
    "1,00,000" is 100000, "12.5" is 12.5) — so "1,250" stays 1250 and "1.234" stays 1.234.
  PostgreSQL casts only after a regular expression said the text is a number; SQLite checks
  it with GLOB (the same rules). Both take at most `MAX_NUMBER_CHARS` characters (a longer
  one would overflow NUMERIC).
- `date`: the first ten characters when the text starts like an ISO date ("2026-10-01" or
  "2026-10-01T00:00:00", what imports of XLSX dates store); NULL otherwise. ISO dates
  compare as text, so no date parsing happens in SQL.

The attribute name is written into the SQL as a literal (an index only matches an
expression with the same literal): terms.validate allows only letters, digits, space,
`_`, `.` and `-` in it, and quotes are doubled here anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Numeric,
    Select,
    String,
    and_,
    bindparam,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.sql.visitors import InternalTraversal

from ..models import Contact, Event, Message, MessageStatus, list_members

contacts = Contact.__table__
messages = Message.__table__
events = Event.__table__
S = MessageStatus

# Failure codes that say this number cannot get our messages whatever we send, so a
# retry is pointless. Every other failure (a channel hiccup, a browser or network error,
# Meta's per-user marketing cap 131049, a closed 24-hour window, a template problem that a
# new campaign's message fixes) is worth another try. The campaign's own "send again"
# button retries all of them; this is for "retarget those whose message failed".
NOT_RETRYABLE = frozenset(
    {
        "not_on_whatsapp",  # channels.base.NOT_ON_WHATSAPP (WhatsApp Web saw no account)
        "131026",  # Cloud API: the number is not on WhatsApp
        "131050",  # Cloud API: the customer stopped marketing messages from the business
        "130403",  # Cloud API: the business blocked this customer
        "131021",  # Cloud API: the customer's number is the sender's own number
        "130497",  # Cloud API: the business may not message this customer's country
    }
)


# --- attribute expressions ----------------------------------------------------------

KINDS = ("raw", "lower", "number", "date")


# A longer "number" is no number on either database (PostgreSQL's NUMERIC overflows past
# 16,383 digits after the point, and an index evaluates the expression on every write).
MAX_NUMBER_CHARS = 100


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def attribute_sql(dialect: str, column: str, key: str, kind: str) -> str:
    """The SQL of one attribute expression; the same text for a query and its index."""
    if dialect == "postgresql":
        t = f"({column} ->> {_quoted(key)})"
        if kind == "lower":
            return f"lower({t})"
        if kind == "number":
            b = f"btrim({t})"
            comma = f"replace(replace({b}, '.', ''), ',', '.')"
            r = f"replace({b}, ',', '')"
            return (
                f"CASE WHEN length({b}) <= {MAX_NUMBER_CHARS} "
                f"AND {b} ~ '^-?[0-9]([0-9.]*[0-9])?,[0-9]+$' "
                f"AND (strpos({b}, '.') > 0 OR length({b}) - strpos({b}, ',') <> 3) "
                f"THEN CAST({comma} AS NUMERIC) "
                f"WHEN length({r}) <= {MAX_NUMBER_CHARS} "
                f"AND {r} ~ '^-?[0-9]+([.][0-9]*)?$' THEN CAST({r} AS NUMERIC) END"
            )
        if kind == "date":
            return (
                f"CASE WHEN btrim({t}) ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}' "
                f"THEN substr(btrim({t}), 1, 10) END"
            )
        return t
    path = '$."' + key.replace('"', "") + '"'
    t = f"json_extract({column}, {_quoted(path)})"
    if kind == "lower":
        return f"lower({t})"
    if kind == "number":
        b = f"trim({t})"
        comma = f"replace(replace({b}, '.', ''), ',', '.')"
        r = f"replace({b}, ',', '')"
        return (
            f"CASE WHEN length({b}) <= {MAX_NUMBER_CHARS} "
            f"AND ({b} GLOB '[0-9]*' OR {b} GLOB '-[0-9]*') "
            f"AND substr({b}, 2) NOT GLOB '*[^0-9.,]*' "
            f"AND {b} GLOB '*[0-9],[0-9]*' AND {b} NOT GLOB '*,*[.,]*' "
            f"AND ({b} GLOB '*.*' OR length({b}) - instr({b}, ',') <> 3) "
            f"THEN CAST({comma} AS REAL) "
            f"WHEN length({r}) <= {MAX_NUMBER_CHARS} "
            f"AND ({r} GLOB '[0-9]*' OR {r} GLOB '-[0-9]*') "
            f"AND substr({r}, 2) NOT GLOB '*[^0-9.]*' AND {r} NOT GLOB '*.*.*' "
            f"THEN CAST({r} AS REAL) END"
        )
    if kind == "date":
        return (
            f"CASE WHEN trim({t}) GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' "
            f"THEN substr(trim({t}), 1, 10) END"
        )
    return t


class Attr(ColumnElement[Any]):
    """`contacts.attributes[key]` read as `kind` (see the module's docstring)."""

    __visit_name__ = "wabulk_segment_attr"
    _traverse_internals = [
        ("attr_key", InternalTraversal.dp_string),
        ("kind", InternalTraversal.dp_string),
    ]
    inherit_cache = True

    def __init__(self, key: str, kind: str) -> None:
        self.attr_key = key
        self.kind = kind
        self.type = Numeric(asdecimal=False) if kind == "number" else String()


@compiles(Attr)
def _compile_attr(element: Attr, compiler: Any, **kw: Any) -> str:
    column = compiler.process(contacts.c.attributes, **kw)
    return attribute_sql(compiler.dialect.name, column, element.attr_key, element.kind)


class NotDriving(ColumnElement[Any]):
    """A column SQLite must not use to drive the query: `+contacts.id`.

    SQLite guesses that `id IN (SELECT …)` yields a couple of dozen rows, whatever the
    list's size, so it would start from 300,000 members and read each one's attributes
    rather than use an attribute's index. Written `+id` where an indexed attribute
    condition is AND-ed beside it, the membership is checked per row instead (a lookup in
    the set read once). PostgreSQL plans from statistics: plain column.
    """

    __visit_name__ = "wabulk_segment_not_driving"
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(NotDriving)
def _compile_not_driving(element: NotDriving, compiler: Any, **kw: Any) -> str:
    inner = compiler.process(element.column, **kw)
    return f"+{inner}" if compiler.dialect.name == "sqlite" else str(inner)


def _number(value: int | float) -> Any:
    # Decimal: PostgreSQL then compares numeric with numeric (a float would turn the
    # indexed expression into double precision and miss its index).
    return bindparam(None, Decimal(str(value)), type_=Numeric(asdecimal=True))


# --- term compilers: each returns a condition on one `contacts` row -------------------

Term = dict[str, Any]
Compiler = Callable[[Term, datetime], ColumnElement[bool]]


def _id(term: Term) -> Any:
    """contacts.id, or `+contacts.id` when `condition` marked the term not to drive (the
    opt-in events have no index by contact to probe, so they stay a list read once)."""
    return NotDriving(contacts.c.id) if term.get("_not_driving") else contacts.c.id


def _membership(term: Term, contact_id: Any, *where: ColumnElement[bool]) -> ColumnElement[bool]:
    """contacts.id among the `contact_id`s of rows matching `where`.

    - Usually `id IN (SELECT …)`: the rows are read once, and may drive the query.
    - Beside an indexed attribute condition (which then drives), a probe per contact,
      `EXISTS (… AND contact_id = contacts.id)`, through the (list, contact) primary key or
      the unique (campaign, contact) of messages: no list of 300,000 members materialised
      to check the 40,000 Pune customers against.
    """
    if term.get("_not_driving"):
        return exists().where(*where, contact_id == contacts.c.id)
    return contacts.c.id.in_(select(contact_id).where(*where))


def _list(term: Term, now: datetime) -> ColumnElement[bool]:
    in_lists = _membership(
        term, list_members.c.contact_id, list_members.c.list_id.in_(term["value"])
    )
    return in_lists if term["op"] == "in" else not_(in_lists)


def _attribute(term: Term, now: datetime) -> ColumnElement[bool]:
    key, op, value = term["key"], term["op"], term["value"]
    raw, low = Attr(key, "raw"), Attr(key, "lower")
    return ATTRIBUTE_OPS[op](raw, low, key, value, now)


def _day(now: datetime, days: int = 0) -> str:
    return (now.astimezone(UTC).date() - timedelta(days=days)).isoformat()


AttributeOp = Callable[[Attr, Attr, str, Any, datetime], ColumnElement[bool]]
ATTRIBUTE_OPS: dict[str, AttributeOp] = {
    # Text: case-insensitive; "is not" / "does not contain" include contacts without it.
    "eq": lambda raw, low, k, v, now: low == v.lower(),
    "neq": lambda raw, low, k, v, now: or_(raw.is_(None), low != v.lower()),
    "contains": lambda raw, low, k, v, now: low.contains(v.lower(), autoescape=True),
    "not_contains": lambda raw, low, k, v, now: or_(
        raw.is_(None), not_(low.contains(v.lower(), autoescape=True))
    ),
    "empty": lambda raw, low, k, v, now: or_(raw.is_(None), func.trim(raw) == ""),
    "not_empty": lambda raw, low, k, v, now: and_(raw.is_not(None), func.trim(raw) != ""),
    # Numbers: only values that are numbers compare at all.
    "gt": lambda raw, low, k, v, now: Attr(k, "number") > _number(v),
    "gte": lambda raw, low, k, v, now: Attr(k, "number") >= _number(v),
    "lt": lambda raw, low, k, v, now: Attr(k, "number") < _number(v),
    "lte": lambda raw, low, k, v, now: Attr(k, "number") <= _number(v),
    # Dates (ISO text; days counted in UTC from `now`).
    "before": lambda raw, low, k, v, now: Attr(k, "date") < v,
    "after": lambda raw, low, k, v, now: Attr(k, "date") > v,
    "within_days": lambda raw, low, k, v, now: Attr(k, "date").between(_day(now, v), _day(now)),
    "not_within_days": lambda raw, low, k, v, now: Attr(k, "date") < _day(now, v),
}


def _in_or_not(column: Any, term: Term) -> ColumnElement[bool]:
    if term["op"] == "in":
        return column.in_(term["value"])  # type: ignore[no-any-return]
    # "Not in India" keeps contacts whose country is unknown.
    return or_(column.is_(None), column.not_in(term["value"]))


def _name(term: Term, now: datetime) -> ColumnElement[bool]:
    name = contacts.c.name
    if term["op"] == "contains":
        return func.lower(name).contains(term["value"].lower(), autoescape=True)
    empty = or_(name.is_(None), func.trim(name) == "")
    return empty if term["op"] == "empty" else not_(empty)


def opted_back_in_ids() -> Select[Any]:
    """Contacts a person opted back in: the `contact.opted_in` events (no column says it;
    the event keeps the contact's id in its data). Scans the events of that kind."""
    contact_id = events.c.data["contact_id"].as_integer()
    return select(contact_id).where(events.c.kind == "contact.opted_in", contact_id.is_not(None))


def _opt_in(term: Term, now: datetime) -> ColumnElement[bool]:
    back_in = _id(term).in_(opted_back_in_ids())
    # Opted-out contacts are never members, so "never opted out" is "not opted back in".
    return back_in if term["value"] == "opted_back_in" else not_(back_in)


def _not_on_whatsapp(term: Term, now: datetime) -> ColumnElement[bool]:
    flag = contacts.c.not_on_whatsapp_at
    return flag.is_not(None) if term["value"] else flag.is_(None)


_NOT_REPLIED = messages.c.replied_at.is_(None)
OUTCOME_WHERE: dict[str, Callable[[Any], ColumnElement[bool]]] = {
    "received": lambda v: or_(
        messages.c.status.in_([S.DELIVERED, S.READ]), messages.c.replied_at.is_not(None)
    ),
    # Sent (or skipped, or failed) and never heard of as delivered; not those still queued.
    "not_delivered": lambda v: and_(
        messages.c.status.in_([S.SENT, S.FAILED, S.UNKNOWN, S.SKIPPED]), _NOT_REPLIED
    ),
    "delivered_not_read": lambda v: and_(messages.c.status == S.DELIVERED, _NOT_REPLIED),
    "read_not_replied": lambda v: and_(messages.c.status == S.READ, _NOT_REPLIED),
    "replied": lambda v: messages.c.replied_at.is_not(None),
    "failed": lambda v: and_(
        messages.c.status == S.FAILED,
        true()
        if v is None
        else or_(
            messages.c.error_code == v,
            func.lower(messages.c.error_detail).contains(v.lower(), autoescape=True),
        ),
    ),
    "failed_retryable": lambda v: and_(
        messages.c.status == S.FAILED,
        func.coalesce(messages.c.error_code, "").not_in(sorted(NOT_RETRYABLE)),
    ),
}


def _outcome(term: Term, now: datetime) -> ColumnElement[bool]:
    # WHERE campaign_id = ? AND status …: ix_messages_campaign_id_status_replied_at_contact_id.
    return _membership(
        term,
        messages.c.contact_id,
        messages.c.campaign_id == term["campaign_id"],
        OUTCOME_WHERE[term["op"]](term.get("value")),
    )


def _drives(term: Term) -> bool:
    """Whether a membership term can be the driving join (one row per contact at most)."""
    if term["field"] == "outcome":
        return True
    return term["field"] == "list" and term["op"] == "in" and len(term["value"]) == 1


def _driving_join(term: Term) -> Any:
    """`contacts JOIN messages` (or the list's members) of the term that drives the query.

    `id IN (SELECT contact_id FROM messages …)` made SQLite build the whole set first (the
    300,000 "delivered" of a million-message campaign) before a count's cap could stop it.
    Joined, the messages are read in the order of the (campaign, status, replied_at,
    contact) index, from the index alone, and each contact row is looked up as it comes,
    so a count stops at its cap. No duplicates: one message per (campaign, contact), one
    membership per (list, contact). Aliases, so another term's EXISTS over the same table
    is not correlated to the join.
    """
    if term["field"] == "list":
        member = list_members.alias("driver")
        return contacts.join(
            member,
            and_(member.c.contact_id == contacts.c.id, member.c.list_id == term["value"][0]),
        )
    driver = messages.alias("driver")
    outcome = OUTCOME_WHERE[term["op"]](term.get("value"))
    on = and_(
        driver.c.contact_id == contacts.c.id,
        driver.c.campaign_id == term["campaign_id"],
        _on_alias(outcome, driver),
    )
    return contacts.join(driver, on)


def _on_alias(clause: ColumnElement[bool], alias: Any) -> ColumnElement[bool]:
    return ClauseAdapter(alias).traverse(clause)  # type: ignore[no-any-return]


TERMS: dict[str, Compiler] = {
    "list": _list,
    "attribute": _attribute,
    "country": lambda term, now: _in_or_not(contacts.c.country, term),
    "timezone": lambda term, now: _in_or_not(contacts.c.timezone, term),
    "name": _name,
    "opt_in": _opt_in,
    "not_on_whatsapp": _not_on_whatsapp,
    "outcome": _outcome,
}


# --- the builder ---------------------------------------------------------------------


def condition(terms: dict[str, Any], now: datetime) -> ColumnElement[bool] | None:
    """The terms as one WHERE condition on `contacts` (None: no conditions, everyone), for
    a query that has its `contacts` row from elsewhere (no driving join)."""
    return _plan(terms, now, join=False)[0]


def _plan(
    terms: dict[str, Any], now: datetime, join: bool = True
) -> tuple[ColumnElement[bool] | None, Any]:
    """(WHERE condition on `contacts`, FROM to select from or None for plain `contacts`).

    What drives, with "match all": an indexed attribute condition; else the first campaign
    outcome or else the first "in list" of one list, joined (`_driving_join`); else a set
    read once (several lists, opt-ins). Beside a driver, other memberships are checked per
    row (EXISTS through their keys).
    """
    conditions = terms.get("conditions") or []
    match_all = terms.get("match", "all") != "any"
    driver = None
    if join and match_all and not index_needs(terms):
        # A campaign's outcome first: its index holds the conditions (a list does not).
        ranked = sorted(range(len(conditions)), key=lambda i: conditions[i]["field"] != "outcome")
        driver = next((i for i in ranked if _drives(conditions[i])), None)
    if match_all and (driver is not None or index_needs(terms)):
        conditions = [
            {**c, "_not_driving": True} if c["field"] in _MEMBERSHIPS else c for c in conditions
        ]
    source = _driving_join(conditions[driver]) if driver is not None else None
    parts = [TERMS[c["field"]](c, now) for i, c in enumerate(conditions) if i != driver]
    if not parts:
        return None, source
    if not match_all:
        return or_(false(), *parts), source
    return and_(true(), *parts), source


_MEMBERSHIPS = frozenset({"list", "outcome", "opt_in"})


class SegmentQuery:
    """A select over contacts that are not opted out; `narrow` only ever adds to its WHERE.

    Invariant: the base condition `opted_out_at IS NULL` is set here and nothing removes
    it, so no term can bring back a contact who opted out.
    """

    def __init__(self, *columns: Any) -> None:
        self._query = select(*columns).where(contacts.c.opted_out_at.is_(None))

    def narrow(self, clause: ColumnElement[bool] | None) -> SegmentQuery:
        if clause is not None:
            self._query = self._query.where(clause)
        return self

    def terms(self, terms: dict[str, Any], now: datetime) -> SegmentQuery:
        """Narrow by the terms (and read from their driving join, if any)."""
        clause, source = _plan(terms, now)
        if source is not None:
            self._query = self._query.select_from(source)
        return self.narrow(clause)

    def query(self) -> Select[Any]:
        return self._query


def members(terms: dict[str, Any], now: datetime) -> Select[tuple[int, str]]:
    """(contact id, phone) of every member; never an opted-out contact."""
    return SegmentQuery(contacts.c.id, contacts.c.phone).terms(terms, now).query()


def reachable(terms: dict[str, Any], now: datetime) -> Select[tuple[int, str]]:
    """Members minus numbers WhatsApp said have no account: what a launch inserts."""
    return reachable_columns(terms, now, contacts.c.id, contacts.c.phone)


def reachable_columns(terms: dict[str, Any], now: datetime, *columns: Any) -> Select[Any]:
    """`reachable` selecting other columns: a count selects only the id, which SQLite then
    reads from an attribute's index alone (indexes.py adds the two flags to it)."""
    return (
        SegmentQuery(*columns)
        .terms(terms, now)
        .narrow(contacts.c.not_on_whatsapp_at.is_(None))
        .query()
    )


def opted_out(terms: dict[str, Any], now: datetime) -> Select[tuple[int]]:
    """Contacts matching the terms but left out because they opted out (the wizard shows
    how many beside the count). Never used to send."""
    query = select(contacts.c.id).where(contacts.c.opted_out_at.is_not(None))
    clause, source = _plan(terms, now)
    if source is not None:
        query = query.select_from(source)
    return query.where(clause) if clause is not None else query


def index_needs(terms: dict[str, Any]) -> list[tuple[str, str]]:
    """(attribute key, expression kind) of the conditions an expression index can serve:
    "is" (lower), number comparisons (number), dates (date)."""
    wanted: dict[tuple[str, str], None] = {}
    for c in terms.get("conditions") or []:
        if c["field"] != "attribute":
            continue
        kind = INDEXED_KIND.get(c["op"])
        if kind is not None:
            wanted[(c["key"], kind)] = None
    return list(wanted)


INDEXED_KIND = {
    "eq": "lower",
    "gt": "number",
    "gte": "number",
    "lt": "number",
    "lte": "number",
    "before": "date",
    "after": "date",
    "within_days": "date",
    "not_within_days": "date",
}
