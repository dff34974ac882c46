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
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ..contacts.export import neutralise
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


def tables(o: Overview, campaign_name: str | None, sender_name: str | None) -> list[Table]:
    """Every table of the page, in its order, starting with what was chosen."""
    p = o.filters.period
    kinds = list(KIND_LABELS)
    chosen = Table("Chosen", ["", ""], widths={0: 22, 1: 40})
    chosen.rows = [
        ["From", p.first_day],
        ["To", p.last_day],
        ["Days and hours in", p.tz.key],
        ["Campaign", neutralise(campaign_name) if campaign_name else "All campaigns"],
        ["Sender", neutralise(sender_name) if sender_name else "All senders"],
    ]
    totals = Table("Totals", ["", "Messages"], widths={0: 22})
    totals.rows = [[KIND_LABELS[k], getattr(o.totals, k)] for k in kinds]
    totals.rows.append(["Opted out", o.opt_out_total])

    labels = [KIND_LABELS[k] for k in kinds]
    days = Table("Messages per day", ["Day", *labels], widths={0: 12})
    days.rows = [[d.day, *[getattr(d.outcomes, k) for k in kinds]] for d in o.days]
    hours = Table("By hour of the day", ["Hour", *labels])
    hours.rows = [[f"{h.hour:02d}:00", *[getattr(h.outcomes, k) for k in kinds]] for h in o.hours]

    funnel = Table("Funnel", ["Step", "Messages", "Of sent"])
    funnel.rows = [
        [KIND_LABELS[s], getattr(o.funnel, s), _share(o.funnel.rate(s))] for s in FUNNEL_STEPS
    ]
    steps = [KIND_LABELS[s] for s in FUNNEL_STEPS]
    campaigns = Table(
        "Funnel per campaign",
        ["Campaign", "Status", "Launched", "Recipients", *steps, "Failed"]
        + [f"{KIND_LABELS[s]} of sent" for s in FUNNEL_STEPS[1:]],
        widths={0: 30, 2: 18},
    )
    for c in o.campaigns:
        launched = c.launched_at.astimezone(p.tz).replace(tzinfo=None) if c.launched_at else None
        campaigns.rows.append(
            [neutralise(c.name), c.status, launched, c.total]
            + [getattr(c.funnel, s) for s in FUNNEL_STEPS]
            + [c.failed]
            + [_share(c.funnel.rate(s)) for s in FUNNEL_STEPS[1:]]
        )
    failures = Table(
        "Failure reasons", ["Reason", "Code", "Messages", "What it said"], widths={0: 30, 3: 60}
    )
    failures.rows = [
        [f.label, neutralise(f.code), f.count, neutralise(f.sentence) if f.sentence else None]
        for f in o.failures
    ]
    billed = Table("Billed by Meta", ["Category", "Messages"], widths={0: 36})
    billed.rows = [[b.label, b.count] for b in o.billed]
    senders = Table("Senders", ["Sender", "Sent", "Failed", "Failure rate"], widths={0: 24})
    senders.rows = [
        [neutralise(s.name), s.sent, s.failed, _share(s.failure_rate)] for s in o.senders
    ]
    opt_outs = Table("Opt-outs per day", ["Day", "Opted out"], widths={0: 12})
    opt_outs.rows = [[d.day, d.count] for d in o.opt_outs]
    return [chosen, totals, days, hours, funnel, campaigns, failures, billed, senders, opt_outs]


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
        sheet = workbook.add_worksheet(table.title)  # every title is within Excel's 31
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
