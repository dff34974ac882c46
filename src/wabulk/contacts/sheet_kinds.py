"""What kind of file an upload is, from its content, never its name.

- Zip packages: .xlsx (wherever the package puts its workbook, as calamine finds it) or .ods;
  checked for zip bombs before anything is read from them. .xlsb and other zips are named.
- OLE files: .xls (refused with a sentence when password-protected).
- Text: CSV, unless it is an HTML table or Excel 2003 XML saved under a spreadsheet's name.
- Anything else (PDF, images, archives, binary data) is named and refused.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from pathlib import Path

from ..words import N_, said
from . import xlsx_head
from .sheet_checks import SheetError

MAX_UNZIPPED_BYTES = 1024 * 1024 * 1024
MAX_ZIP_RATIO = 150  # real sheets compress ~10x; bombs compress 1000x
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_MARK = "EncryptedPackage".encode("utf-16-le")
SAMPLE_BYTES = 256 * 1024
# One well-formed multi-byte UTF-8 character (what Windows-1252 text almost never contains).
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


# ---- kinds -------------------------------------------------------------------------


def detect_kind(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if not head:
        raise SheetError(N_("The file is empty."))
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head.startswith(_OLE_MAGIC):
        with path.open("rb") as fh:
            start = fh.read(4_000_000)  # the OLE directory naming the streams sits near the top
        if _ENCRYPTED_MARK in start:
            raise SheetError(
                N_(
                    "This workbook is password-protected. Open it in Excel, remove the password "
                    "(File → Info → Protect Workbook → Encrypt with Password, clear it), save, "
                    "and upload it again."
                )
            )
        return "xls"
    if head.startswith(b"%PDF"):
        raise SheetError(N_("This is a PDF, not a spreadsheet. Upload the .xlsx or .csv file."))
    for magic, what in (
        (b"\x89PNG", _AN_IMAGE),
        (b"\xff\xd8\xff", _AN_IMAGE),
        (b"GIF8", _AN_IMAGE),
        (
            b"Rar!",
            N_("This is a RAR archive, not a spreadsheet. Upload .xlsx, .xls, .ods or .csv."),
        ),
        (
            b"\x1f\x8b",
            N_("This is a gzip archive, not a spreadsheet. Upload .xlsx, .xls, .ods or .csv."),
        ),
    ):
        if head.startswith(magic):
            raise SheetError(what)
    if not _looks_like_text(head):
        raise SheetError(N_("This file is not a spreadsheet or a CSV (it looks like binary data)."))
    _refuse_markup(head)
    return "csv"


_AN_IMAGE = N_("This is an image, not a spreadsheet. Upload .xlsx, .xls, .ods or .csv.")


def _refuse_markup(head: bytes) -> None:
    """Web shops and older systems export HTML tables and Excel 2003 XML under an .xls name;
    read as CSV they would import tags as names and numbers."""
    encoding = sniff_encoding(head)
    start = head[:4096].decode(encoding, errors="replace").lstrip("\ufeff \t\r\n").lower()
    if start.startswith("<?xml") or start.startswith("<workbook"):
        if "urn:schemas-microsoft-com:office:spreadsheet" in start or "<workbook" in start:
            raise SheetError(
                N_(
                    "This file is an Excel 2003 XML spreadsheet, an old format wabulk does not "
                    "read. Open it in Excel (or LibreOffice) and use Save As → Excel Workbook "
                    "(.xlsx), or CSV, then upload that file."
                )
            )
        raise SheetError(
            N_(
                "This file is XML, not a spreadsheet or a CSV. Open it in Excel (or LibreOffice) "
                "and use Save As → Excel Workbook (.xlsx), or CSV, then upload that file."
            )
        )
    if start.startswith(("<!doctype html", "<html", "<table", "<meta", "<head", "<body")):
        raise SheetError(
            N_(
                "This file is a web page (an HTML table) saved with a spreadsheet name, not a "
                "real workbook. Open it in Excel (or LibreOffice) and use Save As → Excel "
                "Workbook (.xlsx), or CSV, then upload that file."
            )
        )


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            _check_zip_bomb(zf)
            if "xl/workbook.xml" in names:  # where Excel puts it; else see the package index
                return "xlsx"
            main = _main_part_type(zf, names)
            if main == "xlsb":
                raise SheetError(
                    N_(
                        "This is an Excel binary workbook (.xlsb), which wabulk does not read. "
                        "Open it in Excel (or LibreOffice) and use Save As → Excel Workbook "
                        "(.xlsx), or CSV, then upload that file."
                    )
                )
            if main == "xlsx":
                return "xlsx"
            if "mimetype" in names:
                mime = zf.read("mimetype").decode("ascii", "replace").strip()
                if mime == "application/vnd.oasis.opendocument.spreadsheet":
                    return "ods"
                raise SheetError(
                    said(
                        "This is an OpenDocument file of type %(type)s, not a spreadsheet.",
                        type=repr(mime),
                    )
                )
            if any(n.startswith("word/") for n in names):
                raise SheetError(N_("This is a Word document, not a spreadsheet."))
    except zipfile.BadZipFile:
        raise SheetError(
            N_(
                "The workbook is damaged and cannot be opened (broken zip structure). Open it "
                "in Excel, save a fresh copy, and try again."
            )
        ) from None
    raise SheetError(N_("This is a zip archive, not a spreadsheet. Upload the .xlsx inside it."))


def _main_part_type(zf: zipfile.ZipFile, names: set[str]) -> str | None:
    """What the package's main document is, for workbooks whose parts are not where Excel
    puts them: calamine follows the package's own reference to its folder, and finds names
    whatever their case or slashes. "xlsx", "xlsb" or None."""
    by_key = {n.replace("\\", "/").lower(): n for n in names}
    index = by_key.get("_rels/.rels")
    if index is None or zf.getinfo(index).file_size > 1024 * 1024:
        return None  # a package index is a few hundred bytes
    try:
        rels = xlsx_head.parse_xml(zf.read(index))
    except Exception:  # not a package index we can follow: not a workbook then
        return None
    target = next(
        (r.get("Target", "") for r in rels if r.get("Type", "").endswith("/officeDocument")),
        "",
    )
    target = target.replace("\\", "/").lstrip("/").lower()
    folder = target.rpartition("/")[0]
    if target.endswith(".bin") and target in by_key:
        return "xlsb"
    if f"{folder}/workbook.xml".lstrip("/") in by_key:
        return "xlsx"
    return None


def _check_zip_bomb(zf: zipfile.ZipFile) -> None:
    total = 0
    for info in zf.infolist():
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 10 * 1024 * 1024 and ratio > MAX_ZIP_RATIO:
            raise SheetError(
                said(
                    "This workbook expands to an implausible size for its file size "
                    "(%(part)s: %(ratio)s times compressed); it was refused as unsafe.",
                    part=info.filename,
                    ratio=f"{ratio:.0f}",
                )
            )
    if total > MAX_UNZIPPED_BYTES:
        raise SheetError(
            said(
                "This workbook expands to %(mb)s MB, more than a customer sheet should; it "
                "was refused as unsafe.",
                mb=total // (1024 * 1024),
            )
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
