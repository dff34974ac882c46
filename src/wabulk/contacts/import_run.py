"""Writing an import: one chunk (see import_read) per transaction.

`Writer.commit` writes a chunk's contacts, list memberships, rejected rows, the progress
cursor and the contact counts (tallies, the list's member_count) together; see
importer.run for the whole loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import Database
from ..models import Contact, Import, ImportKind, ImportStatus, utcnow
from ..outbox import causes as events_out
from . import bulk, import_repeats, tallies
from .import_read import Chunk, Plan, Row

LEASE = timedelta(minutes=2)
# The phones of an import's committed rows, each with the number of its first row.
Seen = dict[str, int]
# A digest of the state before the import of each contact it found (none for a contact the
# import created, or when the run resumed and does not know).
Before = dict[str, int]


class _Existing(Exception):
    """Some phones the chunk was to create exist already: write it again, looking them up."""


class Writer:
    """Commits an import's chunks, one transaction each, and remembers the phones it wrote.

    Most chunks of a big import only add contacts, so a chunk is first written as if none of
    its phones existed (INSERT … ON CONFLICT DO NOTHING, no lookup). If the database skipped
    any row, the transaction is rolled back and the chunk written again the careful way (a
    SELECT of its phones first, then creates and updates); the next chunks stay careful
    until one of them finds no existing phone again.
    """

    def __init__(
        self,
        db: Database,
        import_id: int,
        owner: str,
        seen: Seen,
        progress: Callable[[Import], None] | None = None,
    ) -> None:
        self.db, self.import_id, self.owner = db, import_id, owner
        # The phones of every committed row of this import: a repeat in a later chunk is a
        # duplicate, and is known to exist (no need to try creating it).
        self.seen = seen
        self.before: Before = {}
        self.progress = progress
        self.optimistic = True
        self.checkpointer = db.checkpointer()

    def commit(self, chunk: Chunk, last: bool = False) -> None:
        for attempt in (1, 2, 3):
            careful = not self.optimistic or attempt > 1
            try:
                with self.db.session() as session:
                    firsts, states, found = _apply_chunk(
                        session,
                        self.import_id,
                        chunk,
                        (self.seen, self.before),
                        self.owner,
                        last,
                        careful,
                    )
                    imp = session.get(Import, self.import_id)
                break
            except (_Existing, IntegrityError, bulk.NotTheNewRows):
                # _Existing: the optimistic write met existing phones. IntegrityError: another
                # import inserted one of these phones between our SELECT and INSERT.
                # NotTheNewRows: the new contacts' ids were not where SQLite puts them.
                if attempt == 3:
                    raise
        if self.checkpointer is not None:
            self.checkpointer.kick()
        # Only once committed: a retried chunk counts as before.
        self.seen.update(firsts)
        self.before.update(states)
        self.optimistic = not (careful and found)
        if self.progress is not None:
            self.progress(imp)  # type: ignore[arg-type]


_PHONES = bindparam("phones", expanding=True)
_EXISTING = select(
    Contact.id,
    Contact.phone,
    Contact.name,
    Contact.attributes,
    Contact.opted_out_at,
    Contact.country,
    Contact.timezone,
).where(Contact.phone.in_(_PHONES))
# Phones per lookup: well under SQLite's limit on parameters in one statement (32,766).
_LOOKUP_BATCH = 5_000


def _merge(earlier: Row, row: Row) -> Row:
    """A phone's second row in one chunk: later non-empty values win."""
    attrs = {**json.loads(earlier[2]), **json.loads(row[2])}
    return (earlier[0], row[1] or earlier[1], json.dumps(attrs), earlier[3], earlier[4])


def _apply_chunk(
    session: Session,
    import_id: int,
    chunk: Chunk,
    known: tuple[Seen, Before],
    owner: str,
    last: bool,
    careful: bool,
) -> tuple[Seen, Before, bool]:
    """Write the chunk; (its phones new to the import with their first rows, the state
    before it of the contacts it found, and whether any of its new phones existed already)."""
    seen, before = known
    imp = session.get(Import, import_id)
    assert imp is not None
    if imp.lease_owner != owner:
        raise RuntimeError(f"import {import_id} was taken over by {imp.lease_owner}")
    plan = Plan.of(imp)
    opt_outs = plan.kind == ImportKind.OPT_OUTS
    counts = dict(created=0, updated=0, unchanged=0, duplicate=0, opted_out=0)
    keep_last = plan.keep_last
    rows: dict[str, Row] = {}
    firsts: Seen = {}  # the phones new to the import, with their first row
    repeats: list[import_repeats.Repeat] = []
    for row, number in zip(chunk.rows, chunk.numbers, strict=True):
        phone = row[0]
        earlier = rows.get(phone)
        if earlier is None:
            if phone in seen:
                repeats.append((number, row, None))
                if not keep_last:
                    continue  # the first row, in an earlier chunk, stands
            else:
                firsts[phone] = number
            rows[phone] = row
        else:
            repeats.append((number, row, earlier))
            if keep_last:
                rows[phone] = _merge(earlier, row)
    counts["duplicate"] = len(repeats)
    now = utcnow()
    reason = (plan.reason or "Opt-out list import") if opt_outs else None
    fresh = list(firsts)
    states: Before = {}
    found = False
    inserted = 0  # contacts the database created: what the tallies move by
    listed = plan.list_id is not None and plan.kind == ImportKind.CONTACTS
    joined = 0
    if careful:
        lookup = list(rows)
        join_by_phone = lookup
    else:
        # Phones an earlier chunk committed exist: only they need a lookup.
        lookup = [p for p in rows if p in seen]
        join_by_phone = list(rows)
        if fresh:
            inserted = bulk.insert_contacts(
                session, [rows[p] for p in fresh], now, opt_outs, reason
            )
            if inserted < len(fresh):
                raise _Existing
            counts["created"] += len(fresh)
            if listed:
                # The new contacts join the list by id, right after their INSERT.
                by_id = bulk.add_new_members(session, plan.list_id, inserted, now)  # type: ignore[arg-type]
                if by_id is not None:
                    joined, join_by_phone = by_id, lookup
    # Repeats of rows in earlier chunks that are not taken: their report compares them with
    # the contact (nothing else is done with them).
    fetch = lookup + list({r[1][0]: None for r in repeats if r[2] is None and r[1][0] not in rows})
    existing: dict[str, Any] = {}
    for start in range(0, len(fetch), _LOOKUP_BATCH):
        batch = fetch[start : start + _LOOKUP_BATCH]
        existing.update((c.phone, c) for c in session.execute(_EXISTING, {"phones": batch}))
    new_rows: list[Row] = []
    changes: list[dict[str, Any]] = []
    for phone in lookup:
        row = rows[phone]
        old = existing.get(phone)
        counted_dup = phone in seen
        if old is not None and not counted_dup:
            found = True
        if opt_outs:
            if old is None:
                new_rows.append(row)
                counts["created"] += 0 if counted_dup else 1
            elif old.opted_out_at is None:
                changes.append(
                    {
                        "_id": old.id,
                        "opted_out_at": now,
                        "opt_out_reason": reason,
                        "updated_at": now,
                    }
                )
                counts["updated"] += 0 if counted_dup else 1
            else:
                counts["unchanged"] += 0 if counted_dup else 1
            continue
        if old is None:
            new_rows.append(row)
            counts["created"] += 0 if counted_dup else 1
            continue
        if old.opted_out_at is not None and not counted_dup:  # once per contact, any chunking
            counts["opted_out"] += 1
        merged = {**(old.attributes or {}), **json.loads(row[2])}
        name = row[1] or old.name
        changed = bool(
            merged != (old.attributes or {}) or name != old.name or (old.country is None and row[3])
        )
        if not counted_dup:
            states[phone] = _state(old.name, old.attributes, old.country, old.timezone)
        elif changed and (was_state := before.get(phone)) is not None:
            # A later row of a contact this import found: what counts is where the contact
            # ends against where it began (a repeat may undo or make the change).
            was = _state(old.name, old.attributes, old.country, old.timezone) != was_state
            after = _state(name, merged, old.country or row[3], old.timezone or row[4])
            if was != (after != was_state):
                counts["updated" if was else "unchanged"] -= 1
                counts["unchanged" if was else "updated"] += 1
        if changed:
            changes.append(
                {
                    "_id": old.id,
                    "name": name,
                    "attributes": merged,
                    "country": old.country or row[3],
                    "timezone": old.timezone or row[4],
                    "updated_at": now,
                }
            )
            counts["updated"] += 0 if counted_dup else 1
        else:
            counts["unchanged"] += 0 if counted_dup else 1
    contacts = Contact.__table__
    if new_rows:
        created = bulk.insert_contacts(session, new_rows, now, opt_outs, reason)
        if created < len(new_rows):
            # Another import inserted one of these phones between our SELECT and INSERT.
            raise _Existing
        inserted += created
    opted_out = inserted if opt_outs else 0
    for keys, group in _by_keys(changes).items():
        # Bind names must differ from column names in an UPDATE's SET clause.
        columns = [k for k in keys if k != "_id"]
        stmt = (
            contacts.update()
            .where(contacts.c.id == bindparam("_id"))
            .values({k: bindparam(f"v_{k}") for k in columns})
        )
        if "opted_out_at" in columns:
            # Someone may have opted the contact out since the lookup: leave theirs, count ours.
            stmt = stmt.where(contacts.c.opted_out_at.is_(None))
        done = session.execute(
            stmt, [{"_id": row["_id"], **{f"v_{k}": row[k] for k in columns}} for row in group]
        )
        if "opted_out_at" in columns:
            opted_out += done.rowcount
    if listed and join_by_phone:
        joined += bulk.add_members_by_phone(session, plan.list_id, join_by_phone, now)  # type: ignore[arg-type]
    issues = chunk.issues
    if repeats:
        labels = import_repeats.Labels(plan.mapping)
        first_rows = {**firsts, **{p: seen[p] for p in {r[1][0] for r in repeats} if p in seen}}
        issues = issues + import_repeats.issues(repeats, first_rows, existing, keep_last, labels)
    if issues:
        bulk.insert_issues(session, import_id, issues)
    imp.rows_read += chunk.read
    imp.created_count += counts["created"]
    imp.updated_count += counts["updated"]
    imp.unchanged_count += counts["unchanged"]
    imp.invalid_count += chunk.invalid
    imp.duplicate_count += counts["duplicate"]
    imp.opted_out_count += counts["opted_out"]
    if chunk.read:
        imp.rows_done = chunk.last
    imp.lease_until = now + LEASE
    if last:
        imp.status, imp.finished_at = ImportStatus.COMPLETED, now
        imp.lease_owner = imp.lease_until = None
        imp.rows_total = imp.rows_read
        events_out.import_completed(session, imp, now)
    # The counters move last, in this chunk's transaction: a chunk rolled back or written
    # again after a crash moves them once (see tallies on why last).
    session.flush()
    if joined:
        tallies.move_members(session, plan.list_id, joined)  # type: ignore[arg-type]
    tallies.add(session, contacts=inserted, opted_out=opted_out)
    return firsts, states, found


def _state(name: str | None, attributes: Any, country: str | None, timezone: str | None) -> int:
    """A digest of what an import may change on a contact (made for every known contact a
    chunk holds: a frozenset of the attributes is a sixth of json.dumps's cost)."""
    fields = attributes or {}
    try:
        attrs: object = frozenset(fields.items())
    except TypeError:  # a list or an object among the values (set through the API)
        attrs = json.dumps(fields, sort_keys=True)
    return hash((name, attrs, country, timezone))


def _by_keys(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Group UPDATE parameter sets by the columns they set (one executemany per shape)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return groups
