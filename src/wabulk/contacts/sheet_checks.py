"""Checks a workbook passes before calamine opens it: what a parser would trust, bounded.

calamine sizes its memory by what a file declares: a shared-strings table's `uniqueCount`
is reserved at once (a 1.9 KB file asking for 2.4 TB aborts the whole process, which no
`except` catches), a sheet becomes one dense grid from its first to its farthest cell (two
cells, A1 and SF999999, make 16 GB), an .ods row or cell repeat is expanded cell by cell,
and an .xls DIMENSIONS record is reserved as rows times columns. Each check here reads the
declared numbers from the raw parts, streamed, and refuses with a sentence naming the limit
before anything is allocated for them. (STYLE.md 35: read the header, check the declared
size, then parse.)
"""

from __future__ import annotations

import html
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ValidationError
from ..words import N_, said

MAX_COLUMNS = 500
MAX_ROWS = 2_000_000
# calamine holds a sheet as one grid from its first to its farthest cell (32 bytes a cell,
# an .ods ~110 while it is built), after a list of the cells it read (40 bytes each, twice that
# while it grows): 8 million cells stay under a gigabyte, and are a million rows of 8 columns.
MAX_CELLS = 8_000_000
# calamine stops reading an .ods sheet at Excel's last row and drops the rows after it.
MAX_ODS_ROWS = 1_048_576
_BLOCK = 1024 * 1024


class SheetError(ValidationError):
    """The file cannot be read at all; nothing was imported."""


def too_big(what: str) -> SheetError:
    return SheetError(
        said(
            "%(what)s; wabulk reads up to %(rows)s rows, %(columns)s columns and %(cells)s "
            "cells (rows times columns) in a sheet. Remove the far-away or repeated cells (or "
            "split the sheet) and upload again.",
            what=what,
            rows=f"{MAX_ROWS:,}",
            columns=MAX_COLUMNS,
            cells=f"{MAX_CELLS:,}",
        )
    )


# ---- .xlsx ----------------------------------------------------------------------------------

# A cell reference past row 999,999 or column SF (MAX_ROWS, MAX_COLUMNS): the only ones the
# size check needs to read. Only cells have an r attribute of letters and digits; XML allows
# either quote and blanks around the "=".
_FAR_CELL_REF = re.compile(
    rb"\sr\s*=\s*[\"']((?:[A-Z]{3,}|S[G-Z]|[T-Z][A-Z])|[A-Z]{1,2}(?=\d{7}))(\d+)[\"']"
)
# Any reference with a column of two letters or more (past Z).
_WIDE_CELL_REF = re.compile(rb"\sr\s*=\s*[\"']([A-Z]{2,})\d")
# Blocks without a quoted value of two capitals, or of a capital and seven digits, hold no
# such reference: found with `in` on a copy where every capital reads A, every digit 0 and
# every quote ", which costs a tenth of running the pattern over the block.
_REF_SHAPES = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'\t\r\n", b"A" * 26 + b"0" * 10 + b'"   '
)
_LEADING_DIGITS = re.compile(rb"\d+")
# Cells written in a way the fast scan does not follow, looked for in the shapes copy (blanks
# read as spaces): without a reference first (calamine places such a cell after the previous
# one), with blanks around its "=", or with a namespace prefix. Such a sheet is walked tag by
# tag. In the shapes copy a usual cell starts `<c r="A`; a tag cut by the block's end (fewer
# than five characters after it) is seen whole with the next block.
_ODD_CELL = re.compile(rb'<c(?:>| (?!r="A)[\s\S]{5})')
_PREFIXED_CELL = re.compile(rb":c[ >]")  # a regex: `in` is slower for a pattern ending " "
# A usual cell's reference to a row of six digits.
_SIX_DIGIT_ROW = re.compile(rb" r=[\"'][A-Z]+(\d{6})[\"']")
_ANY_ROW = re.compile(rb" r=[\"'][A-Z]+(\d+)[\"']")
# A start tag, its attributes read as XML reads them (a ">" inside quotes is not its end).
_ATTRS = rb"((?:[^>\"']|\"[^\"]*\"|'[^']*')*)"
_TAG = re.compile(rb"<(?:[\w.-]+:)?(row|c)\b" + _ATTRS + rb">")
_ATTR = re.compile(rb"([\w.:-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_REF = re.compile(rb"([A-Za-z]*)(\d*)")
_SST_TAG = re.compile(rb"<(?:[\w.-]+:)?sst\b" + _ATTRS + rb">")
# A shared-strings table whose start tag is not closed by then is not one calamine reads.
_SST_TAG_WITHIN = 16 * 1024 * 1024
# A shared string takes at least "<si></si>" in the XML: a table claiming more entries than
# its bytes can hold is lying about its size.
_MIN_STRING_BYTES = 9


@dataclass
class _Extent:
    last_row: int = 0  # the last row tag's number (rows come in order): the size estimate
    max_row: int = 0
    max_col: int = 0
    six_digit_row: int = 0  # the farthest row of six digits a reference names


def check_xlsx(path: Path) -> dict[str, int]:
    """Refuse a workbook whose parts declare more than wabulk reads; return each worksheet
    member's last row number (0 when not found), the size estimate of a sheet read by its
    head. Raises SheetError; zip errors propagate to the caller, which words them."""
    last_rows = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            # calamine finds parts by the package's own references, whatever their names,
            # folders, case or extension: every member that is XML is scanned as a sheet.
            if name.replace("\\", "/").lower().endswith("sharedstrings.xml"):
                _check_shared_strings(zf, info)
            extent = _scan_member(zf, name)
            if name.startswith("xl/worksheets/"):
                last_rows[name] = extent.last_row
    return last_rows


def _check_shared_strings(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """calamine reserves the table's `uniqueCount` entries at once (24 bytes each)."""
    data = b""
    with zf.open(info) as fh:
        while chunk := fh.read(_BLOCK):
            data += chunk
            if tag := _SST_TAG.search(data):
                break
            if len(data) > _SST_TAG_WITHIN:
                raise _damaged_strings()
        else:
            return  # no table: calamine says what is wrong
    for key, double, single in _ATTR.findall(tag.group(1)):
        value = (double or single).strip().lstrip(b"+")
        too_many = value.isdigit() and int(value) > info.file_size // _MIN_STRING_BYTES + 16
        if key == b"uniqueCount" and too_many:
            raise _damaged_strings(int(value))


def _damaged_strings(claimed: int | None = None) -> SheetError:
    if claimed:
        return SheetError(
            said(
                "This workbook is damaged: its list of texts says it holds %(n)s entries, far "
                "more than the file contains. Open it in your spreadsheet program, save a fresh "
                "copy, and upload that.",
                n=f"{claimed:,}",
            )
        )
    return SheetError(
        N_(
            "This workbook is damaged: its list of texts cannot be read. Open it in your "
            "spreadsheet program, save a fresh copy, and upload that."
        )
    )


def _scan_member(zf: zipfile.ZipFile, name: str) -> _Extent:
    """The sheet's extent, as far as the limits need it: reading every reference costs as
    much again as this scan, so only those that can pass a limit are read (far ones, rows of
    six digits, columns past Z); other sheets are bounded by 99,999 rows and 26 columns."""
    extent = _Extent()
    tail = b""
    wide = unusual = False
    with zf.open(name) as fh:
        while chunk := fh.read(_BLOCK):
            if not tail and not chunk.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
                return extent  # not XML (an image, a binary part): no parser reads cells in it
            data = tail + chunk
            # Quoted values of two capitals (a column past Z) or of a capital and seven
            # digits (a row past 999,999) are the only references read here.
            shapes = data.translate(_REF_SHAPES)
            if b'"AA' in shapes or b'"A0000000' in shapes:
                for col, row in _FAR_CELL_REF.findall(data):
                    extent.max_row = max(extent.max_row, int(row))
                    extent.max_col = max(extent.max_col, _column_number(col))
                for col in set(_WIDE_CELL_REF.findall(data)):
                    extent.max_col = max(extent.max_col, _column_number(col))
                    wide = True
            if b"A000000" in shapes and (rows := _SIX_DIGIT_ROW.findall(data)):
                # Same length: the text order is the number's.
                extent.six_digit_row = max(extent.six_digit_row, int(max(rows)))
            unusual = (
                unusual
                or _ODD_CELL.search(shapes) is not None
                or _PREFIXED_CELL.search(shapes) is not None
            )
            # Rows come in order: the block's last row tag is the sheet's so far. Every
            # common writer puts r first.
            if (at := data.rfind(b'row r="')) >= 0 and (
                number := _LEADING_DIGITS.match(data, at + 7)
            ):
                extent.last_row = int(number.group())
            tail = data[-40:]
    if unusual:
        extent = _walk_tags(zf, name, extent.last_row)
        _check_extent(extent.max_row, extent.max_col)
        return extent
    # Bounds: no reference past Z means 26 columns; none of six digits, 99,999 rows.
    cols = extent.max_col if wide else 26
    rows = extent.max_row or extent.six_digit_row
    if not rows and 99_999 * cols > MAX_CELLS:
        rows = _max_ref_row(zf, name)  # a wide sheet below row 100,000: read its rows
    _check_extent(rows or 99_999, cols)
    return extent


def _max_ref_row(zf: zipfile.ZipFile, name: str) -> int:
    top, tail = 0, b""
    with zf.open(name) as fh:
        while chunk := fh.read(_BLOCK):
            data = tail + chunk
            top = max(top, max(map(int, _ANY_ROW.findall(data)), default=0))
            tail = data[-40:]
    return top


def _check_extent(rows: int, cols: int) -> None:
    if rows > MAX_ROWS + 1 or cols > MAX_COLUMNS:
        raise too_big(
            said(
                "A sheet in this workbook reaches row %(row)s and column %(column)s",
                row=f"{rows:,}",
                column=f"{cols:,}",
            )
        )
    if rows * cols > MAX_CELLS:
        raise too_big(
            said(
                "A sheet in this workbook spans %(rows)s rows by %(columns)s columns "
                "(%(cells)s cells)",
                rows=f"{rows:,}",
                columns=f"{cols:,}",
                cells=f"{rows * cols:,}",
            )
        )


def _walk_tags(zf: zipfile.ZipFile, name: str, last_row: int) -> _Extent:
    """Every row and cell in order, placed as calamine places them: by their reference, or
    one after the previous when they have none."""
    extent = _Extent(last_row=last_row)
    row = col = 0
    tail = b""
    with zf.open(name) as fh:
        while chunk := fh.read(_BLOCK):
            data = tail + chunk
            end = data.rfind(b"<")  # a tag cut by the block's end is read with the next one
            if end < 0 or data.find(b">", end) >= 0:
                end = len(data)
            for match in _TAG.finditer(data, 0, end):
                kind, attrs = match.groups()
                letters, digits = _reference(attrs)
                if kind == b"row":
                    row = int(digits) if digits else row + 1
                    col = 0
                else:
                    if letters and digits:
                        row, col = int(digits), _column_number(letters.upper())
                    else:
                        col += 1
                    extent.max_col = max(extent.max_col, col)
                extent.max_row = max(extent.max_row, row)
                if extent.max_row > MAX_ROWS + 1 or extent.max_col > MAX_COLUMNS:
                    return extent
            tail = data[end:]
    return extent


def _reference(attrs: bytes) -> tuple[bytes, bytes]:
    """The letters and digits of a tag's own r attribute (not of another attribute's value)."""
    for key, double, single in _ATTR.findall(attrs):
        if key == b"r":
            ref = _REF.match(double or single)
            return (ref.group(1), ref.group(2)) if ref else (b"", b"")
    return b"", b""


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n


# ---- .ods -----------------------------------------------------------------------------------

# The tags that place cells in an .ods sheet, with the attributes calamine reads literally.
_ODS_TAG = re.compile(
    rb"<(/?)table:(table-row|table-cell|covered-table-cell|table)\b" + _ATTRS + rb">"
)
_HAS_VALUE = (b"office:value-type", b"table:formula")


@dataclass
class _OdsTable:
    rows: int = 0  # rows so far, repeats counted, up to the last row that holds a value
    pending: int = 0  # empty rows since then: they count only if a row with a value follows
    width: int = 0  # the widest row's last cell with a value, repeats counted


@dataclass
class _OdsRow:
    repeat: int = 1
    col: int = 0  # cells so far, repeats counted
    last: int = 0  # the column of the last cell that may hold a value


def check_ods(path: Path) -> None:
    """Refuse an .ods whose repeated rows and cells expand past the limits (calamine expands
    them one by one), or whose rows go past the last one calamine reads (it drops them).

    Counted to err on the large side: a table inside a cell (which confuses parsers about
    where the outer cell, row and table end) adds its rows and cells to the sheet around it.
    """
    with zipfile.ZipFile(path) as zf:
        if "content.xml" not in zf.namelist():
            return
        table: _OdsTable | None = None
        table_depth = row_depth = 0
        row = _OdsRow()
        tail = b""
        with zf.open("content.xml") as fh:
            while chunk := fh.read(_BLOCK):
                data = tail + chunk
                end = data.rfind(b"<")
                if end < 0 or data.find(b">", end) >= 0:
                    end = len(data)
                for match in _ODS_TAG.finditer(data, 0, end):
                    closing, kind, attrs = match.groups()
                    self_closing = attrs.endswith(b"/")
                    if kind == b"table":
                        if self_closing:
                            continue
                        if closing:
                            table_depth = max(0, table_depth - 1)
                        else:
                            table_depth += 1
                            if table_depth == 1:
                                table = _OdsTable()
                    elif table is None:
                        continue
                    elif kind == b"table-row":
                        if not closing:
                            row_depth += 1
                            repeat = _repeats(attrs, b"table:number-rows-repeated")
                            if row_depth == 1:
                                row = _OdsRow(repeat=repeat)
                            else:  # a row of a table inside a cell: its repeats count too
                                row.repeat += repeat
                        if closing or self_closing:
                            if row_depth == 1:
                                _end_row(table, row)
                            row_depth = max(0, row_depth - 1)
                    elif not closing:  # a cell: a value attribute, or text inside it
                        row.col += _repeats(attrs, b"table:number-columns-repeated")
                        if not self_closing or any(v in attrs for v in _HAS_VALUE):
                            row.last = row.col
                            if row.col > MAX_COLUMNS:
                                raise too_big(
                                    said(
                                        "A row of this sheet repeats cells out to column "
                                        "%(column)s",
                                        column=f"{row.col:,}",
                                    )
                                )
                tail = data[end:]


def _repeats(attrs: bytes, name: bytes) -> int:
    """A repeat count as calamine reads it (character references decoded), at least 1."""
    for key, double, single in _ATTR.findall(attrs):
        if key == name:
            text = html.unescape((double or single).decode("utf-8", "replace")).strip()
            return max(1, int(text)) if text.isdigit() else 1
    return 1


def _end_row(table: _OdsTable, row: _OdsRow) -> None:
    if not row.last:
        table.pending += row.repeat
        return
    table.rows += table.pending + row.repeat
    table.pending = 0
    table.width = max(table.width, row.last)
    if table.rows > MAX_ODS_ROWS:
        raise SheetError(
            said(
                "This sheet goes on to row %(row)s (a row is repeated many times); wabulk "
                "reads .ods sheets up to row %(max)s. Remove the repeated rows, or save the "
                "sheet as .csv, and upload again.",
                row=f"{table.rows:,}",
                max=f"{MAX_ODS_ROWS:,}",
            )
        )
    if table.rows * table.width > MAX_CELLS:
        raise too_big(
            said(
                "This sheet's repeated rows and cells make %(cells)s cells",
                cells=f"{table.rows * table.width:,}",
            )
        )


# ---- .xls -----------------------------------------------------------------------------------

_SECTOR_SHIFT = struct.Struct("<H")


def check_xls(path: Path) -> None:
    """Refuse an .xls whose container or DIMENSIONS records declare sizes the file cannot
    hold: calamine reserves them as declared."""
    import olefile

    size = path.stat().st_size
    with path.open("rb") as fh:
        header = fh.read(512)
    if len(header) < 512:
        raise _damaged_xls()
    shift = _SECTOR_SHIFT.unpack_from(header, 30)[0]
    if shift not in (9, 12):
        raise _damaged_xls()
    sectors = size >> shift
    # FAT, DIFAT and mini-FAT sector counts: each sector they name is in the file.
    for offset in (44, 64, 72):
        if struct.unpack_from("<I", header, offset)[0] > sectors + 1:
            raise _damaged_xls()
    try:
        with olefile.OleFileIO(str(path)) as ole:
            stream = next(
                (s for s in (["Workbook"], ["Book"], ["WORKBOOK"], ["BOOK"]) if ole.exists(s[0])),
                None,
            )
            if stream is None:
                return  # calamine says what is missing
            data = ole.openstream(stream).read()
    except Exception:  # olefile's own refusal of a broken container
        raise _damaged_xls() from None
    _check_biff(data)


def _check_biff(data: bytes) -> None:
    """Every DIMENSIONS record calamine may read: it reads the workbook's globals from the
    start, then each sheet from the offset its BOUNDSHEET record gives, so a record that
    throws a reading from the start out of step cannot hide a sheet's."""
    sheets = _check_records(data, 0, globals_only=True)
    _check_records(data, 0)
    for offset in sorted(sheets)[:1024]:
        _check_records(data, offset)


def _check_records(data: bytes, at: int, globals_only: bool = False) -> set[int]:
    sheets = set()
    while at + 4 <= len(data):
        kind, length = struct.unpack_from("<HH", data, at)
        body = data[at + 4 : at + 4 + length]
        at += 4 + length
        if kind == 0x0085 and len(body) >= 4:  # BOUNDSHEET: where a sheet's records start
            sheets.add(struct.unpack_from("<I", body)[0])
        elif kind == 0x000A and globals_only:  # EOF of the globals
            break
        elif kind == 0x0200:  # DIMENSIONS
            _check_dimensions(body)
    return sheets


def _check_dimensions(body: bytes) -> None:
    # Read and counted as calamine does (end - start + 1 in wrapping 32-bit numbers).
    if len(body) == 14:  # BIFF8: 32-bit rows, 16-bit columns
        first_row, end_row, first_col, end_col = struct.unpack_from("<IIHH", body)
    elif len(body) == 10:  # BIFF5 and older
        first_row, end_row, first_col, end_col = struct.unpack_from("<HHHH", body)
    else:
        return  # calamine refuses the record itself
    if first_col > 0xFF or end_col < first_col:
        first_col = 0
    if end_row < 1 or end_col < 1:
        return
    rows = (end_row - first_row) % (1 << 32)
    cols = (end_col - first_col) % (1 << 32)
    if rows > MAX_ROWS + 1 or cols > MAX_COLUMNS + 1 or rows * cols > MAX_CELLS:
        raise too_big(
            said(
                "A sheet in this workbook declares %(rows)s rows by %(columns)s columns",
                rows=f"{rows:,}",
                columns=f"{cols:,}",
            )
        )


def _damaged_xls() -> SheetError:
    return SheetError(
        N_(
            "The XLS workbook is damaged and cannot be read. Open it in your spreadsheet "
            "program, save a fresh copy (as .xlsx if you can), and upload that."
        )
    )
