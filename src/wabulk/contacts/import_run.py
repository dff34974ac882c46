"""The engine of an import: rows read and normalised, then written a chunk at a time.

- `read_chunks` turns the sheet into chunks of (row number, contact or None, issue or None);
  for big sheets `read_chunks_in_child` does it in a second process, a few chunks ahead.
- `commit_chunk` writes one chunk in one transaction: contacts, list memberships, rejected
  rows and the progress cursor together (see importer.run for the whole loop).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import Database
from ..models import Contact, Import, ImportIssue, ImportKind, ImportStatus, utcnow
from . import bulk
from . import mapping as mappings
from .phones import clean_cell, normalise
from .sheets import SheetError, open_sheet

LEASE = timedelta(minutes=2)
CHUNK_ROWS = 5_000


@dataclass(slots=True)
class Row:
    number: int
    phone: str
    name: str | None
    # JSON text, encoded where the row is read (the second process for big sheets): the
    # writer then stores it as is; `attrs()` decodes it only for the rare merge.
    attributes_json: str

    def attrs(self) -> dict[str, str]:
        return json.loads(self.attributes_json)  # type: ignore[no-any-return]

    country: str | None
    timezone: str | None


# (row number, rejected?, reason, the row's cells): a rejected row or a note on an imported one.
Issue = tuple[int, bool, str, list[str]]
# One data row as read: (row number, the contact it gives or None, its issue or None).
Read = tuple[int, "Row | None", "Issue | None"]
# Below this many rows the reader runs in the same process: starting a second one costs more.
PARALLEL_MIN_ROWS = 50_000


def read_chunks(path: Path, plan: Plan, start_after: int, chunk_rows: int) -> Iterator[list[Read]]:
    """The sheet's rows after `start_after`, read and normalised, in chunks."""
    sheet = open_sheet(path)
    plan.bind(sheet.header)
    chunk: list[Read] = []
    for number, cells in sheet.rows(start_after=start_after):
        row, issue = plan.read(number, cells)
        chunk.append((number, row, issue))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    yield chunk


def _row_tuple(row: Row) -> tuple[Any, ...]:
    return (row.number, row.phone, row.name, row.attributes_json, row.country, row.timezone)


def _produce(path: str, plan: Plan, start_after: int, chunk_rows: int, out: Any) -> None:
    """Child process: read and normalise while the parent writes (the second core's share)."""
    try:
        for chunk in read_chunks(Path(path), plan, start_after, chunk_rows):
            # Plain tuples pickle several times faster than dataclass instances.
            out.put(("chunk", [(n, None if r is None else _row_tuple(r), i) for n, r, i in chunk]))
        out.put(("done", None))
    except SheetError as exc:
        out.put(("error", str(exc)))
    except Exception as exc:  # the parent must never wait forever on a dead reader
        out.put(("crash", f"{type(exc).__name__}: {exc}"))


def read_chunks_in_child(
    path: Path, plan: Plan, start_after: int, chunk_rows: int
) -> Iterator[list[Read]]:
    """Like read_chunks, from a second process; a few chunks ahead at most (bounded memory)."""
    import multiprocessing
    import queue as queue_errors

    # spawn, not fork: the web process has threads, and a forked copy of their locks deadlocks.
    ctx = multiprocessing.get_context("spawn")
    channel = ctx.Queue(maxsize=4)
    child = ctx.Process(
        target=_produce,
        args=(str(path), plan, start_after, chunk_rows, channel),
        name="wabulk-import-reader",
        daemon=True,
    )
    child.start()
    try:
        while True:
            try:
                kind, payload = channel.get(timeout=5)
            except queue_errors.Empty:
                if not child.is_alive():
                    raise RuntimeError("the import reader process died") from None
                continue
            if kind == "chunk":
                yield [(n, None if r is None else Row(*r), i) for n, r, i in payload]
            elif kind == "done":
                return
            elif kind == "error":
                raise SheetError(payload)
            else:
                raise RuntimeError(f"the import reader failed: {payload}")
    finally:
        if child.is_alive():
            child.terminate()
        child.join(5)
        channel.close()
        channel.join_thread()


class Plan:
    """The mapping resolved to column positions, plus what applies to every row."""

    def __init__(
        self,
        kind: ImportKind,
        mapping: dict[str, Any],
        region: str,
        list_id: int | None,
        reason: str | None,
    ) -> None:
        self.kind, self.mapping, self.region = kind, mapping, region
        self.list_id, self.reason = list_id, reason
        self.phone = 0
        self.names: list[int] = []
        self.attributes: list[tuple[int, str]] = []

    @classmethod
    def of(cls, imp: Import) -> Plan:
        return cls(
            imp.kind, imp.mapping, imp.default_country or "US", imp.list_id, imp.opt_out_reason
        )

    def bind(self, header: list[str]) -> None:
        checked = mappings.validate(self.mapping, header)
        index = {h: i for i, h in enumerate(header)}
        self.phone = index[checked["phone"]]
        self.names = [index[c] for c in checked["name"]]
        self.attributes = [(index[c], k) for c, k in checked["attributes"].items()]
        self.phone_column = checked["phone"]

    def read(self, number: int, cells: list[str]) -> tuple[Row | None, Issue | None]:
        raw = cells[self.phone]
        result = normalise(clean_cell(raw), self.region)
        if not result.ok:
            reason = f"row {number}: {result.error}"
            if result.error == "has no phone number":
                reason = f'row {number}: the "{self.phone_column}" cell is empty'
            return None, (number, True, reason[:500], cells)
        name = " ".join(cells[i] for i in self.names if cells[i]) or None
        attrs = {key: cells[i] for i, key in self.attributes if cells[i] != ""}
        row = Row(
            number, result.e164 or "", name, json.dumps(attrs), result.country, result.timezone
        )
        if not result.extras:
            return row, None
        reason = (
            f"row {number}: imported {result.e164}; also holds "
            f"{', '.join(result.extras)}, not imported (one number per contact)"
        )
        return row, (number, False, reason[:500], cells)


def commit_chunk(
    db: Database,
    import_id: int,
    chunk: list[Read],
    seen: set[str],
    owner: str,
    progress: Callable[[Import], None] | None,
    last: bool = False,
) -> None:
    for attempt in (1, 2):
        try:
            with db.session() as session:
                _apply_chunk(session, import_id, chunk, seen, owner, last)
                imp = session.get(Import, import_id)
            break
        except IntegrityError:
            # Another import inserted one of these phones between our SELECT and INSERT.
            if attempt == 2:
                raise
    if progress is not None:
        progress(imp)


# One expanding parameter for the chunk's phones: SQLAlchemy then neither coerces 5,000
# values one by one nor compiles the statement again for every chunk.
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


def _apply_chunk(
    session: Session,
    import_id: int,
    chunk: list[Read],
    seen: set[str],
    owner: str,
    last: bool,
) -> None:
    imp = session.get(Import, import_id)
    assert imp is not None
    if imp.lease_owner != owner:
        raise RuntimeError(f"import {import_id} was taken over by {imp.lease_owner}")
    counts = dict(created=0, updated=0, unchanged=0, invalid=0, duplicate=0, opted_out=0)
    issues: list[ImportIssue] = []
    rows: dict[str, Row] = {}
    plan = Plan.of(imp)
    for _number, row, issue in chunk:
        if issue is not None:
            number, rejected, reason, cells = issue
            issues.append(
                ImportIssue(
                    import_id=import_id,
                    row_number=number,
                    rejected=rejected,
                    reason=reason,
                    cells=cells,
                )
            )
        if row is None:
            counts["invalid"] += 1
            continue
        if row.phone in rows:
            counts["duplicate"] += 1
            earlier = rows[row.phone]
            earlier.name = row.name or earlier.name
            earlier.attributes_json = json.dumps({**earlier.attrs(), **row.attrs()})
        else:
            if row.phone in seen:
                counts["duplicate"] += 1
            rows[row.phone] = row
    now = utcnow()
    existing = (
        {c.phone: c for c in session.execute(_EXISTING, {"phones": list(rows)}).all()}
        if rows
        else {}
    )
    new_rows, changes = [], []
    for phone, row in rows.items():
        old = existing.get(phone)
        counted_dup = phone in seen
        seen.add(phone)
        if plan.kind == ImportKind.OPT_OUTS:
            if old is None:
                new_rows.append(_new_contact(row, now, opted_out=True, reason=plan.reason))
                counts["created"] += 0 if counted_dup else 1
            elif old.opted_out_at is None:
                changes.append(
                    {
                        "_id": old.id,
                        "opted_out_at": now,
                        "opt_out_reason": plan.reason or "Opt-out list import",
                        "updated_at": now,
                    }
                )
                counts["updated"] += 0 if counted_dup else 1
            else:
                counts["unchanged"] += 0 if counted_dup else 1
            continue
        if old is None:
            new_rows.append(_new_contact(row, now))
            counts["created"] += 0 if counted_dup else 1
            continue
        if old.opted_out_at is not None and not counted_dup:  # once per contact, any chunking
            counts["opted_out"] += 1
        merged = {**(old.attributes or {}), **row.attrs()}
        name = row.name or old.name
        if (
            merged != (old.attributes or {})
            or name != old.name
            or (old.country is None and row.country)
        ):
            changes.append(
                {
                    "_id": old.id,
                    "name": name,
                    "attributes": merged,
                    "country": old.country or row.country,
                    "timezone": old.timezone or row.timezone,
                    "updated_at": now,
                }
            )
            counts["updated"] += 0 if counted_dup else 1
        else:
            counts["unchanged"] += 0 if counted_dup else 1
    contacts = Contact.__table__
    if new_rows:
        # executemany: the ORM's bulk INSERT … RETURNING splits rows by which values are None
        # and was half of an import's time.
        bulk.insert_contacts(session, new_rows)
    for keys, group in _by_keys(changes).items():
        # Bind names must differ from column names in an UPDATE's SET clause.
        columns = [k for k in keys if k != "_id"]
        stmt = (
            contacts.update()
            .where(contacts.c.id == bindparam("_id"))
            .values({k: bindparam(f"v_{k}") for k in columns})
        )
        session.execute(
            stmt, [{"_id": row["_id"], **{f"v_{k}": row[k] for k in columns}} for row in group]
        )
    if plan.list_id is not None and rows and plan.kind == ImportKind.CONTACTS:
        bulk.add_members_by_phone(session, plan.list_id, list(rows), now)
    if issues:
        session.add_all(issues)
    imp.rows_read += len(chunk)
    imp.created_count += counts["created"]
    imp.updated_count += counts["updated"]
    imp.unchanged_count += counts["unchanged"]
    imp.invalid_count += counts["invalid"]
    imp.duplicate_count += counts["duplicate"]
    imp.opted_out_count += counts["opted_out"]
    if chunk:
        imp.rows_done = chunk[-1][0]
    imp.lease_until = now + LEASE
    if last:
        imp.status, imp.finished_at = ImportStatus.COMPLETED, now
        imp.lease_owner = imp.lease_until = None
        imp.rows_total = imp.rows_read


def _by_keys(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Group UPDATE parameter sets by the columns they set (one executemany per shape)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return groups


def _new_contact(
    row: Row, now: Any, opted_out: bool = False, reason: str | None = None
) -> dict[str, Any]:
    return {
        "phone": row.phone,
        "name": row.name,
        "attributes_json": row.attributes_json,
        "country": row.country,
        "timezone": row.timezone,
        "created_at": now,
        "updated_at": now,
        "opted_out_at": now if opted_out else None,
        "opt_out_reason": (reason or "Opt-out list import") if opted_out else None,
    }
