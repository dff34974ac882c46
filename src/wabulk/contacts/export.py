"""Exporting contacts to CSV or XLSX, and the sample sheet.

- One row per contact: phone (E.164), name, opted_out, then country, timezone, lists... and
  every attribute as its own column.
- Cells starting with = + - @ (or tab / carriage return) are neutralised with a leading
  apostrophe so a spreadsheet never runs them as formulas. Plain numbers such as
  "+919876543210" or "-12.50" are left as they are: a number is not a formula, and the
  phone column must stay E.164.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Contact, ContactList, list_members
from ..words import N_
from .service import ContactFilter, attribute_keys, filtered

# Translates a marked English word for the reader (the web passes flask_babel's gettext); the
# CLI and the API keep the English.
Words = Callable[[str], str]


def _english(text: str) -> str:
    return text


_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)*$")
FIXED_COLUMNS = [
    "phone",
    "name",
    "opted_out",
    "opted_out_at",
    "opt_out_reason",
    "country",
    "timezone",
    "lists",
]
# The headers a person reads, marked for translation (the file's keys stay FIXED_COLUMNS).
COLUMN_TITLES = {
    "phone": N_("phone"),
    "name": N_("name"),
    "opted_out": N_("opted_out"),
    "opted_out_at": N_("opted_out_at"),
    "opt_out_reason": N_("opt_out_reason"),
    "country": N_("country"),
    "timezone": N_("timezone"),
    "lists": N_("lists"),
}


def neutralise(value: Any) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_DANGEROUS) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def _rows(
    session: Session, f: ContactFilter, words: Words = _english
) -> tuple[list[str], Iterator[list[str]]]:
    keys = attribute_keys(session, f)
    header = [words(COLUMN_TITLES[c]) for c in FIXED_COLUMNS]
    header += [k for k in keys if k not in FIXED_COLUMNS]

    def generate() -> Iterator[list[str]]:
        query = filtered(f).order_by(None).order_by(Contact.id)
        batch: list[Contact] = []
        for contact in session.scalars(query.execution_options(yield_per=2000)):
            batch.append(contact)
            if len(batch) >= 2000:
                yield from _format(session, batch, keys)
                batch = []
        yield from _format(session, batch, keys)

    return header, generate()


def _format(session: Session, batch: list[Contact], keys: list[str]) -> Iterator[list[str]]:
    if not batch:
        return
    names: dict[int, list[str]] = {}
    for contact_id, list_name in session.execute(
        select(list_members.c.contact_id, ContactList.name)
        .join(ContactList, ContactList.id == list_members.c.list_id)
        .where(list_members.c.contact_id.in_([c.id for c in batch]))
        .order_by(ContactList.name)
    ):
        names.setdefault(contact_id, []).append(list_name)
    for c in batch:
        attrs = c.attributes or {}
        yield [
            neutralise(v)
            for v in [
                c.phone,
                c.name,
                "yes" if c.opted_out_at else "no",
                c.opted_out_at.isoformat(timespec="seconds") if c.opted_out_at else "",
                c.opt_out_reason,
                c.country,
                c.timezone,
                ", ".join(names.get(c.id, [])),
                *[attrs.get(k, "") for k in keys if k not in FIXED_COLUMNS],
            ]
        ]


def csv_chunks(
    session: Session, f: ContactFilter, rows_per_chunk: int = 1000, words: Words = _english
) -> Iterator[str]:
    """The CSV as text pieces, for streaming a large export without holding it in memory."""
    header, rows = _rows(session, f, words)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for n, row in enumerate(rows, start=1):
        writer.writerow(row)
        if n % rows_per_chunk == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def write_csv(
    session: Session, f: ContactFilter, out: io.TextIOBase, words: Words = _english
) -> int:
    header, rows = _rows(session, f, words)
    writer = csv.writer(out)
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow(row)
        n += 1
    return n


def write_xlsx(session: Session, f: ContactFilter, path: Path, words: Words = _english) -> int:
    import xlsxwriter

    header, rows = _rows(session, f, words)
    # constant_memory writes row by row: memory stays flat however many contacts there are.
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    sheet = workbook.add_worksheet(words(N_("Contacts")))
    bold = workbook.add_format({"bold": True})
    for col, name in enumerate(header):
        sheet.write_string(0, col, name, bold)
    n = 0
    for n, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            sheet.write_string(n, col, value)
    sheet.freeze_panes(1, 0)
    workbook.close()
    return n


SAMPLE_HEADER = ["Phone", "Name", "City", "Due Amount", "Last Order"]
SAMPLE_ROWS = [
    ["+91 98765 43210", "Asha Patel", "Pune", "1250.50", "2026-10-02"],
    ["09123456789", "Ravi Kumar", "Delhi", "0", "2026-09-18"],
    ["+1 415 555 2671", "Maria Lopez", "San Francisco", "80", "2026-11-01"],
    ["+44 7700 900123", "James Smith", "London", "42.10", "2026-08-27"],
]


def write_sample_xlsx(out: Path | io.BytesIO) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(
        out if isinstance(out, io.BytesIO) else str(out), {"in_memory": True}
    )
    sheet = workbook.add_worksheet("Customers")
    bold = workbook.add_format({"bold": True, "bg_color": "#DCF8C6"})
    for col, name in enumerate(SAMPLE_HEADER):
        sheet.write_string(0, col, name, bold)
        sheet.set_column(col, col, 18)
    for r, row in enumerate(SAMPLE_ROWS, start=1):
        for col, value in enumerate(row):
            sheet.write_string(r, col, value)
    notes = workbook.add_worksheet("How to fill it in")
    for r, line in enumerate(
        [
            "One customer per row. The first row holds the column names.",
            "Phone: with the country code (+91 ...) or without it; choose the default country "
            "when importing.",
            "Name: optional. Every other column is kept and can be used in messages, for "
            "example {{ city }} or {{ due_amount }}.",
        ]
    ):
        notes.write_string(r, 0, line)
    notes.set_column(0, 0, 110)
    sheet.activate()
    workbook.close()


def sample_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(SAMPLE_HEADER)
    writer.writerows(SAMPLE_ROWS)
    return out.getvalue()


def write_import_report(
    session: Session,
    imp: Any,
    out: io.TextIOBase,
    words: Words = _english,
    reasons: Callable[[str], str | None] = _english,
) -> int:
    """Every rejected row (and imported row with a note), with the reason and its cells;
    `words` and `reasons` put the headers and the stored English reasons in the reader's
    language."""
    from .importer import issues_of

    columns = list((imp.mapping or {}).get("columns") or [])
    writer = csv.writer(out)
    # The headers are the sheet's own: as untrusted as its cells, and neutralised alike.
    titles = [words(N_("Row")), words(N_("Status")), words(N_("Reason"))]
    writer.writerow([*titles, *[neutralise(c) for c in columns]])
    rejected, noted = words(N_("rejected")), words(N_("imported, see note"))
    n = 0
    for issue in session.scalars(issues_of(imp.id).execution_options(yield_per=2000)):
        status = rejected if issue.rejected else noted
        cells = [neutralise(c) for c in issue.cells]
        reason = reasons(issue.reason) or issue.reason
        writer.writerow([issue.row_number, status, neutralise(reason), *cells])
        n += 1
    return n
