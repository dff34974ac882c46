"""Reading customer sheets: CSV (any common delimiter and encoding), XLSX, XLS and ODS.

- The kind comes from the content, never the extension: a ".xlsx" that is really a CSV is
  read as CSV, and the reverse.
- Everything that makes a file unreadable becomes a SheetError with a sentence for a person.
- CSV streams record by record (the csv module: twice pandas' speed once rows are Python
  lists, and a ragged row is kept, not dropped); workbooks go through calamine, after a check
  that the file does not expand into something huge (zip bombs, oversize sheets).
- Rows come out numbered as the user sees them in Excel: the header is row 1.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime
import io
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..words import N_, said
from . import sheet_checks, xlsx_head
from .sheet_checks import MAX_COLUMNS, MAX_ROWS, SheetError
from .sheet_kinds import SAMPLE_BYTES, detect_kind, sniff_encoding

__all__ = [
    "MAX_COLUMNS",
    "MAX_ROWS",
    "Sheet",
    "SheetError",
    "detect_kind",
    "open_sheet",
    "sniff_encoding",
]

log = logging.getLogger(__name__)

# A big .xlsx is opened by its first 1,000 rows (xlsx_head): enough for the header and the preview.
HEAD_ROWS = 1_000
DELIMITERS = [",", ";", "\t", "|"]


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Decode the bytes UTF-8 rejects as Windows-1252: files mixing both lose nothing."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return bad.decode("cp1252", errors="replace"), error.end


codecs.register_error("wabulk_cp1252", _cp1252_fallback)


@dataclass
class Sheet:
    """An opened sheet: its kind, header, size estimate and a way to read its rows."""

    path: Path
    kind: str  # csv, xlsx, xls, ods
    header: list[str]
    header_row: int  # 0 when the sheet has no header row
    rows_estimate: int
    sheet_name: str | None = None
    other_sheets: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    # The workbook sheet calamine already loaded when the file was opened: reading the rows
    # again from it saves loading a big workbook a second time (seconds at 200,000 rows).
    loaded: Any = field(default=None, repr=False, compare=False)
    # 0: `loaded` is the whole sheet. N: it holds the rows up to N only (xlsx_head), and
    # reading past them loads the whole workbook.
    head_rows: int = 0
    # A workbook's last row number, known once rows() has the whole sheet parsed.
    last_row: int | None = None

    def rows(
        self, start_after: int = 0, until: int | None = None
    ) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells as text) for every non-blank data row after `start_after`, up to
        row `until` when given."""
        text_only = self.kind == "csv"  # every CSV cell is a str: strip it, nothing to convert
        source = _csv_rows(self) if text_only else _workbook_rows(self, until)
        skip = max(self.header_row, start_after)
        width = len(self.header)
        text_of = _TEXT_OF.get
        for number, cells in source:
            if number <= skip:
                continue
            if until is not None and number > until:
                return
            if text_only:
                texts = [c.strip() for c in cells[:width]]
            else:  # one dictionary lookup a cell, not a chain of isinstance tests
                texts = [text_of(type(c), _cell_text)(c) for c in cells[:width]]
            # Cells beyond the header's width are kept, joined into the last column.
            if len(cells) > width and any(_cell_text(c) for c in cells[width:]):
                texts[-1] = " ".join(t for t in [texts[-1], *map(_cell_text, cells[width:])] if t)
            if len(texts) < width:
                texts.extend([""] * (width - len(texts)))
            if any(texts):
                yield number, texts


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return _float_text(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[no-any-return]
    return str(value).strip()


def _float_text(value: float) -> str:
    if value != value:
        return ""
    return str(int(value)) if value.is_integer() and abs(value) < 1e17 else repr(value)


# What calamine gives, by exact type, to its text (anything else goes through _cell_text).
_TEXT_OF: dict[type, Callable[[Any], str]] = {
    str: str.strip,
    float: _float_text,
    int: str,
    bool: _cell_text,
    type(None): _cell_text,
    datetime.date: datetime.date.isoformat,
    datetime.datetime: datetime.datetime.isoformat,
    datetime.time: datetime.time.isoformat,
}


# ---- CSV ------------------------------------------------------------------------------------


def sniff_delimiter(text: str) -> str:
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    best, best_score = ",", 0.0
    for delim in DELIMITERS:
        counts = [_count_outside_quotes(ln, delim) for ln in lines]
        if not any(counts):
            continue
        common = max(set(counts), key=counts.count)
        if common == 0:
            continue
        consistency = counts.count(common) / len(counts)
        score = consistency * 10 + min(common, 10) / 10
        if score > best_score:
            best, best_score = delim, score
    return best


def _count_outside_quotes(line: str, delim: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == delim and not quoted:
            count += 1
    return count


def _decode_sample(path: Path, encoding: str) -> str:
    with path.open("rb") as fh:
        raw = fh.read(SAMPLE_BYTES)
    errors = "wabulk_cp1252" if encoding.startswith("utf-8") else "replace"
    return codecs.getincrementaldecoder(encoding)(errors=errors).decode(raw, final=False)


def _open_csv(path: Path) -> tuple[str, str, list[list[str]]]:
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    encoding = sniff_encoding(head)
    sample = _decode_sample(path, encoding)
    delimiter = sniff_delimiter(sample)
    import csv

    # The same cell size limit as when reading all rows (the default, 128 KB, is smaller than
    # the sample: one long notes cell near the top raised a bare csv.Error here).
    csv.field_size_limit(10 * 1024 * 1024)
    first_rows = []
    # newline="": old Mac files end lines with a bare CR, which csv reads as a line end.
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            first_rows.append(row)
            if len(first_rows) >= 50:
                break
    except csv.Error as exc:
        raise _malformed_csv(reader.line_num, exc) from None
    return encoding, delimiter, first_rows


def _csv_rows(sheet: Sheet) -> Iterator[tuple[int, list[Any]]]:
    import csv

    assert sheet.encoding and sheet.delimiter
    errors = "wabulk_cp1252" if sheet.encoding.startswith("utf-8") else "replace"
    csv.field_size_limit(10 * 1024 * 1024)
    with sheet.path.open(encoding=sheet.encoding, errors=errors, newline="") as fh:
        reader = csv.reader(fh, delimiter=sheet.delimiter)
        try:
            yield from enumerate(reader, start=1)
        except csv.Error as exc:
            raise _malformed_csv(reader.line_num, exc) from None


def _malformed_csv(line: int, exc: Exception) -> SheetError:
    text = str(exc)
    if "field larger than field limit" in text:
        why = N_("a cell holds more than 10 MB of text")
    elif "NUL" in text:
        why = N_("it holds binary data (NUL characters), not text")
    elif "new-line character" in text:
        why = N_("a line break sits inside a cell without quotes around the cell")
    else:
        why = N_("a quote is not closed or a cell is not separated properly")
    log.info("CSV parse error near line %s: %s", line, text)
    return SheetError(
        said(
            "The CSV file cannot be read near line %(line)s: %(why)s. Open it in your "
            "spreadsheet program, save it again as CSV (or .xlsx), and upload that.",
            line=line,
            why=why,
        )
    )


# ---- workbooks -------------------------------------------------------------------------------


def _check_workbook(path: Path, kind: str) -> dict[str, int]:
    """The checks of what a workbook declares, before calamine sees it (sheet_checks)."""
    try:
        if kind == "xlsx":
            return sheet_checks.check_xlsx(path)
        if kind == "ods":
            sheet_checks.check_ods(path)
        elif kind == "xls":
            sheet_checks.check_xls(path)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        # A member that does not decompress (garbled bytes, bad CRC): the same as a broken zip.
        raise SheetError(
            N_(
                "The workbook is damaged and cannot be opened (a part of it does not "
                "decompress). Open it in Excel, save a fresh copy, and try again."
            )
        ) from None
    return {}


@contextlib.contextmanager
def _calamine(kind: str) -> Iterator[None]:
    """Whatever calamine raises while reading becomes a sentence of ours.

    A Rust panic inside calamine reaches Python as pyo3's PanicException, which derives from
    BaseException (so `except Exception` lets it through and the request never answers) and
    cannot be imported by name.
    """
    from python_calamine import PasswordError

    try:
        yield
    except SheetError:
        raise
    except PasswordError:
        raise SheetError(
            N_(
                "This workbook is password-protected. Remove the password in Excel, "
                "save, and upload it again."
            )
        ) from None
    except Exception as exc:
        raise _damaged(kind, exc) from None
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        raise _damaged(kind, exc) from None


def _load_workbook(source: Path | io.BytesIO, kind: str):  # type: ignore[no-untyped-def]
    from python_calamine import CalamineWorkbook

    with _calamine(kind):
        if isinstance(source, io.BytesIO):
            source.seek(0)
            return CalamineWorkbook.from_filelike(source)
        return CalamineWorkbook.from_path(str(source))


def _damaged(kind: str, exc: BaseException) -> SheetError:
    # calamine's own words name XML tags and byte offsets: they go to the log, not the page.
    log.info("calamine could not read a %s workbook: %s", kind, exc)
    return SheetError(
        said(
            "The %(kind)s workbook is damaged and cannot be read. Open it in your "
            "spreadsheet program, save a fresh copy, and try again.",
            kind=kind.upper(),
        )
    )


def _pick_sheet(workbook) -> tuple[Any, list[str]]:  # type: ignore[no-untyped-def]
    from python_calamine import SheetTypeEnum, SheetVisibleEnum

    candidates = [
        m.name
        for m in workbook.sheets_metadata
        if m.typ == SheetTypeEnum.WorkSheet and m.visible == SheetVisibleEnum.Visible
    ]
    candidates = candidates or list(workbook.sheet_names)
    for name in candidates:
        sheet = workbook.get_sheet_by_name(name)
        if sheet.height > 0 and any(
            any(_cell_text(c) for c in row) for row in _first(sheet.iter_rows(), 50)
        ):
            return sheet, [n for n in candidates if n != name]
    raise SheetError(N_("The file is empty: no sheet has any data."))


def _first(it: Iterator[Any], n: int) -> Iterator[Any]:
    for i, item in enumerate(it):
        if i >= n:
            return
        yield item


def _workbook_rows(sheet: Sheet, until: int | None = None) -> Iterator[tuple[int, list[Any]]]:
    # iter_rows pads the leading empty rows (it starts at row 1), so index + 1 is Excel's
    done = 0
    if sheet.loaded is not None:
        if not sheet.head_rows:
            sheet.last_row = _last_row(sheet.loaded)
        with _calamine(sheet.kind):  # a panic while converting cells is a sentence too
            for done, cells in enumerate(sheet.loaded.iter_rows(), start=1):
                yield done, cells
        if not sheet.head_rows or (until is not None and until <= sheet.head_rows):
            return
    # The whole sheet, after the head's rows (the head held every row up to its last).
    whole = _load_sheet(sheet)
    sheet.last_row = _last_row(whole)
    with _calamine(sheet.kind):
        for index, cells in enumerate(whole.iter_rows()):
            if index >= done:
                yield index + 1, cells


def _last_row(data: Any) -> int:
    return (data.start[0] + data.height) if data.start else 0


def _load_sheet(sheet: Sheet) -> Any:
    workbook = _load_workbook(sheet.path, sheet.kind)
    try:
        # calamine parses a sheet lazily: a damaged one fails here, not when opened
        with _calamine(sheet.kind):
            return workbook.get_sheet_by_name(sheet.sheet_name)
    finally:
        workbook.close()


# ---- opening --------------------------------------------------------------------------------


def open_sheet(path: Path, checked: bool = False, head_limit: int | None = None) -> Sheet:
    """Sniff, check and open a sheet; SheetError with a clear sentence when it cannot be read.

    - `checked`: the file is an upload's stored copy, opened once already when it was saved,
      so the workbook size scan (a quarter of a second at 200,000 rows) is not repeated.
    - A big .xlsx is parsed up to row `head_limit` (HEAD_ROWS) when opened; reading its rows
      further parses the whole sheet then. 0: the whole sheet at once.
    """
    kind = detect_kind(path)
    head_rows = 0
    if kind == "csv":
        encoding, delimiter, first_rows = _open_csv(path)
        sheet_name, others, data = None, [], None
        size = path.stat().st_size
        sample_bytes = max(1, len("\n".join(",".join(r) for r in first_rows).encode()))
        estimate = int(len(first_rows) * size / sample_bytes) if first_rows else 0
    else:
        extent = {} if checked else _check_workbook(path, kind)
        limit = HEAD_ROWS if head_limit is None else head_limit
        head = xlsx_head.head_workbook(path, limit) if kind == "xlsx" and limit else None
        opened = None
        if head is not None:
            # On any error the whole workbook is read below, and says what is wrong with it.
            with contextlib.suppress(SheetError):
                opened = _open_workbook(head.data, kind)
        if opened is None:
            head = None
            opened = _open_workbook(path, kind)
        data, others, first_rows, estimate = opened
        sheet_name = data.name
        if head is not None and sheet_name in head.cut:
            head_rows = head.last_row
            estimate = max(estimate, extent.get(head.members.get(sheet_name, ""), 0))
        encoding = delimiter = None
    header, header_row = _find_header(first_rows)
    sheet = Sheet(
        path=path,
        kind=kind,
        header=header,
        header_row=header_row,
        rows_estimate=max(estimate - header_row, 0),
        sheet_name=sheet_name,
        other_sheets=others,
        encoding=encoding,
        delimiter=delimiter,
        loaded=data,
        head_rows=head_rows,
    )
    return sheet


def _open_workbook(
    source: Path | io.BytesIO, kind: str
) -> tuple[Any, list[str], list[list[str]], int]:
    """(the sheet to read, the other sheets' names, its first rows, its last row number)."""
    workbook = _load_workbook(source, kind)
    try:
        with _calamine(kind):  # a damaged sheet fails when first read
            data, others = _pick_sheet(workbook)
        if data.width > MAX_COLUMNS or data.height > MAX_ROWS + 1:
            raise SheetError(
                said(
                    "The sheet %(sheet)s has %(rows)s rows and %(columns)s columns; wabulk "
                    "reads up to %(max_rows)s rows and %(max_columns)s columns.",
                    sheet=repr(data.name),
                    rows=f"{data.height:,}",
                    columns=f"{data.width:,}",
                    max_rows=f"{MAX_ROWS:,}",
                    max_columns=MAX_COLUMNS,
                )
            )
        # iter_rows starts at row 1 (leading empty rows padded): row numbers match Excel's
        with _calamine(kind):
            first_rows = [[_cell_text(c) for c in r] for r in _first(data.iter_rows(), 50)]
        return data, others, first_rows, _last_row(data)
    finally:
        workbook.close()


def _find_header(first_rows: list[list[str]]) -> tuple[list[str], int]:
    """(column names, header row number): the first non-blank row, unless it holds a phone."""
    from .phones import normalise

    rows = [[c.strip() if isinstance(c, str) else _cell_text(c) for c in r] for r in first_rows]
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(r)]
    non_blank = [r for _, r in numbered]
    if not non_blank:
        raise SheetError(N_("The file is empty: it has no rows with data."))
    width = max(len(r) for r in non_blank)
    while width and not any(len(r) >= width and r[width - 1] for r in non_blank):
        width -= 1
    if width > MAX_COLUMNS:
        # Said before anything about the rows: a CSV header longer than the sample read to
        # sniff it comes as the only row, and "no data rows" would be untrue.
        raise SheetError(
            said(
                "The sheet has more than %(max)s columns (%(width)s in its first rows); "
                "wabulk reads up to %(max)s.",
                max=MAX_COLUMNS,
                width=f"{width:,}",
            )
        )
    # A title above the table ("Customer list, March", often merged across the columns) fills
    # one cell; the header below it fills several. Skip such lone-cell rows at the top.
    start = 0
    while (
        start < min(len(numbered) - 1, 5)
        and sum(1 for c in numbered[start][1] if c) == 1
        and sum(1 for c in numbered[start + 1][1] if c) >= 2
    ):
        start += 1
    header_number, first = numbered[start]
    looks_like_data = any(
        normalise(c, "US").ok or normalise(c, "IN").ok
        for c in first
        if sum(ch.isdigit() for ch in c) >= 7
    )
    if looks_like_data:
        return [f"Column {_letters(i)}" for i in range(width)], header_number - 1
    header = []
    for i in range(width):
        name = first[i] if i < len(first) else ""
        header.append(name or f"Column {_letters(i)}")
    if len(non_blank) == start + 1:
        raise SheetError(N_("The sheet has a header row but no data rows below it."))
    return _dedupe(header), header_number


def _letters(index: int) -> str:
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        key = name.lower()
        if key in seen:
            seen[key] += 1
            name = f"{name} ({seen[key]})"
        else:
            seen[key] = 1
        out.append(name)
    return out
