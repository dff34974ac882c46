"""Importing a sheet of contacts (or of opt-outs): upload, preview, run, report.

- Upsert by phone: a re-import changes nothing and counts every row as unchanged; a newer
  sheet updates names and attributes without deleting any (empty cells never erase).
- Atomic per chunk: the contacts, list memberships, rejected rows and the progress cursor
  (`rows_done`) commit together, so a crash never leaves half a row and a re-run resumes
  after the last committed row.
- Set-based: one SELECT for the chunk's phones, one multi-row INSERT for new contacts, one
  executemany UPDATE for changed ones, one INSERT for memberships.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..db import Database
from ..errors import NotFound, ValidationError
from ..models import (
    Contact,
    ContactList,
    EventLevel,
    Import,
    ImportIssue,
    ImportKind,
    ImportStatus,
    Role,
    User,
    utcnow,
)
from . import bulk
from . import mapping as mappings
from .phones import clean_cell, is_region, normalise
from .sheets import Sheet, SheetError, open_sheet

log = logging.getLogger(__name__)

CHUNK_ROWS = 5_000
LEASE = timedelta(minutes=2)
UPLOAD_DIR = "imports"
_KINDS = {"csv": ".csv", "xlsx": ".xlsx", "xls": ".xls", "ods": ".ods"}


@dataclass(frozen=True)
class Preview:
    sheet: Sheet
    rows: list[tuple[int, list[str]]]
    mapping: dict[str, Any]


def _upload_dir(instance_path: Path) -> Path:
    path = instance_path / UPLOAD_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file_of(imp: Import, instance_path: Path) -> Path:
    return instance_path / imp.stored_path


def save_upload(
    session: Session,
    actor: User | None,
    instance_path: Path,
    stream: BinaryIO,
    original_name: str,
    kind: ImportKind = ImportKind.CONTACTS,
) -> Import:
    """Store an uploaded sheet under a name of ours and check it can be read.

    - The original filename is kept for display only; it never becomes part of a path.
    - Raises SheetError (nothing kept) when the file cannot be read at all.
    """
    require_role(actor, Role.OPERATOR)
    folder = _upload_dir(instance_path)
    token = secrets.token_hex(12)
    tmp = folder / f"{token}.upload"
    with tmp.open("wb") as out:
        shutil.copyfileobj(stream, out, length=1024 * 1024)
    try:
        sheet = open_sheet(tmp)
    except SheetError:
        tmp.unlink(missing_ok=True)
        raise
    final = folder / f"{token}{_KINDS[sheet.kind]}"
    tmp.rename(final)
    sheet.path = final
    digest = hashlib.sha256()
    with final.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    imp = Import(
        kind=kind,
        status=ImportStatus.DRAFT,
        original_name=(original_name or "sheet")[:255],
        stored_path=str(final.relative_to(instance_path)),
        sha256=digest.hexdigest(),
        rows_total=sheet.rows_estimate,
        # What the preview shows, kept so later steps need not open the file again (a big
        # workbook takes seconds to open).
        mapping={
            "columns": sheet.header,
            "sheet": _sheet_facts(sheet),
            "sample": _sample(sheet, PREVIEW_ROWS),
        },
        created_by_id=actor.id if actor else None,
    )
    session.add(imp)
    session.flush()
    return imp


def columns_of(imp: Import, instance_path: Path) -> list[str]:
    """The sheet's column names, as recorded at upload (read from the file if missing)."""
    columns = (imp.mapping or {}).get("columns")
    return list(columns) if columns else open_sheet(_file_of(imp, instance_path)).header


def get_import(session: Session, import_id: int) -> Import:
    imp = session.get(Import, import_id)
    if imp is None:
        raise NotFound(f"There is no import #{import_id}.")
    return imp


PREVIEW_ROWS = 50  # read for the preview: enough to guess a column from its values


def _sheet_facts(sheet: Sheet) -> dict[str, Any]:
    return {
        "kind": sheet.kind,
        "header_row": sheet.header_row,
        "rows_estimate": sheet.rows_estimate,
        "sheet_name": sheet.sheet_name,
        "other_sheets": sheet.other_sheets,
    }


def _sample(sheet: Sheet, n: int) -> list[list[Any]]:
    sample: list[list[Any]] = []
    for number, cells in sheet.rows():
        sample.append([number, cells])
        if len(sample) >= n:
            break
    return sample


def preview(imp: Import, instance_path: Path, region: str, rows: int = 10) -> Preview:
    """The first rows and the guessed mapping, from what was kept at upload."""
    stored = imp.mapping or {}
    if "sample" in stored:
        sheet = Sheet(
            path=_file_of(imp, instance_path), header=list(stored["columns"]), **stored["sheet"]
        )
        sample = [(int(n), list(cells)) for n, cells in stored["sample"]]
    else:
        sheet = open_sheet(_file_of(imp, instance_path))
        sample = [(n, c) for n, c in _sample(sheet, PREVIEW_ROWS)]
    guessed = mappings.guess(sheet.header, [cells for _, cells in sample], region)
    if imp.kind == ImportKind.OPT_OUTS:
        guessed["attributes"] = {}
    return Preview(sheet=sheet, rows=sample[:rows], mapping=guessed)


def configure(
    session: Session,
    actor: User | None,
    imp: Import,
    instance_path: Path,
    mapping: dict[str, Any],
    default_country: str,
    list_id: int | None = None,
    new_list_name: str | None = None,
    opt_out_reason: str | None = None,
) -> Import:
    """Confirm the mapping, target list and country; the import is then queued to run."""
    require_role(actor, Role.OPERATOR)
    if imp.status != ImportStatus.DRAFT:
        raise ValidationError("This import has already started.")
    country = (default_country or "").strip().upper()
    if not is_region(country):
        raise ValidationError(
            f"{default_country!r} is not a country code such as IN or US.", field="default_country"
        )
    header = columns_of(imp, instance_path)
    checked = mappings.validate(mapping, header)
    if imp.kind == ImportKind.OPT_OUTS:
        checked["attributes"] = {}
    if new_list_name and new_list_name.strip():
        from .lists import create_list

        list_id = create_list(session, actor, new_list_name).id
    elif list_id is not None and session.get(ContactList, list_id) is None:
        raise ValidationError("That list no longer exists.", field="list_id")
    imp.mapping = {**checked, "columns": header}
    imp.default_country = country
    imp.list_id = list_id
    imp.opt_out_reason = (opt_out_reason or "").strip()[:500] or None
    imp.status = ImportStatus.QUEUED
    return imp


# ---- running ---------------------------------------------------------------------------------


def claim_next(session: Session, owner: str) -> int | None:
    """Take a queued import, or one whose worker died (expired lease); None when idle."""
    now = utcnow()
    candidate = session.scalar(
        select(Import.id)
        .where(
            (Import.status == ImportStatus.QUEUED)
            | ((Import.status == ImportStatus.RUNNING) & (Import.lease_until < now))
        )
        .order_by(Import.id)
        .limit(1)
    )
    if candidate is None:
        return None
    # Conditional update: if another worker took it first, no row changes and we move on.
    taken = session.execute(
        update(Import)
        .where(
            Import.id == candidate,
            (Import.status == ImportStatus.QUEUED)
            | ((Import.status == ImportStatus.RUNNING) & (Import.lease_until < now)),
        )
        .values(status=ImportStatus.RUNNING, lease_owner=owner, lease_until=now + LEASE)
    ).rowcount
    session.commit()
    return candidate if taken == 1 else None


def release(session: Session, import_id: int, owner: str) -> None:
    """Give a running import back to the queue (graceful shutdown): it resumes where it was."""
    session.execute(
        update(Import)
        .where(
            Import.id == import_id,
            Import.lease_owner == owner,
            Import.status == ImportStatus.RUNNING,
        )
        .values(status=ImportStatus.QUEUED, lease_owner=None, lease_until=None)
    )


@dataclass(slots=True)
class _Row:
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
_Issue = tuple[int, bool, str, list[str]]
# One data row as read: (row number, the contact it gives or None, its issue or None).
_Read = tuple[int, "_Row | None", "_Issue | None"]
# Below this many rows the reader runs in the same process: starting a second one costs more.
PARALLEL_MIN_ROWS = 50_000


def _read_chunks(
    path: Path, plan: _Plan, start_after: int, chunk_rows: int
) -> Iterator[list[_Read]]:
    """The sheet's rows after `start_after`, read and normalised, in chunks."""
    sheet = open_sheet(path)
    plan.bind(sheet.header)
    chunk: list[_Read] = []
    for number, cells in sheet.rows(start_after=start_after):
        row, issue = plan.read(number, cells)
        chunk.append((number, row, issue))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    yield chunk


def _row_tuple(row: _Row) -> tuple[Any, ...]:
    return (row.number, row.phone, row.name, row.attributes_json, row.country, row.timezone)


def _produce(path: str, plan: _Plan, start_after: int, chunk_rows: int, out: Any) -> None:
    """Child process: read and normalise while the parent writes (the second core's share)."""
    try:
        for chunk in _read_chunks(Path(path), plan, start_after, chunk_rows):
            # Plain tuples pickle several times faster than dataclass instances.
            out.put(("chunk", [(n, None if r is None else _row_tuple(r), i) for n, r, i in chunk]))
        out.put(("done", None))
    except SheetError as exc:
        out.put(("error", str(exc)))
    except Exception as exc:  # the parent must never wait forever on a dead reader
        out.put(("crash", f"{type(exc).__name__}: {exc}"))


def _read_chunks_in_child(
    path: Path, plan: _Plan, start_after: int, chunk_rows: int
) -> Iterator[list[_Read]]:
    """Like _read_chunks, from a second process; a few chunks ahead at most (bounded memory)."""
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
                yield [(n, None if r is None else _Row(*r), i) for n, r, i in payload]
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


def run(
    db: Database,
    import_id: int,
    instance_path: Path,
    owner: str,
    progress: Callable[[Import], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    parallel_min_rows: int = PARALLEL_MIN_ROWS,
) -> Import:
    """Run (or resume) an import to the end; returns the finished Import.

    - Sheets of `parallel_min_rows` rows or more are read and normalised in a second
      process while this one writes, so both cores work.

    - Each chunk commits on its own; `rows_done` moves only with a committed chunk.
    - A file that turns out unreadable part-way marks the import failed, keeping every
      chunk already committed.
    """
    with db.session() as session:
        imp = get_import(session, import_id)
        if imp.status in (ImportStatus.DRAFT, ImportStatus.COMPLETED, ImportStatus.FAILED):
            return imp
        imp.status, imp.lease_owner, imp.lease_until = ImportStatus.RUNNING, owner, utcnow() + LEASE
        plan = _Plan.of(imp)
        path = _file_of(imp, instance_path)
        start_after = imp.rows_done
        estimate = imp.rows_total or 0
        user = session.get(User, imp.created_by_id) if imp.created_by_id else None
        if start_after == 0:
            events.record(
                session, "import.started", f"Import of {imp.original_name!r} started.", user=user
            )
    try:
        sheet = open_sheet(path)
        plan.bind(sheet.header)
        seen: set[str] = set()
        if start_after:
            # Resuming: the phones of the rows committed before the restart, so a repeat of
            # one of them further down still counts as a duplicate, as in an unbroken run.
            for number, cells in sheet.rows():
                if number > start_after:
                    break
                row, _ = plan.read(number, cells)
                if row is not None:
                    seen.add(row.phone)
        reader = _read_chunks_in_child if estimate >= parallel_min_rows else _read_chunks
        for chunk in reader(path, plan, start_after, chunk_rows):
            if chunk:
                _commit_chunk(db, import_id, chunk, seen, owner, progress)
        _commit_chunk(db, import_id, [], seen, owner, progress, last=True)
    except SheetError as exc:
        with db.session() as session:
            imp = get_import(session, import_id)
            imp.status, imp.error, imp.finished_at = ImportStatus.FAILED, str(exc), utcnow()
            imp.lease_owner = imp.lease_until = None
            events.record(
                session,
                "import.failed",
                f"Import of {imp.original_name!r} stopped: {exc}",
                level=EventLevel.ERROR,
                user=user,
            )
    with db.session() as session:
        imp = get_import(session, import_id)
        if imp.status == ImportStatus.COMPLETED:
            events.record(session, "import.completed", summary_sentence(session, imp), user=user)
        return imp


def summary_sentence(session: Session, imp: Import) -> str:
    target = ""
    if imp.list_id:
        name = session.scalar(select(ContactList.name).where(ContactList.id == imp.list_id))
        target = f" into {name!r}" if name else ""
    if imp.kind == ImportKind.OPT_OUTS:
        return (
            f"Opt-out list {imp.original_name!r}: {imp.rows_read:,} rows read, "
            f"{imp.created_count + imp.updated_count:,} newly opted out, "
            f"{imp.unchanged_count:,} already opted out, {imp.invalid_count:,} invalid."
        )
    return (
        f"Imported {imp.original_name!r}{target}: {imp.rows_read:,} rows read, "
        f"{imp.created_count:,} created, {imp.updated_count:,} updated, "
        f"{imp.unchanged_count:,} unchanged, {imp.duplicate_count:,} duplicates in the file, "
        f"{imp.invalid_count:,} invalid, {imp.opted_out_count:,} opted out."
    )


class _Plan:
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
    def of(cls, imp: Import) -> _Plan:
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

    def read(self, number: int, cells: list[str]) -> tuple[_Row | None, _Issue | None]:
        raw = cells[self.phone]
        result = normalise(clean_cell(raw), self.region)
        if not result.ok:
            reason = f"row {number}: {result.error}"
            if result.error == "has no phone number":
                reason = f'row {number}: the "{self.phone_column}" cell is empty'
            return None, (number, True, reason[:500], cells)
        name = " ".join(cells[i] for i in self.names if cells[i]) or None
        attrs = {key: cells[i] for i, key in self.attributes if cells[i] != ""}
        row = _Row(
            number, result.e164 or "", name, json.dumps(attrs), result.country, result.timezone
        )
        if not result.extras:
            return row, None
        reason = (
            f"row {number}: imported {result.e164}; also holds "
            f"{', '.join(result.extras)}, not imported (one number per contact)"
        )
        return row, (number, False, reason[:500], cells)


def _commit_chunk(
    db: Database,
    import_id: int,
    chunk: list[_Read],
    seen: set[str],
    owner: str,
    progress: Callable[[Import], None] | None,
    last: bool = False,
) -> None:
    for attempt in (1, 2):
        try:
            with db.session() as session:
                _apply_chunk(session, import_id, chunk, seen, owner, last)
                imp = get_import(session, import_id)
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
    chunk: list[_Read],
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
    rows: dict[str, _Row] = {}
    plan = _Plan.of(imp)
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
    row: _Row, now: Any, opted_out: bool = False, reason: str | None = None
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


def issues_of(import_id: int) -> Select[tuple[ImportIssue]]:
    return (
        select(ImportIssue)
        .where(ImportIssue.import_id == import_id)
        .order_by(ImportIssue.row_number, ImportIssue.id)
    )


def recent_imports(limit: int = 10) -> Select[tuple[Import]]:
    return (
        select(Import)
        .where(Import.status != ImportStatus.DRAFT)
        .order_by(Import.id.desc())
        .limit(limit)
    )


def discard(session: Session, actor: User | None, imp: Import, instance_path: Path) -> None:
    """Drop an upload whose mapping was never confirmed (nothing was imported from it)."""
    require_role(actor, Role.OPERATOR)
    if imp.status != ImportStatus.DRAFT:
        raise ValidationError("Only an import that has not started can be discarded.")
    _file_of(imp, instance_path).unlink(missing_ok=True)
    session.delete(imp)
