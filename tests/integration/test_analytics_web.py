"""The Analytics page and its JSON: figures from seeded history, filters, bad input."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from tests.analytics_support import failed, seed_outcomes, sent, signed_in
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.models import Contact, Role

IST = ZoneInfo("Asia/Kolkata")
PERIOD = "from=2026-03-01&to=2026-03-07"


def ist(day: int, hour: int, minute: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=IST)


@pytest.fixture
def history(dual):  # type: ignore[no-untyped-def]
    """Two campaigns on two senders in early March 2026, seen from Kolkata."""
    app, db = dual
    first = make_contacts(db, phones(5, "+9198111"), "Pune")
    second = make_contacts(db, phones(3, "+9198222"), "Goa")
    pune, goa = make_sender(db, "Pune phone"), make_sender(db, "Goa phone")
    x = make_campaign(db, [first], [pune], name="Holi offer")
    y = make_campaign(db, [second], [goa], name="Spring sale")
    seed_outcomes(
        db,
        x,
        pune,
        [
            sent(
                ist(1, 0, 10),  # 18:40 UTC on 28 February
                "read",
                delivered_at=ist(1, 0, 20),
                read_at=ist(1, 1, 5),
                replied_at=ist(2, 9, 0),
            ),
            sent(ist(2, 9, 15), "delivered", delivered_at=ist(2, 9, 16)),
            failed(ist(2, 9, 20), "not_on_whatsapp"),
            failed(ist(3, 14, 45), "not_on_whatsapp"),
            failed(ist(3, 14, 50), "weird_code"),
        ],
    )
    seed_outcomes(
        db,
        y,
        goa,
        [sent(ist(7, 23, 50)), sent(ist(8, 0, 5)), sent(ist(28, 23, 55, month=2))],
    )
    with db.session() as session:
        for contact_id, at in ((1, ist(4, 10, 0)), (2, ist(4, 10, 0)), (3, ist(8, 0, 30))):
            session.execute(update(Contact).where(Contact.id == contact_id).values(opted_out_at=at))
    client = signed_in(app, db, Role.VIEWER, "Asia/Kolkata")
    return client, {"x": x, "y": y, "pune": pune, "goa": goa}


def test_the_figures_of_a_week_in_kolkata(history) -> None:
    client, _ = history
    data = client.get(f"/analytics.json?{PERIOD}").get_json()
    assert data["period"] == {
        "from": "2026-03-01",
        "to": "2026-03-07",
        "timezone": "Asia/Kolkata",
        "campaign": None,
        "sender": None,
    }
    assert data["totals"] == {"sent": 3, "delivered": 2, "read": 1, "replied": 1, "failed": 3}
    assert data["kinds"] == ["sent", "delivered", "read", "replied", "failed"]
    days = data["days"]
    assert days["labels"] == [f"2026-03-0{d}" for d in range(1, 8)]
    assert days["sent"] == [1, 1, 0, 0, 0, 0, 1]
    assert days["delivered"] == [1, 1, 0, 0, 0, 0, 0]
    assert days["replied"] == [0, 1, 0, 0, 0, 0, 0]
    assert days["failed"] == [0, 1, 2, 0, 0, 0, 0]
    hours = data["hours"]
    assert len(hours["labels"]) == 24 and hours["labels"][9] == "09:00"
    nonzero = {h: hours["sent"][h] for h in range(24) if hours["sent"][h]}
    assert nonzero == {0: 1, 9: 1, 23: 1}
    assert hours["read"][1] == 1 and hours["failed"][14] == 2
    # Funnels from each campaign's counters, for the campaigns active in the week.
    assert data["funnel"]["values"] == [5, 2, 1, 1]
    assert data["funnel"]["rates"] == [100.0, 40.0, 20.0, 20.0]
    assert data["campaigns"]["labels"] == ["Spring sale", "Holi offer"]
    assert data["campaigns"]["sent"] == [3, 2] and data["campaigns"]["replied"] == [0, 1]
    assert data["failures"] == {
        "labels": ["Number not on WhatsApp", "Weird code"],
        "codes": ["not_on_whatsapp", "weird_code"],
        "values": [2, 1],
    }
    assert data["senders"]["labels"] == ["Pune phone", "Goa phone"]
    assert data["senders"]["sent"] == [2, 1] and data["senders"]["failed"] == [3, 0]
    assert data["senders"]["failure_rate"] == [60.0, 0.0]
    assert data["opt_outs"]["values"] == [0, 0, 0, 2, 0, 0, 0]


def test_the_page_prints_every_chart_with_its_table(history) -> None:
    client, _ = history
    response = client.get(f"/analytics?{PERIOD}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for key in ("days", "hours", "funnel", "campaigns", "failures", "senders", "opt_outs"):
        assert f'data-testid="chart-{key}"' in html
        assert f'data-testid="table-{key}"' in html
    days = html.split('data-testid="table-days"')[1].split("</table>")[0]
    row = re.search(r"2026-03-03</th>((?:<td[^>]*>[^<]*</td>)+)", days)
    assert row and re.findall(r">([\d,]+)<", row.group(1)) == ["0", "0", "0", "0", "2"]
    senders = html.split('data-testid="table-senders"')[1].split("</table>")[0]
    assert re.search(r"Pune phone</th><td[^>]*>2</td><td[^>]*>3</td><td[^>]*>60\.0%", senders)
    # The charts' numbers travel as a JSON data block, never as inline script.
    assert '<script type="application/json" id="analytics-data">' in html
    assert "chart.umd.min.js" in html and "js/analytics.js" in html
    assert 'value="2026-03-01"' in html and "Days and hours run in Asia/Kolkata" in html
    assert "/analytics.json?from=2026-03-01&amp;to=2026-03-07" in html


def test_a_campaign_or_a_sender_narrows_every_figure(history) -> None:
    client, ids = history
    y = client.get(f"/analytics.json?{PERIOD}&campaign={ids['y']}").get_json()
    assert y["totals"]["sent"] == 1 and y["totals"]["failed"] == 0
    assert y["campaigns"]["labels"] == ["Spring sale"] and y["funnel"]["values"][0] == 3
    assert y["failures"]["values"] == [] and y["senders"]["labels"] == ["Goa phone"]
    assert y["opt_outs"]["values"][3] == 2  # opt-outs belong to contacts: never narrowed

    pune = client.get(f"/analytics.json?{PERIOD}&sender={ids['pune']}").get_json()
    assert pune["totals"] == {"sent": 2, "delivered": 2, "read": 1, "replied": 1, "failed": 3}
    assert pune["campaigns"]["labels"] == ["Holi offer"]
    html = client.get(f"/analytics?{PERIOD}&sender={ids['goa']}").get_data(as_text=True)
    assert f'<option value="{ids["goa"]}" selected>Goa phone</option>' in html
    assert 'data-testid="empty-failures"' in html and "No message failed in this period." in html


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("from=2026-02-30", "from", "“From” must be a date like 2026-03-31; '2026-02-30' is not"),
        ("to=next+week", "to", "“To” must be a date like 2026-03-31; 'next week' is not one."),
        ("from=2026-03-08&to=2026-03-01", "from", "“From” (2026-03-08) is after “To” (2026-03-01)"),
        ("from=2024-01-01&to=2026-03-01", "from", "Choose at most 366 days at a time"),
        ("campaign=abc", "campaign", "There is no campaign 'abc'; choose one from the list."),
        ("campaign=999", "campaign", "There is no campaign '999'"),
        ("sender=-1", "sender", "There is no sender '-1'"),
    ],
)
def test_bad_filters_say_what_is_wrong(history, query, field, message) -> None:
    client, _ = history
    page = client.get(f"/analytics?{query}")
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    error = html.split('data-testid="filter-error"')[1].split("</div>")[0]
    assert message.replace("'", "&#39;") in error
    assert 'id="chart-days"' not in html  # nothing drawn from a filter that was refused
    assert re.search(rf'class="[^"]*is-invalid[^"]*" id="f-{field}"', html)
    answer = client.get(f"/analytics.json?{query}")
    assert answer.status_code == 400
    assert answer.get_json()["field"] == field and message in answer.get_json()["error"]


def test_empty_states(dual) -> None:
    app, db = dual
    client = signed_in(app, db)
    html = client.get("/analytics").get_data(as_text=True)
    assert "No messages sent yet" in html and 'id="chart-days"' not in html

    list_id = make_contacts(db, phones(1), "One")
    sender = make_sender(db)
    campaign = make_campaign(db, [list_id], [sender])
    seed_outcomes(db, campaign, sender, [sent(ist(1, 12, 0))])
    quiet = client.get("/analytics?from=2026-04-01&to=2026-04-30").get_data(as_text=True)
    assert "Nothing in this period" in quiet and "2026-04-01 to 2026-04-30" in quiet
    busy = client.get("/analytics?from=2026-03-01&to=2026-03-01").get_data(as_text=True)
    assert 'id="chart-days"' in busy
