"""Importing a sheet of contacts (or of opt-outs): upload, preview, run, report.

- Upsert by phone: a re-import changes nothing and counts every row as unchanged; a newer
  sheet updates names and attributes without deleting any (empty cells never erase).
- A phone written twice in a sheet: its first row is taken (or its last, when chosen); the
  report lists every repeat with the row it repeats and the values not taken.
- The column choices confirmed for a sheet are remembered for its header (SheetMapping) and
  offered again for the next sheet with the same header: a re-import maps them as before.
- Atomic per chunk: the contacts, list memberships, rejected rows and the progress cursor
  (`rows_done`) commit together, so a crash never leaves half a row and a re-run resumes
  after the last committed row.
- Set-based: one executemany INSERT … ON CONFLICT DO NOTHING for new contacts (a SELECT of
  the chunk's phones first only when some may exist), one executemany UPDATE for changed
  ones, one INSERT … SELECT for memberships, one executemany INSERT for rejected rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from .. import events
from ..auth.permissions import require_role
from ..db import Database
from ..disk import disk_full_sentence, is_disk_full
from ..errors import NotFound, ValidationError
from ..models import (
    ContactList,
    EventLevel,
    Import,
    ImportIssue,
    ImportKind,
    ImportStatus,
    Role,
    SheetMapping,
    User,
    utcnow,
)
from ..words import N_, said
from . import mapping as mappings
from .import_read import (
    BIG_CHUNK_ROWS,
    CHUNK_ROWS,
    PARALLEL_MIN_ROWS,
    Chunk,
    Plan,
    own_share,
    read_chunks,
    read_chunks_in_child,
)
from .import_run import LEASE, Seen, Writer
from .phones import is_region
from .sheets import Sheet, SheetError, open_sheet

log = logging.getLogger(__name__)

UPLOAD_DIR = "imports"
_KINDS = {"csv": ".csv", "xlsx": ".xlsx", "xls": ".xls", "ods": ".ods"}


@dataclass(frozen=True)
class Preview:
    sheet: Sheet
    rows: list[tuple[int, list[str]]]
    mapping: dict[str, Any]
    remembered: bool = False  # the mapping is the one confirmed for a sheet of this header


def _upload_dir(instance_path: Path) -> Path:
    path = instance_path / UPLOAD_DIR
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    digest = hashlib.sha256()
    try:
        # Owner-only from the start: customers' numbers (see disk.private_file).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "wb") as out:  # hashed while copied: the file is read once
            while block := stream.read(1024 * 1024):
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())  # whole on disk before the import that names it commits
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise SheetError(disk_full_sentence("the file")) from None
        raise
    try:
        sheet = open_sheet(tmp)
    except BaseException:  # whatever stops the check (a parser's panic too) keeps nothing
        tmp.unlink(missing_ok=True)
        raise
    final = folder / f"{token}{_KINDS[sheet.kind]}"
    tmp.rename(final)
    sheet.path = final
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


def columns_of(imp: Import) -> list[str]:
    """The sheet's column names, as recorded at upload."""
    return list(imp.mapping["columns"])


def get_import(session: Session, import_id: int) -> Import:
    imp = session.get(Import, import_id)
    if imp is None:
        raise NotFound(said("There is no import #%(id)s.", id=import_id))
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
    """The first rows and the mapping to offer, from what was kept at upload: the one last
    confirmed for a sheet with this header, else a guess."""
    stored = imp.mapping
    sheet = Sheet(
        path=_file_of(imp, instance_path), header=list(stored["columns"]), **stored["sheet"]
    )
    sample = [(int(n), list(cells)) for n, cells in stored["sample"]]
    session = object_session(imp)
    known = remembered_mapping(session, imp.kind, sheet.header) if session else None
    if known is not None:
        return Preview(sheet=sheet, rows=sample[:rows], mapping=known, remembered=True)
    guessed = mappings.guess(sheet.header, [cells for _, cells in sample], region)
    if imp.kind == ImportKind.OPT_OUTS:
        guessed["attributes"] = {}
    return Preview(sheet=sheet, rows=sample[:rows], mapping=guessed)


def _header_digest(header: list[str]) -> str:
    return hashlib.sha256(json.dumps(header, ensure_ascii=False).encode()).hexdigest()


def remembered_mapping(
    session: Session, kind: ImportKind, header: list[str]
) -> dict[str, Any] | None:
    """The mapping last confirmed for a sheet with exactly this header, if it still fits."""
    found = session.scalar(
        select(SheetMapping.mapping).where(
            SheetMapping.kind == kind, SheetMapping.header_sha256 == _header_digest(header)
        )
    )
    if found is None:
        return None
    try:
        return mappings.validate(found, header)
    except ValidationError:  # a digest's collision, or a mapping of an older version
        return None


def _remember(session: Session, kind: ImportKind, header: list[str], mapping: dict) -> None:  # type: ignore[type-arg]
    digest = _header_digest(header)
    row = session.scalar(
        select(SheetMapping).where(SheetMapping.kind == kind, SheetMapping.header_sha256 == digest)
    )
    if row is not None:
        row.mapping = mapping
        return
    try:
        with session.begin_nested():
            session.add(SheetMapping(kind=kind, header_sha256=digest, mapping=mapping))
    except IntegrityError:
        pass  # a sheet of this header was confirmed at the same moment: its choices stand


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
        raise ValidationError(N_("This import has already started."))
    country = (default_country or "").strip().upper()
    if not country:
        raise ValidationError(N_("Choose a country."), field="default_country")
    if not is_region(country):
        raise ValidationError(
            said("%(code)s is not a country code such as IN or US.", code=repr(default_country)),
            field="default_country",
        )
    header = columns_of(imp)
    checked = mappings.validate(mapping, header)
    if imp.kind == ImportKind.OPT_OUTS:
        checked["attributes"] = {}
    if new_list_name and new_list_name.strip():
        from .lists import create_list

        list_id = create_list(session, actor, new_list_name).id
    elif list_id is not None and session.get(ContactList, list_id) is None:
        raise ValidationError(N_("That list no longer exists."), field="list_id")
    _remember(session, imp.kind, header, checked)
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


def run(
    db: Database,
    import_id: int,
    instance_path: Path,
    owner: str,
    progress: Callable[[Import], None] | None = None,
    chunk_rows: int | None = None,
    parallel_min_rows: int = PARALLEL_MIN_ROWS,
    own_rows: int | None = None,
) -> Import:
    """Run (or resume) an import to the end; returns the finished Import.

    - Sheets of `parallel_min_rows` rows or more are read and normalised in a second
      process while this one writes, so both cores work; their chunks are bigger
      (`BIG_CHUNK_ROWS` rather than `CHUNK_ROWS`, unless `chunk_rows` is given). This
      process reads the first `own_rows` (own_share) itself while the second one starts.

    - Each chunk commits on its own; `rows_done` moves only with a committed chunk.
    - A file that turns out unreadable part-way marks the import failed, keeping every
      chunk already committed.
    """
    with db.session() as session:
        imp = get_import(session, import_id)
        if imp.status in (ImportStatus.DRAFT, ImportStatus.COMPLETED, ImportStatus.FAILED):
            return imp
        imp.status, imp.lease_owner, imp.lease_until = ImportStatus.RUNNING, owner, utcnow() + LEASE
        plan = Plan.of(imp)
        path = _file_of(imp, instance_path)
        start_after = imp.rows_done
        estimate = imp.rows_total or 0
        header = columns_of(imp)
        kind = path.suffix.lstrip(".")  # ours, from the content (see save_upload)
        user = session.get(User, imp.created_by_id) if imp.created_by_id else None
        if start_after == 0:
            events.record(
                session,
                "import.started",
                said("Import of %(file)s started.", file=repr(imp.original_name)),
                user=user,
            )
    try:
        # The header recorded at upload: opening the sheet here (seconds for a big workbook)
        # would only delay the reader. A resumed run reads the committed rows anyway.
        plan.bind(header)
        seen: Seen = {}
        if start_after:
            sheet = open_sheet(path, checked=True)
            plan.bind(sheet.header)
            # Resuming: the phones of the rows committed before the restart, so a repeat of
            # one of them further down still counts as a duplicate, as in an unbroken run
            # (their contacts' states before the import are lost).
            for number, cells in sheet.rows():
                if number > start_after:
                    break
                row, _ = plan.read(number, cells)
                if row is not None:
                    seen.setdefault(row[0], number)
        if estimate >= parallel_min_rows:
            if own_rows is None:
                # A resumed run reads nothing itself: the head it would parse holds the rows done.
                own_rows = 0 if start_after else own_share(kind, estimate)
            size = chunk_rows or BIG_CHUNK_ROWS
            chunks = read_chunks_in_child(path, plan, start_after, size, own_rows)
        else:
            chunks = read_chunks(path, plan, start_after, chunk_rows or CHUNK_ROWS)
        writer = Writer(db, import_id, owner, seen, progress)
        for chunk in chunks:
            if chunk.read:
                writer.commit(chunk)
        writer.commit(Chunk([], []), last=True)
    except SheetError as exc:
        with db.session() as session:
            imp = get_import(session, import_id)
            imp.status, imp.error, imp.finished_at = ImportStatus.FAILED, str(exc), utcnow()
            imp.lease_owner = imp.lease_until = None
            events.record(
                session,
                "import.failed",
                said(
                    "Import of %(file)s stopped: %(reason)s",
                    file=repr(imp.original_name),
                    reason=exc,
                ),
                level=EventLevel.ERROR,
                user=user,
            )
    with db.session() as session:
        imp = get_import(session, import_id)
        if imp.status == ImportStatus.COMPLETED:
            events.record(session, "import.completed", summary_sentence(session, imp), user=user)
        return imp


def summary_sentence(session: Session, imp: Import) -> str:
    name = None
    if imp.list_id:
        name = session.scalar(select(ContactList.name).where(ContactList.id == imp.list_id))
    if imp.kind == ImportKind.OPT_OUTS:
        return said(
            "Opt-out list %(file)s: %(read)s rows read, %(new)s newly opted out, "
            "%(already)s already opted out, %(invalid)s invalid.",
            file=repr(imp.original_name),
            read=f"{imp.rows_read:,}",
            new=f"{imp.created_count + imp.updated_count:,}",
            already=f"{imp.unchanged_count:,}",
            invalid=f"{imp.invalid_count:,}",
        )
    counts = {
        "file": repr(imp.original_name),
        "read": f"{imp.rows_read:,}",
        "created": f"{imp.created_count:,}",
        "updated": f"{imp.updated_count:,}",
        "unchanged": f"{imp.unchanged_count:,}",
        "duplicates": f"{imp.duplicate_count:,}",
        "invalid": f"{imp.invalid_count:,}",
        "opted_out": f"{imp.opted_out_count:,}",
    }
    if name:
        return said(
            "Imported %(file)s into %(list)s: %(read)s rows read, %(created)s created, "
            "%(updated)s updated, %(unchanged)s unchanged, %(duplicates)s duplicates in the "
            "file, %(invalid)s invalid, %(opted_out)s opted out.",
            list=repr(name),
            **counts,
        )
    return said(
        "Imported %(file)s: %(read)s rows read, %(created)s created, %(updated)s updated, "
        "%(unchanged)s unchanged, %(duplicates)s duplicates in the file, %(invalid)s invalid, "
        "%(opted_out)s opted out.",
        **counts,
    )


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
        raise ValidationError(N_("Only an import that has not started can be discarded."))
    _file_of(imp, instance_path).unlink(missing_ok=True)
    session.delete(imp)
