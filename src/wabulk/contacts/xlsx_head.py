"""The first rows of a big .xlsx, read without parsing the whole sheet.

calamine reads a worksheet all at once: a second and a half and ~350 MB for 200,000 rows,
even when only the first rows are wanted (an upload's preview and header). A worksheet's
XML lists its rows in order, so a copy of the workbook whose sheets stop after row N, and
whose shared strings stop after the last one those rows use, reads in calamine itself as
the first N rows of the real one: the same cell types, dates, number formats and formula
values as the full read, for the cost of decompressing the first rows.

- `head_workbook` builds that copy in memory, or returns None when it would not be smaller
  (every sheet ends by row N, or is small).
- Anything unexpected (a row without its number, a CDATA section or a comment in a sheet, a
  part that does not decompress) gives None too: the caller then reads the whole workbook,
  which also words any error.
- Shared strings are in order of first use in the files Excel, LibreOffice and xlsxwriter
  write, so the head keeps a short start of the table; when a kept row uses a late one,
  the table is kept up to it (correct, only slower).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

# A worksheet member's XML past this size is worth reading by its head (~50,000 cells).
MIN_BYTES = 4 * 1024 * 1024
_BLOCK = 1024 * 1024
# A row's start tag, any namespace prefix (.NET writers use "x:"); `\b` keeps <rowBreaks> out.
_ROW_TAG = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb'\sr="(\d+)"')
# A cell holding a shared string: its index, to know how many strings the head needs. It
# starts with its literal, which the regex engine finds fast (only cells have a t="s").
_SHARED_CELL = re.compile(rb't="s"[^>]*>\s*<(?:[\w.-]+:)?v>(\d+)<')
# The end of one shared string: </si>, or an empty <si/>.
_STRING_END = re.compile(rb"</(?:[\w.-]+:)?si>|<(?:[\w.-]+:)?si\s*/>")
_SST_TAG = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)sst\b")
# Members calamine never reads for cell values and that can be as big as the data.
_SKIPPED = ("xl/media/", "xl/pivotCache/")
_RELS_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOC_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


class _Unexpected(Exception):
    """XML this module does not take apart safely: read the whole workbook instead."""


@dataclass(frozen=True)
class Head:
    """A copy of a workbook holding each sheet's rows up to `last_row`."""

    data: io.BytesIO
    last_row: int
    cut: frozenset[str]  # names of the sheets that have rows after `last_row`
    members: dict[str, str]  # sheet name -> its member in the zip


def sheet_members(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its member in the zip, from the workbook and its relationships."""
    workbook = parse_xml(zf.read("xl/workbook.xml"))
    rels = parse_xml(zf.read("xl/_rels/workbook.xml.rels"))
    targets = {}
    for rel in rels.iter(f"{_RELS_NS}Relationship"):
        target = rel.get("Target", "")
        # Relative to xl/ unless absolute (some writers give "/xl/worksheets/sheet1.xml").
        path = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
        targets[rel.get("Id")] = posixpath.normpath(path)
    members = {}
    for sheet in workbook.iter():
        if sheet.tag.rsplit("}", 1)[-1] == "sheet" and sheet.get(_DOC_REL) in targets:
            members[sheet.get("name", "")] = targets[sheet.get(_DOC_REL)]
    return members


def parse_xml(xml: bytes) -> ElementTree.Element:
    # Entity tricks (billion laughs, external entities) need a DOCTYPE; workbooks have none.
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise _Unexpected("a DOCTYPE in the workbook")
    return ElementTree.fromstring(xml)  # noqa: S314 (no DOCTYPE: nothing to expand)


def head_workbook(path: str | Path, last_row: int, min_bytes: int | None = None) -> Head | None:
    """The workbook's rows up to `last_row` as a workbook of their own; None when no smaller.

    Only a sheet of more than `min_bytes` of XML (MIN_BYTES) is worth it.
    """
    min_bytes = MIN_BYTES if min_bytes is None else min_bytes
    try:
        with zipfile.ZipFile(path) as zf:
            members = sheet_members(zf)
            big = [m for m in members.values() if _size(zf, m) > min_bytes]
            if not big:
                return None
            return _build(zf, members, last_row)
    except (
        _Unexpected,
        KeyError,
        ElementTree.ParseError,
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
    ):
        return None  # the whole read then says what is wrong, if anything is


def _size(zf: zipfile.ZipFile, member: str) -> int:
    try:
        return zf.getinfo(member).file_size
    except KeyError:
        return 0


def _build(zf: zipfile.ZipFile, members: dict[str, str], last_row: int) -> Head | None:
    sheets = {member: name for name, member in members.items()}
    out = io.BytesIO()
    cut: set[str] = set()
    most_strings = -1  # the highest shared-string index the kept rows use
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
        kept: dict[str, bytes] = {}
        for member in sheets:
            if member not in zf.NameToInfo:
                continue
            text, was_cut = _sheet_head(zf, member, last_row)
            kept[member] = text
            if was_cut:
                cut.add(sheets[member])
            if "xl/sharedStrings.xml" in zf.NameToInfo:
                for match in _SHARED_CELL.finditer(text):
                    most_strings = max(most_strings, int(match.group(1)))
        if not cut:
            return None
        for info in zf.infolist():
            name = info.filename
            if name in kept:
                copy.writestr(name, kept[name])
            elif name == "xl/sharedStrings.xml":
                copy.writestr(name, _strings_head(zf, name, most_strings + 1))
            elif not name.startswith(_SKIPPED):
                copy.writestr(name, zf.read(info))
    out.seek(0)
    return Head(data=out, last_row=last_row, cut=frozenset(cut), members=members)


def _blocks(zf: zipfile.ZipFile, member: str) -> Iterator[tuple[bytes, int]]:
    """The member's XML in blocks, as (data, end): data[:end] ends between two tags; what
    follows is the start of the next block (a tag may straddle two reads)."""
    carry = b""
    with zf.open(member) as fh:
        while block := fh.read(_BLOCK):
            data = carry + block
            limit = data.rfind(b"<")
            end = limit if limit > 0 and data.find(b">", limit) < 0 else len(data)
            yield data, end
            carry = data[end:]
    if carry:
        yield carry, len(carry)


def _sheet_head(zf: zipfile.ZipFile, member: str, last_row: int) -> tuple[bytes, bool]:
    """The member's XML up to its first row numbered past `last_row`, closed; whether cut."""
    parts: list[bytes] = []
    for data, end in _blocks(zf, member):
        # Text that may hold a "<row" which is not one (neither is in real worksheets).
        if b"<![CDATA[" in data or b"<!--" in data:
            raise _Unexpected("CDATA or a comment in a worksheet")
        last = _last_row_number(data, end)
        if last is None or last > last_row:  # the cut is in this block: find the row
            for match in _ROW_TAG.finditer(data, 0, end):
                number = _ROW_NUMBER.search(match.group(2))
                if number is None:
                    raise _Unexpected("a row without its number")
                if int(number.group(1)) > last_row:
                    prefix = match.group(1)
                    parts.append(data[: match.start()])
                    closing = b"</" + prefix + b"sheetData></" + prefix + b"worksheet>"
                    return b"".join(parts) + closing, True
        parts.append(data[:end])
    return b"".join(parts), False


def _last_row_number(data: bytes, end: int) -> int | None:
    """The number of the last row that starts in data[:end] (None: no numbered row there)."""
    at = end
    while (at := data.rfind(b"row", 0, at)) > 0:
        start = data.rfind(b"<", 0, at)
        tag = _ROW_TAG.match(data, start, end) if start >= 0 else None
        if tag is not None and tag.start(0) + 1 + len(tag.group(1)) == at:
            number = _ROW_NUMBER.search(tag.group(2))
            return int(number.group(1)) if number else None
    return None


def _strings_head(zf: zipfile.ZipFile, member: str, count: int) -> bytes:
    """The shared strings table's first `count` strings, closed (all of it when shorter)."""
    count = max(count, 1)  # an empty <sst> element is one more shape to get right
    parts: list[bytes] = []
    seen = 0
    prefix: bytes | None = None
    for data, end in _blocks(zf, member):
        if prefix is None and (tag := _SST_TAG.search(data)):
            prefix = tag.group(1)
        for match in _STRING_END.finditer(data, 0, end):
            seen += 1
            if seen == count and prefix is not None:
                parts.append(data[: match.end()])
                return b"".join(parts) + b"</" + prefix + b"sst>"
        parts.append(data[:end])
    return b"".join(parts)
