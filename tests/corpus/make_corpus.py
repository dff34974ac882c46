"""Write the hostile upload corpus into a folder: `python tests/corpus/make_corpus.py [FOLDER]`.

Every file is made here from text and the standard library (zip members written with a fixed
date, so two runs give the same bytes): nothing binary is checked in. `build(folder)` returns
what each file is and what wabulk must do with it; tests/corpus/README.md explains the attacks.

Files that are read hold the same three customers (CORPUS_PHONES) under the same names, so a
second read of them changes nothing; files that are refused must change nothing either.
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HEADER = ["Name", "Phone", "City"]
ROWS = [
    ["Corpus One", "9811100001", "Pune"],
    ["Corpus Two", "9811100002", "Delhi"],
    ["Corpus Three", "9811100003", "Goa"],
]
CORPUS_PHONES = ["+919811100001", "+919811100002", "+919811100003"]
_DATE = (2024, 1, 1, 0, 0, 0)

# Words a refusal must contain (loosely: the lead words the sentences), by what is refused.
SIZE_WORDS = r"repeat|limit|rows|columns|cells|size|large|big|unsafe|up to"
DAMAGED_WORDS = r"damaged|broken|cannot be (read|opened)|fresh copy|not a spreadsheet"


@dataclass(frozen=True)
class Entry:
    name: str  # the file's name in the folder
    attack: str  # what it tries, in a line
    outcome: str  # "refused": a sentence of ours; "read": imported; "either": one of the two
    words: str = ""  # a regex (case-insensitive) the refusal sentence must match
    rows: int = 0  # contacts a read must import (created, updated or unchanged)
    upload_name: str | None = None  # the file name sent with an upload, when not `name`
    cli: bool = False  # also through the command line in the quick run (all of them when slow)


# ---- building blocks ----------------------------------------------------------------------


def _zip(path: Path, members: list[tuple[str, bytes]], stored: bool = False) -> Path:
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else method
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return path


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _col(index: int) -> str:
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def _table(header: list[str] | None = None) -> list[list[str]]:
    return [header or HEADER, *ROWS]


# ---- xlsx -----------------------------------------------------------------------------------

_XLSX_CT = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _root_rels(target: str = "xl/workbook.xml") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="'
        f'{_PKG_REL}"><Relationship Id="rId1" Type="{_REL}/officeDocument" Target="{target}"/>'
        "</Relationships>"
    )


def _workbook_rels(prefix: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="'
        f'{_PKG_REL}"><Relationship Id="rId1" Type="{_REL}/worksheet" '
        f'Target="{prefix}worksheets/sheet1.xml"/><Relationship Id="rId2" '
        f'Type="{_REL}/sharedStrings" Target="{prefix}sharedStrings.xml"/></Relationships>'
    )


_WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="{_MAIN}" '
    f'xmlns:r="{_REL}"><sheets><sheet name="Customers" sheetId="1" r:id="rId1"/></sheets>'
    "</workbook>"
)


def _shared_strings(strings: list[str], count: str | None = None, doctype: str = "") -> str:
    n = str(len(strings)) if count is None else count
    items = "".join(f"<si><t>{s}</t></si>" for s in strings)
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n{doctype}'
        f'<sst xmlns="{_MAIN}" count="{n}" uniqueCount="{n}">{items}</sst>'
    )


def _sheet_xml(
    rows: list[list[str]], extra_cells: str = "", dimension: str | None = None
) -> tuple[str, list[str]]:
    """A worksheet whose cells are shared strings (indices into the returned list)."""
    strings: list[str] = []
    body = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            strings.append(_esc(value))
            cells.append(f'<c r="{_col(c)}{r}" t="s"><v>{len(strings) - 1}</v></c>')
        body.append(f'<row r="{r}">{"".join(cells)}</row>')
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    xml = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN}">'
        f"{dim}<sheetData>{''.join(body)}{extra_cells}</sheetData></worksheet>"
    )
    return xml, strings


def _xlsx_members(
    rows: list[list[str]] | None = None,
    count: str | None = None,
    doctype: str = "",
    strings_override: list[str] | None = None,
    dimension: str | None = None,
    extra_cells: str = "",
) -> list[tuple[str, bytes]]:
    sheet, strings = _sheet_xml(rows or _table(), extra_cells, dimension)
    return [
        ("[Content_Types].xml", _XLSX_CT.encode()),
        ("_rels/.rels", _root_rels().encode()),
        ("xl/workbook.xml", _WORKBOOK.encode()),
        ("xl/_rels/workbook.xml.rels", _workbook_rels().encode()),
        ("xl/worksheets/sheet1.xml", sheet.encode()),
        (
            "xl/sharedStrings.xml",
            _shared_strings(strings_override or strings, count, doctype).encode(),
        ),
    ]


def xlsx(path: Path, **kwargs: object) -> Path:
    return _zip(path, _xlsx_members(**kwargs))  # type: ignore[arg-type]


# ---- ods ------------------------------------------------------------------------------------

_ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"'
)
_ODS_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest xmlns:manifest="urn:oasis:'
    'names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry '
    'manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.'
    'spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" '
    'manifest:media-type="text/xml"/></manifest:manifest>'
)


def _ods_cell(value: str, repeat: int = 1) -> str:
    rep = f' table:number-columns-repeated="{repeat}"' if repeat > 1 else ""
    if not value:
        return f"<table:table-cell{rep}/>"
    return (
        f'<table:table-cell office:value-type="string"{rep}><text:p>{_esc(value)}</text:p>'
        "</table:table-cell>"
    )


def _ods_row(cells: list[str], repeat: int = 1, tail: str = "") -> str:
    rep = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
    return f"<table:table-row{rep}>{''.join(_ods_cell(c) for c in cells)}{tail}</table:table-row>"


def ods(path: Path, body: str | None = None, doctype: str = "") -> Path:
    rows = body if body is not None else "".join(_ods_row(r) for r in _table())
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}<office:document-content {_ODS_NS}>'
        '<office:body><office:spreadsheet><table:table table:name="Customers">'
        f"{rows}</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    return _zip(
        path,
        [
            ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
            ("META-INF/manifest.xml", _ODS_MANIFEST.encode()),
            ("content.xml", content.encode()),
        ],
    )


# ---- the corpus -----------------------------------------------------------------------------

_BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]>\n"
)
_XXE = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'


def _csv(path: Path, rows: list[list[str]], newline: str = "\r\n") -> Path:
    path.write_bytes((newline.join(",".join(r) for r in rows) + newline).encode())
    return path


def _shared_strings_count(count: str) -> Callable[[Path], Path]:
    return lambda path: xlsx(path, count=count)


def _reordered(path: Path) -> Path:
    """Parts in reverse order: the sheet first, the content types last."""
    return _zip(path, list(reversed(_xlsx_members())))


def _absolute_parts(path: Path) -> Path:
    """Relationships naming their targets by absolute part names (/xl/...)."""
    members = dict(_xlsx_members())
    members["_rels/.rels"] = _root_rels("/xl/workbook.xml").encode()
    members["xl/_rels/workbook.xml.rels"] = _workbook_rels("/xl/").encode()
    return _zip(path, list(members.items()))


def _extra_folders(path: Path) -> Path:
    """Folders and parts a sheet reader does not need (docProps, customXml, a thumbnail)."""
    members = _xlsx_members()
    members += [
        ("docProps/", b""),
        ("docProps/app.xml", b"<Properties/>"),
        ("customXml/item1.xml", b"<root>" + b"<x/>" * 100 + b"</root>"),
        ("xl/media/notes.txt", b"not a part of the workbook"),
    ]
    return _zip(path, members)


def _far_cell(path: Path) -> Path:
    return xlsx(path, extra_cells='<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>')


def _far_dimension(path: Path) -> Path:
    """A dimension claiming the whole grid over three rows (a count readers may trust)."""
    return xlsx(path, dimension="A1:XFD1048576")


def _html_xls(path: Path) -> Path:
    cells = "".join(
        "<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in _table()
    )
    path.write_text(
        '<html><head><meta charset="utf-8"><title>Orders export</title></head>'
        f"<body><table border=1>{cells}</table></body></html>\n"
    )
    return path


def _spreadsheetml_2003(path: Path) -> Path:
    rows = "".join(
        "<Row>"
        + "".join(f'<Cell><Data ss:Type="String">{_esc(c)}</Data></Cell>' for c in row)
        + "</Row>"
        for row in _table()
    )
    path.write_text(
        '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
        'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">'
        f'<Worksheet ss:Name="Customers"><Table>{rows}</Table></Worksheet></Workbook>\n'
    )
    return path


def _formula_header(path: Path) -> Path:
    header = ['"=HYPERLINK(""http://example.invalid/x"",""Name"")"', "Phone", "=1+2"]
    return _csv(path, [header, *ROWS])


def _cr_only(path: Path) -> Path:
    return _csv(path, _table(), newline="\r")


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _truncated(path: Path) -> Path:
    whole = _zip(path, _xlsx_members())
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _garbled(path: Path) -> Path:
    """The sheet's compressed bytes scrambled; the zip directory left intact."""
    _zip(path, _xlsx_members(rows=_table() * 30))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("xl/worksheets/sheet1.xml")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 8, start + info.compress_size - 8):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def _zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _xlsx_members()[:4]:
            zf.writestr(zipfile.ZipInfo(name, date_time=_DATE), data)
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", date_time=_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as member:
            block = b" " * (1024 * 1024)
            for _ in range(200):
                member.write(block)
    return path


def _huge_cell(path: Path) -> Path:
    rows = [",".join(r) for r in _table()]
    rows.insert(2, "Big," + "9811100009," + "x" * (11 * 1024 * 1024))
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    return path


def _wide_row(path: Path) -> Path:
    """A header of 100,000 columns."""
    header = HEADER + [f"c{i}" for i in range(100_000)]
    return _csv(path, [header, *ROWS])


def _long_csv_line(path: Path) -> Path:
    """One 8 MB line of commas under the header: a row of 8 million empty cells."""
    rows = [",".join(r) for r in _table()]
    rows.insert(2, "," * (8 * 1024 * 1024))
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    return path


def _password(path: Path) -> Path:
    """A workbook encrypted as Excel does it; salts from a seed and no timestamps, so the
    bytes are the same on every run."""
    import msoffcrypto.format.ooxml
    import msoffcrypto.method.container.ecma376_encrypted as container
    import msoffcrypto.method.ecma376_agile as agile

    plain = _zip(path.with_suffix(".plain"), _xlsx_members())
    counter = iter(range(1 << 30))

    def seeded(size: int) -> bytes:
        out = b""
        while len(out) < size:
            out += hashlib.sha256(b"wabulk-corpus-%d" % next(counter)).digest()
        return out[:size]

    with (
        _patched(agile, "_random_buffer", seeded),
        _patched(container, "datetime2filetime", lambda _now: 0),  # no creation time
        plain.open("rb") as source,
        path.open("wb") as locked,
    ):
        msoffcrypto.format.ooxml.OOXMLFile(source).encrypt("secret", locked)
    plain.unlink()
    return path


@contextmanager
def _patched(owner: object, name: str, value: object) -> Iterator[None]:
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


# -- ods attacks --


def _ods_columns_repeated(path: Path) -> Path:
    """A few bytes that expand to 16,384 filled columns on 1,000 rows (16 M cells)."""
    tail = _ods_cell("x", 16_384)
    body = "".join(_ods_row(r) for r in _table()) + _ods_row([], repeat=1_000, tail=tail)
    return ods(path, body)


def _ods_cells_repeated(path: Path) -> Path:
    """~100 M cells: 400 filled columns on 250,000 repeated rows (each under the limits)."""
    body = "".join(_ods_row(r) for r in _table())
    body += _ods_row([], repeat=250_000, tail=_ods_cell("y", 400))
    return ods(path, body)


def _ods_row_repeated_then_row(path: Path) -> Path:
    """A customer row repeated 1,100,000 times, then one distinct customer."""
    body = _ods_row(HEADER) + _ods_row(ROWS[0], repeat=1_100_000) + _ods_row(ROWS[1])
    return ods(path, body)


def _ods_trailing_blank_repeats(path: Path) -> Path:
    """What LibreOffice itself writes: blank cells and rows repeated to the grid's edge."""
    blank_cols = _ods_cell("", 1_021)
    body = "".join(_ods_row(r, tail=blank_cols) for r in _table())
    body += _ods_row([], repeat=1_048_572, tail=_ods_cell("", 1_024))
    return ods(path, body)


def _ods_billion_laughs(path: Path) -> Path:
    body = _ods_row(HEADER) + "".join(_ods_row(r) for r in ROWS)
    body = body.replace("Pune", "&lol9;")
    return ods(path, body, doctype=_BILLION_LAUGHS)


# -- xlsx entity attacks --


def _xlsx_billion_laughs(path: Path) -> Path:
    _, strings = _sheet_xml(_table())
    strings[-1] = "&lol9;"
    return xlsx(path, doctype=_BILLION_LAUGHS, strings_override=strings)


def _xlsx_xxe(path: Path) -> Path:
    _, strings = _sheet_xml(_table())
    strings[5] = "&xxe;"  # the first customer's city
    return xlsx(path, doctype=_XXE, strings_override=strings)


# ---- the list -------------------------------------------------------------------------------

_ODS_WORDS = r"repeat|limit|rows|columns|cells|up to"
_Maker = Callable[[Path], Path]

CORPUS: list[tuple[Entry, _Maker]] = [
    # The two findings that stopped the server (issue 14, item 1).
    (
        Entry(
            "shared-strings-1e11.xlsx",
            "sharedStrings.xml claims uniqueCount=100000000000: calamine reserved 2.4 TB, SIGABRT",
            "refused",
            SIZE_WORDS + "|damaged",
            cli=True,
        ),
        _shared_strings_count("100000000000"),
    ),
    (
        Entry(
            "shared-strings-1e18.xlsx",
            "uniqueCount=1000000000000000000: calamine panicked (a BaseException)",
            "refused",
            SIZE_WORDS + "|damaged",
            cli=True,
        ),
        _shared_strings_count("1000000000000000000"),
    ),
    # Item 2: ODS repeats that expand before any size check.
    (
        Entry(
            "columns-repeated.ods",
            "16,384 repeated filled columns on 1,000 repeated rows (12 GB before the fix)",
            "refused",
            _ODS_WORDS,
            cli=True,
        ),
        _ods_columns_repeated,
    ),
    (
        Entry(
            "cells-repeated.ods",
            "400 columns x 250,000 repeated rows: 100 M cells, each dimension under the limits",
            "refused",
            _ODS_WORDS,
        ),
        _ods_cells_repeated,
    ),
    (
        Entry(
            "row-repeated-then-row.ods",
            "a customer row repeated 1,100,000 times, then one distinct row (dropped in silence)",
            "either",
            _ODS_WORDS,
            rows=2,
            cli=True,
        ),
        _ods_row_repeated_then_row,
    ),
    (
        Entry(
            "trailing-blank-repeats.ods",
            "blank rows and columns repeated to the grid's edge, as LibreOffice writes them",
            "read",
            rows=3,
        ),
        _ods_trailing_blank_repeats,
    ),
    # Archive and XML attacks.
    (
        Entry(
            "zip-bomb.xlsx",
            "200 MB of blanks compressed 1000x into the sheet part",
            "refused",
            r"unsafe|size|expands",
        ),
        _zip_bomb,
    ),
    (
        Entry(
            "billion-laughs.xlsx",
            "nested entities in sharedStrings.xml (3 GB if expanded)",
            "either",
            r"damaged|entit|DTD|unsafe|cannot be read",
            rows=3,
        ),
        _xlsx_billion_laughs,
    ),
    (
        Entry(
            "billion-laughs.ods",
            "nested entities in content.xml",
            "either",
            r"damaged|entit|DTD|unsafe|cannot be read",
            rows=3,
        ),
        _ods_billion_laughs,
    ),
    (
        Entry(
            "xxe.xlsx",
            "an external entity naming /etc/passwd in sharedStrings.xml",
            "either",
            r"damaged|entit|DTD|unsafe|cannot be read",
            rows=3,
        ),
        _xlsx_xxe,
    ),
    (
        Entry(
            "traversal.csv",
            "uploaded as ../../x.csv: the name must never become a path",
            "read",
            rows=3,
            upload_name="../../x.csv",
        ),
        lambda p: _csv(p, _table()),
    ),
    # Formats that are not what their name says, and packaging calamine reads.
    (
        Entry(
            "html-table.xls",
            "an HTML table saved as .xls (web shop exports)",
            "either",
            r"HTML|web page",
            rows=3,
        ),
        _html_xls,
    ),
    (
        Entry(
            "spreadsheetml-2003.xls",
            "SpreadsheetML 2003 XML saved as .xls (older ERPs)",
            "either",
            r"XML|2003|SpreadsheetML",
            rows=3,
        ),
        _spreadsheetml_2003,
    ),
    (
        Entry(
            "stored.xlsx",
            "a valid workbook with its members stored uncompressed",
            "read",
            rows=3,
        ),
        lambda p: _zip(p, _xlsx_members(), stored=True),
    ),
    (
        Entry("reordered.xlsx", "a valid workbook with its parts in reverse order", "read", rows=3),
        _reordered,
    ),
    (
        Entry(
            "absolute-parts.xlsx",
            "a valid workbook whose relationships use absolute part names",
            "read",
            rows=3,
        ),
        _absolute_parts,
    ),
    (
        Entry("extra-folders.xlsx", "a valid workbook with extra folders", "read", rows=3),
        _extra_folders,
    ),
    (
        Entry(
            "old-mac.csv",
            "CSV with bare CR line ends (old Mac)",
            "read",
            rows=3,
        ),
        _cr_only,
    ),
    # Broken, locked and empty files.
    (
        Entry(
            "password.xlsx",
            "a password-protected workbook",
            "refused",
            r"password",
        ),
        _password,
    ),
    (Entry("truncated.xlsx", "half a workbook", "refused", DAMAGED_WORDS), _truncated),
    (
        Entry(
            "garbled.xlsx", "a workbook whose sheet does not decompress", "refused", DAMAGED_WORDS
        ),
        _garbled,
    ),
    (Entry("empty.csv", "an empty file", "refused", r"empty"), _empty),
    (Entry("empty.xlsx", "an empty file named .xlsx", "refused", r"empty"), _empty),
    # Sizes.
    (
        Entry("huge-cell.csv", "one 11 MB cell", "refused", r"cell|large|long|MB|limit"),
        _huge_cell,
    ),
    (
        Entry("wide-header.csv", "a header of 100,003 columns", "refused", r"columns"),
        _wide_row,
    ),
    (
        Entry(
            "long-line.csv",
            "a data row of 8 million empty cells",
            "either",
            SIZE_WORDS,
            rows=3,
        ),
        _long_csv_line,
    ),
    (
        Entry("far-cell.xlsx", "a cell at XFD1048576", "refused", r"rows|columns"),
        _far_cell,
    ),
    (
        Entry(
            "far-dimension.xlsx",
            "three rows under a dimension claiming A1:XFD1048576",
            "read",
            rows=3,
        ),
        _far_dimension,
    ),
    (
        Entry(
            "formula-header.csv",
            "headers that are formulas (=HYPERLINK(...), =1+2)",
            "read",
            rows=3,
        ),
        _formula_header,
    ),
]


def build(folder: Path) -> list[Entry]:
    """Write every corpus file into `folder`; the entries, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry, make in CORPUS:
        make(folder / entry.name)
    return [entry for entry, _ in CORPUS]


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent / "out"
    for entry in build(folder):
        size = (folder / entry.name).stat().st_size
        print(f"{entry.name:28} {size:>10,} bytes  {entry.outcome:8} {entry.attack}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
