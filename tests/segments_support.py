"""Generated contacts with attributes and campaign outcomes, and the segment rules in plain
Python, so each condition's SQL is checked against a set computed by hand."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from wabulk.db import Database
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactList,
    Event,
    Message,
    MessageStatus,
    list_members,
)
from wabulk.segments.compile import NOT_RETRYABLE

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

CITIES = ["Pune", "pune", "PUNE ", "Mumbai", "Pune East", "", None, 42]
AMOUNTS = [
    "500",
    "1,250",
    "23,70",
    "1.234,56",
    "1,2,5",
    "abc",
    "",
    "-3",
    "12.5",
    "499.99",
    "5.",
    "1.2.3",
    700,
    None,
    " 800 ",
]
DATES = [
    "2026-10-01",
    "2026-10-01T00:00:00",
    "2026-11-30",
    "2025-01-15",
    "01/10/2026",
    "",
    None,
    (NOW - timedelta(days=90)).date().isoformat(),
    (NOW - timedelta(days=91)).date().isoformat(),
    "2027-01-01",
]
COUNTRIES = ["IN", "IN", "AE", "GB", None]
ZONES = ["Asia/Kolkata", "Asia/Dubai", "Europe/London", None]
STATUSES = list(MessageStatus)
CODES = [None, "not_on_whatsapp", "131026", "transient", "131049", "browser_error", "131050"]


@dataclass
class Person:
    id: int
    name: str | None
    attributes: dict[str, Any]
    country: str | None
    timezone: str | None
    opted_out: bool
    not_on_whatsapp: bool
    lists: set[int] = field(default_factory=set)
    opted_back_in: bool = False
    # campaign id → (status, replied, error code, error detail)
    messages: dict[int, tuple[str, bool, str | None, str | None]] = field(default_factory=dict)


@dataclass
class World:
    people: list[Person]
    list_ids: list[int]
    campaign_ids: list[int]


def build(db: Database, n: int = 160, seed: int = 19) -> World:
    rng = random.Random(seed)
    with db.session() as session:
        lists = [ContactList(name=f"Segment list {i}") for i in range(3)]
        session.add_all(lists)
        campaigns = [
            Campaign(name=f"Offer {i}", status=CampaignStatus.COMPLETED, body="Hi")
            for i in range(2)
        ]
        session.add_all(campaigns)
        session.flush()
        people: list[Person] = []
        for i in range(n):
            attrs: dict[str, Any] = {}
            for key, choices in (("city", CITIES), ("due_amount", AMOUNTS), ("last", DATES)):
                value = rng.choice([*choices, "<absent>"])
                if value != "<absent>":
                    attrs[key] = value
            name = rng.choice([f"Asha {i}", f"Ravi {i}", "", None])
            contact = Contact(
                phone=f"+9198{i:08d}",
                name=name,
                attributes=attrs,
                country=rng.choice(COUNTRIES),
                timezone=rng.choice(ZONES),
                opted_out_at=NOW if rng.random() < 0.15 else None,
                not_on_whatsapp_at=NOW if rng.random() < 0.1 else None,
            )
            session.add(contact)
            session.flush()
            person = Person(
                contact.id,
                name,
                attrs,
                contact.country,
                contact.timezone,
                contact.opted_out_at is not None,
                contact.not_on_whatsapp_at is not None,
            )
            for lst in lists:
                if rng.random() < 0.4:
                    person.lists.add(lst.id)
            if not person.opted_out and rng.random() < 0.15:
                person.opted_back_in = True
                session.add(
                    Event(kind="contact.opted_in", text="back in", data={"contact_id": contact.id})
                )
            for campaign in campaigns:
                if rng.random() < 0.7:
                    status = rng.choice(STATUSES).value
                    replied = status in ("sent", "delivered", "read") and rng.random() < 0.3
                    code = rng.choice(CODES) if status == "failed" else None
                    detail = f"Detail for {code}" if code else None
                    person.messages[campaign.id] = (status, replied, code, detail)
                    session.add(
                        Message(
                            campaign_id=campaign.id,
                            contact_id=contact.id,
                            phone=contact.phone,
                            status=MessageStatus(status),
                            replied_at=NOW if replied else None,
                            error_code=code,
                            error_detail=detail,
                        )
                    )
            people.append(person)
        session.flush()
        for person in people:
            for list_id in person.lists:
                session.execute(
                    list_members.insert().values(
                        list_id=list_id, contact_id=person.id, added_at=NOW
                    )
                )
        # A stray event without a contact must not empty "never opted out" (NOT IN + NULL).
        session.add(Event(kind="contact.opted_in", text="odd", data={}))
        return World(people, [lst.id for lst in lists], [c.id for c in campaigns])


# --- the rules, in Python -----------------------------------------------------------


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def _number(v: Any) -> float | None:
    t = _text(v)
    if t is None:
        return None
    b = t.strip(" ")
    comma = re.fullmatch(r"-?[0-9]([0-9.]*[0-9])?,([0-9]+)", b)
    if comma and ("." in b or len(comma.group(2)) != 3):  # "23,70", "1.234,56"
        return float(b.replace(".", "").replace(",", "."))
    r = b.replace(",", "")
    return float(r) if re.fullmatch(r"-?[0-9]+(\.[0-9]*)?", r) else None


def _date(v: Any) -> str | None:
    t = _text(v)
    if t is None:
        return None
    t = t.strip(" ")
    return t[:10] if re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", t) else None


def _day(days: int) -> str:
    return (NOW.date() - timedelta(days=days)).isoformat()


def matches_attribute(p: Person, c: dict[str, Any]) -> bool:
    raw = _text(p.attributes.get(c["key"]))
    op, v = c["op"], c.get("value")
    low = raw.lower() if raw is not None else None
    if op == "eq":
        return low == v.lower()
    if op == "neq":
        return low is None or low != v.lower()
    if op == "contains":
        return low is not None and v.lower() in low
    if op == "not_contains":
        return low is None or v.lower() not in low
    if op == "empty":
        return raw is None or raw.strip(" ") == ""
    if op == "not_empty":
        return raw is not None and raw.strip(" ") != ""
    if op in ("gt", "gte", "lt", "lte"):
        n = _number(p.attributes.get(c["key"]))
        if n is None:
            return False
        return {"gt": n > v, "gte": n >= v, "lt": n < v, "lte": n <= v}[op]
    d = _date(p.attributes.get(c["key"]))
    if d is None:
        return False
    if op == "before":
        return d < v
    if op == "after":
        return d > v
    if op == "within_days":
        return _day(v) <= d <= _day(0)
    return d < _day(v)  # not_within_days


def matches_outcome(p: Person, c: dict[str, Any]) -> bool:
    m = p.messages.get(c["campaign_id"])
    if m is None:
        return False
    status, replied, code, detail = m
    op = c["op"]
    if op == "received":
        return status in ("delivered", "read") or replied
    if op == "not_delivered":
        return status in ("sent", "failed", "unknown", "skipped") and not replied
    if op == "delivered_not_read":
        return status == "delivered" and not replied
    if op == "read_not_replied":
        return status == "read" and not replied
    if op == "replied":
        return replied
    if op == "failed":
        v = c.get("value")
        return status == "failed" and (
            v is None or code == v or (detail is not None and v.lower() in detail.lower())
        )
    return status == "failed" and (code or "") not in NOT_RETRYABLE


def matches(p: Person, c: dict[str, Any]) -> bool:
    field_, op, v = c["field"], c["op"], c.get("value")
    if field_ == "list":
        inside = bool(p.lists & set(v))
        return inside if op == "in" else not inside
    if field_ == "attribute":
        return matches_attribute(p, c)
    if field_ in ("country", "timezone"):
        own = p.country if field_ == "country" else p.timezone
        return own in v if op == "in" else (own is None or own not in v)
    if field_ == "name":
        if op == "contains":
            return p.name is not None and v.lower() in p.name.lower()
        empty = p.name is None or p.name.strip(" ") == ""
        return empty if op == "empty" else not empty
    if field_ == "opt_in":
        return p.opted_back_in if v == "opted_back_in" else not p.opted_back_in
    if field_ == "not_on_whatsapp":
        return p.not_on_whatsapp == v
    return matches_outcome(p, c)


def expected(world: World, terms: dict[str, Any], reachable: bool = True) -> set[int]:
    pick = all if terms.get("match", "all") == "all" else any
    return {
        p.id
        for p in world.people
        if not p.opted_out
        and not (reachable and p.not_on_whatsapp)
        and (not terms["conditions"] or pick(matches(p, c) for c in terms["conditions"]))
    }
