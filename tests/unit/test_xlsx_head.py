"""A big workbook opened by its first rows: the same header, sample and rows as a whole read."""

from __future__ import annotations

import datetime
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from python_calamine import CalamineWorkbook

from wabulk.contacts import sheets, xlsx_head
from wabulk.contacts.sheets import open_sheet

from ..sheet_files import rewrite_member, write_xlsx

HEAD = 100  # rows in the head for these tests (the product reads 1,000 of a big sheet)
MAIN_NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def _customers(n: int = 1_500) -> list[list[Any]]:
    rows: list[list[Any]] = [["Name", "Phone", "Joined", "Due", "VIP", "Pincode"]]
    for i in range(n):
        rows.append(
            [
                f" Person {i} ",
                f"98765{i:05d}" if i % 7 else 919876500000 + i,  # some phones as numbers
                datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 300),
                i * 1.25,
                i % 3 == 0,
                110_001 + i,
            ]
        )
        if i % 50 == 10:
            rows.append([])  # a blank row now and then
    return rows


def _xlsxwriter_book(path: Path, rows: list[list[Any]]) -> Path:
    """Shared strings, as Excel and LibreOffice write them (openpyxl writes inline ones)."""
    import xlsxwriter

    with xlsxwriter.Workbook(str(path), {"default_date_format": "dd/mm/yyyy"}) as book:
        sheet = book.add_worksheet("Customers")
        # Written first, so its strings come first in the table (it is in order of writing).
        book.add_worksheet("Notes").write_row(0, 0, ["only", "a note"])
        for r, row in enumerate(rows):
            sheet.write_row(r, 0, row)
    return path


def _rewrite_sheet(source: Path, target: Path, change) -> Path:  # type: ignore[no-untyped-def]
    return rewrite_member(source, target, "xl/worksheets/sheet1.xml", change)


def _prefixed(data: bytes) -> bytes:
    """The sheet as .NET's Open XML SDK writes it: every element as x:name."""
    data = data.replace(MAIN_NS, MAIN_NS.replace(b"xmlns=", b"xmlns:x="))
    return re.sub(rb"<(/?)([A-Za-z]+)([ >/])", rb"<\1x:\2\3", data)


def _whole(path: Path) -> tuple[Any, list[tuple[int, list[str]]]]:
    sheet = open_sheet(path)
    assert sheet.head_rows == 0
    return sheet, list(sheet.rows())


@pytest.fixture
def by_head(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Within the test, every workbook of over 1 KB of sheet XML is opened by its head."""

    def open_by_head(path: Path) -> Any:
        with monkeypatch.context() as patch:
            patch.setattr(xlsx_head, "MIN_BYTES", 1024)
            patch.setattr(sheets, "HEAD_ROWS", HEAD)
            return open_sheet(path)

    return open_by_head


@pytest.mark.parametrize("writer", ["openpyxl", "xlsxwriter", "prefixed"])
def test_a_big_sheet_opened_by_its_head_reads_like_the_whole(
    tmp_path: Path, by_head, writer: str
) -> None:
    rows = _customers()
    if writer == "xlsxwriter":
        path = _xlsxwriter_book(tmp_path / "c.xlsx", rows)
    else:
        path = write_xlsx(tmp_path / "c.xlsx", rows)
        if writer == "prefixed":
            path = _rewrite_sheet(path, tmp_path / "x.xlsx", _prefixed)
    whole, expected = _whole(path)

    sheet = by_head(path)

    assert sheet.head_rows == HEAD
    assert sheet.loaded.height <= HEAD  # only the head was parsed
    assert (sheet.header, sheet.header_row, sheet.sheet_name) == (
        whole.header,
        whole.header_row,
        whole.sheet_name,
    )
    assert sheet.rows_estimate == whole.rows_estimate == len(rows) - 1
    # Past the head, the rest of the sheet is read: every row, numbered as in Excel.
    got = list(sheet.rows())
    assert got == expected
    assert got[0] == (2, ["Person 0", "919876500000", "2024-01-01", "0", "TRUE", "110001"])
    assert len(got) == 1_500


def test_rows_up_to_a_row_inside_the_head_never_parse_the_whole_sheet(
    tmp_path: Path, by_head, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_xlsx(tmp_path / "c.xlsx", _customers())
    _, expected = _whole(path)
    sheet = by_head(path)

    def whole_sheet(_sheet: Any) -> Any:
        raise AssertionError("the whole sheet was parsed")

    monkeypatch.setattr(sheets, "_load_sheet", whole_sheet)
    got = list(sheet.rows(start_after=20, until=80))
    assert got == [(n, cells) for n, cells in expected if 20 < n <= 80]
    with pytest.raises(AssertionError, match="whole sheet"):
        list(sheet.rows(until=HEAD + 1))


def test_the_head_keeps_only_the_shared_strings_its_rows_use(tmp_path: Path) -> None:
    path = _xlsxwriter_book(tmp_path / "c.xlsx", _customers())

    head = xlsx_head.head_workbook(path, HEAD, min_bytes=0)

    assert head is not None and head.cut == {"Customers"}  # "Notes" ends within the head
    with zipfile.ZipFile(head.data) as copy, zipfile.ZipFile(path) as original:
        kept = copy.read("xl/sharedStrings.xml").count(b"<si>")
        total = original.read("xl/sharedStrings.xml").count(b"<si>")
    assert HEAD < kept <= 2 * HEAD + 10 < total  # at most a name and a phone a row, the header
    whole = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Customers").to_python()
    head.data.seek(0)
    first = CalamineWorkbook.from_filelike(head.data).get_sheet_by_name("Customers").to_python()
    assert first == whole[: len(first)] and len(first) == HEAD


def test_a_sheet_ending_within_the_head_is_read_whole(tmp_path: Path, by_head) -> None:
    path = write_xlsx(tmp_path / "c.xlsx", _customers(60))
    assert xlsx_head.head_workbook(path, HEAD, min_bytes=0) is None
    assert by_head(path).head_rows == 0


def test_a_small_workbook_is_read_whole(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "c.xlsx", _customers())
    assert xlsx_head.head_workbook(path, HEAD) is None  # far under MIN_BYTES


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("rows without numbers", lambda xml: re.sub(rb'(<row) r="\d+"', rb"\1", xml)),
        ("a CDATA section", lambda xml: xml.replace(b"<sheetData>", b"<![CDATA[x]]><sheetData>")),
        ("a comment", lambda xml: xml.replace(b"<sheetData>", b'<!-- <row r="9"> --><sheetData>')),
    ],
)
def test_xml_the_head_cannot_cut_safely_is_read_whole(
    tmp_path: Path, by_head, what: str, change
) -> None:
    original = write_xlsx(tmp_path / "c.xlsx", _customers())
    path = _rewrite_sheet(original, tmp_path / "o.xlsx", change)
    assert xlsx_head.head_workbook(path, HEAD, min_bytes=0) is None, what
    if what == "rows without numbers":  # calamine reads them in order; so do we
        sheet = by_head(path)
        assert sheet.head_rows == 0
        assert len(list(sheet.rows())) == 1_500


def test_a_workbook_with_a_doctype_is_never_parsed_for_its_sheet_names(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "c.xlsx", _customers())
    target = rewrite_member(
        path,
        tmp_path / "d.xlsx",
        "xl/workbook.xml",
        lambda xml: b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + xml,
    )
    assert xlsx_head.head_workbook(target, HEAD, min_bytes=0) is None


def test_sheet_members_follow_the_relationships(tmp_path: Path) -> None:
    path = _xlsxwriter_book(tmp_path / "c.xlsx", _customers(5))
    with zipfile.ZipFile(path) as zf:
        assert xlsx_head.sheet_members(zf) == {
            "Customers": "xl/worksheets/sheet1.xml",
            "Notes": "xl/worksheets/sheet2.xml",
        }


@pytest.mark.parametrize(
    "value",
    [
        " text ",
        "",
        None,
        True,
        False,
        0.0,
        919876543210.0,
        43874.86,
        float("nan"),
        1e20,
        -3.5,
        42,
        datetime.date(2024, 6, 15),
        datetime.datetime(2024, 6, 15, 9, 30),
        datetime.time(9, 30),
        datetime.timedelta(hours=1, minutes=5),
    ],
)
def test_each_cell_type_reads_as_the_same_text_by_either_path(value: Any) -> None:
    by_type = sheets._TEXT_OF.get(type(value), sheets._cell_text)
    assert by_type(value) == sheets._cell_text(value)


def test_head_workbook_is_a_zip_calamine_reads_from_memory(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "c.xlsx", _customers())
    head = xlsx_head.head_workbook(path, HEAD, min_bytes=0)
    assert head is not None and isinstance(head.data, io.BytesIO)
    with zipfile.ZipFile(head.data) as copy:
        assert copy.testzip() is None
        assert copy.read("xl/worksheets/sheet1.xml").endswith(b"</sheetData></worksheet>")


@pytest.mark.parametrize("writer", ["openpyxl", "xlsxwriter"])
def test_cuts_fall_between_rows_however_the_xml_is_split_into_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    rows = _customers(400)
    if writer == "xlsxwriter":
        path = _xlsxwriter_book(tmp_path / "c.xlsx", rows)
    else:
        path = write_xlsx(tmp_path / "c.xlsx", rows)
    book = CalamineWorkbook.from_path(str(path))
    name = book.sheet_names[0]
    whole = book.get_sheet_by_name(name).to_python()
    monkeypatch.setattr(xlsx_head, "_BLOCK", 777)  # blocks end inside tags and inside rows
    for last_row in (1, 2, 37, 250, 407):
        head = xlsx_head.head_workbook(path, last_row, min_bytes=0)
        assert head is not None
        first = CalamineWorkbook.from_filelike(head.data).get_sheet_by_name(name)
        assert first.to_python() == whole[:last_row], last_row
    assert xlsx_head.head_workbook(path, len(rows), min_bytes=0) is None
