"""A campaign's per-recipient report (CSV and XLSX) and its one-page summary.

- Recipients are read in id order, one window of `BATCH` ids per query: a
  million-recipient campaign never sits in memory, and every query is as cheap as the first.
- Every text cell goes through the contacts export's formula neutraliser, so a contact
  named `=HYPERLINK(...)` stays text in a spreadsheet.
- Cells are typed: attempts and numeric fields are numbers, times are datetimes in the
  reader's timezone (the zone named in the column header). The workbook writes them as
  Excel numbers and dates; the CSV as plain text.
- Each row holds the message the recipient got (as rendered and sent) and the contact's
  fields, one column per field (`report_fields`).
- The workbook ends with a Totals sheet: the funnel, what Meta billed per category and why
  messages failed.
- The summary reads only maintained numbers: the campaign's counters and `message_stats`
  (failures by code, what Meta billed per category).
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import has_request_context
from flask_babel import gettext as _
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..analytics import failures as meaning
from ..analytics.billing import BilledCategory, campaign_billed
from ..analytics.queries import failure_label
from ..contacts.export import neutralise
from ..models import (
    Campaign,
    Contact,
    Inbound,
    Message,
    MessageStat,
    MessageStatus,
    Sender,
)
from ..zones import zone
from .lifecycle import effective_message, get_campaign
from .render_budget import TEXT_LIMIT
from .report_fields import field_cell, field_columns, field_names

BATCH = 5000
TIME_COLUMNS = ("queued", "sent", "delivered", "read", "failed", "replied")
SHEET_ROWS = 1_048_575  # Excel's row limit, less the header
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# How many failed messages are read to find a sentence for each top failure code: a bounded
# sample (one indexed, LIMITed query), so a campaign with a million failures costs the same.
EXAMPLE_SAMPLE = 2000


DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
Cell = str | int | float | datetime | None


def header(tz_name: str | None, fields: list[str] | None = None) -> list[str]:
    """The report's column names; time columns name the zone their times are in.

    - The contact's fields follow its name; the message goes before the reply to it.
    """
    tz = zone(tz_name).key
    times = {
        "queued": _("queued (%(zone)s)", zone=tz),
        "sent": _("sent (%(zone)s)", zone=tz),
        "delivered": _("delivered (%(zone)s)", zone=tz),
        "read": _("read (%(zone)s)", zone=tz),
        "failed": _("failed (%(zone)s)", zone=tz),
        "replied": _("replied (%(zone)s)", zone=tz),
    }
    return [
        _("phone"),
        _("name"),
        *field_columns(fields or []),
        _("status"),
        _("error code"),
        _("error"),
        _("attempts"),
        _("sender"),
        *[times[col] for col in TIME_COLUMNS],
        _("message"),
        _("reply"),
        _("billed as"),
    ]


def status_words() -> dict[str, str]:
    """The recipients' statuses in the report's language, as its headers are (English for the
    API and without a reader); the recipients table's words for them."""
    return {
        "queued": _("queued"),
        "sending": _("sending"),
        "sent": _("sent"),
        "delivered": _("delivered"),
        "read": _("read"),
        "failed": _("failed"),
        "skipped": _("skipped"),
        "unknown": _("unknown"),
    }


def _window(campaign_id: int, first_id: int, size: int) -> Select:  # type: ignore[type-arg]
    """The campaign's messages with ids in [first_id, first_id + size), by id.

    - A closed id range, not `id > last LIMIT n`: no index leads with (campaign_id, id), so
      a planner taking the campaign's index would read and sort all its rows for every
      batch. `campaign_id + 0` keeps that index out of reach (SQLite prefers any equality
      index), leaving the narrow primary-key range, cheap on both databases.
    - A campaign's messages are inserted by one INSERT … SELECT, so its ids are close
      together and each window holds about `size` of them.
    - Plain columns, not ORM objects: nothing piles up in the session's identity map.
    """
    return (
        select(
            Message.id,
            Message.phone,
            Contact.name.label("contact_name"),
            Message.status,
            Message.error_code,
            Message.error_detail,
            Message.attempts,
            Sender.name.label("sender_name"),
            Message.queued_at,
            Message.sent_at,
            Message.delivered_at,
            Message.read_at,
            Message.failed_at,
            Message.replied_at,
            Message.billed_category,
            # What was sent is within WhatsApp's limit; the cut only bounds a stray row.
            func.substr(Message.body, 1, TEXT_LIMIT).label("body"),
            Contact.attributes,
        )
        .join(Contact, Contact.id == Message.contact_id)
        .outerjoin(Sender, Sender.id == Message.sender_id)
        .where(
            Message.campaign_id + 0 == campaign_id,
            Message.id >= first_id,
            Message.id < first_id + size,
        )
        .order_by(Message.id)
    )


def _latest_replies(session: Session, campaign_id: int, first_id: int, size: int) -> dict[int, str]:
    """The newest reply to each message of the same window as `_window`.

    - Joined through the message's contact (ix_inbound_contact_id_received_at): a contact
      has few replies, while ix_inbound_campaign_id would read every reply of the campaign
      for every window. No list of ids is sent, so the query stays small.
    """
    query = (
        select(Inbound.message_id, Inbound.kind, Inbound.body)
        .join(
            Message,
            (Message.contact_id == Inbound.contact_id) & (Message.id == Inbound.message_id),
        )
        .where(
            Message.campaign_id + 0 == campaign_id,
            Message.id >= first_id,
            Message.id < first_id + size,
        )
        .order_by(Inbound.received_at, Inbound.id)
    )
    return {message_id: body or f"({kind})" for message_id, kind, body in session.execute(query)}


def rows(
    session: Session,
    campaign_id: int,
    tz_name: str | None,
    batch: int = BATCH,
    fields: list[str] | None = None,
) -> Iterator[list[Cell]]:
    """Every recipient of the campaign as typed report cells, in id order.

    - Text is neutralised ("" when empty); numbers stay numbers; times are naive datetimes
      in the reader's zone (a spreadsheet has no timezones: the header names it), None when
      the step never happened.
    """
    tz = zone(tz_name)
    fields = fields or []
    text = neutralise
    statuses = status_words()

    def when(value: datetime | None) -> datetime | None:
        return value.astimezone(tz).replace(tzinfo=None) if value else None

    span = session.execute(
        select(func.min(Message.id), func.max(Message.id)).where(Message.campaign_id == campaign_id)
    ).one()
    if span[0] is None:
        return
    first, last = span
    while first <= last:
        chunk = session.execute(_window(campaign_id, first, batch)).all()
        replies = _latest_replies(session, campaign_id, first, batch) if chunk else {}
        first += batch
        for r in chunk:
            attrs = r.attributes if isinstance(r.attributes, dict) else {}
            yield [
                text(r.phone),
                text(r.contact_name),
                *[field_cell(attrs.get(key)) for key in fields],
                statuses.get(r.status.value, r.status.value),
                text(r.error_code),
                text(r.error_detail),
                r.attempts,
                text(r.sender_name),
                when(r.queued_at),
                when(r.sent_at),
                when(r.delivered_at),
                when(r.read_at),
                when(r.failed_at),
                when(r.replied_at),
                text(r.body),
                text(replies.get(r.id)),
                text(r.billed_category),
            ]


def csv_chunks(
    session: Session, campaign_id: int, tz_name: str | None, rows_per_chunk: int = 1000
) -> Iterator[str]:
    """The report as CSV text pieces for a streamed response.

    - Starts with a byte-order mark: Excel then reads the file as UTF-8 (names in Hindi,
      emoji in replies) instead of the machine's legacy code page.
    """
    fields = field_names(session, campaign_id)
    columns = header(tz_name, fields)
    # Only the times need words; the csv module writes None as "" and numbers as digits.
    first = len(columns) - 3 - len(TIME_COLUMNS)
    times = range(first, first + len(TIME_COLUMNS))
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    writer.writerow(columns)
    for n, row in enumerate(rows(session, campaign_id, tz_name, fields=fields), start=1):
        for i in times:
            value = row[i]
            row[i] = value.strftime("%Y-%m-%d %H:%M:%S") if value else ""  # type: ignore[union-attr]
        writer.writerow(row)
        if n % rows_per_chunk == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def write_xlsx(
    session: Session,
    campaign_id: int,
    tz_name: str | None,
    path: Path,
    rows_per_sheet: int = SHEET_ROWS,
) -> int:
    """Write the report to `path`; returns the number of recipients."""
    import xlsxwriter

    campaign = get_campaign(session, campaign_id)
    # constant_memory writes row by row and flushes each: memory stays flat at any size.
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    bold = workbook.add_format({"bold": True})
    stamp = workbook.add_format({"num_format": DATE_FORMAT})
    fields = field_names(session, campaign.id)
    columns = header(tz_name, fields)
    widths = {_("phone"): 16, _("error"): 40, _("message"): 50, _("reply"): 40, _("billed as"): 16}

    def new_sheet(number: int) -> Any:
        sheet = workbook.add_worksheet(
            _("Recipients") if number == 1 else _("Recipients %(n)s", n=number)
        )
        for col, name in enumerate(columns):
            sheet.write_string(0, col, name, bold)
            times = col >= len(columns) - 3 - len(TIME_COLUMNS) and col < len(columns) - 3
            width = 20 if times else widths.get(name)
            if width:
                sheet.set_column(col, col, width)
        sheet.freeze_panes(1, 0)
        return sheet

    sheets, sheet, line, n = 1, new_sheet(1), 0, 0
    for row in rows(session, campaign.id, tz_name, fields=fields):
        n += 1
        if line == rows_per_sheet:
            # A sheet holds 1,048,576 rows: a bigger campaign goes on, not cut off.
            sheets += 1
            sheet, line = new_sheet(sheets), 0
        line += 1
        for col, value in enumerate(row):
            if value is None or value == "":
                continue
            if isinstance(value, str):
                sheet.write_string(line, col, value)
            elif isinstance(value, datetime):
                sheet.write_datetime(line, col, value, stamp)
            else:
                sheet.write_number(line, col, value)
    _write_totals(workbook.add_worksheet(_("Totals")), summary(session, campaign.id), bold)
    workbook.close()
    return n


def _shown(text: str | None) -> str | None:
    """A stored English sentence (a failure's, a billing category's) in the reader's language
    when there is a reader."""
    if not text or not has_request_context():
        return text
    from ..web.i18n import translated

    return translated(text)


def _write_totals(sheet: Any, s: Summary, bold: Any) -> None:
    """The campaign's figures beside its recipients: how far messages got, why they failed
    and what Meta billed per category (the printable summary's numbers)."""
    sheet.set_column(0, 0, 34)
    sheet.set_column(3, 3, 60)
    steps = {
        "sent": _("Sent"),
        "delivered": _("Delivered"),
        "read": _("Read"),
        "replied": _("Replied"),
    }
    lines: list[tuple[Any, ...]] = [(_("Recipients"), s.total)]
    lines += [(steps[step.label], step.n) for step in s.funnel]
    failed = next((row.n for row in s.statuses if row.label == "failed"), 0)
    lines += [(_("Failed"), failed), (_("Of the failed, limited by Meta"), s.limited), ()]
    billed_heading, failed_heading = _("Billed by Meta"), _("Why messages failed")
    lines += [(billed_heading, _("messages"))]
    lines += [(_shown(b.label), b.count) for b in s.billed] or [(_("Nothing billed"),)]
    if s.billed:
        lines.append((_("Total billed"), s.billed_total))
    lines += [(), (failed_heading, _("messages"), _("code"), _("what it said"))]
    lines += [(_shown(f.label), f.n, f.code, _shown(f.example) or "") for f in s.failures] or [
        (_("None failed"),)
    ]
    headings = {billed_heading, failed_heading}
    for row, cells in enumerate(lines):
        for col, value in enumerate(cells):
            if isinstance(value, int):
                sheet.write_number(row, col, value)
            else:
                text = str(neutralise(value))
                sheet.write_string(row, col, text, bold if cells[0] in headings else None)


def xlsx_file(session: Session, campaign_id: int, tz_name: str | None, folder: Path) -> Path:
    """The report written to a new file in `folder` (the caller sends, then removes it).

    - A file, not memory: a million rows of XLSX do not fit comfortably in a web worker.
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="report-", suffix=".xlsx", dir=folder)
    os.close(handle)
    path = Path(name)
    try:
        write_xlsx(session, campaign_id, tz_name, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def filename(campaign: Campaign, extension: str) -> str:
    """A download name from the campaign's name, safe in any file system and header."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", campaign.name).strip("-")[:80].strip("-")
    return f"{stem or 'campaign-' + str(campaign.id)}-report.{extension}"


# --- the printable summary -----------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """A number with its part of the whole, for the summary's tables."""

    label: str
    n: int
    percent: float  # of every recipient
    of_previous: float | None = None  # funnel steps: of the step before


@dataclass(frozen=True)
class FailureReason:
    code: str  # "" when the channel gave none
    n: int
    percent: float  # of the failed messages
    example: str | None  # what one such failure said, when the sample holds one
    label: str = ""  # its short name: "Limited by Meta", "Number not on WhatsApp"…


@dataclass(frozen=True)
class Summary:
    campaign: Campaign
    body: str
    total: int
    statuses: list[Share]
    funnel: list[Share]
    failures: list[FailureReason]
    billed: list[BilledCategory]  # what Meta billed, per pricing category
    limited: int  # failed because the customer reached Meta's daily marketing cap (131049)

    @property
    def billed_total(self) -> int:
        return sum(b.count for b in self.billed)


def _percent(n: int, whole: int) -> float:
    return round(100.0 * n / whole, 1) if whole else 0.0


def failure_reasons(session: Session, campaign_id: int, limit: int = 5) -> list[FailureReason]:
    """The most frequent error codes of the campaign's failed messages, most frequent first.

    - Counted from `message_stats` (kind 'failed' holds a message only while it is failed),
      by ix_message_stats_campaign_id_slot; never from the messages table.
    """
    n = func.sum(MessageStat.n).label("n")
    top = session.execute(
        select(MessageStat.code, n)
        .where(MessageStat.campaign_id == campaign_id, MessageStat.kind == "failed")
        .group_by(MessageStat.code)
        .having(func.sum(MessageStat.n) > 0)
        .order_by(n.desc(), MessageStat.code)
        .limit(limit)
    ).all()
    if not top:
        return []
    campaign = session.get(Campaign, campaign_id)  # loaded already by the summary
    failed = campaign.n_failed if campaign else 0
    examples: dict[str, str] = {}
    # ix_messages_campaign_id_status_next_attempt_at serves campaign_id + status.
    sample = session.execute(
        select(Message.error_code, Message.error_detail)
        .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.FAILED)
        .limit(EXAMPLE_SAMPLE)
    )
    for code, detail in sample:
        if detail:
            examples.setdefault(code or "", detail)
    missing = [code for code, _ in top if code not in examples]
    examples.update(meaning.sentences(session, missing, campaign_id))
    return [
        FailureReason(
            code,
            int(count),
            _percent(int(count), int(failed)),
            examples.get(code),
            meaning.provider_label(code, examples.get(code))
            if meaning.is_provider_code(code)
            else failure_label(code),
        )
        for code, count in top
    ]


def summary(session: Session, campaign_id: int) -> Summary:
    """Everything the printable one-page summary shows."""
    campaign = get_campaign(session, campaign_id)
    body, _media_id = effective_message(session, campaign)
    total = campaign.total
    statuses = []
    for status in MessageStatus:
        n = getattr(campaign, f"n_{status.value}")
        statuses.append(Share(status.value, n, _percent(n, total)))
    # Counters hold each message's current status: a read message counts once, under read,
    # so a step of the funnel is its own counter plus those of every later step.
    reached = [
        ("sent", campaign.n_sent + campaign.n_delivered + campaign.n_read),
        ("delivered", campaign.n_delivered + campaign.n_read),
        ("read", campaign.n_read),
        ("replied", campaign.n_replied),
    ]
    funnel: list[Share] = []
    previous: int | None = None
    for label, n in reached:
        funnel.append(
            Share(
                label,
                n,
                _percent(n, total),
                None if previous is None else _percent(n, previous),
            )
        )
        previous = n
    return Summary(
        campaign=campaign,
        body=body,
        total=total,
        statuses=statuses,
        funnel=funnel,
        failures=failure_reasons(session, campaign_id),
        billed=campaign_billed(session, campaign_id),
        limited=_limited(session, campaign_id),
    )


def _limited(session: Session, campaign_id: int) -> int:
    """Failed messages held back by Meta's per-customer marketing cap (message_stats)."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(MessageStat.n), 0)).where(
                MessageStat.campaign_id == campaign_id,
                MessageStat.kind == "failed",
                MessageStat.code == meaning.LIMITED_BY_META,
            )
        )
        or 0
    )
