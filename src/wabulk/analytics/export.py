"""The Analytics page's figures as a workbook (.xlsx) or a CSV, for people to keep and share.

- The same tables as the page, for the same filter: one sheet each in the workbook, one
  titled block each in the CSV (separated by an empty line).
- Cells are typed: counts are numbers, shares are numbers with a percent format, days are
  Excel dates. The CSV writes them as the page shows them (`2026-03-01`, `40.0%`).
- Names (campaigns, senders) and failure sentences are people's or providers' text: each is
  neutralised as in every other export, so nothing in it runs as a formula.
- Bounded by the page's own limits (at most 366 days, 24 hours, the newest campaigns): the
  whole file is built in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ..contacts.export import neutralise
from ..words import N_
from .overview import FUNNEL_STEPS, KIND_LABELS, Overview

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Share(float):
    """A share of a whole, 0 to 1: a percent cell in the workbook, `40.0%` in the CSV."""


@dataclass
class Table:
    title: str  # the CSV block's first line and the sheet's name
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    widths: dict[int, int] = field(default_factory=dict)  # column → width, for the workbook


def _share(value: float | None) -> Share | None:
    return None if value is None else Share(value)


# "Delivered of sent", … (one whole sentence each, for the translations).
_OF_SENT = {
    "delivered": N_("Delivered of sent"),
    "read": N_("Read of sent"),
    "replied": N_("Replied of sent"),
}


def tables(
    o: Overview,
    campaign_name: str | None,
    sender_name: str | None,
    words: Callable[[str], str] = str,
) -> list[Table]:
    """Every table of the page, in its order, starting with what was chosen.

    - Titles, headers and labels are made in English; `words` puts each in the downloader's
      language (the web passes `i18n.translated`). Names and codes are kept as they are.
    """
    w = words
    p = o.filters.period
    kinds = list(KIND_LABELS)
    chosen = Table(w(N_("Chosen")), ["", ""], widths={0: 22, 1: 40})
    chosen.rows = [
        [w(N_("From")), p.first_day],
        [w(N_("To")), p.last_day],
        [w(N_("Days and hours in")), p.tz.key],
        [w(N_("Campaign")), neutralise(campaign_name) if campaign_name else w(N_("All campaigns"))],
        [w(N_("Sender")), neutralise(sender_name) if sender_name else w(N_("All senders"))],
    ]
    totals = Table(w(N_("Totals")), ["", w(N_("Messages"))], widths={0: 22})
    totals.rows = [[w(KIND_LABELS[k]), getattr(o.totals, k)] for k in kinds]
    totals.rows.append([w(N_("Opted out")), o.opt_out_total])

    labels = [w(KIND_LABELS[k]) for k in kinds]
    days = Table(w(N_("Messages per day")), [w(N_("Day")), *labels], widths={0: 12})
    days.rows = [[d.day, *[getattr(d.outcomes, k) for k in kinds]] for d in o.days]
    hours = Table(w(N_("By hour of the day")), [w(N_("Hour")), *labels])
    hours.rows = [[f"{h.hour:02d}:00", *[getattr(h.outcomes, k) for k in kinds]] for h in o.hours]

    funnel = Table(w(N_("Funnel")), [w(N_("Step")), w(N_("Messages")), w(N_("Of sent"))])
    funnel.rows = [
        [w(KIND_LABELS[s]), getattr(o.funnel, s), _share(o.funnel.rate(s))] for s in FUNNEL_STEPS
    ]
    steps = [w(KIND_LABELS[s]) for s in FUNNEL_STEPS]
    campaigns = Table(
        w(N_("Funnel per campaign")),
        [w(N_("Campaign")), w(N_("Status")), w(N_("Launched")), w(N_("Recipients"))]
        + [*steps, w(N_("Failed"))]
        + [w(_OF_SENT[s]) for s in FUNNEL_STEPS[1:]],
        widths={0: 30, 2: 18},
    )
    for c in o.campaigns:
        launched = c.launched_at.astimezone(p.tz).replace(tzinfo=None) if c.launched_at else None
        campaigns.rows.append(
            [neutralise(c.name), w(str(c.status)), launched, c.total]
            + [getattr(c.funnel, s) for s in FUNNEL_STEPS]
            + [c.failed]
            + [_share(c.funnel.rate(s)) for s in FUNNEL_STEPS[1:]]
        )
    failures = Table(
        w(N_("Failure reasons")),
        [w(N_("Reason")), w(N_("Code")), w(N_("Messages")), w(N_("What it said"))],
        widths={0: 30, 3: 60},
    )
    failures.rows = [
        [w(f.label), neutralise(f.code), f.count, neutralise(w(f.sentence)) if f.sentence else None]
        for f in o.failures
    ]
    billed = Table(w(N_("Billed by Meta")), [w(N_("Category")), w(N_("Messages"))], widths={0: 36})
    billed.rows = [[w(b.label), b.count] for b in o.billed]
    senders = Table(
        w(N_("Senders")),
        [w(N_("Sender")), w(N_("Sent")), w(N_("Failed")), w(N_("Failure rate"))],
        widths={0: 24},
    )
    senders.rows = [
        [neutralise(_sender_name(s, w)), s.sent, s.failed, _share(s.failure_rate)]
        for s in o.senders
    ]
    opt_outs = Table(w(N_("Opt-outs per day")), [w(N_("Day")), w(N_("Opted out"))], widths={0: 12})
    opt_outs.rows = [[d.day, d.count] for d in o.opt_outs]
    return [chosen, totals, days, hours, funnel, campaigns, failures, billed, senders, opt_outs]


def _sender_name(s: Any, words: Callable[[str], str]) -> str:
    """A sender's name as typed; "No sender" (messages without one) in the reader's words."""
    return str(s.name) if s.sender_id else words(s.name)


def filename(o: Overview, extension: str) -> str:
    p = o.filters.period
    return f"wabulk-analytics-{p.first_day}-{p.last_day}.{extension}"


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Share):
        return f"{100 * value:.1f}%"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_text(all_tables: list[Table]) -> str:
    """Every table as a titled block; a byte-order mark so Excel reads it as UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    for n, table in enumerate(all_tables):
        if n:
            writer.writerow([])
        writer.writerow([table.title])
        if any(table.columns):
            writer.writerow(table.columns)
        writer.writerows([_csv_text(v) for v in row] for row in table.rows)
    return out.getvalue()


def xlsx_bytes(all_tables: list[Table]) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buf,
        {
            "in_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    bold = workbook.add_format({"bold": True})
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    percent = workbook.add_format({"num_format": "0.0%"})
    for table in all_tables:
        # Excel's sheet names: at most 31 characters, none of []:*?/ or a backslash.
        name = "".join(" " if ch in "[]:*?/\\" else ch for ch in table.title)[:31]
        sheet = workbook.add_worksheet(name)
        for col, width in table.widths.items():
            sheet.set_column(col, col, width)
        first = 0
        if any(table.columns):
            for col, name in enumerate(table.columns):
                sheet.write_string(0, col, name, bold)
            sheet.freeze_panes(1, 0)
            first = 1
        for r, row in enumerate(table.rows, start=first):
            for col, value in enumerate(row):
                _write(sheet, r, col, value, day=day, stamp=stamp, percent=percent)
    workbook.close()
    return buf.getvalue()


def _write(sheet: Any, r: int, col: int, value: Any, **formats: Any) -> None:
    if value is None:
        return
    if isinstance(value, Share):
        sheet.write_number(r, col, float(value), formats["percent"])
    elif isinstance(value, datetime):
        sheet.write_datetime(r, col, value, formats["stamp"])
    elif isinstance(value, date):
        sheet.write_datetime(r, col, datetime(value.year, value.month, value.day), formats["day"])
    elif isinstance(value, int | float):
        sheet.write_number(r, col, value)
    else:
        sheet.write_string(r, col, str(value))
