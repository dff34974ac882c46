"""Reading uploaded sheets: every format, encoding and delimiter, and a sentence for bad files."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

import pytest

from wabulk.contacts.sheets import SheetError, detect_kind, open_sheet

from ..sheet_files import (
    PEOPLE,
    csv_bytes,
    encrypt_xlsx,
    garble_member,
    oversize_xlsx,
    rewrite_member,
    write_csv,
    write_ods,
    write_xls,
    write_xlsx,
    zip_bomb,
)

EXPECTED = [
    (2, ["Asha Rao", "98765 43210", "Pune"]),
    (3, ["Ravi Kumar", "+91 98765 43211", "Delhi"]),
    (4, ["José Núñez", "09876543212", "Goa"]),
]


def _read(path: Path) -> list[tuple[int, list[str]]]:
    return list(open_sheet(path).rows())


@pytest.mark.parametrize(
    ("suffix", "writer", "kind"),
    [
        (".xlsx", write_xlsx, "xlsx"),
        (".ods", write_ods, "ods"),
        (".xls", write_xls, "xls"),
        (".csv", write_csv, "csv"),
    ],
)
def test_every_format_reads_the_same_rows(tmp_path: Path, suffix, writer, kind) -> None:
    path = writer(tmp_path / f"people{suffix}", PEOPLE)
    sheet = open_sheet(path)
    assert sheet.kind == kind
    assert sheet.header == ["Name", "Phone", "City"]
    assert sheet.header_row == 1
    assert list(sheet.rows()) == EXPECTED


def test_numbers_stored_as_numbers_keep_all_their_digits(tmp_path: Path) -> None:
    rows = [["Name", "Phone"], ["Asha", 919876543210], ["Ravi", 9876543211.0]]
    for path in (write_xlsx(tmp_path / "n.xlsx", rows), write_xls(tmp_path / "n.xls", rows)):
        cells = [c for _, c in _read(path)]
        assert cells == [["Asha", "919876543210"], ["Ravi", "9876543211"]]


def test_the_kind_comes_from_the_content_not_the_extension(tmp_path: Path) -> None:
    fake_xlsx = write_csv(tmp_path / "really-a-csv.xlsx", PEOPLE)
    fake_csv = write_xlsx(tmp_path / "really-a-workbook.csv", PEOPLE)
    assert detect_kind(fake_xlsx) == "csv"
    assert detect_kind(fake_csv) == "xlsx"
    assert _read(fake_xlsx) == EXPECTED
    assert _read(fake_csv) == EXPECTED


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("utf-16", "utf-16"),
        ("cp1252", "cp1252"),
    ],
)
def test_csv_encodings_decode_accents_right(tmp_path: Path, encoding: str, expected: str) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(csv_bytes(PEOPLE, encoding=encoding))
    sheet = open_sheet(path)
    assert sheet.encoding == expected
    assert sheet.header[0] == "Name"  # no BOM glued to the first column's name
    assert list(sheet.rows()) == EXPECTED


def test_utf8_and_windows_1252_rows_in_one_csv_both_decode(tmp_path: Path) -> None:
    path = tmp_path / "merged-exports.csv"
    path.write_bytes(
        b"Name,Phone\r\n"
        + "José,9876543210\r\n".encode()
        + "Zoë Müller,9876543211\r\n".encode("cp1252")
        + "Renée,9876543212\r\n".encode()
        + "François,9876543213\r\n".encode("cp1252")
    )
    names = [cells[0] for _, cells in _read(path)]
    assert names == ["José", "Zoë Müller", "Renée", "François"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiters_are_sniffed(tmp_path: Path, delimiter: str) -> None:
    rows = [*PEOPLE, ["Meera, Jr.", "9876543213", "Navi Mumbai; Vashi"]]
    path = write_csv(tmp_path / "people.csv", rows, delimiter=delimiter)
    sheet = open_sheet(path)
    assert sheet.delimiter == delimiter
    assert sheet.header == ["Name", "Phone", "City"]
    assert list(sheet.rows())[-1] == (5, ["Meera, Jr.", "9876543213", "Navi Mumbai; Vashi"])


def test_a_headerless_csv_gets_letter_names_and_keeps_its_first_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "raw.csv", PEOPLE[1:])
    sheet = open_sheet(path)
    assert sheet.header == ["Column A", "Column B", "Column C"]
    assert sheet.header_row == 0
    assert list(sheet.rows()) == [(n - 1, cells) for n, cells in EXPECTED]


def test_a_hundred_columns_are_all_kept(tmp_path: Path) -> None:
    header = ["Phone"] + [f"Field {i}" for i in range(1, 100)]
    row = ["9876543210"] + [f"value {i}" for i in range(1, 100)]
    for path in (write_xlsx(tmp_path / "w.xlsx", [header, row]), tmp_path / "w.csv"):
        if path.suffix == ".csv":
            write_csv(path, [header, row])
        sheet = open_sheet(path)
        assert sheet.header == header
        assert list(sheet.rows()) == [(2, row)]


def test_blank_rows_are_skipped_and_row_numbers_match_excel(tmp_path: Path) -> None:
    rows = [PEOPLE[0], PEOPLE[1], [], [None, None, None], PEOPLE[2], [], PEOPLE[3]]
    xlsx = write_xlsx(tmp_path / "gaps.xlsx", rows)
    csv = write_csv(tmp_path / "gaps.csv", [r or ["", "", ""] for r in rows])
    for path in (xlsx, csv):
        numbers = [n for n, _ in _read(path)]
        assert numbers == [2, 5, 7]


@pytest.mark.parametrize(("suffix", "writer"), [(".xlsx", write_xlsx), (".xls", write_xls)])
def test_leading_blank_rows_keep_excel_row_numbers(tmp_path: Path, suffix, writer) -> None:
    path = writer(tmp_path / f"low{suffix}", [[], [], *PEOPLE])
    sheet = open_sheet(path)
    assert sheet.header_row == 3
    assert sheet.rows_estimate == 3
    assert [n for n, _ in sheet.rows()] == [4, 5, 6]


def test_rows_resume_after_a_given_row(tmp_path: Path) -> None:
    sheet = open_sheet(write_xlsx(tmp_path / "p.xlsx", PEOPLE))
    assert list(sheet.rows(start_after=3)) == EXPECTED[2:]


def test_merged_cells_keep_their_value_in_the_first_row(tmp_path: Path) -> None:
    rows = [*PEOPLE, ["Kiran", "9876543213", None]]
    path = write_xlsx(tmp_path / "merged.xlsx", rows, merge=["C4:C5"])
    assert _read(path)[-2:] == [
        (4, ["José Núñez", "09876543212", "Goa"]),
        (5, ["Kiran", "9876543213", ""]),
    ]


def test_formulas_are_read_as_their_cached_values(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "formulas.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    sheet.write_row(0, 0, ["Name", "Phone", "Due"])
    sheet.write_row(1, 0, ["Asha", "9876543210"])
    sheet.write_formula(1, 2, "=1200+300", None, 1500)
    sheet.write(2, 0, "Ravi")
    sheet.write_formula(2, 1, '="98765"&"43211"', None, "9876543211")
    sheet.write_formula(2, 2, "=C2*2", None, 3000)
    workbook.close()
    assert _read(path) == [(2, ["Asha", "9876543210", "1500"]), (3, ["Ravi", "9876543211", "3000"])]


def test_cells_beyond_the_header_are_kept_in_the_last_column(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_bytes(b"Name,Phone\r\nAsha,9876543210\r\nRavi,9876543211,extra,more\r\n")
    sheet = open_sheet(path)
    assert sheet.header == ["Name", "Phone", "Column C", "Column D"]
    assert list(sheet.rows())[-1] == (3, ["Ravi", "9876543211", "extra", "more"])


# ---- files that cannot be read: one clear sentence each -------------------------------------


def _refusal(path: Path) -> str:
    with pytest.raises(SheetError) as caught:
        open_sheet(path)
    message = str(caught.value)
    assert message[0].isupper() and message.rstrip().endswith("."), message
    return message


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert _refusal(path) == "The file is empty."


def test_a_file_of_blank_lines_is_refused_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_bytes(b"\r\n , ,\r\n\r\n")
    assert "empty" in _refusal(path)


@pytest.mark.parametrize("writer", [write_csv, write_xlsx])
def test_a_header_without_rows_is_refused(tmp_path: Path, writer) -> None:
    path = writer(tmp_path / f"header-only{'.csv' if writer is write_csv else '.xlsx'}", PEOPLE[:1])
    assert "header row but no data rows" in _refusal(path)


def test_a_password_protected_workbook_is_refused(tmp_path: Path) -> None:
    locked = encrypt_xlsx(
        write_xlsx(tmp_path / "p.xlsx", PEOPLE), tmp_path / "locked.xlsx", "secret"
    )
    message = _refusal(locked)
    assert "password-protected" in message
    assert "remove the password" in message


def test_a_truncated_workbook_is_refused(tmp_path: Path) -> None:
    whole = write_xlsx(tmp_path / "p.xlsx", PEOPLE).read_bytes()
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(whole[: len(whole) // 2])
    message = _refusal(cut)
    assert "damaged" in message
    assert "save a fresh copy" in message


def test_a_workbook_with_garbled_bytes_is_refused(tmp_path: Path) -> None:
    good = write_xlsx(tmp_path / "p.xlsx", PEOPLE)
    bad = garble_member(good, tmp_path / "garbled.xlsx", "xl/worksheets/sheet1.xml")
    assert "damaged" in _refusal(bad)


def test_a_workbook_with_broken_xml_is_refused(tmp_path: Path) -> None:
    good = write_xlsx(tmp_path / "p.xlsx", PEOPLE)
    bad = rewrite_member(
        good, tmp_path / "broken.xlsx", "xl/worksheets/sheet1.xml", lambda xml: xml[: len(xml) // 2]
    )
    message = _refusal(bad)
    assert "damaged" in message
    assert "save a fresh copy" in message


def test_a_zip_bomb_is_refused_as_unsafe(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bomb.xlsx")
    assert bomb.stat().st_size < 200_000
    message = _refusal(bomb)
    assert "implausible size" in message
    assert "unsafe" in message


def test_a_sheet_reaching_excels_last_cell_is_refused_with_the_limits(tmp_path: Path) -> None:
    message = _refusal(oversize_xlsx(tmp_path / "far.xlsx"))
    assert "row 1,048,576" in message
    assert "column 16,384" in message
    assert "2,000,000 rows, 500 columns" in message


@pytest.mark.parametrize(
    ("cell", "where"),
    [
        (b"<c r='XFD2'><v>1</v></c>", "column 16,384"),  # single quotes
        (b'<c\n  r = "SG2"><v>1</v></c>', "column 501"),  # blanks around =
        (b'<c s="0" r="B2000003"><v>1</v></c>', "row 2,000,003"),  # r not first
    ],
)
def test_far_cells_are_found_however_the_xml_writes_them(tmp_path: Path, cell, where) -> None:
    def add_far_cell(xml: bytes) -> bytes:
        changed = xml.replace(
            b"</row></sheetData>", b"</row><row r='9'>" + cell + b"</row></sheetData>"
        )
        assert cell in changed
        return changed

    good = write_xlsx(tmp_path / "p.xlsx", PEOPLE)
    far = rewrite_member(good, tmp_path / "far.xlsx", "xl/worksheets/sheet1.xml", add_far_cell)
    assert where in _refusal(far)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"%PDF-1.7\n...", "This is a PDF, not a spreadsheet"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "This is an image, not a spreadsheet"),
        (b"\x1f\x8b\x08\x00" + bytes(64), "This is a gzip archive"),
        (bytes(range(256)) * 4, "looks like binary data"),
    ],
)
def test_other_files_are_named_for_what_they_are(tmp_path: Path, content, words) -> None:
    path = tmp_path / "upload.xlsx"
    path.write_bytes(content)
    assert words in _refusal(path)


def test_a_plain_zip_is_not_taken_for_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "bundle.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("customers.txt", "hello")
    assert "zip archive, not a spreadsheet" in _refusal(path)


def test_utf16_without_bom_is_still_text(tmp_path: Path) -> None:
    path = tmp_path / "utf16le.csv"
    path.write_bytes(csv_bytes(PEOPLE, delimiter="\t", encoding="utf-16-le"))
    assert not path.read_bytes().startswith(codecs.BOM_UTF16_LE)
    sheet = open_sheet(path)
    assert sheet.encoding == "utf-16-le"
    assert list(sheet.rows()) == EXPECTED


def test_a_long_cell_near_the_top_is_read_not_refused(tmp_path: Path) -> None:
    import csv

    path = tmp_path / "notes.csv"
    path.write_bytes(b"Name,Phone,Notes\r\nAsha,9876543210," + b"n" * 200_000 + b"\r\n")
    default = csv.field_size_limit(131_072)  # as in a fresh process
    try:
        rows = _read(path)
    finally:
        csv.field_size_limit(default)
    assert [(n, len(cells[2])) for n, cells in rows] == [(2, 200_000)]


def test_a_title_row_above_the_table_is_not_taken_for_the_header(tmp_path: Path) -> None:
    rows = [
        ["Customer list, March 2026"],
        [],
        ["Phone", "Name", "City"],
        ["9876543210", "Asha", "Pune"],
    ]
    sheet = open_sheet(write_xlsx(tmp_path / "titled.xlsx", rows, merge=["A1:C1"]))
    assert sheet.header == ["Phone", "Name", "City"]
    assert sheet.header_row == 3
    assert list(sheet.rows()) == [(4, ["9876543210", "Asha", "Pune"])]
