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
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from . import xlsx_head

MAX_COLUMNS = 500
# A big .xlsx is opened by its first rows (xlsx_head): enough for the header and the preview.
HEAD_ROWS = 1_000
MAX_ROWS = 2_000_000
MAX_UNZIPPED_BYTES = 1024 * 1024 * 1024
MAX_ZIP_RATIO = 150  # real sheets compress ~10x; bombs compress 1000x
_SAMPLE_BYTES = 256 * 1024
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_MARK = "EncryptedPackage".encode("utf-16-le")
# A cell reference past row 999,999 or column SF (MAX_ROWS, MAX_COLUMNS): the only ones the
# size check needs to read. Only cells have an r attribute of letters and digits; XML allows
# either quote and blanks around the "=".
_FAR_CELL_REF = re.compile(
    rb"\sr\s*=\s*[\"']((?:[A-Z]{3}|S[G-Z]|[T-Z][A-Z])|[A-Z]{1,2}(?=\d{7}))(\d{1,7})[\"']"
)
# Blocks without a quoted value of two capitals, or of a capital and seven digits, hold no
# such reference: found with `in` on a copy where every capital reads A, every digit 0 and
# every quote ", which costs a tenth of running the pattern over the block.
_REF_SHAPES = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'", b"A" * 26 + b"0" * 10 + b'"'
)
_LEADING_DIGITS = re.compile(rb"\d+")
DELIMITERS = [",", ";", "\t", "|"]
# One well-formed multi-byte UTF-8 character (what Windows-1252 text almost never contains).
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


class SheetError(ValidationError):
    """The file cannot be read at all; nothing was imported."""


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


# ---- kind detection -------------------------------------------------------------------------


def detect_kind(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE_BYTES)
    if not head:
        raise SheetError("The file is empty.")
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head.startswith(_OLE_MAGIC):
        with path.open("rb") as fh:
            start = fh.read(4_000_000)  # the OLE directory naming the streams sits near the top
        if _ENCRYPTED_MARK in start:
            raise SheetError(
                "This workbook is password-protected. Open it in Excel, remove the password "
                "(File → Info → Protect Workbook → Encrypt with Password, clear it), save, "
                "and upload it again."
            )
        return "xls"
    if head.startswith(b"%PDF"):
        raise SheetError("This is a PDF, not a spreadsheet. Upload the .xlsx or .csv file.")
    for magic, what in (
        (b"\x89PNG", "an image"),
        (b"\xff\xd8\xff", "an image"),
        (b"GIF8", "an image"),
        (b"Rar!", "a RAR archive"),
        (b"\x1f\x8b", "a gzip archive"),
    ):
        if head.startswith(magic):
            raise SheetError(
                f"This is {what}, not a spreadsheet. Upload .xlsx, .xls, .ods or .csv."
            )
    if not _looks_like_text(head):
        raise SheetError("This file is not a spreadsheet or a CSV (it looks like binary data).")
    return "csv"


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            _check_zip_bomb(zf)
            if "xl/workbook.xml" in names:
                return "xlsx"
            if "mimetype" in names:
                mime = zf.read("mimetype").decode("ascii", "replace").strip()
                if mime == "application/vnd.oasis.opendocument.spreadsheet":
                    return "ods"
                raise SheetError(
                    f"This is an OpenDocument file of type {mime!r}, not a spreadsheet."
                )
            if any(n.startswith("word/") for n in names):
                raise SheetError("This is a Word document, not a spreadsheet.")
    except zipfile.BadZipFile:
        raise SheetError(
            "The workbook is damaged and cannot be opened (broken zip "
            "structure). Open it in Excel, save a fresh copy, and try again."
        ) from None
    raise SheetError("This is a zip archive, not a spreadsheet. Upload the .xlsx inside it.")


def _check_zip_bomb(zf: zipfile.ZipFile) -> None:
    total = 0
    for info in zf.infolist():
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 10 * 1024 * 1024 and ratio > MAX_ZIP_RATIO:
            raise SheetError(
                "This workbook expands to an implausible size for its file size "
                f"({info.filename}: {ratio:.0f} times compressed); it was refused "
                "as unsafe."
            )
    if total > MAX_UNZIPPED_BYTES:
        raise SheetError(
            f"This workbook expands to {total // (1024 * 1024)} MB, more than a "
            "customer sheet should; it was refused as unsafe."
        )


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF8)):
        return True
    if _utf16_without_bom(head):
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head[:8192] if b < 9 or 13 < b < 32)
    return controls <= len(head[:8192]) // 100


def _utf16_without_bom(head: bytes) -> str | None:
    sample = head[:4096]
    if len(sample) < 4:
        return None
    evens, odds = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odds > half * 0.6 and evens < half * 0.1:
        return "utf-16-le"
    if evens > half * 0.6 and odds < half * 0.1:
        return "utf-16-be"
    return None


# ---- CSV ------------------------------------------------------------------------------------


def sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if guess := _utf16_without_bom(head):
        return guess
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut multi-byte character at the end of the sample is not evidence against UTF-8.
        if exc.start < len(head) - 4:
            # Any real UTF-8 character means UTF-8 rows: read as UTF-8, and the stray bytes of
            # Windows-1252 rows decode through the fallback. (Counting only the characters
            # before the first stray byte turned mixed files into mojibake.)
            return "utf-8" if _UTF8_MULTIBYTE.search(head) else "cp1252"
    return "utf-8"


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
        raw = fh.read(_SAMPLE_BYTES)
    errors = "wabulk_cp1252" if encoding.startswith("utf-8") else "replace"
    return codecs.getincrementaldecoder(encoding)(errors=errors).decode(raw, final=False)


def _open_csv(path: Path) -> tuple[str, str, list[list[str]]]:
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE_BYTES)
    encoding = sniff_encoding(head)
    sample = _decode_sample(path, encoding)
    delimiter = sniff_delimiter(sample)
    import csv

    # The same cell size limit as when reading all rows (the default, 128 KB, is smaller than
    # the sample: one long notes cell near the top raised a bare csv.Error here).
    csv.field_size_limit(10 * 1024 * 1024)
    first_rows = []
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter)
    try:
        for row in reader:
            first_rows.append(row)
            if len(first_rows) >= 50:
                break
    except csv.Error as exc:
        raise SheetError(f"The CSV file is malformed near row {reader.line_num}: {exc}.") from None
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
            raise SheetError(
                f"The CSV file is malformed near row {reader.line_num}: {exc}."
            ) from None


# ---- workbooks -------------------------------------------------------------------------------


def _check_xlsx_dimensions(path: Path) -> dict[str, int]:
    """Find the real extent of the sheets without letting calamine allocate it.

    Returns each worksheet member's last row number (0 when not found): the size estimate of
    a sheet read by its head.
    """
    try:
        return _scan_xlsx_dimensions(path)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        # A member that does not decompress (garbled bytes, bad CRC): the same as a broken zip.
        raise SheetError(
            "The workbook is damaged and cannot be opened (a part of it does not "
            "decompress). Open it in Excel, save a fresh copy, and try again."
        ) from None


def _scan_xlsx_dimensions(path: Path) -> dict[str, int]:
    last_rows = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                continue
            max_row, max_col, tail, last_row = 0, 0, b"", 0
            with zf.open(name) as fh:
                while chunk := fh.read(1024 * 1024):
                    data = tail + chunk
                    # Only references that may be out of bounds are looked at (a 7-digit row,
                    # a column past SF): walking every cell cost more than calamine's read.
                    shapes = data.translate(_REF_SHAPES)
                    if b'"AA' in shapes or b'"A0000000' in shapes:
                        for col, row in _FAR_CELL_REF.findall(data):
                            max_row = max(max_row, int(row))
                            max_col = max(max_col, _column_number(col))
                    # Rows come in order: the block's last row tag is the sheet's so far.
                    # Every common writer puts r first.
                    if (at := data.rfind(b'row r="')) >= 0 and (
                        number := _LEADING_DIGITS.match(data, at + 7)
                    ):
                        last_row = int(number.group())
                    tail = data[-40:]
            last_rows[name] = last_row
            if max_row > MAX_ROWS + 1 or max_col > MAX_COLUMNS:
                raise SheetError(
                    f"A sheet in this workbook reaches row {max_row:,} and column {max_col:,}; "
                    f"wabulk reads up to {MAX_ROWS:,} rows and {MAX_COLUMNS} columns. Remove the "
                    "far-away cells (or split the sheet) and upload again."
                )
    return last_rows


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n


def _load_workbook(source: Path | io.BytesIO, kind: str):  # type: ignore[no-untyped-def]
    from python_calamine import CalamineWorkbook, PasswordError

    try:
        if isinstance(source, io.BytesIO):
            source.seek(0)
            return CalamineWorkbook.from_filelike(source)
        return CalamineWorkbook.from_path(str(source))
    except PasswordError:
        raise SheetError(
            "This workbook is password-protected. Remove the password in Excel, "
            "save, and upload it again."
        ) from None
    except Exception as exc:
        raise _damaged(kind, exc) from None


def _damaged(kind: str, exc: Exception) -> SheetError:
    return SheetError(
        f"The {kind.upper()} workbook is damaged and cannot be read ({exc}). "
        "Open it in your spreadsheet program, save a fresh copy, and try "
        "again."
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
    raise SheetError("The file is empty: no sheet has any data.")


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
        for done, cells in enumerate(sheet.loaded.iter_rows(), start=1):
            yield done, cells
        if not sheet.head_rows or (until is not None and until <= sheet.head_rows):
            return
    # The whole sheet, after the head's rows (the head held every row up to its last).
    whole = _load_sheet(sheet)
    sheet.last_row = _last_row(whole)
    for index, cells in enumerate(whole.iter_rows()):
        if index >= done:
            yield index + 1, cells


def _last_row(data: Any) -> int:
    return (data.start[0] + data.height) if data.start else 0


def _load_sheet(sheet: Sheet) -> Any:
    from python_calamine import CalamineError

    workbook = _load_workbook(sheet.path, sheet.kind)
    try:
        # calamine parses a sheet lazily: a damaged one fails here, not when opened
        return workbook.get_sheet_by_name(sheet.sheet_name)
    except CalamineError as exc:
        raise _damaged(sheet.kind, exc) from None
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
        extent = _check_xlsx_dimensions(path) if kind == "xlsx" and not checked else {}
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
    if len(header) > MAX_COLUMNS:
        raise SheetError(f"The sheet has {len(header)} columns; wabulk reads up to {MAX_COLUMNS}.")
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
    from python_calamine import CalamineError

    workbook = _load_workbook(source, kind)
    try:
        try:
            data, others = _pick_sheet(workbook)
        except CalamineError as exc:  # a damaged sheet fails when first read
            raise _damaged(kind, exc) from None
        if data.width > MAX_COLUMNS or data.height > MAX_ROWS + 1:
            raise SheetError(
                f"The sheet {data.name!r} has {data.height:,} rows and "
                f"{data.width:,} columns; wabulk reads up to {MAX_ROWS:,} rows "
                f"and {MAX_COLUMNS} columns."
            )
        # iter_rows starts at row 1 (leading empty rows padded): row numbers match Excel's
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
        raise SheetError("The file is empty: it has no rows with data.")
    width = max(len(r) for r in non_blank)
    while width and not any(len(r) >= width and r[width - 1] for r in non_blank):
        width -= 1
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
        raise SheetError("The sheet has a header row but no data rows below it.")
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
