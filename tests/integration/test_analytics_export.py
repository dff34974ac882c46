"""The Analytics page's downloads: the same figures as Excel (typed cells) and as CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import update

from tests.analytics_support import failed, seed_outcomes, sent, signed_in
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.models import Campaign, Role

IST = ZoneInfo("Asia/Kolkata")
PERIOD = "from=2026-03-01&to=2026-03-07"
NASTY = '=HYPERLINK("http://evil.example","win")'


def ist(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=IST)


def _history(dual):  # type: ignore[no-untyped-def]
    app, db = dual
    lst = make_contacts(db, phones(4, "+9198111"), "Pune")
    sender = make_sender(db, "Pune phone")
    campaign = make_campaign(db, [lst], [sender], name="Holi offer")
    with db.session() as session:
        # A campaign named like a formula: the files must keep it text.
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign)
            .values(name=NASTY, launched_at=ist(1, 9, 0))
        )
    seed_outcomes(
        db,
        campaign,
        sender,
        [
            sent(ist(1, 10, 0), "read", delivered_at=ist(1, 10, 1), read_at=ist(1, 11, 0)),
            sent(ist(2, 9, 15), "delivered", delivered_at=ist(2, 9, 16)),
            sent(ist(2, 9, 20)),
            failed(ist(3, 14, 45), "not_on_whatsapp"),
        ],
    )
    return signed_in(app, db, Role.VIEWER, "Asia/Kolkata"), campaign


def test_the_page_offers_excel_and_csv_for_the_chosen_filter(dual) -> None:
    client, campaign = _history(dual)
    html = client.get(f"/analytics?{PERIOD}&campaign={campaign}").get_data(as_text=True)
    query = f"from=2026-03-01&amp;to=2026-03-07&amp;campaign={campaign}"
    assert f'href="/analytics.xlsx?{query}" data-testid="export-xlsx">Excel (.xlsx)<' in html
    assert f'href="/analytics.csv?{query}" data-testid="export-csv">CSV<' in html


def test_excel_holds_each_table_with_numbers_dates_and_percentages(dual) -> None:
    client, _ = _history(dual)
    response = client.get(f"/analytics.xlsx?{PERIOD}")
    assert response.status_code == 200
    assert response.mimetype == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="wabulk-analytics-2026-03-01-2026-03-07.xlsx"'
    )
    book = load_workbook(io.BytesIO(response.get_data()))
    assert book.sheetnames == [
        "Chosen",
        "Totals",
        "Messages per day",
        "By hour of the day",
        "Funnel",
        "Funnel per campaign",
        "Failure reasons",
        "Billed by Meta",
        "Senders",
        "Opt-outs per day",
    ]
    values = {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames}
    assert values["Chosen"][:3] == [
        ("From", datetime(2026, 3, 1)),
        ("To", datetime(2026, 3, 7)),
        ("Days and hours in", "Asia/Kolkata"),
    ]
    assert values["Totals"][1:] == [
        ("Sent", 3),
        ("Delivered", 2),
        ("Read", 1),
        ("Replied", 0),
        ("Failed", 1),
        ("Opted out", 0),
    ]
    days = values["Messages per day"]
    assert days[0] == ("Day", "Sent", "Delivered", "Read", "Replied", "Failed")
    assert days[1:4] == [
        (datetime(2026, 3, 1), 1, 1, 1, 0, 0),
        (datetime(2026, 3, 2), 2, 1, 0, 0, 0),
        (datetime(2026, 3, 3), 0, 0, 0, 0, 1),
    ]
    assert len(days) == 8
    day_cell = book["Messages per day"]["A2"]
    assert day_cell.is_date and day_cell.number_format == "yyyy-mm-dd"
    assert book["Messages per day"]["B2"].data_type == "n"
    hours = values["By hour of the day"]
    assert len(hours) == 25 and hours[10] == ("09:00", 2, 1, 0, 0, 0)

    funnel = book["Funnel"]
    assert [c.value for c in funnel[3]] == ["Delivered", 2, 2 / 3]
    assert funnel["C3"].number_format == "0.0%"
    per_campaign = values["Funnel per campaign"]
    assert per_campaign[0][:4] == ("Campaign", "Status", "Launched", "Recipients")
    # The name stays text; the launch is a date in the reader's zone.
    assert per_campaign[1][0] == "'" + NASTY and per_campaign[1][2] == datetime(2026, 3, 1, 9, 0)
    assert per_campaign[1][4:9] == (3, 2, 1, 0, 1)
    assert values["Failure reasons"][1][:3] == ("Number not on WhatsApp", "not_on_whatsapp", 1)
    assert values["Senders"][1] == ("Pune phone", 3, 1, 0.25)
    assert book["Senders"]["D2"].number_format == "0.0%"
    assert all(
        c.data_type != "f" for sheet in book.worksheets for row in sheet.iter_rows() for c in row
    )


def test_csv_holds_the_same_tables_as_titled_blocks(dual) -> None:
    client, campaign = _history(dual)
    response = client.get(f"/analytics.csv?{PERIOD}&campaign={campaign}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="wabulk-analytics-2026-03-01-2026-03-07.csv"'
    )
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    blocks: dict[str, list[list[str]]] = {}
    title = None
    for row in rows:
        if not row:
            title = None
        elif title is None:
            title = row[0]
            blocks[title] = []
        else:
            blocks[title].append(row)
    assert list(blocks) == [
        "Chosen",
        "Totals",
        "Messages per day",
        "By hour of the day",
        "Funnel",
        "Funnel per campaign",
        "Failure reasons",
        "Billed by Meta",
        "Senders",
        "Opt-outs per day",
    ]
    assert ["Campaign", "'" + NASTY] in blocks["Chosen"]
    assert blocks["Messages per day"][2] == ["2026-03-02", "2", "1", "0", "0", "0"]
    assert blocks["Funnel"][2] == ["Delivered", "2", "66.7%"]
    assert blocks["Senders"][1] == ["Pune phone", "3", "1", "25.0%"]
    campaign_row = blocks["Funnel per campaign"][1]
    assert campaign_row[:4] == ["'" + NASTY, "running", "2026-03-01 09:00", "4"]
    assert all(not cell.startswith("=") for row in rows for cell in row)


def test_a_bad_filter_is_named_and_visitors_must_sign_in(dual) -> None:
    signed, _ = _history(dual)
    response = signed.get("/analytics.xlsx?from=2026-13-01")
    assert response.status_code == 400
    assert re.search(r"From", response.get_data(as_text=True))
    assert signed.get("/analytics.pdf").status_code == 404
    anonymous = dual[0].test_client()
    for ext in ("xlsx", "csv"):
        answer = anonymous.get(f"/analytics.{ext}")
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
