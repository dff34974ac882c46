"""The shop's own sheet given back with each row's results ("your sheet, with results").

- The sheet is the stored upload of the contacts import that filled the campaign's
  audience, chosen by `sheet_choice.sheets_for`.
- It is re-read with the import's own readers (`open_sheet`: the same tab, the same header
  row, the same bounds) and written back in its format: CSV as CSV with its delimiter
  (UTF-8 with a byte-order mark, for Excel), every workbook as XLSX. Every original row and
  cell stays where it was, blank rows and the title rows above the header included; the
  result columns follow the widest row.
- A row is matched to its contact as the import matched it: the mapped phone cell
  normalised with the import's default country. Rows are read in chunks; each chunk costs
  one query for its phones' contacts and messages (contacts.phone, then the unique
  (campaign_id, contact_id)), one for their replies and one for its rejected rows: a
  100,000-row sheet never sits in memory (a workbook's cells do, as during its import).
- A row rejected at import says "Not imported: <why>" (ImportIssue); a repeated phone gets
  its contact's results on every row.
- Original cells are written as the shop gave them (their own data, in their own file);
  the new text cells (replies come from customers) go through the formula neutraliser.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..analytics.failures import is_provider_code, provider_label
from ..analytics.queries import failure_label
from ..contacts import mapping as mappings
from ..contacts import sheets
from ..contacts.export import neutralise
from ..contacts.phones import clean_cell, normalise
from ..contacts.sheets import MAX_COLUMNS, MAX_ROWS, Sheet, SheetError, open_sheet
from ..errors import Conflict, NotFound, ValidationError
from ..models import (
    Campaign,
    Contact,
    Import,
    ImportIssue,
    Inbound,
    Message,
    MessageStatus,
)
from ..words import N_, said
from ..zones import zone
from .report import XLSX_MIME
from .sheet_choice import Choice, SheetSource, chosen, sheets_for

__all__ = ["Choice", "SheetSource", "Written", "result_columns", "sheets_for", "write"]

CHUNK_ROWS = 2_000
# Phones per IN (…): well under SQLite's bound-parameter limit, and a short plan either way.
LOOKUP_BATCH = 500
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
_normalise = normalise.__wrapped__  # a sheet's phones are mostly distinct: no cache churn

# The sheet is written in the downloader's language (English outside a request).
STATUS_WORDS = {
    MessageStatus.QUEUED: N_("Waiting to be sent"),
    MessageStatus.SENDING: N_("Being sent"),
    MessageStatus.SENT: N_("Sent"),
    MessageStatus.DELIVERED: N_("Delivered"),
    MessageStatus.READ: N_("Read"),
    MessageStatus.FAILED: N_("Failed"),
    MessageStatus.SKIPPED: N_("Skipped"),
    MessageStatus.UNKNOWN: N_("Sent, but WhatsApp never confirmed it"),
}


@dataclass(frozen=True)
class Written:
    """The filled-in sheet, written to a file the caller sends and removes."""

    path: Path
    download_name: str
    mimetype: str
    rows: int


# --- reading the sheet back -----------------------------------------------------------------


def _raw_rows(sheet: Sheet) -> Iterator[tuple[int, list[Any]]]:
    """Every row as stored (blank ones too), numbered as the import numbered them."""
    if sheet.kind == "csv":
        return sheets._csv_rows(sheet)
    return sheets._workbook_rows(sheet)


def _texts(sheet: Sheet, cells: list[Any], width: int) -> list[str]:
    """A row's cells as the import read them (Sheet.rows): the phone is found the same way."""
    if sheet.kind == "csv":
        texts = [c.strip() for c in cells[:width]]
    else:
        texts = [sheets._cell_text(c) for c in cells[:width]]
    if len(cells) > width and any(sheets._cell_text(c) for c in cells[width:]):
        rest = map(sheets._cell_text, cells[width:])
        texts[-1] = " ".join(t for t in [texts[-1], *rest] if t)
    if len(texts) < width:
        texts.extend([""] * (width - len(texts)))
    return texts


def _too_many_rows() -> str:
    return said(
        "The sheet has more than %(most)s rows; wabulk reads up to that.", most=f"{MAX_ROWS:,}"
    )


def _unreadable(name: str, exc: Exception) -> str:
    return said("The sheet %(name)s cannot be read again: %(reason)s", name=name, reason=str(exc))


def _csv_width(sheet: Sheet) -> int:
    """The widest row of a CSV, trailing empty cells aside: where the result columns go."""
    widest = 0
    for number, cells in _raw_rows(sheet):
        if number > MAX_ROWS + 50:  # the import's bound; the title rows above the header aside
            raise SheetError(_too_many_rows())
        n = len(cells)
        while n and not cells[n - 1].strip():
            n -= 1
        if n > MAX_COLUMNS:
            # Every row is padded to the widest: one very long row would widen them all.
            raise SheetError(
                said(
                    "Row %(row)s has %(n)s cells; wabulk gives back sheets of up to %(most)s "
                    "columns.",
                    row=number,
                    n=f"{n:,}",
                    most=MAX_COLUMNS,
                )
            )
        widest = max(widest, n)
    return widest


@dataclass(slots=True)
class _Row:
    number: int
    cells: list[Any]
    phone: str | None  # E.164, as the import made it
    why: str | None  # the import's reason when the phone cell is not a number
    data: bool  # a data row (below the header, not blank)


@dataclass(frozen=True, slots=True)
class _Outcome:
    opted_out: bool
    not_on_whatsapp: bool
    message_id: int | None
    status: MessageStatus | None
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    read_at: dt.datetime | None
    replied_at: dt.datetime | None
    error_code: str | None
    error_detail: str | None


def _outcomes(session: Session, campaign_id: int, phones: set[str]) -> dict[str, _Outcome]:
    """Each phone's contact and its message in the campaign (when it got one)."""
    found: dict[str, _Outcome] = {}
    ordered = sorted(phones)
    for start in range(0, len(ordered), LOOKUP_BATCH):
        query = (
            select(
                Contact.phone,
                Contact.opted_out_at,
                Contact.not_on_whatsapp_at,
                Message.id,
                Message.status,
                Message.sent_at,
                Message.delivered_at,
                Message.read_at,
                Message.replied_at,
                Message.error_code,
                Message.error_detail,
            )
            .select_from(Contact)
            .outerjoin(
                Message, (Message.contact_id == Contact.id) & (Message.campaign_id == campaign_id)
            )
            .where(Contact.phone.in_(ordered[start : start + LOOKUP_BATCH]))
        )
        for r in session.connection().execute(query):
            found[r[0]] = _Outcome(r[1] is not None, r[2] is not None, *r[3:])
    return found


def _replies(session: Session, message_ids: list[int]) -> dict[int, str]:
    """The newest reply to each message (ix_inbound_message_id)."""
    latest: dict[int, str] = {}
    for start in range(0, len(message_ids), LOOKUP_BATCH):
        query = (
            select(Inbound.message_id, Inbound.kind, Inbound.body)
            .where(Inbound.message_id.in_(message_ids[start : start + LOOKUP_BATCH]))
            .order_by(Inbound.received_at, Inbound.id)
        )
        for message_id, kind, body in session.execute(query):
            if message_id is not None:
                latest[message_id] = body or f"({kind})"
    return latest


def _rejected(session: Session, import_id: int, first: int, last: int) -> dict[int, str]:
    """Why each rejected row of rows first..last was not imported (its reason, less the
    "row N: " it starts with)."""
    query = select(ImportIssue.row_number, ImportIssue.reason).where(
        ImportIssue.import_id == import_id,
        ImportIssue.row_number >= first,
        ImportIssue.row_number <= last,
        ImportIssue.rejected.is_(True),
    )
    return {n: re.sub(r"^row \d+: ", "", reason) for n, reason in session.execute(query)}


def _failure(outcome: _Outcome) -> str | None:
    if outcome.error_detail:
        return outcome.error_detail
    code = outcome.error_code
    if not code:
        return None
    return provider_label(code, None) if is_provider_code(code) else failure_label(code)


Result = list[str | dt.datetime | None]  # status, sent, delivered, read, replied, reply, reason


def _result(
    row: _Row,
    rejected: dict[int, str],
    outcomes: dict[str, _Outcome],
    replies: dict[int, str],
    tz: dt.tzinfo,
) -> Result:
    def when(value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite gives naive UTC
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(tz).replace(tzinfo=None)

    empty: Result = [None] * 7
    if not row.data:
        return empty
    if row.phone is None:
        # Only an unreadable number is "not imported": a repeated phone's row was refused
        # too, but its contact came from the other row, and it shows that contact's results.
        why = rejected.get(row.number) or row.why or _("its phone number could not be read")
        return [_("Not imported: %(why)s", why=why), *empty[1:]]
    outcome = outcomes.get(row.phone)
    if outcome is None:
        return [_("Not sent: no longer in your contacts"), *empty[1:]]
    if outcome.status is None:
        if outcome.opted_out:
            status = _("Not sent: opted out")
        elif outcome.not_on_whatsapp:
            status = _("Not sent: not on WhatsApp")
        else:
            status = _("Not in this campaign")
        return [status, *empty[1:]]
    status = _("Replied") if outcome.replied_at else _(STATUS_WORDS[outcome.status])
    reply = replies.get(outcome.message_id or 0)
    return [
        status,
        when(outcome.sent_at),
        when(outcome.delivered_at),
        when(outcome.read_at),
        when(outcome.replied_at),
        neutralise(reply) if reply else None,
        neutralise(_failure(outcome)) if _failure(outcome) else None,
    ]


def result_columns(tz_name: str | None, taken: list[str]) -> list[str]:
    """The new columns' names; times name the zone they are in; a name the sheet already
    has gets a number (a sheet downloaded here and imported again keeps both)."""
    tz = zone(tz_name).key
    names = [_("Status"), _("Sent at (%(zone)s)", zone=tz), _("Delivered at (%(zone)s)", zone=tz)]
    names += [_("Read at (%(zone)s)", zone=tz), _("Replied at (%(zone)s)", zone=tz)]
    names += [_("Reply"), _("Failure reason")]
    used = {t.strip().lower() for t in taken}
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{name} ({n})"
        used.add(candidate.lower())
        out.append(candidate)
    return out


def _results(
    session: Session, campaign_id: int, imp: Import, sheet: Sheet, tz_name: str | None
) -> Iterator[tuple[_Row, Result]]:
    """Every row of the sheet in order, with its results, a chunk of rows at a time."""
    plan = mappings.validate(imp.mapping, sheet.header)
    phone_at = sheet.header.index(plan["phone"])
    region = imp.default_country or "US"
    width = len(sheet.header)
    tz = zone(tz_name)
    chunk: list[_Row] = []

    def settle() -> Iterator[tuple[_Row, Result]]:
        numbers = [r.number for r in chunk if r.data]
        rejected = _rejected(session, imp.id, numbers[0], numbers[-1]) if numbers else {}
        phones = {r.phone for r in chunk if r.data and r.phone}
        outcomes = _outcomes(session, campaign_id, phones) if phones else {}
        ids = [o.message_id for o in outcomes.values() if o.message_id and o.replied_at]
        replies = _replies(session, ids) if ids else {}
        for row in chunk:
            yield row, _result(row, rejected, outcomes, replies, tz)

    for number, cells in _raw_rows(sheet):
        if number > MAX_ROWS + 50:
            raise SheetError(_too_many_rows())
        row = _Row(number, cells, None, None, False)
        if number > sheet.header_row:
            texts = _texts(sheet, cells, width)
            if any(texts):
                row.data = True
                result = _normalise(clean_cell(texts[phone_at]), region)
                row.phone, row.why = result.e164, result.error
                if result.error == "has no phone number":
                    row.why = f'the "{plan["phone"]}" cell is empty'
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield from settle()
            chunk = []
    yield from settle()


# --- writing it ---------------------------------------------------------------------------


def _csv_cell(value: str | dt.datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def _write_csv(
    rows: Iterator[tuple[_Row, Result]], sheet: Sheet, names: list[str], out: Path
) -> int:
    start = max(_csv_width(sheet), len(sheet.header))
    count = 0
    # utf-8-sig: Excel reads the file as UTF-8 (names in Hindi, emoji in replies).
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=sheet.delimiter or ",")
        if sheet.header_row == 0:
            writer.writerow([""] * start + names)
        for row, result in rows:
            count += 1
            if row.number == sheet.header_row:
                writer.writerow([*row.cells, *[""] * (start - len(row.cells)), *names])
            elif not row.data and not any(result) and not any(c.strip() for c in row.cells):
                writer.writerow(row.cells)  # a blank line stays one
            else:
                cells = row.cells[:start] if len(row.cells) > start else row.cells
                pad = [""] * (start - len(cells))
                writer.writerow([*cells, *pad, *map(_csv_cell, result)])
    return count


def _write_xlsx(
    rows: Iterator[tuple[_Row, Result]], sheet: Sheet, names: list[str], out: Path
) -> int:
    import xlsxwriter

    loaded = sheet.loaded
    # calamine's rows begin at the sheet's first used column: put each cell back in its own.
    offset = loaded.start[1] if loaded is not None and loaded.start else 0
    start = offset + max(loaded.width if loaded is not None else 0, len(sheet.header))
    shift = 1 if sheet.header_row == 0 else 0  # no header row: one is added above the data
    workbook = xlsxwriter.Workbook(
        str(out),
        {
            "constant_memory": True,  # row by row, flushed: flat memory at any size
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    bold = workbook.add_format({"bold": True})
    formats = {
        dt.datetime: workbook.add_format({"num_format": DATE_FORMAT}),
        dt.date: workbook.add_format({"num_format": "yyyy-mm-dd"}),
        dt.time: workbook.add_format({"num_format": "hh:mm:ss"}),
        dt.timedelta: workbook.add_format({"num_format": "[h]:mm:ss"}),
    }
    ws = workbook.add_worksheet((sheet.sheet_name or "Sheet1")[:31])
    ws.set_column(start, start, 22)
    ws.set_column(start + 1, start + 4, 20)
    ws.set_column(start + 5, start + 6, 40)
    if shift:
        for i, name in enumerate(names):
            ws.write_string(0, start + i, name, bold)
    count = 0
    for row, result in rows:
        count += 1
        line = row.number - 1 + shift
        for col, value in enumerate(row.cells, start=offset):
            _write_cell(ws, line, col, value, formats)
        if row.number == sheet.header_row:
            for i, name in enumerate(names):
                ws.write_string(line, start + i, name, bold)
            ws.freeze_panes(line + 1, 0)
            continue
        for i, value in enumerate(result):
            if value is not None:
                _write_cell(ws, line, start + i, value, formats)
    workbook.close()
    return count


def _write_cell(ws: Any, line: int, col: int, value: Any, formats: dict[type, Any]) -> None:
    """One cell with the type calamine read it as: numbers stay numbers, dates dates."""
    if value is None or value == "":
        return
    if isinstance(value, str):
        ws.write_string(line, col, value)
    elif isinstance(value, bool):
        ws.write_boolean(line, col, value)
    elif isinstance(value, int | float):
        ws.write_number(line, col, value)
    elif type(value) in formats:
        ws.write_datetime(line, col, value, formats[type(value)])
    else:
        ws.write_string(line, col, str(value))


def _download_name(imp: Import, extension: str) -> str:
    stem = Path(imp.original_name).stem
    stem = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:80].strip("-")
    return f"{stem or 'sheet'}-with-results.{extension}"


def write(
    session: Session,
    campaign_id: int,
    import_id: int | None,
    tz_name: str | None,
    instance_path: Path,
    folder: Path,
) -> Written:
    """The campaign's sheet filled in, as a new file in `folder`.

    - NotFound: no such campaign, or a sheet that did not fill it; Conflict: no sheet, or
      its file is gone or unreadable (the sentence says which); ValidationError(import_id):
      several sheets and none chosen.
    """
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(N_("No such campaign."))
    import_id = chosen(sheets_for(session, campaign, instance_path), import_id)
    imp = session.get(Import, import_id)
    assert imp is not None
    path = instance_path / imp.stored_path
    when = imp.created_at.strftime("%d %b %Y")
    if not path.is_file():
        raise Conflict(
            said(
                "The sheet %(name)s (imported %(when)s) is no longer stored on this server, so "
                "it cannot be filled in. The report has every recipient.",
                name=imp.original_name,
                when=when,
            )
        )
    try:
        # head_limit 0: the whole workbook at once, as the import read it.
        sheet = open_sheet(path, checked=True, head_limit=0)
        mappings.validate(imp.mapping, sheet.header)
    except (SheetError, ValidationError) as exc:
        raise Conflict(_unreadable(imp.original_name, exc)) from None
    names = result_columns(tz_name, sheet.header)
    extension = "csv" if sheet.kind == "csv" else "xlsx"
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="sheet-", suffix=f".{extension}", dir=folder)
    os.close(handle)
    out = Path(name)
    try:
        rows = _results(session, campaign.id, imp, sheet, tz_name)
        if extension == "csv":
            count = _write_csv(rows, sheet, names, out)
        else:
            count = _write_xlsx(rows, sheet, names, out)
    except SheetError as exc:
        out.unlink(missing_ok=True)
        raise Conflict(_unreadable(imp.original_name, exc)) from None
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    mimetype = "text/csv" if extension == "csv" else XLSX_MIME
    return Written(out, _download_name(imp, extension), mimetype, count)
