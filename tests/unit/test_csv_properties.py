"""Whatever bytes are uploaded, sniffing and opening them ends in rows or in a SheetError.

The quick variants run a few hundred examples in `make test`; their `slow` twins run 10,000+
in `make test-slow`. No deadline: a slow example on a busy machine is not a failure here.
"""

from __future__ import annotations

import codecs
import io
import itertools
import resource
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wabulk.contacts.sheets import DELIMITERS, open_sheet, sniff_delimiter, sniff_encoding
from wabulk.errors import ValidationError

from ..corpus import formats as corpus

QUICK = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AT_LENGTH = settings(
    max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
_ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1"]
# Cells made of what breaks CSV readers (quotes, delimiters, every line end, NUL, BOMs) and
# any other character.
_CELL_TEXT = st.lists(
    st.one_of(
        st.sampled_from([",", ";", "\t", "|", '"', '""', "\r", "\n", "\r\n", "\x00", "\ufeff"]),
        st.characters(codec="utf-8"),
    ),
    max_size=30,
).map("".join)
_ROWS = st.lists(st.lists(_CELL_TEXT, max_size=8), max_size=12)
_MAGIC = [b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"%PDF", b"\xef\xbb\xbf", b"\xff\xfe"]
# Parts whose names make a zip look like a workbook, so its bytes reach the workbook readers.
_PARTS = [
    "xl/workbook.xml",
    "xl/worksheets/sheet1.xml",
    "xl/sharedStrings.xml",
    "xl/_rels/workbook.xml.rels",
    "[Content_Types].xml",
    "mimetype",
    "content.xml",
]


def _csv_text(rows: list[list[str]], delimiter: str, newline: str) -> str:
    return newline.join(delimiter.join(row) for row in rows) + newline


def _encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


CSV_BYTES = st.one_of(
    st.binary(max_size=2048),
    st.builds(
        _encoded,
        st.builds(
            _csv_text,
            _ROWS,
            st.sampled_from([*DELIMITERS, " ", ":"]),
            st.sampled_from(["\r\n", "\n", "\r", "\n\r", ""]),
        ),
        st.sampled_from(_ENCODINGS),
    ),
    st.tuples(st.sampled_from(_MAGIC), st.binary(max_size=1024)).map(b"".join),
)


@st.composite
def workbook_like(draw: st.DrawFn) -> bytes:
    """A zip whose part names are a workbook's and whose contents are anything."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        names = draw(st.lists(st.sampled_from(_PARTS), min_size=1, max_size=5, unique=True))
        for name in names:
            if name == "mimetype":
                data = draw(
                    st.sampled_from(
                        [b"application/vnd.oasis.opendocument.spreadsheet", b"text/plain"]
                    )
                )
            else:
                data = draw(st.one_of(st.binary(max_size=300), _xmlish()))
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
            zf.writestr(info, data)
    return out.getvalue()


def _xmlish() -> st.SearchStrategy[bytes]:
    pieces = st.sampled_from(
        [
            '<?xml version="1.0"?>',
            '<sst uniqueCount="99999999999999">',
            "<si><t>",
            "</t></si>",
            '<sheetData><row r="1"><c r="A1" t="s"><v>',
            '<c r="XFD1048576">',
            "0",
            "4294967295",
            "-1",
            "</v></c></row>",
            '<table:table-row table:number-rows-repeated="1048576">',
            '<table:table-cell table:number-columns-repeated="16384">',
            "<!DOCTYPE x [<!ENTITY e 'e'>]>",
            "&e;",
            "<",
            ">",
            '"',
        ]
    )
    return st.lists(pieces, max_size=12).map(lambda parts: "".join(parts).encode())


def _ref(col: int, row: int) -> str:
    letters = ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row}"


# Sizes a reader might trust: small ones, which must read, and huge ones, which must be refused
# before anything is expanded.
_SMALL = st.integers(min_value=1, max_value=60)
_HUGE = st.sampled_from([16_384, 20_000, 1_048_576, 1_100_000, 2**31 - 1, 2**32, 10**11, 10**18])


@st.composite
def counted_workbook(draw: st.DrawFn) -> bytes:
    """A good workbook with one of the counts it declares (shared strings, extent, repeats)
    set to anything."""
    folder = draw(st.sampled_from(["count", "dimension", "far", "ods"]))
    out = io.BytesIO()
    if folder == "ods":
        rows, cols = draw(
            st.one_of(
                st.tuples(_SMALL, _SMALL),
                st.tuples(_HUGE, st.integers(1, 3)),
                st.tuples(st.integers(1, 3), _HUGE),
                st.tuples(_HUGE, _HUGE),
            )
        )
        value = draw(st.sampled_from(["", "x", "9811100009"]))
        tail = corpus.ods_cell(value, cols)
        body = "".join(corpus.ods_row(r) for r in corpus.table())
        body += corpus.ods_row([], repeat=rows, tail=tail)
        if draw(st.booleans()):
            body += corpus.ods_row(corpus.ROWS[0])
        corpus.ods(out, body)  # type: ignore[arg-type]
        return out.getvalue()
    number = draw(st.one_of(_SMALL, _HUGE, st.integers(0, 10**20)))
    if folder == "count":
        members = corpus.xlsx_members(count=str(number))
    elif folder == "dimension":
        col = draw(st.one_of(_SMALL, st.integers(1, 16_384)))
        members = corpus.xlsx_members(dimension=f"A1:{_ref(col, number)}")
    else:
        col = draw(st.one_of(_SMALL, st.integers(1, 16_384)))
        at = _ref(col, min(number, 1_048_576))
        row = at.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        members = corpus.xlsx_members(extra_cells=f'<row r="{row}"><c r="{at}"><v>1</v></c></row>')
    corpus.zip_members(out, members)  # type: ignore[arg-type]
    return out.getvalue()


_counter = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def _address_space_bound() -> Iterator[None]:
    """Cap what this process may map while these tests run: a reader that expands a declared
    size fails here with MemoryError instead of taking the shared machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    size = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    cap = size + (3 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard < 0 else min(cap, hard), hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


def read_all(folder: Path, data: bytes) -> None:
    """Open the bytes as an upload and read every row; only our own refusal may come out."""
    path = folder / f"upload-{next(_counter)}.csv"
    path.write_bytes(data)
    try:
        sheet = open_sheet(path)
        for number, cells in sheet.rows():
            assert number >= 1
            assert len(cells) == len(sheet.header)
            assert all(isinstance(cell, str) for cell in cells)
    except ValidationError as exc:  # SheetError is one
        message = str(exc)
        assert message.strip(), "an empty refusal"
    finally:
        path.unlink()


def sniff(data: bytes) -> None:
    encoding = sniff_encoding(data)
    codecs.lookup(encoding)  # a codec Python knows
    text = data.decode(encoding, errors="replace")
    assert sniff_delimiter(text) in DELIMITERS


@QUICK
@given(data=CSV_BYTES)
def test_sniffing_any_bytes_names_a_codec_and_a_delimiter(data: bytes) -> None:
    sniff(data)


@QUICK
@given(data=st.one_of(CSV_BYTES, workbook_like()))
def test_opening_any_upload_gives_rows_or_a_sheet_error(folder: Path, data: bytes) -> None:
    read_all(folder, data)


@QUICK
@given(data=counted_workbook())
def test_a_workbook_declaring_any_size_gives_rows_or_a_sheet_error(
    folder: Path, data: bytes
) -> None:
    read_all(folder, data)


@pytest.mark.slow
@AT_LENGTH
@given(data=counted_workbook())
def test_a_workbook_declaring_any_size_gives_rows_or_a_sheet_error_at_length(
    folder: Path, data: bytes
) -> None:
    read_all(folder, data)


@pytest.mark.slow
@AT_LENGTH
@given(data=CSV_BYTES)
def test_sniffing_any_bytes_names_a_codec_and_a_delimiter_at_length(data: bytes) -> None:
    sniff(data)


@pytest.mark.slow
@AT_LENGTH
@given(data=st.one_of(CSV_BYTES, workbook_like()))
def test_opening_any_upload_gives_rows_or_a_sheet_error_at_length(
    folder: Path, data: bytes
) -> None:
    read_all(folder, data)
