"""Campaign report downloads (CSV, XLSX) and the printable summary, over HTTP."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select, update

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.auth import service as users
from wabulk.campaigns import report, report_fields
from wabulk.db import Database
from wabulk.models import (
    Campaign,
    Contact,
    Import,
    ImportKind,
    Inbound,
    Message,
    MessageStat,
    MessageStatus,
    Role,
)

from ..conftest import PASSWORD, login

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
IST = ZoneInfo("Asia/Kolkata")
NASTY = {
    0: '=HYPERLINK("http://evil.example","click")',
    1: "+SUM(1,2)",
    2: "-2+3",
    3: "@cmd",
}


def _client(app: Flask, db: Database, role: Role, timezone: str = "") -> FlaskClient:
    client = app.test_client()
    email = f"{role.value}-{timezone.replace('/', '-') or 'utc'}@example.com"
    with db.session() as session:
        user = users.create_user(session, None, email, PASSWORD, role)
        if timezone:
            users.set_timezone(session, user, timezone)
    assert login(client, email).status_code == 302
    return client


# Each contact's fields, by phone index: text that looks like a number stays text, a
# JSON number is a number, a formula in a field is neutralised, a field named like a
# report column gets its own header.
FIELDS = {
    0: {"city": "Pune", "customer no": "00123", "due": 1250.5, "status": "gold"},
    1: {"city": "=cmd|' /C calc'!A0", "customer no": "00124"},
    2: {"city": "Delhi", "due": 0},
    3: {},
    4: {"customer no": "00127", "due": 80},
}
BODIES = {0: "Hello Asha, *20% off* today", 2: "=1+2 is our price", 4: "Hi\nRavi"}


def _campaign_with_outcomes(db: Database) -> int:
    """Five recipients, by phone: delivered, failed, read with two replies, queued, sent.

    - Message ids need not follow the phones (PostgreSQL's INSERT … SELECT picks its order).
    """
    lst = make_contacts(db, phones(5), "Customers")
    sender = make_sender(db, "Shop phone")
    with db.session() as session:
        for i, name in NASTY.items():
            session.execute(update(Contact).where(Contact.phone == phones(5)[i]).values(name=name))
        for i, attributes in FIELDS.items():
            session.execute(
                update(Contact).where(Contact.phone == phones(5)[i]).values(attributes=attributes)
            )
    campaign_id = make_campaign(db, [lst], [sender], name="Diwali sale: 20% off!")
    with db.session() as session:
        ids = list(
            session.scalars(
                select(Message.id).where(Message.campaign_id == campaign_id).order_by(Message.phone)
            )
        )
        moves = [
            {"status": MessageStatus.DELIVERED, "sent_at": T0, "delivered_at": T0 + timedelta(1)},
            {
                "status": MessageStatus.FAILED,
                "failed_at": T0,
                "attempts": 3,
                "error_code": "131026",
                "error_detail": "=Message undeliverable",
            },
            {
                "status": MessageStatus.READ,
                "sent_at": T0,
                "delivered_at": T0,
                "read_at": T0 + timedelta(minutes=5),
                "replied_at": T0 + timedelta(minutes=9),
                "billed_category": "marketing",
            },
            {},
            {"status": MessageStatus.SENT, "sent_at": T0},
        ]
        for i, (message_id, values) in enumerate(zip(ids, moves, strict=True)):
            if i in BODIES:
                values["body"] = BODIES[i]
            values.setdefault("queued_at", T0 - timedelta(hours=1))
            if "sent_at" in values or "failed_at" in values:
                values.setdefault("attempts", 1)
                values["sender_id"] = sender
            session.execute(update(Message).where(Message.id == message_id).values(**values))
        read = session.get(Message, ids[2])
        for minutes, body in ((7, "Is it on in Pune too?"), (9, "=1+1 thanks")):
            session.add(
                Inbound(
                    phone=read.phone,
                    contact_id=read.contact_id,
                    campaign_id=campaign_id,
                    message_id=read.id,
                    body=body,
                    received_at=T0 + timedelta(minutes=minutes),
                )
            )
    return campaign_id


FIELD_NAMES = ["city", "customer no", "due", "status"]  # no import: by name


def _expected(db: Database, campaign_id: int, zone: ZoneInfo) -> list[list[object]]:
    """The report's typed cells as they should be, built independently of the report code.

    - None is an empty cell; times are naive, in `zone`; attempts and numeric fields are
      numbers.
    """

    def when(value: datetime | None) -> datetime | None:
        return value.astimezone(zone).replace(tzinfo=None) if value else None

    def safe(value: object) -> str | None:
        if value is None:
            return None
        text = str(value)
        return (
            "'" + text
            if text[:1] in tuple("=+-@") and not re.fullmatch(r"[+-]?\d+", text)
            else text
        )

    out = []
    with db.session() as session:
        rows = session.execute(
            select(Message, Contact.name, Contact.attributes)
            .join(Contact, Contact.id == Message.contact_id)
            .where(Message.campaign_id == campaign_id)
            .order_by(Message.id)
        ).all()
        for m, name, attributes in rows:
            replies = session.scalars(
                select(Inbound.body).where(Inbound.message_id == m.id).order_by(Inbound.received_at)
            ).all()
            fields = [attributes.get(k) for k in FIELD_NAMES]
            out.append(
                [
                    m.phone,
                    safe(name),
                    *[v if isinstance(v, int | float) else safe(v) for v in fields],
                    m.status.value,
                    m.error_code,
                    safe(m.error_detail),
                    m.attempts,
                    "Shop phone" if m.sender_id else None,
                    *[
                        when(getattr(m, f"{c}_at"))
                        for c in ("queued", "sent", "delivered", "read", "failed", "replied")
                    ],
                    safe(m.body),
                    safe(replies[-1]) if replies else None,
                    m.billed_category,
                ]
            )
    return out


def _as_csv(rows: list[list[object]]) -> list[list[str]]:
    def text(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return str(value)

    return [[text(v) for v in row] for row in rows]


def _xlsx_cells(response) -> list[list[object]]:  # type: ignore[no-untyped-def]
    data = response.get_data()
    response.close()  # as a server would: send_file's open file is let go
    book = load_workbook(io.BytesIO(data), read_only=True)
    cells = [list(row) for row in book.active.iter_rows(values_only=True)]
    book.close()
    return cells


def _header(zone: str) -> list[str]:
    return [
        "phone",
        "name",
        "city",
        "customer no",
        "due",
        "status (field)",
        "status",
        "error code",
        "error",
        "attempts",
        "sender",
        *[f"{c} ({zone})" for c in ("queued", "sent", "delivered", "read", "failed", "replied")],
        "message",
        "reply",
        "billed as",
    ]


def test_csv_and_xlsx_hold_every_recipient_exactly_in_the_readers_timezone(dual) -> None:
    app, db = dual
    campaign_id = _campaign_with_outcomes(db)
    client = _client(app, db, Role.VIEWER, "Asia/Kolkata")
    expected = _expected(db, campaign_id, IST)
    header = _header("Asia/Kolkata")

    # buffered: the test client closes the streamed answer, and with it the request's
    # database session, at once, as a real server does once it has sent it.
    response = client.get(f"/campaigns/{campaign_id}/report.csv", buffered=True)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="Diwali-sale-20-off-report.csv"'
    )
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == header
    assert table[1:] == _as_csv(expected)

    # Spot checks against hand-worked values, so the expectation above cannot drift with
    # the code: 09:30 UTC is 15:00 in India; the newest reply wins; formulas stay text.
    by_phone = {row[0]: dict(zip(header, row, strict=True)) for row in table[1:]}
    delivered, failed, read, queued, sent = (by_phone[p] for p in phones(5))
    assert delivered["name"] == "'" + NASTY[0]
    assert delivered["sent (Asia/Kolkata)"] == "2026-11-20 15:00:00"
    assert delivered["delivered (Asia/Kolkata)"] == "2026-11-21 15:00:00"
    assert (delivered["city"], delivered["customer no"], delivered["due"]) == (
        "Pune",
        "00123",
        "1250.5",
    )
    assert delivered["status (field)"] == "gold" and delivered["status"] == "delivered"
    assert delivered["message"] == BODIES[0]
    assert [failed[k] for k in header[1:11]] == [
        "'+SUM(1,2)",
        "'=cmd|' /C calc'!A0",
        "00124",
        "",
        "",
        "failed",
        "131026",
        "'=Message undeliverable",
        "3",
        "Shop phone",
    ]
    assert failed["failed (Asia/Kolkata)"] == "2026-11-20 15:00:00" and failed["message"] == ""
    assert read["name"] == "'-2+3" and read["read (Asia/Kolkata)"] == "2026-11-20 15:05:00"
    assert [read[k] for k in header[-5:]] == [
        "",
        "2026-11-20 15:09:00",
        "'=1+2 is our price",
        "'=1+1 thanks",
        "marketing",
    ]
    assert read["due"] == "0"
    assert queued["name"] == "'@cmd" and queued["status"] == "queued"
    assert [queued[k] for k in header[12:]] == [""] * 8
    assert queued["queued (Asia/Kolkata)"] == "2026-11-20 14:00:00"
    assert sent["phone"] == phones(5)[4] and sent["sender"] == "Shop phone"
    assert sent["message"] == "Hi\nRavi"

    response = client.get(f"/campaigns/{campaign_id}/report.xlsx", buffered=True)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith(
        "attachment; filename=Diwali-sale-20-off-report.xlsx"
    )
    data = response.get_data()
    response.close()
    book = load_workbook(io.BytesIO(data))
    sheet = book["Recipients"]
    cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert cells[0] == header
    assert cells[1:] == expected
    # Typed as a spreadsheet reader needs them: no formula anywhere, times are dates with
    # a date format, attempts and numeric fields are numbers, look-alike numbers stay text.
    column = {name: i + 1 for i, name in enumerate(header)}
    for row in sheet.iter_rows(min_row=2):
        assert all(c.data_type != "f" for c in row)
        queued_at = row[column["queued (Asia/Kolkata)"] - 1]
        assert queued_at.is_date and queued_at.number_format == "yyyy-mm-dd hh:mm:ss"
        assert row[column["attempts"] - 1].data_type == "n"
    first = {r[0]: dict(zip(header, r, strict=True)) for r in cells[1:]}[phones(5)[0]]
    assert first["queued (Asia/Kolkata)"] == datetime(2026, 11, 20, 14, 0)
    assert first["delivered (Asia/Kolkata)"] == datetime(2026, 11, 21, 15, 0)
    assert first["due"] == 1250.5 and first["customer no"] == "00123"
    assert first["attempts"] == 1 and isinstance(first["attempts"], int)
    assert first["read (Asia/Kolkata)"] is None and first["reply"] is None
    book.close()
    # The temporary file is gone once sent.
    assert list((app.extensions["wabulk.settings"].instance_path / "tmp").iterdir()) == []


def test_times_are_utc_for_a_reader_without_a_timezone(dual) -> None:
    app, db = dual
    campaign_id = _campaign_with_outcomes(db)
    client = _client(app, db, Role.VIEWER)
    table = list(
        csv.reader(
            io.StringIO(
                client.get(f"/campaigns/{campaign_id}/report.csv", buffered=True).get_data(
                    as_text=True
                )
            )
        )
    )
    sent = _header("UTC").index("sent (UTC)")
    assert table[0][sent] == "sent (UTC)" and table[1][sent] == "2026-11-20 09:30:00"
    assert table[1:] == _as_csv(_expected(db, campaign_id, ZoneInfo("UTC")))


def test_rows_are_read_in_id_windows_without_loss_or_repeat(dual) -> None:
    _app, db = dual
    campaign_id = _campaign_with_outcomes(db)
    # Another campaign's messages between ours, and gaps in our ids: every window size must
    # still give each of our recipients once and nobody else's.
    lst = make_contacts(db, phones(6, "+9177"), "Late joiners")
    other = make_campaign(db, [lst], [make_sender(db, "Other")], name="Other", launch=False)
    with db.session() as session:
        contacts = session.scalars(
            select(Contact.id).where(Contact.phone.in_(phones(6, "+9177"))).order_by(Contact.id)
        ).all()
        for i, contact_id in enumerate(contacts):
            session.add(
                Message(
                    campaign_id=campaign_id if i % 2 else other,
                    contact_id=contact_id,
                    phone=phones(6, "+9177")[i],
                )
            )
            session.flush()
    with db.session() as session:
        fields = report_fields.field_names(session, campaign_id)
        assert fields == FIELD_NAMES
        whole = list(report.rows(session, campaign_id, "Asia/Kolkata", fields=fields))
        for size in (1, 2, 3, 4, 5, 7):
            assert (
                list(report.rows(session, campaign_id, "Asia/Kolkata", batch=size, fields=fields))
                == whole
            )
        assert list(report.rows(session, 9999, "UTC")) == []
    assert len(whole) == 8
    # Empty text is "" here, an empty cell once written.
    assert [[None if v == "" else v for v in row] for row in whole] == _expected(
        db, campaign_id, IST
    )


def test_a_campaign_over_a_sheets_rows_continues_on_another_sheet(dual, tmp_path) -> None:
    _app, db = dual
    campaign_id = _campaign_with_outcomes(db)
    path = tmp_path / "report.xlsx"
    with db.session() as session:
        assert report.write_xlsx(session, campaign_id, "UTC", path, rows_per_sheet=2) == 5
    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["Recipients", "Recipients 2", "Recipients 3", "Totals"]
    sheets = [list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets[:-1]]
    book.close()
    assert [len(rows) for rows in sheets] == [3, 3, 2]  # each with its header
    assert all(rows[0][0] == "phone" for rows in sheets)
    phones_written = [row[0] for rows in sheets for row in rows[1:]]
    assert phones_written == [row[0] for row in _expected(db, campaign_id, ZoneInfo("UTC"))]


def test_an_empty_campaign_downloads_its_header_only(dual) -> None:
    app, db = dual
    lst = make_contacts(db, [], "Nobody yet")
    draft = make_campaign(db, [lst], [make_sender(db)], name="مرحبا", launch=False)
    client = _client(app, db, Role.VIEWER)
    response = client.get(f"/campaigns/{draft}/report.csv", buffered=True)
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="campaign-{draft}-report.csv"'
    )
    lines = response.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert len(lines) == 1 and lines[0].startswith("phone,name,status,")
    cells = _xlsx_cells(client.get(f"/campaigns/{draft}/report.xlsx", buffered=True))
    assert [row[0] for row in cells] == ["phone"]


def test_viewers_may_download_and_anonymous_visitors_are_sent_to_sign_in(
    client, as_role, make_user, db
) -> None:
    make_user(Role.ADMIN)  # with nobody at all, every page leads to the first-run setup
    lst = make_contacts(db, phones(2), "Customers")
    campaign_id = make_campaign(db, [lst], [make_sender(db)])
    urls = [f"/campaigns/{campaign_id}/report.{ext}" for ext in ("csv", "xlsx")]
    urls.append(f"/campaigns/{campaign_id}/summary")
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    as_role(Role.VIEWER)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        response.close()
    missing = client.get("/campaigns/9999/report.csv", buffered=True)
    assert missing.status_code == 404 and "There is no campaign" in missing.get_data(as_text=True)
    assert client.get("/campaigns/9999/report.xlsx", buffered=True).status_code == 404
    assert client.get("/campaigns/9999/summary").status_code == 404


def test_the_campaign_page_links_the_report_and_summary(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    lst = make_contacts(db, phones(2), "Customers")
    launched = make_campaign(db, [lst], [make_sender(db)])
    page = client.get(f"/campaigns/{launched}").get_data(as_text=True)
    links = re.search(r'data-testid="report-links">(.*?)</ul>', page, re.S)
    assert links
    for end in ("summary", "report.xlsx", "report.csv"):
        assert f'href="/campaigns/{launched}/{end}"' in links.group(1)
    draft = make_campaign(db, [lst], [make_sender(db, "Other")], launch=False, name="Draft")
    assert 'data-testid="report-links"' not in client.get(f"/campaigns/{draft}").get_data(
        as_text=True
    )


def _stat(campaign_id: int, code: str, n: int, slot: datetime = T0) -> MessageStat:
    return MessageStat(
        slot=slot, campaign_id=campaign_id, sender_id=1, kind="failed", code=code, n=n
    )


def test_the_summary_shows_counters_funnel_and_top_failure_reasons(dual) -> None:
    app, db = dual
    campaign_id = _campaign_with_outcomes(db)
    with db.session() as session:
        # Counters as maintained (here set by hand): 200 recipients.
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(
                total=200,
                n_queued=20,
                n_sent=40,
                n_delivered=60,
                n_read=50,
                n_failed=30,
                n_skipped=0,
                n_replied=10,
            )
        )
        session.add_all(
            [
                _stat(campaign_id, "131026", 12),
                _stat(campaign_id, "131026", 6, T0 + timedelta(minutes=15)),
                _stat(campaign_id, "", 2),
                _stat(campaign_id, "browser_failed", 10),
                _stat(campaign_id, "retried_away", 0),  # failed once, queued again since
                _stat(campaign_id + 1, "other_campaign", 99),
                MessageStat(slot=T0, campaign_id=campaign_id, sender_id=1, kind="sent", n=500),
            ]
        )
    client = _client(app, db, Role.VIEWER, "Asia/Kolkata")
    response = client.get(f"/campaigns/{campaign_id}/summary")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Diwali sale: 20% off!" in page and "Shop phone" in page and "Customers" in page
    assert " got it:" in page and "{{ name }}" not in page  # a customer's message, as sent

    statuses = re.search(r'data-testid="summary-statuses">(.*?)</table>', page, re.S).group(1)
    cells = re.findall(r"<tr><td>(\w+)</td><td[^>]*>([\d,]+)</td><td[^>]*>([\d.]+)%</td>", statuses)
    assert ("Waiting", "20", "10.0") in cells and ("Failed", "30", "15.0") in cells
    assert ("Delivered", "60", "30.0") in cells
    assert not any(label in ("Sending", "Unknown") for label, _, _ in cells)  # zero: left out

    funnel = {
        step: (n, pct)
        for step, n, pct in re.findall(
            r'data-step="(\w+)">.*?data-field="n">([\d,]+)<.*?data-field="percent">([\d.]+)%',
            page,
            re.S,
        )
    }
    assert funnel == {
        "sent": ("150", "75.0"),  # sent + delivered + read: each counted once, at its furthest
        "delivered": ("110", "55.0"),
        "read": ("50", "25.0"),
        "replied": ("10", "5.0"),
    }
    flat = " ".join(page.split())
    for share in ("(73.3% of sent)", "(45.5% of delivered)", "(20.0% of read)"):
        assert share in flat
    failures = re.search(r'data-testid="summary-failures">(.*?)</table>', page, re.S).group(1)
    # Meta's numbers are shown for a search or a support ticket; wabulk's own codes are not.
    assert re.findall(r"<code>([^<]+)</code>", failures) == ["131026"]
    assert "=Message undeliverable" in failures  # the sentence one such failure gave
    rows = re.findall(r'<td class="text-end">([\d,]+)</td><td class="text-end">([\d.]+)%', failures)
    assert rows == [("18", "60.0"), ("10", "33.3"), ("2", "6.7")]
    assert "other_campaign" not in page and "retried_away" not in page

    assert "data-print" in page and "/static/js/print.js" in page
    assert "<script>" not in page and "onclick" not in page  # the CSP forbids inline script


def test_the_summary_of_a_draft_says_there_is_nothing_yet(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    lst = make_contacts(db, phones(1), "Customers")
    draft = make_campaign(db, [lst], [make_sender(db)], launch=False, body="")
    page = client.get(f"/campaigns/{draft}/summary").get_data(as_text=True)
    assert "has not been launched yet" in page and "No message written yet." in page
    assert 'data-testid="summary-funnel"' not in page


def test_a_summary_without_failures_says_so(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    lst = make_contacts(db, phones(3), "Customers")
    campaign_id = make_campaign(db, [lst], [make_sender(db)])
    page = client.get(f"/campaigns/{campaign_id}/summary").get_data(as_text=True)
    assert 'data-testid="summary-no-failures">No message failed.' in page
    assert re.search(r"<td>Waiting</td><td[^>]*>3</td><td[^>]*>100.0%</td>", page)


def test_fields_come_in_the_order_of_the_sheet_they_were_imported_from(dual) -> None:
    _app, db = dual
    campaign_id = _campaign_with_outcomes(db)
    with db.session() as session:
        session.add(
            Import(
                kind=ImportKind.CONTACTS,
                original_name="customers.xlsx",
                stored_path="customers.xlsx",
                sha256="0" * 64,
                # PostgreSQL stores the attributes object in its own key order: the
                # sheet's order is the list of columns.
                mapping={
                    "columns": ["Phone", "Due Amount", "Customer No", "City"],
                    "attributes": {
                        "City": "city",
                        "Customer No": "customer no",
                        "Due Amount": "due",
                    },
                },
            )
        )
    with db.session() as session:
        assert report_fields.field_names(session, campaign_id) == [
            "due",
            "customer no",
            "city",
            "status",  # held by a contact, in no import: after those, by name
        ]
        assert report_fields.field_names(session, 9999) == []
    assert report_fields.field_columns(["=HYPERLINK(1)", "Status", "city"]) == [
        "'=HYPERLINK(1)",
        "Status (field)",
        "city",
    ]
