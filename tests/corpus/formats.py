"""Writing the corpus's workbooks from text: .xlsx, .ods and .xlsb parts, zipped with a fixed
date so the same call gives the same bytes."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

HEADER = ["Name", "Phone", "City"]
ROWS = [
    ["Corpus One", "9811100001", "Pune"],
    ["Corpus Two", "9811100002", "Delhi"],
    ["Corpus Three", "9811100003", "Goa"],
]
DATE = (2024, 1, 1, 0, 0, 0)


# ---- building blocks ----------------------------------------------------------------------


def zip_members(path: Path, members: list[tuple[str, bytes]], stored: bool = False) -> Path:
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else method
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return path


def esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _col(index: int) -> str:
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def table(header: list[str] | None = None) -> list[list[str]]:
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


def root_rels(target: str = "xl/workbook.xml") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="'
        f'{_PKG_REL}"><Relationship Id="rId1" Type="{_REL}/officeDocument" Target="{target}"/>'
        "</Relationships>"
    )


def workbook_rels(prefix: str = "") -> str:
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


def sheet_xml(
    rows: list[list[str]], extra_cells: str = "", dimension: str | None = None
) -> tuple[str, list[str]]:
    """A worksheet whose cells are shared strings (indices into the returned list)."""
    strings: list[str] = []
    body = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            strings.append(esc(value))
            cells.append(f'<c r="{_col(c)}{r}" t="s"><v>{len(strings) - 1}</v></c>')
        body.append(f'<row r="{r}">{"".join(cells)}</row>')
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    xml = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN}">'
        f"{dim}<sheetData>{''.join(body)}{extra_cells}</sheetData></worksheet>"
    )
    return xml, strings


def xlsx_members(
    rows: list[list[str]] | None = None,
    count: str | None = None,
    doctype: str = "",
    strings_override: list[str] | None = None,
    dimension: str | None = None,
    extra_cells: str = "",
) -> list[tuple[str, bytes]]:
    sheet, strings = sheet_xml(rows or table(), extra_cells, dimension)
    return [
        ("[Content_Types].xml", _XLSX_CT.encode()),
        ("_rels/.rels", root_rels().encode()),
        ("xl/workbook.xml", _WORKBOOK.encode()),
        ("xl/_rels/workbook.xml.rels", workbook_rels().encode()),
        ("xl/worksheets/sheet1.xml", sheet.encode()),
        (
            "xl/sharedStrings.xml",
            _shared_strings(strings_override or strings, count, doctype).encode(),
        ),
    ]


def xlsx(path: Path, **kwargs: object) -> Path:
    return zip_members(path, xlsx_members(**kwargs))  # type: ignore[arg-type]


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


def ods_cell(value: str, repeat: int = 1) -> str:
    rep = f' table:number-columns-repeated="{repeat}"' if repeat > 1 else ""
    if not value:
        return f"<table:table-cell{rep}/>"
    return (
        f'<table:table-cell office:value-type="string"{rep}><text:p>{esc(value)}</text:p>'
        "</table:table-cell>"
    )


def ods_row(cells: list[str], repeat: int = 1, tail: str = "") -> str:
    rep = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
    return f"<table:table-row{rep}>{''.join(ods_cell(c) for c in cells)}{tail}</table:table-row>"


def ods(path: Path, body: str | None = None, doctype: str = "") -> Path:
    rows = body if body is not None else "".join(ods_row(r) for r in table())
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}<office:document-content {_ODS_NS}>'
        '<office:body><office:spreadsheet><table:table table:name="Customers">'
        f"{rows}</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    return zip_members(
        path,
        [
            ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
            ("META-INF/manifest.xml", _ODS_MANIFEST.encode()),
            ("content.xml", content.encode()),
        ],
    )


# ---- xlsb: records written by hand ([MS-XLSB] 2.1.4: a type and a size, each in 7-bit groups) --


def _record(kind: int, data: bytes = b"") -> bytes:
    head = bytes([kind]) if kind < 0x80 else bytes([(kind & 0x7F) | 0x80, kind >> 7])
    size, length = bytearray(), len(data)
    while True:
        size.append((length & 0x7F) | (0x80 if length > 0x7F else 0))
        length >>= 7
        if not length:
            break
    return head + bytes(size) + data


def _wide(text: str) -> bytes:
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def xlsb_members(rows: list[list[str]]) -> list[tuple[str, bytes]]:
    workbook = b"".join(
        [
            _record(0x0083),  # BrtBeginBook
            _record(0x008F),  # BrtBeginBundleShs
            _record(0x009C, struct.pack("<II", 0, 1) + _wide("rId1") + _wide("Customers")),
            _record(0x0090),  # BrtEndBundleShs
            _record(0x009D, bytes(26)),  # BrtCalcProp: where the sheet list is known to end
            _record(0x0084),  # BrtEndBook
        ]
    )
    cells = []
    for r, row in enumerate(rows):
        cells.append(_record(0x0000, struct.pack("<IIHBBBI", r, 0, 300, 0, 0, 0, 0)))
        for c, value in enumerate(row):  # BrtCellSt: an inline string
            cells.append(_record(0x0006, struct.pack("<II", c, 0) + _wide(value)))
    width = max(len(row) for row in rows)
    sheet = b"".join(
        [
            _record(0x0081),  # BrtBeginSheet
            _record(0x0094, struct.pack("<IIII", 0, len(rows) - 1, 0, width - 1)),  # BrtWsDim
            _record(0x0091),  # BrtBeginSheetData
            *cells,
            _record(0x0092),  # BrtEndSheetData
            _record(0x0082),  # BrtEndSheet
        ]
    )
    types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Override PartName="/xl/workbook.bin" ContentType="application/'
        'vnd.ms-excel.sheet.binary.macroEnabled.main"/><Override PartName="/xl/worksheets/'
        'sheet1.bin" ContentType="application/vnd.ms-excel.worksheet"/></Types>'
    )
    rels = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="'
        f'{_PKG_REL}"><Relationship Id="rId1" Type="{_REL}/worksheet" '
        'Target="worksheets/sheet1.bin"/></Relationships>'
    )
    return [
        ("[Content_Types].xml", types.encode()),
        ("_rels/.rels", root_rels("xl/workbook.bin").encode()),
        ("xl/workbook.bin", workbook),
        ("xl/_rels/workbook.bin.rels", rels.encode()),
        ("xl/worksheets/sheet1.bin", sheet),
    ]
