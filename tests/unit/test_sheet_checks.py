"""Workbooks that declare more than they hold are refused before calamine sees them.

Each of these files, a few kilobytes, made calamine reserve or expand gigabytes (or abort
the whole process) when opened. Each test opens the file in a child process with an address
space limit, so a regression fails the test instead of taking the test run down.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.sheet_files import write_xls

# A child that opens the sheet and prints what happened; the limit turns a runaway
# allocation into a failed test, not a dead machine.
_OPEN_IN_CHILD = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    from wabulk.contacts.sheets import SheetError, open_sheet
    try:
        sheet = open_sheet(Path(sys.argv[1]))
        rows = list(sheet.rows())
        print("READ", len(rows), rows[-1][1] if rows else "")
    except SheetError as exc:
        print("REFUSED", exc)
    """
)


def _open(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_IN_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"the reader died ({done.returncode}): {done.stderr[-2000:]}"
    return done.stdout.strip()


def _xlsx(path: Path, sheet_xml: str, strings: list[str] | None = None, count: int = 0) -> Path:
    """A minimal .xlsx written by hand, so any part can say anything."""
    strings = strings or []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="xml" ContentType="application/xml"/>'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override '
            'PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/></Types>',
        )
        zf.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>',
        )
        zf.writestr(
            "xl/workbook.xml",
            '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
            'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" '
            'r:id="rId1"/></sheets></workbook>',
        )
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            'Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>',
        )
        zf.writestr(
            "xl/worksheets/sheet1.xml",
            '<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
            f'spreadsheetml/2006/main"><sheetData>{sheet_xml}</sheetData></worksheet>',
        )
        items = "".join(f"<si><t>{s}</t></si>" for s in strings)
        zf.writestr(
            "xl/sharedStrings.xml",
            '<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
            f'2006/main" count="{len(strings)}" uniqueCount="{count or len(strings)}">'
            f"{items}</sst>",
        )
    return path


_HEADER_ROW = '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
_DATA_ROW = '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>'
_STRINGS = ["Name", "Phone", "Asha", "9876543210"]


def test_a_plain_hand_made_workbook_reads(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "ok.xlsx", _HEADER_ROW + _DATA_ROW, _STRINGS)
    assert _open(path) == "READ 1 ['Asha', '9876543210']"


@pytest.mark.parametrize("claimed", [100_000_000_000, 1_000_000_000_000_000_000])
def test_shared_strings_count_past_the_file_is_refused(tmp_path: Path, claimed: int) -> None:
    # 100e9 made calamine abort the process (2.4 TB); 1e18 raised a PanicException.
    path = _xlsx(tmp_path / "sst.xlsx", _HEADER_ROW + _DATA_ROW, _STRINGS, count=claimed)
    out = _open(path)
    assert out.startswith("REFUSED This workbook is damaged: its list of texts says it holds")
    assert f"{claimed:,}" in out


def test_two_far_apart_cells_are_refused_before_the_grid_is_built(tmp_path: Path) -> None:
    # A1 and SF999999: calamine's grid from the one to the other is 500 million cells (16 GB).
    far = '<row r="999999"><c r="SF999999"><v>1</v></c></row>'
    path = _xlsx(tmp_path / "grid.xlsx", _HEADER_ROW + _DATA_ROW + far, _STRINGS)
    out = _open(path)
    assert out.startswith("REFUSED A sheet in this workbook spans 999,999 rows by 500 columns")


def test_a_far_row_in_a_narrow_sheet_is_refused_by_cells(tmp_path: Path) -> None:
    far = '<row r="1999999"><c r="Z1999999"><v>1</v></c></row>'
    path = _xlsx(tmp_path / "tall.xlsx", _HEADER_ROW + _DATA_ROW + far, _STRINGS)
    assert "8,000,000 cells" in _open(path)


def test_cells_without_references_are_placed_as_calamine_places_them(tmp_path: Path) -> None:
    # 2,000 cells without an r attribute make a row 2,000 columns wide: the fast scan sees no
    # reference past Z, the walk by tags does.
    wide = '<row r="3">' + "<c><v>1</v></c>" * 2000 + "</row>"
    path = _xlsx(tmp_path / "wide.xlsx", _HEADER_ROW + _DATA_ROW + wide, _STRINGS)
    assert _open(path).startswith("REFUSED A sheet in this workbook reaches row 3 and column 501")


def test_references_with_tabs_are_still_found(tmp_path: Path) -> None:
    far = '<row\tr="999999"><c\tr = "SF999999"><v>1</v></c></row>'
    path = _xlsx(tmp_path / "tabs.xlsx", _HEADER_ROW + _DATA_ROW + far, _STRINGS)
    assert _open(path).startswith("REFUSED A sheet in this workbook")


def test_a_wide_but_short_sheet_still_reads(tmp_path: Path) -> None:
    wide = '<row r="3"><c r="A3" t="s"><v>2</v></c><c r="SF3"><v>7</v></c></row>'
    path = _xlsx(tmp_path / "wide-ok.xlsx", _HEADER_ROW + _DATA_ROW + wide, _STRINGS)
    assert _open(path).startswith("READ 2")


# ---- .ods -----------------------------------------------------------------------------------


def _ods(path: Path, rows_xml: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
            'opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" '
            'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type='
            '"text/xml"/></manifest:manifest>',
        )
        zf.writestr(
            "content.xml",
            '<?xml version="1.0"?><office:document-content xmlns:office="urn:oasis:names:tc:'
            'opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:'
            'xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
            'office:version="1.2"><office:body><office:spreadsheet><table:table '
            f'table:name="Sheet1">{rows_xml}</table:table></office:spreadsheet></office:body>'
            "</office:document-content>",
        )
    return path


def _cell(text: str, repeat: int = 1) -> str:
    times = f' table:number-columns-repeated="{repeat}"' if repeat > 1 else ""
    return (
        f'<table:table-cell office:value-type="string"{times}><text:p>{text}</text:p>'
        "</table:table-cell>"
    )


def _row(cells: str, repeat: int = 1) -> str:
    times = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
    return f"<table:table-row{times}>{cells}</table:table-row>"


_ODS_HEAD = _row(_cell("Name") + _cell("Phone")) + _row(_cell("Asha") + _cell("9876543210"))


def test_an_ods_with_the_usual_trailing_repeats_reads(tmp_path: Path) -> None:
    # LibreOffice pads every sheet with empty repeated cells and rows to the sheet's end.
    padding = '<table:table-cell table:number-columns-repeated="16382"/>'
    rows = (
        _row(_cell("Name") + _cell("Phone") + padding)
        + _row(_cell("Asha") + _cell("9876543210") + padding)
        + _row('<table:table-cell table:number-columns-repeated="16384"/>', 1048574)
    )
    path = _ods(tmp_path / "padded.ods", rows)
    assert _open(path) == "READ 1 ['Asha', '9876543210']"


def test_an_ods_cell_repeated_across_16384_columns_is_refused(tmp_path: Path) -> None:
    # 848 bytes that peaked at 12 GB.
    path = _ods(tmp_path / "cols.ods", _ODS_HEAD + _row(_cell("x", 16384), 1000))
    assert _open(path).startswith("REFUSED A row of this sheet repeats cells out to column")


def test_an_ods_of_a_hundred_million_repeated_cells_is_refused(tmp_path: Path) -> None:
    path = _ods(tmp_path / "cells.ods", _ODS_HEAD + _row(_cell("x", 400), 250_000))
    out = _open(path)
    assert out.startswith("REFUSED This sheet's repeated rows and cells make"), out


def test_an_ods_row_repeated_past_the_last_row_is_refused_not_cut(tmp_path: Path) -> None:
    # calamine stops at row 1,048,576 and dropped the distinct row after the repeats, while
    # the import said "completed".
    rows = _ODS_HEAD + _row(_cell("Ravi") + _cell("9876543211"), 1_100_000)
    rows += _row(_cell("Last") + _cell("9876543299"))
    path = _ods(tmp_path / "rows.ods", rows)
    out = _open(path)
    assert out.startswith("REFUSED This sheet goes on to row 1,100,002"), out
    assert "1,048,576" in out


# ---- .xls -----------------------------------------------------------------------------------


def _patch_dimensions(path: Path, rows: int, cols: int) -> Path:
    data = bytearray(path.read_bytes())
    at = data.find(b"\x00\x02\x0e\x00")  # DIMENSIONS, 14 bytes: a small file has it whole
    assert at > 0
    struct.pack_into("<IIHH", data, at + 4, 0, rows, 0, cols)
    path.write_bytes(bytes(data))
    return path


def test_an_xls_declaring_a_huge_sheet_is_refused(tmp_path: Path) -> None:
    path = write_xls(tmp_path / "dims.xls", [["Name", "Phone"], ["Asha", "9876543210"]])
    assert _open(path).startswith("READ 1")
    _patch_dimensions(path, 0xFFFFFFF0, 255)
    assert _open(path).startswith("REFUSED A sheet in this workbook declares")


# ---- formats read as something else -----------------------------------------------------------


def test_an_html_table_saved_as_xls_is_named(tmp_path: Path) -> None:
    path = tmp_path / "export.xls"
    path.write_text(
        "<html><head><meta charset='utf-8'></head><body><table><tr><td>Name</td><td>Phone"
        "</td></tr><tr><td>Asha</td><td>9876543210</td></tr></table></body></html>"
    )
    out = _open(path)
    assert out.startswith("REFUSED This file is a web page (an HTML table)")
    assert "Save As" in out


def test_an_excel_2003_xml_spreadsheet_is_named(tmp_path: Path) -> None:
    path = tmp_path / "erp.xls"
    path.write_text(
        '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n<Workbook xmlns='
        '"urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="Sheet1"><Table>'
        '<Row><Cell><Data ss:Type="String">Name</Data></Cell></Row></Table></Worksheet>'
        "</Workbook>"
    )
    assert _open(path).startswith("REFUSED This file is an Excel 2003 XML spreadsheet")


def test_an_xlsb_is_named(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsb"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Override PartName="/xl/workbook.bin" ContentType="application/'
            'vnd.ms-excel.sheet.binary.macroEnabled.main"/></Types>',
        )
        zf.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.bin"/></Relationships>',
        )
        zf.writestr("xl/workbook.bin", b"\x83\x01\x00")
    assert _open(path).startswith("REFUSED This is an Excel binary workbook (.xlsb)")


def test_a_workbook_whose_parts_sit_elsewhere_is_read(tmp_path: Path) -> None:
    # Valid packaging calamine follows (the folder named by _rels/.rels, names in any case):
    # it was called "a zip archive".
    source = _xlsx(tmp_path / "ok.xlsx", _HEADER_ROW + _DATA_ROW, _STRINGS)
    moved = tmp_path / "moved.xlsx"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(moved, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename).replace(b"xl/", b"Excel/")
            zout.writestr(info.filename.replace("xl/", "EXCEL/"), data)
    assert _open(moved) == "READ 1 ['Asha', '9876543210']"


def test_a_csv_with_old_mac_line_ends_reads(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(b"Name,Phone\rAsha,9876543210\rRavi,9876543211\r")
    assert _open(path) == "READ 2 ['Ravi', '9876543211']"


def test_a_long_sheet_is_measured_exactly_and_read(tmp_path: Path) -> None:
    # 120,000 rows: six-digit references, so the cheap bound (999,999 by 26) passes the
    # limit and the references are read one by one; the sheet is well within it.
    rows = "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in range(2, 120_002))
    header = '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    path = _xlsx(tmp_path / "long.xlsx", header + rows, ["Number"])
    assert _open(path) == "READ 120000 ['120001']"


# ---- found by attacking the checks themselves ---------------------------------------------


@pytest.mark.parametrize(
    "far",
    [
        '<row r="10000000"><c r="Z10000000"><v>1</v></c></row>',  # eight-digit row
        '<row r="90000"><c r="ZZZZ90000"><v>1</v></c></row>',  # four-letter column
        '<row r="3"><c>x</c><c foo=">" r="SF999999"><v>1</v></c></row>',  # ">" in a value
        '<row r="3"><c foo=\' r="A3"\' r="SF999999"><v>1</v></c></row>',  # a decoy r
    ],
)
def test_far_cells_written_to_slip_past_the_scan_are_refused(tmp_path: Path, far: str) -> None:
    path = _xlsx(tmp_path / "far.xlsx", _HEADER_ROW + _DATA_ROW + far, _STRINGS)
    assert _open(path).startswith("REFUSED A sheet in this workbook")


@pytest.mark.parametrize(
    "target", ["worksheets/sheet1.txt", "media/image1.xml", "sharedStrings2.xml"]
)
def test_a_sheet_under_any_name_is_scanned(tmp_path: Path, target: str) -> None:
    far = '<row r="999999"><c r="SF999999"><v>1</v></c></row>'
    source = _xlsx(tmp_path / "ok.xlsx", _HEADER_ROW + _DATA_ROW + far, _STRINGS)
    moved = tmp_path / "moved.xlsx"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(moved, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename).replace(b"worksheets/sheet1.xml", target.encode())
            zout.writestr(info.filename.replace("worksheets/sheet1.xml", target), data)
    assert _open(moved).startswith("REFUSED A sheet in this workbook")


def test_a_shared_strings_count_after_a_long_start_tag_is_read(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "late.xlsx", _HEADER_ROW + _DATA_ROW, _STRINGS, count=10**11)
    padded = tmp_path / "padded.xlsx"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(padded, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/sharedStrings.xml":
                data = data.replace(b"<sst ", b'<sst pad="' + b"x" * 70_000 + b'" ')
            zout.writestr(info.filename, data)
    assert "100,000,000,000 entries" in _open(padded)


@pytest.mark.parametrize(
    "trick",
    [
        # A table inside a cell used to end the count of the sheet around it.
        _row(
            '<table:table-cell><table:table table:name="in"><table:table-row>'
            "<table:table-cell/></table:table-row></table:table></table:table-cell>"
        )
        + _row(_cell("x", 400), 250_000),
        # A character reference in the repeat count, which calamine decodes.
        '<table:table-row table:number-rows-repeated="&#50;50000">'
        + _cell("x", 400)
        + "</table:table-row>",
        # A ">" inside an attribute's value.
        _row(
            '<table:table-cell foo=">" office:value-type="string" '
            'table:number-columns-repeated="400"><text:p>x</text:p></table:table-cell>',
            250_000,
        ),
    ],
)
def test_ods_repeats_written_to_slip_past_the_count_are_refused(tmp_path: Path, trick: str) -> None:
    path = _ods(tmp_path / "trick.ods", _ODS_HEAD + trick)
    assert _open(path).startswith("REFUSED This sheet's repeated rows and cells make")


def test_an_xls_whose_records_are_thrown_out_of_step_is_still_checked(tmp_path: Path) -> None:
    # A record header after the globals' end swallows the sheet's DIMENSIONS for a reader
    # going from the start, while calamine jumps to the sheet by its BOUNDSHEET offset.
    import xlwt
    from xlwt.CompoundDoc import XlsDoc

    book = xlwt.Workbook()
    sheet = book.add_sheet("Customers")
    for r, row in enumerate([["Name", "Phone"], ["Asha", "9876543210"]]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    data = bytearray(book.get_biff_data())
    records, at = [], 0
    while at + 4 <= len(data):
        kind, length = struct.unpack_from("<HH", data, at)
        records.append((at, kind))
        at += 4 + length
    globals_end = next(a for a, k in records if k == 0x000A) + 4
    dimensions = next(a for a, k in records if k == 0x0200)
    struct.pack_into("<IIHH", data, dimensions + 4, 0, 5_000_000, 0, 255)
    data[globals_end:globals_end] = struct.pack("<HH", 0x1234, dimensions + 18 - globals_end)
    for at, kind in records:
        if kind == 0x0085:  # BOUNDSHEET: the sheet moved 4 bytes on
            offset = struct.unpack_from("<I", data, at + 4)[0]
            struct.pack_into("<I", data, at + 4, offset + 4)
    path = tmp_path / "desync.xls"
    XlsDoc().save(str(path), bytes(data))
    assert _open(path).startswith("REFUSED A sheet in this workbook declares 5,000,000 rows")


def test_a_workbook_with_backslashed_member_names_is_read(tmp_path: Path) -> None:
    # Some Windows zip tools write "xl\\workbook.xml"; calamine finds such parts.
    source = _xlsx(tmp_path / "ok.xlsx", _HEADER_ROW + _DATA_ROW, _STRINGS)
    slashed = tmp_path / "slashed.xlsx"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(slashed, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename.replace("/", "\\"), zin.read(info.filename))
    assert _open(slashed) == "READ 1 ['Asha', '9876543210']"


def test_a_csv_header_longer_than_the_sniffed_sample_names_the_column_limit(
    tmp_path: Path,
) -> None:
    # 100,003 columns: the first line alone is longer than the sample read to sniff the file,
    # which used to say "a header row but no data rows below it".
    path = tmp_path / "wide.csv"
    header = ",".join(f"Col{i}" for i in range(100_003))
    path.write_text(f"{header}\n" + "Asha,9876543210\n" * 3)
    out = _open(path)
    assert out.startswith("REFUSED The sheet has more than 500 columns"), out
