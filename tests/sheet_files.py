"""Spreadsheets as users upload them, written by the tests themselves (never checked in)."""

from __future__ import annotations

import codecs
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Rows = Sequence[Sequence[Any]]

PEOPLE: list[list[Any]] = [
    ["Name", "Phone", "City"],
    ["Asha Rao", "98765 43210", "Pune"],
    ["Ravi Kumar", "+91 98765 43211", "Delhi"],
    ["José Núñez", "09876543212", "Goa"],
]


def csv_bytes(rows: Rows, delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    """Rows as CSV text (fields holding the delimiter or a quote are quoted)."""
    lines = []
    for row in rows:
        cells = []
        for cell in row:
            text = "" if cell is None else str(cell)
            if delimiter in text or '"' in text or "\n" in text:
                text = '"' + text.replace('"', '""') + '"'
            cells.append(text)
        lines.append(delimiter.join(cells))
    text = "\r\n".join(lines) + "\r\n"
    if encoding == "utf-8-sig":
        return codecs.BOM_UTF8 + text.encode("utf-8")
    return text.encode(encoding)


def write_csv(path: Path, rows: Rows, delimiter: str = ",", encoding: str = "utf-8") -> Path:
    path.write_bytes(csv_bytes(rows, delimiter, encoding))
    return path


def write_xlsx(path: Path, rows: Rows, merge: Sequence[str] = ()) -> Path:
    """An .xlsx made by openpyxl; an empty row in `rows` stays a blank row in the sheet."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is not None:
                sheet.cell(row=r, column=c, value=value)
    for cells in merge:
        sheet.merge_cells(cells)
    workbook.save(path)
    workbook.close()
    return path


def write_ods(path: Path, rows: Rows) -> Path:
    import pandas as pd

    frame = pd.DataFrame([list(r) for r in rows[1:]], columns=list(rows[0]))
    frame.to_excel(path, engine="odf", index=False)
    return path


def write_xls(path: Path, rows: Rows) -> Path:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Customers")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(r, c, value)
    book.save(str(path))
    return path


def encrypt_xlsx(source: Path, target: Path, password: str) -> Path:
    """A password-protected copy of a workbook (the OLE container Excel writes)."""
    import msoffcrypto.format.ooxml

    with source.open("rb") as plain, target.open("wb") as locked:
        msoffcrypto.format.ooxml.OOXMLFile(plain).encrypt(password, locked)
    return target


def garble_member(source: Path, target: Path, member: str) -> Path:
    """A copy whose compressed bytes of `member` are scrambled (the zip directory stays intact)."""
    with zipfile.ZipFile(source) as zf:
        info = zf.getinfo(member)
    data = bytearray(source.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 8, start + info.compress_size - 8):
        data[i] ^= 0x5A
    target.write_bytes(bytes(data))
    return target


def rewrite_member(source: Path, target: Path, member: str, change: Any) -> Path:
    """A copy of a workbook with one member's bytes passed through `change`."""
    with zipfile.ZipFile(source) as zf, zipfile.ZipFile(target, "w") as out:
        for info in zf.infolist():
            data = zf.read(info)
            out.writestr(info, change(data) if info.filename == member else data)
    return target


def zip_bomb(path: Path, megabytes: int = 20) -> Path:
    """An xlsx-like zip whose sheet is megabytes of zeros squeezed into a few kilobytes."""
    block = b"0" * (1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        with zf.open("xl/worksheets/sheet1.xml", "w") as member:
            for _ in range(megabytes):
                member.write(block)
    return path


def oversize_xlsx(path: Path) -> Path:
    """A small file whose sheet has a cell at XFD1048576, Excel's very last cell."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    sheet.write_row(0, 0, ["Name", "Phone"])
    sheet.write_row(1, 0, ["Asha", "9876543210"])
    sheet.write(1_048_575, 16_383, "far away")
    workbook.close()
    return path
