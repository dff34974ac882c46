"""The engine of an import: rows read and normalised, then written a chunk at a time.

- `read_chunks` turns the sheet into `Chunk`s: the valid rows as the values an INSERT takes,
  the rows' issues, and the resume cursor; for big sheets `read_chunks_in_child` does it in a
  second process, a few chunks ahead. Everything per row that can be prepared there is, so
  the writer does no per-row Python work beyond a dictionary of the chunk's phones.
- `Writer.commit` writes one chunk in one transaction: contacts, list memberships, rejected
  rows, the progress cursor and the contact counts (tallies, the list's member_count)
  together (see importer.run for the whole loop).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import Database
from ..models import Contact, Import, ImportKind, ImportStatus, utcnow
from . import bulk, tallies
from . import mapping as mappings
from .phones import clean_cell, normalise
from .sheets import SheetError, open_sheet

# What json.dumps uses for a str (ASCII-only output, the same escapes).
_json_text = encode_basestring_ascii
LEASE = timedelta(minutes=2)
CHUNK_ROWS = 5_000
# Chunks of a sheet read in the second process. Each commit writes every index page the
# chunk touched to the WAL, and a chunk's phones land all over the unique phone index: bigger
# chunks touch each page for more rows (20,000 instead of 5,000: the writer ~1.4x faster).
BIG_CHUNK_ROWS = 20_000
# Below this many rows the reader runs in the same process: starting a second one costs more.
PARALLEL_MIN_ROWS = 50_000

# One valid row, as the INSERT takes it: (phone E.164, name, attributes as JSON text,
# country, timezone). Encoded where the row is read (the second process for big sheets).
Row = tuple[str, str | None, str, str | None, str | None]
# (row number, rejected?, reason, the row's cells as JSON text): a rejected row or a note on
# an imported one (extra numbers in its phone cell).
Issue = tuple[int, bool, str, str]


@dataclass(slots=True)
class Chunk:
    """Consecutive data rows of the sheet, read and normalised."""

    rows: list[Row]  # the valid ones, in sheet order
    issues: list[Issue]
    read: int = 0  # data rows read (valid or not)
    last: int = 0  # the last row number read: the resume cursor once committed

    @property
    def invalid(self) -> int:
        return sum(1 for issue in self.issues if issue[1])


def read_chunks(path: Path, plan: Plan, start_after: int, chunk_rows: int) -> Iterator[Chunk]:
    """The sheet's rows after `start_after`, read and normalised, in chunks (the last may be
    empty)."""
    for chunk in _chunks(path, plan, start_after, chunk_rows, lambda _index: True):
        assert chunk is not None
        yield chunk


def _chunks(
    path: Path, plan: Plan, start_after: int, chunk_rows: int, mine: Callable[[int], bool]
) -> Iterator[Chunk | None]:
    """Every chunk of the sheet in order: read and normalised when `mine(its index)`, else
    None (its rows only counted: another process reads that one)."""
    sheet = open_sheet(path)
    plan.bind(sheet.header)
    read = plan.read
    rows: list[Row] = []
    issues: list[Issue] = []
    count = number = index = 0
    reading = mine(0)
    for number, cells in sheet.rows(start_after=start_after):
        if reading:
            row, issue = read(number, cells)
            if row is not None:
                rows.append(row)
            if issue is not None:
                issues.append(issue)
        count += 1
        if count >= chunk_rows:
            yield Chunk(rows, issues, count, number) if reading else None
            rows, issues, count, index = [], [], 0, index + 1
            reading = mine(index)
    yield Chunk(rows, issues, count, number) if reading else None


# With a CSV, the writer reads and normalises one chunk in SHARE itself: the reader process
# has more work per row than the writer (normalising a phone costs more than storing it), so
# the pipeline otherwise runs at the reader's pace while the writer waits. Reading a CSV is
# cheap enough for both processes to go through all of it (each skips the other's chunks).
# A workbook is read by the second process only: loading it twice would cost seconds.
SHARE = 4


def _the_childs(index: int) -> bool:
    return index % SHARE != SHARE - 1


def _the_parents(index: int) -> bool:
    return index % SHARE == SHARE - 1


def _produce(
    path: str, plan: Plan, start_after: int, chunk_rows: int, shared: bool, out: Any
) -> None:
    """Child process: read and normalise while the parent writes (the second core's share)."""
    try:
        mine = _the_childs if shared else (lambda _index: True)
        for chunk in _chunks(Path(path), plan, start_after, chunk_rows, mine):
            if chunk is not None:
                # Plain tuples of str/None: they pickle several times faster than objects.
                out.put(("chunk", (chunk.rows, chunk.issues, chunk.read, chunk.last)))
        out.put(("done", None))
    except SheetError as exc:
        out.put(("error", str(exc)))
    except Exception as exc:  # the parent must never wait forever on a dead reader
        out.put(("crash", f"{type(exc).__name__}: {exc}"))


def read_chunks_in_child(
    path: Path, plan: Plan, start_after: int, chunk_rows: int
) -> Iterator[Chunk]:
    """Like read_chunks, mostly from a second process, a few chunks ahead at most (bounded
    memory); for a CSV this process reads every SHARE-th chunk itself."""
    import multiprocessing
    import queue as queue_errors

    shared = path.suffix.lower() == ".csv"
    # spawn, not fork: the web process has threads, and a forked copy of their locks deadlocks.
    ctx = multiprocessing.get_context("spawn")
    channel = ctx.Queue(maxsize=4)
    child = ctx.Process(
        target=_produce,
        args=(str(path), plan, start_after, chunk_rows, shared, channel),
        name="wabulk-import-reader",
        daemon=True,
    )
    child.start()

    def received() -> tuple[str, Any]:
        while True:
            try:
                return channel.get(timeout=5)  # type: ignore[no-any-return]
            except queue_errors.Empty:
                if not child.is_alive():
                    raise RuntimeError("the import reader process died") from None

    def from_child() -> Chunk | None:
        kind, payload = received()
        if kind == "chunk":
            return Chunk(*payload)
        if kind == "done":
            return None
        if kind == "error":
            raise SheetError(payload)
        raise RuntimeError(f"the import reader failed: {payload}")

    try:
        if shared:
            for own in _chunks(path, plan, start_after, chunk_rows, _the_parents):
                chunk = own if own is not None else from_child()
                if chunk is None:
                    raise RuntimeError("the import reader stopped early")
                yield chunk
            # Either the reader's "done" or, had it failed after its last chunk, its error.
            if from_child() is not None:
                raise RuntimeError("the import reader read more than this process")
        else:
            while (chunk := from_child()) is not None:
                yield chunk
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
        # Each attribute's key as JSON text, '"key": ', ready for `read` to join.
        self._json_keys = [(i, _json_text(k) + ": ") for i, k in self.attributes]
        self.phone_column = checked["phone"]

    def read(self, number: int, cells: list[str]) -> tuple[Row | None, Issue | None]:
        result = normalise(clean_cell(cells[self.phone]), self.region)
        e164 = result.e164
        if e164 is None:
            reason = f"row {number}: {result.error}"
            if result.error == "has no phone number":
                reason = f'row {number}: the "{self.phone_column}" cell is empty'
            return None, (number, True, reason[:500], json.dumps(cells))
        name = " ".join([cells[i] for i in self.names if cells[i]]) or None
        # json.dumps of {key: cell} for the non-empty cells, byte for byte (the same string
        # encoder and separators), at a fifth of the cost: this runs for every row.
        pairs = [k + _json_text(cells[i]) for i, k in self._json_keys if cells[i]]
        attrs = "{" + ", ".join(pairs) + "}"
        row = (e164, name, attrs, result.country, result.timezone)
        if not result.extras:
            return row, None
        reason = (
            f"row {number}: imported {e164}; also holds "
            f"{', '.join(result.extras)}, not imported (one number per contact)"
        )
        return row, (number, False, reason[:500], json.dumps(cells))


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
        seen: set[str],
        progress: Callable[[Import], None] | None = None,
    ) -> None:
        self.db, self.import_id, self.owner = db, import_id, owner
        # The phones of every committed row of this import: a repeat in a later chunk is a
        # duplicate, and is known to exist (no need to try creating it).
        self.seen = seen
        self.progress = progress
        self.optimistic = True

    def commit(self, chunk: Chunk, last: bool = False) -> None:
        for attempt in (1, 2, 3):
            careful = not self.optimistic or attempt > 1
            try:
                with self.db.session() as session:
                    phones, found = _apply_chunk(
                        session, self.import_id, chunk, self.seen, self.owner, last, careful
                    )
                    imp = session.get(Import, self.import_id)
                break
            except (_Existing, IntegrityError):
                # _Existing: the optimistic write met existing phones. IntegrityError: another
                # import inserted one of these phones between our SELECT and INSERT.
                if attempt == 3:
                    raise
        self.seen.update(phones)  # only once committed: a retried chunk counts as before
        self.optimistic = not (careful and found)
        if self.progress is not None:
            self.progress(imp)  # type: ignore[arg-type]


def commit_chunk(
    db: Database,
    import_id: int,
    chunk: Chunk,
    seen: set[str],
    owner: str,
    progress: Callable[[Import], None] | None,
    last: bool = False,
) -> None:
    """Commit one chunk (a Writer of its own: each call starts optimistic)."""
    Writer(db, import_id, owner, seen, progress).commit(chunk, last)


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
    seen: set[str],
    owner: str,
    last: bool,
    careful: bool,
) -> tuple[list[str], bool]:
    """Write the chunk; (its phones, whether any of its new phones existed already)."""
    imp = session.get(Import, import_id)
    assert imp is not None
    if imp.lease_owner != owner:
        raise RuntimeError(f"import {import_id} was taken over by {imp.lease_owner}")
    plan = Plan.of(imp)
    opt_outs = plan.kind == ImportKind.OPT_OUTS
    counts = dict(created=0, updated=0, unchanged=0, duplicate=0, opted_out=0)
    rows: dict[str, Row] = {}
    duplicate = 0
    for row in chunk.rows:
        phone = row[0]
        earlier = rows.get(phone)
        if earlier is None:
            if phone in seen:
                duplicate += 1
            rows[phone] = row
        else:
            duplicate += 1
            rows[phone] = _merge(earlier, row)
    counts["duplicate"] = duplicate
    now = utcnow()
    reason = (plan.reason or "Opt-out list import") if opt_outs else None
    fresh = [p for p in rows if p not in seen]
    found = False
    inserted = 0  # contacts the database created: what the tallies move by
    if careful:
        lookup = list(rows)
    else:
        # Phones an earlier chunk committed exist: only they need a lookup.
        lookup = [p for p in rows if p in seen]
        if fresh:
            inserted = bulk.insert_contacts(
                session, [rows[p] for p in fresh], now, opt_outs, reason
            )
            if inserted < len(fresh):
                raise _Existing
            counts["created"] += len(fresh)
    existing: dict[str, Any] = {}
    for start in range(0, len(lookup), _LOOKUP_BATCH):
        batch = lookup[start : start + _LOOKUP_BATCH]
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
        if merged != (old.attributes or {}) or name != old.name or (old.country is None and row[3]):
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
    joined = 0
    if plan.list_id is not None and rows and plan.kind == ImportKind.CONTACTS:
        joined = bulk.add_members_by_phone(session, plan.list_id, list(rows), now)
    if chunk.issues:
        bulk.insert_issues(session, import_id, chunk.issues)
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
    # The counters move last, in this chunk's transaction: a chunk rolled back or written
    # again after a crash moves them once (see tallies on why last).
    session.flush()
    if joined:
        tallies.move_members(session, plan.list_id, joined)  # type: ignore[arg-type]
    tallies.add(session, contacts=inserted, opted_out=opted_out)
    return list(rows), found


def _by_keys(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Group UPDATE parameter sets by the columns they set (one executemany per shape)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return groups
