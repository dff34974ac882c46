"""The funnel on every page: campaign page (and its poll), dashboard, analytics, summary,
report and contact history, from one campaign that reached every step; and the empty states
of a campaign where nothing happened yet. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import html
import io
import re

from openpyxl import load_workbook
from sqlalchemy import delete, select, update

from tests.analytics_support import signed_in
from tests.campaigns_support import (
    FakeClock,
    drive,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from tests.funnel_support import LIMITED, NOT_ON_WHATSAPP, funnel_campaign, quiet_campaign
from wabulk import inbound
from wabulk.analytics import settled, stats
from wabulk.channels.heard import Heard, HeardError, Reply, StatusUpdate
from wabulk.models import Campaign, Message, MessageStat, Role, utcnow


def _flat(text: str) -> str:
    return " ".join(text.split())


def _funnel_cells(page: str) -> dict[str, tuple[str, str]]:
    return {
        key: (n, share)
        for key, n, share in re.findall(
            r'data-funnel="(\w+)">([\d,]+)</div>\s*<div[^>]*data-funnel-percent="\w+"[^>]*>([^<]+)</div>',
            page,
        )
    }


def _section(page: str, testid: str, end: str = "</table>") -> str:
    match = re.search(rf'data-testid="{testid}"(.*?){end}', page, re.S)
    assert match, f"no {testid} on the page"
    return html.unescape(_flat(match.group(1)))


def test_campaign_page_shows_funnel_billing_failures_and_replies(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    client = signed_in(app, db, Role.VIEWER)
    page = client.get(f"/campaigns/{seeded.campaign_id}").get_data(as_text=True)

    assert _funnel_cells(page) == {
        "sent": ("4", "66.7% of recipients"),
        "delivered": ("3", "75.0% of sent"),
        "read": ("2", "50.0% of sent"),
        "replied": ("2", "50.0% of sent"),
        "failed": ("2", "33.3% of recipients"),
    }
    limited = _section(page, "funnel-limited", "</p>")
    assert (
        "hidden" not in limited.split(">")[0]
        and '<strong data-field="limited-n">1</strong>' in limited
    )
    billed = _section(page, "billed", "</p>")
    assert "hidden" not in billed.split(">")[0]
    assert (
        "Marketing <strong>3</strong> · Marketing (Marketing Messages API) <strong>1</strong>"
        in billed
    )

    reasons = _section(page, "failure-reasons")
    rows = re.findall(r'<tr data-code="(\d*)">(.*?)</tr>', reasons)
    assert [code for code, _ in rows] == ["131026", "131049"]  # one each: by code
    by_code = dict(rows)
    assert "Limited by Meta" in by_code["131049"] and LIMITED in by_code["131049"]
    assert NOT_ON_WHATSAPP in by_code["131026"]
    assert "nothing wrong with the number" in by_code["131049"]
    assert "nothing wrong with the number" not in by_code["131026"]
    assert re.search(r'text-end">1</td>', by_code["131049"])

    replies = _section(page, "replies", "</ul>")
    assert "Yes please, two boxes of kaju katli" in replies and "STOP" in replies
    # Newest first; only the STOP reply carries the opted-out mark.
    assert replies.index("STOP") < replies.index("Yes please")
    assert replies.count('data-testid="opted-out"') == 1
    stop_item = replies[: replies.index("Yes please")]
    assert 'data-testid="opted-out"' in stop_item
    assert f'href="/contacts/{seeded.contact_ids[5]}"' in stop_item


def test_the_poll_carries_the_funnel_and_follows_a_new_receipt(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    client = signed_in(app, db, Role.VIEWER)
    url = f"/campaigns/{seeded.campaign_id}/progress.json"
    answer = client.get(url).get_json()
    assert answer["hearing"] is True
    f = answer["funnel"]
    assert {k: f[k] for k in ("sent", "delivered", "read", "replied", "failed", "limited")} == {
        "sent": 4,
        "delivered": 3,
        "read": 2,
        "replied": 2,
        "failed": 2,
        "limited": 1,
    }
    assert f["billed"] == {"marketing": 3, "marketing_lite": 1}
    assert f["billed_list"][0] == {"category": "marketing", "label": "Marketing", "count": 3}
    assert [(s["key"], s["percent"], s["base"]) for s in f["steps"]] == [
        ("sent", 66.7, "recipients"),
        ("delivered", 75.0, "sent"),
        ("read", 50.0, "sent"),
        ("replied", 50.0, "sent"),
        ("failed", 33.3, "recipients"),
    ]

    # A read receipt for the message still at "sent", moved the way statuses move rows:
    # the message, its campaign's counters and message_stats together.
    with db.session() as session:
        message = (
            session.query(Message).filter_by(campaign_id=seeded.campaign_id, status="sent").one()
        )
        session.execute(
            update(Message)
            .where(Message.id == message.id)
            .values(status="read", delivered_at=seeded.at, read_at=seeded.at)
        )
        session.execute(
            update(Campaign)
            .where(Campaign.id == seeded.campaign_id)
            .values(n_sent=Campaign.n_sent - 1, n_read=Campaign.n_read + 1)
        )
        stats.bump(
            session,
            [
                ("delivered", seeded.campaign_id, seeded.sender_id, seeded.at, None, 1),
                ("read", seeded.campaign_id, seeded.sender_id, seeded.at, None, 1),
            ],
        )
    f = client.get(url).get_json()["funnel"]
    assert (f["sent"], f["delivered"], f["read"]) == (4, 4, 3)
    assert f["steps"][2]["percent"] == 75.0

    # The parts the page swaps in when the figures move.
    outcomes = client.get(f"/campaigns/{seeded.campaign_id}/outcomes").get_data(as_text=True)
    assert "Limited by Meta" in outcomes and "Yes please, two boxes of kaju katli" in outcomes


def test_a_campaign_with_nothing_yet_says_so_in_plain_words(dual) -> None:
    app, db = dual
    campaign_id = quiet_campaign(db)
    client = signed_in(app, db, Role.VIEWER)
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert _funnel_cells(page) == {
        "sent": ("0", "0.0% of recipients"),
        "delivered": ("0", "— of sent"),
        "read": ("0", "— of sent"),
        "replied": ("0", "— of sent"),
        "failed": ("0", "0.0% of recipients"),
    }
    assert re.search(r'data-field="billed" data-testid="billed"\s+hidden', page)
    assert re.search(r'data-testid="funnel-limited"\s+hidden', page)
    flat = _flat(page)
    assert "No message has failed." in flat
    assert (
        "No replies yet. When a customer answers a message of this campaign, it shows here." in flat
    )
    f = client.get(f"/campaigns/{campaign_id}/progress.json").get_json()["funnel"]
    assert f["billed"] == {} and f["sent"] == 0 and f["steps"][1]["percent"] is None


def test_a_draft_has_no_funnel(client, as_role, db) -> None:  # type: ignore[no-untyped-def]
    as_role(Role.VIEWER)
    draft = make_campaign(
        db, [make_contacts(db, phones(1), "L")], [make_sender(db)], launch=False, name="Draft"
    )
    page = client.get(f"/campaigns/{draft}").get_data(as_text=True)
    assert 'data-testid="funnel"' not in page and "data-outcomes" not in page


def test_dashboard_totals_come_from_message_stats(dual) -> None:
    app, db = dual
    funnel_campaign(db)
    client = signed_in(app, db, Role.VIEWER)
    page = client.get("/").get_data(as_text=True)
    month = {
        key: int(n.replace(",", ""))
        for key, n in re.findall(r'data-testid="month-(\w+)">([\d,]+)<', page)
    }
    assert month == {"sent": 4, "delivered": 3, "read": 2, "replied": 2, "failed": 2}


def test_analytics_shows_failures_by_meaning_and_what_meta_billed(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    client = signed_in(app, db, Role.VIEWER)
    page = client.get("/analytics").get_data(as_text=True)
    totals = {
        label: int(n.replace(",", ""))
        for label, n in re.findall(r'data-testid="total-([\w-]+)">([\d,]+)<', page)
    }
    assert totals == {
        "sent": 4,
        "delivered": 3,
        "read": 2,
        "replied": 2,
        "failed": 2,
        "opted-out": 1,
    }
    failures = _section(page, "table-failures")
    assert "Limited by Meta" in failures and "<code>131049</code>" in failures
    assert NOT_ON_WHATSAPP in failures and "<code>131026</code>" in failures
    billed = _section(page, "table-billed")
    assert re.findall(r'data-category="(\w+)"><th[^>]*>([^<]+)</th><td[^>]*>(\d+)<', billed) == [
        ("marketing", "Marketing", "3"),
        ("marketing_lite", "Marketing (Marketing Messages API)", "1"),
    ]
    assert 'Total</th><td class="text-end fw-semibold">4<' in billed
    data = client.get("/analytics.json").get_json()
    # The series per day and per hour add up to the same totals (message_stats, by kind).
    for kind, n in (("sent", 4), ("delivered", 3), ("read", 2), ("replied", 2), ("failed", 2)):
        assert sum(data["days"][kind]) == n and sum(data["hours"][kind]) == n, kind
    assert data["billed"] == {
        "labels": ["Marketing", "Marketing (Marketing Messages API)"],
        "categories": ["marketing", "marketing_lite"],
        "values": [3, 1],
    }
    assert (
        data["failures"]["labels"][data["failures"]["codes"].index("131049")] == "Limited by Meta"
    )

    # The same page without billing (a WhatsApp Web campaign) says so in plain words.
    with db.session() as session:
        session.execute(
            delete(MessageStat).where(
                MessageStat.campaign_id == seeded.campaign_id, MessageStat.kind == "billed"
            )
        )
        settled.touch(session)
    page = _flat(client.get("/analytics").get_data(as_text=True))
    assert "Meta billed no message in this period." in page


def test_summary_and_report_give_each_recipient_and_each_category(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    client = signed_in(app, db, Role.VIEWER)
    page = client.get(f"/campaigns/{seeded.campaign_id}/summary").get_data(as_text=True)
    billed = _section(page, "summary-billed")
    assert re.findall(r'data-category="(\w+)"><td>([^<]+)</td><td[^>]*>(\d+)<', billed) == [
        ("marketing", "Marketing", "3"),
        ("marketing_lite", "Marketing (Marketing Messages API)", "1"),
    ]
    assert 'Total</th><th class="text-end">4<' in billed
    failures = _section(page, "summary-failures")
    assert "Limited by Meta" in failures
    assert "1 of the failed were limited by Meta" in _flat(page)

    table = list(
        csv.reader(
            io.StringIO(
                client.get(f"/campaigns/{seeded.campaign_id}/report.csv", buffered=True)
                .get_data()
                .decode("utf-8-sig")
            )
        )
    )
    head = table[0]
    assert head[-2:] == ["reply", "billed as"]
    rows = {r[0]: dict(zip(head, r, strict=True)) for r in table[1:]}
    by_contact = sorted(rows.values(), key=lambda r: r["phone"])
    read, delivered, sent, limited, not_on, stopped = by_contact
    assert [r["billed as"] for r in by_contact] == [
        "marketing",
        "marketing",
        "marketing_lite",
        "",
        "",
        "marketing",
    ]
    assert (limited["error code"], limited["error"]) == ("131049", LIMITED)
    assert (not_on["error code"], not_on["error"]) == ("131026", NOT_ON_WHATSAPP)
    assert read["reply"] == "Yes please, two boxes of kaju katli" and stopped["reply"] == "STOP"
    assert read["replied (UTC)"] and read["delivered (UTC)"] and read["read (UTC)"]
    assert delivered["delivered (UTC)"] and not delivered["read (UTC)"]
    assert sent["sent (UTC)"] and not sent["delivered (UTC)"] and not sent["replied (UTC)"]

    response = client.get(f"/campaigns/{seeded.campaign_id}/report.xlsx", buffered=True)
    book = load_workbook(io.BytesIO(response.get_data()), read_only=True)
    response.close()
    assert book.sheetnames == ["Recipients", "Totals"]
    totals = [
        tuple(c for c in row if c is not None) for row in book["Totals"].iter_rows(values_only=True)
    ]
    book.close()
    assert totals[:8] == [
        ("Recipients", 6),
        ("Sent", 4),
        ("Delivered", 3),
        ("Read", 2),
        ("Replied", 2),
        ("Failed", 2),
        ("Of the failed, limited by Meta", 1),
        (),
    ]
    billed = totals.index(("Billed by Meta", "messages"))
    assert totals[billed + 1 : billed + 4] == [
        ("Marketing", 3),
        ("Marketing (Marketing Messages API)", 1),
        ("Total billed", 4),
    ]
    reasons = totals.index(("Why messages failed", "messages", "code", "what it said"))
    assert sorted(totals[reasons + 1 :]) == [
        ("Limited by Meta", 1, "131049", LIMITED),
        (NOT_ON_WHATSAPP, 1, "131026", NOT_ON_WHATSAPP),
    ]


def test_contact_history_shows_the_reply_its_opt_out_and_the_billing(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    client = signed_in(app, db, Role.VIEWER)
    page = client.get(f"/contacts/{seeded.contact_ids[5]}").get_data(as_text=True)
    messages = _section(page, "contact-messages")
    assert "STOP" in messages and 'data-testid="opted-out"' in messages
    assert "Billed by Meta as Marketing" in messages
    other = client.get(f"/contacts/{seeded.contact_ids[3]}").get_data(as_text=True)
    history = _section(other, "contact-messages")
    assert "<code>131049</code>" in history and LIMITED in history
    assert 'data-testid="opted-out"' not in history and "Billed by Meta" not in history


def test_the_funnel_moves_with_what_the_channel_heard(dual, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Sent through the dry-run channel by the dispatcher, then receipts, a 131049 failure,
    a reply and a STOP applied by `inbound.apply`, as the worker applies a webhook."""
    app, db = dual
    numbers = phones(4, "+9198720")
    sender = make_sender(db, "Heard phone")
    campaign_id = make_campaign(db, [make_contacts(db, numbers, "Heard")], [sender], name="Heard")
    clock = FakeClock()
    drive([make_lane(db, sender, tmp_path, clock)], clock, db)
    client = signed_in(app, db, Role.VIEWER)
    url = f"/campaigns/{campaign_id}/progress.json"
    before = client.get(url).get_json()["funnel"]
    assert (before["sent"], before["delivered"], before["replied"], before["billed"]) == (
        4,
        0,
        0,
        {},
    )

    with db.session() as session:
        ids = dict(
            session.execute(
                select(Message.phone, Message.id).where(Message.campaign_id == campaign_id)
            ).all()
        )
    now = utcnow()
    limited = HeardError(code="131049", effect="limited", sentence=LIMITED)
    heard = Heard(
        statuses=[
            StatusUpdate("delivered", now, message_id=ids[numbers[0]], billed_category="marketing"),
            StatusUpdate("read", now, message_id=ids[numbers[0]]),
            # Read before delivered was heard: read implies delivered.
            StatusUpdate("read", now, message_id=ids[numbers[1]], billed_category="marketing"),
            StatusUpdate("failed", now, message_id=ids[numbers[2]], errors=(limited,)),
        ],
        replies=[
            Reply(at=now, provider_message_id="wamid.in-1", phone=numbers[0], text="Pune too?"),
            Reply(at=now, provider_message_id="wamid.in-2", phone=numbers[1], text="STOP"),
        ],
    )
    with db.session() as session:
        inbound.apply(session, sender, heard, now)

    f = client.get(url).get_json()["funnel"]
    assert {k: f[k] for k in ("sent", "delivered", "read", "replied", "failed", "limited")} == {
        "sent": 3,  # Meta's failure says the third never reached the customer
        "delivered": 2,
        "read": 2,
        "replied": 2,
        "failed": 1,
        "limited": 1,
    }
    assert f["billed"] == {"marketing": 2}
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert _funnel_cells(page)["read"] == ("2", "66.7% of sent")
    reasons = _section(page, "failure-reasons")
    assert "Limited by Meta" in reasons and LIMITED in reasons
    replies = _section(page, "replies", "</ul>")
    assert "Pune too?" in replies and replies.count('data-testid="opted-out"') == 1
    assert "Marketing <strong>2</strong>" in _section(page, "billed", "</p>")
    month = {
        key: int(n.replace(",", ""))
        for key, n in re.findall(
            r'data-testid="month-(\w+)">([\d,]+)<', client.get("/").get_data(as_text=True)
        )
    }
    assert month == {"sent": 3, "delivered": 2, "read": 2, "replied": 2, "failed": 1}
