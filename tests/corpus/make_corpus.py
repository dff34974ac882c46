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

if not __package__:  # run as a script: python tests/corpus/make_corpus.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.corpus.formats import (
    DATE,
    HEADER,
    ROWS,
    esc,
    ods,
    ods_cell,
    ods_row,
    root_rels,
    sheet_xml,
    table,
    workbook_rels,
    xlsb_members,
    xlsx,
    xlsx_members,
    zip_members,
)

CORPUS_PHONES = ["+919811100001", "+919811100002", "+919811100003"]

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
    return zip_members(path, list(reversed(xlsx_members())))


def _absolute_parts(path: Path) -> Path:
    """Relationships naming their targets by absolute part names (/xl/...)."""
    members = dict(xlsx_members())
    members["_rels/.rels"] = root_rels("/xl/workbook.xml").encode()
    members["xl/_rels/workbook.xml.rels"] = workbook_rels("/xl/").encode()
    return zip_members(path, list(members.items()))


def _extra_folders(path: Path) -> Path:
    """Folders and parts a sheet reader does not need (docProps, customXml, a thumbnail)."""
    members = xlsx_members()
    members += [
        ("docProps/", b""),
        ("docProps/app.xml", b"<Properties/>"),
        ("customXml/item1.xml", b"<root>" + b"<x/>" * 100 + b"</root>"),
        ("xl/media/notes.txt", b"not a part of the workbook"),
    ]
    return zip_members(path, members)


def _other_folder(path: Path) -> Path:
    """The workbook's parts under book/ instead of xl/, as the package index says."""
    members = [(n.replace("xl/", "book/"), d) for n, d in xlsx_members()]
    members[1] = ("_rels/.rels", root_rels("book/workbook.xml").encode())
    return zip_members(path, members)


def _backslashes(path: Path) -> Path:
    """Member names written with backslashes, as some Windows zip tools do."""
    return zip_members(path, [(n.replace("/", "\\"), d) for n, d in xlsx_members()])


def _upper_case(path: Path) -> Path:
    return zip_members(
        path, [(n.upper() if n.startswith("xl/") else n, d) for n, d in xlsx_members()]
    )


def _far_cell(path: Path) -> Path:
    return xlsx(path, extra_cells='<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>')


def _far_dimension(path: Path) -> Path:
    """A dimension claiming the whole grid over three rows (a count readers may trust)."""
    return xlsx(path, dimension="A1:XFD1048576")


def _html_xls(path: Path) -> Path:
    cells = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table()
    )
    path.write_text(
        '<html><head><meta charset="utf-8"><title>Orders export</title></head>'
        f"<body><table border=1>{cells}</table></body></html>\n"
    )
    return path


def _spreadsheetml_2003(path: Path) -> Path:
    rows = "".join(
        "<Row>"
        + "".join(f'<Cell><Data ss:Type="String">{esc(c)}</Data></Cell>' for c in row)
        + "</Row>"
        for row in table()
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
    return _csv(path, table(), newline="\r")


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _truncated(path: Path) -> Path:
    whole = zip_members(path, xlsx_members())
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _garbled(path: Path) -> Path:
    """The sheet's compressed bytes scrambled; the zip directory left intact."""
    zip_members(path, xlsx_members(rows=table() * 30))
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
        for name, data in xlsx_members()[:4]:
            zf.writestr(zipfile.ZipInfo(name, date_time=DATE), data)
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", date_time=DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as member:
            block = b" " * (1024 * 1024)
            for _ in range(200):
                member.write(block)
    return path


def _huge_cell(path: Path) -> Path:
    rows = [",".join(r) for r in table()]
    rows.insert(2, "Big," + "9811100009," + "x" * (11 * 1024 * 1024))
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    return path


def _wide_row(path: Path) -> Path:
    """A header of 100,000 columns."""
    header = HEADER + [f"c{i}" for i in range(100_000)]
    return _csv(path, [header, *ROWS])


def _long_csv_line(path: Path) -> Path:
    """One 8 MB line of commas under the header: a row of 8 million empty cells."""
    rows = [",".join(r) for r in table()]
    rows.insert(2, "," * (8 * 1024 * 1024))
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    return path


def _password(path: Path) -> Path:
    """A workbook encrypted as Excel does it; salts from a seed and no timestamps, so the
    bytes are the same on every run."""
    import msoffcrypto.format.ooxml
    import msoffcrypto.method.container.ecma376_encrypted as container
    import msoffcrypto.method.ecma376_agile as agile

    plain = zip_members(path.with_suffix(".plain"), xlsx_members())
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
    tail = ods_cell("x", 16_384)
    body = "".join(ods_row(r) for r in table()) + ods_row([], repeat=1_000, tail=tail)
    return ods(path, body)


def _ods_cells_repeated(path: Path) -> Path:
    """~100 M cells: 400 filled columns on 250,000 repeated rows (each under the limits)."""
    body = "".join(ods_row(r) for r in table())
    body += ods_row([], repeat=250_000, tail=ods_cell("y", 400))
    return ods(path, body)


def _ods_row_repeated_then_row(path: Path) -> Path:
    """A customer row repeated 1,100,000 times, then one distinct customer."""
    body = ods_row(HEADER) + ods_row(ROWS[0], repeat=1_100_000) + ods_row(ROWS[1])
    return ods(path, body)


def _ods_trailing_blank_repeats(path: Path) -> Path:
    """What LibreOffice itself writes: blank cells and rows repeated to the grid's edge."""
    blank_cols = ods_cell("", 1_021)
    body = "".join(ods_row(r, tail=blank_cols) for r in table())
    body += ods_row([], repeat=1_048_572, tail=ods_cell("", 1_024))
    return ods(path, body)


def _ods_billion_laughs(path: Path) -> Path:
    body = ods_row(HEADER) + "".join(ods_row(r) for r in ROWS)
    body = body.replace("Pune", "&lol9;")
    return ods(path, body, doctype=_BILLION_LAUGHS)


# -- xlsx entity attacks --


def _xlsx_billion_laughs(path: Path) -> Path:
    _, strings = sheet_xml(table())
    strings[-1] = "&lol9;"
    return xlsx(path, doctype=_BILLION_LAUGHS, strings_override=strings)


def _xlsx_xxe(path: Path) -> Path:
    _, strings = sheet_xml(table())
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
        lambda p: _csv(p, table()),
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
        lambda p: zip_members(p, xlsx_members(), stored=True),
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
        Entry("other-folder.xlsx", "a valid workbook whose parts are under book/", "read", rows=3),
        _other_folder,
    ),
    (
        # The issue allows naming what it is instead: a workbook, not "a zip archive".
        Entry(
            "backslashes.xlsx",
            "member names written xl\\workbook.xml, which calamine reads",
            "either",
            r"workbook|Excel",
            rows=3,
        ),
        _backslashes,
    ),
    (
        Entry("upper-case.xlsx", "member names in capitals (XL/WORKBOOK.XML)", "read", rows=3),
        _upper_case,
    ),
    (
        Entry("binary.xlsb", "an Excel binary workbook (.xlsb)", "either", r"xlsb|binary", rows=3),
        lambda p: zip_members(p, xlsb_members(table())),
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
