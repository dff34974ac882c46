"""The Dashboard and its live figures, from seeded history, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from tests.analytics_support import failed, seed_outcomes, sent, signed_in
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.analytics.queries import local_midnight
from wabulk.contacts import tallies
from wabulk.models import Contact, Role, Sender, SenderState, utcnow

KOLKATA = ZoneInfo("Asia/Kolkata")


def _number(html: str, testid: str) -> int:
    match = re.search(rf'data-testid="{testid}">([\d,]+)<', html)
    assert match, f"no {testid} on the page"
    return int(match.group(1).replace(",", ""))


def _seed(db):  # type: ignore[no-untyped-def]
    """A running campaign with history around Kolkata's midnight, a scheduled one, senders."""
    now = utcnow()
    midnight = local_midnight(now.astimezone(KOLKATA).date(), KOLKATA)
    minute = timedelta(minutes=1)
    list_id = make_contacts(db, phones(10), "Customers")
    capped = make_sender(db, "Capped", timezone="Asia/Kolkata", daily_cap=1)
    unlinked = make_sender(db, "Old phone")
    with db.session() as session:
        session.execute(
            update(Sender).where(Sender.id == unlinked).values(state=SenderState.NEEDS_LINK)
        )
        session.execute(update(Contact).where(Contact.id == 1).values(opted_out_at=now))
        tallies.recount(session)
    running = make_campaign(db, [list_id], [capped], name="Diwali")
    seed_outcomes(
        db,
        running,
        capped,
        [
            # Just after midnight in Kolkata (still "yesterday" in UTC): today.
            sent(
                midnight + minute,
                "read",
                delivered_at=midnight + 2 * minute,
                read_at=midnight + 3 * minute,
                replied_at=midnight + 4 * minute,
            ),
            # Just before it: yesterday, though delivered today.
            sent(midnight - minute, "delivered", delivered_at=midnight + 5 * minute),
            sent(midnight - timedelta(days=29) + minute),  # the first of the 30 days
            sent(midnight - timedelta(days=29) - minute),  # the day before: left out
            failed(midnight + 10 * minute, "not_on_whatsapp"),
            failed(midnight - timedelta(days=40), "send_failed"),
        ],
    )
    scheduled = make_campaign(
        db, [list_id], [capped], name="Holi", scheduled_at=now + timedelta(days=2)
    )
    return running, scheduled, capped, unlinked


def test_dashboard_counts_today_and_30_days_in_the_users_timezone(dual) -> None:
    app, db = dual
    running, _, capped, unlinked = _seed(db)
    client = signed_in(app, db, Role.VIEWER, "Asia/Kolkata")

    html = client.get("/").get_data(as_text=True)
    today = {k: _number(html, f"today-{k}") for k in ("sent", "delivered", "read", "replied")}
    assert today == {"sent": 1, "delivered": 2, "read": 1, "replied": 1}
    assert _number(html, "today-failed") == 1
    month = {k: _number(html, f"month-{k}") for k in ("sent", "delivered", "failed")}
    assert month == {"sent": 3, "delivered": 2, "failed": 1}

    # The running campaign with its bar: 6 of 9 recipients done (one contact opted out).
    running_html = html.split('data-testid="running"')[1].split("</ul>")[0]
    assert "Diwali" in running_html and "66.7%" in running_html
    assert f'href="/campaigns/{running}"' in running_html
    scheduled_html = html.split('data-testid="scheduled"')[1].split("</ul>")[0]
    assert "Holi" in scheduled_html and "starts " in scheduled_html and "IST" in scheduled_html
    senders_html = html.split('data-testid="senders"')[1].split("</ul>")[0]
    assert re.search(r"Capped.*capped today.*1</span> / 1 today", senders_html, re.S)
    assert "needs linking" in senders_html
    contacts_html = html.split('data-testid="contacts"')[1].split("</dl>")[0]
    assert re.findall(r">([\d,]+)</dd>", contacts_html) == ["10", "1"]
    activity = html.split('data-testid="recent-activity"')[1].split("</ul>")[0]
    assert "launched &#39;Diwali&#39;" in activity and 'href="/activity"' in html

    # The live answer moves the same figures, and says there is something to follow.
    live = client.get("/live.json").get_json()
    assert live["today"] == {**today, "failed": 1}
    assert live["live"] is True
    assert [c["name"] for c in live["running"]] == ["Diwali"]
    assert live["running"][0]["percent"] == 66.7 and live["running"][0]["sent"] == 4
    assert [c["name"] for c in live["scheduled"]] == ["Holi"]
    assert {s["id"]: s["label"] for s in live["senders"]} == {
        capped: "capped today",
        unlinked: "needs linking",
    }


def test_the_same_history_in_utc_has_other_days(dual) -> None:
    """A UTC user's day starts 5½ hours later than a Kolkata user's: other numbers."""
    app, db = dual
    _seed(db)
    kolkata = signed_in(app, db, Role.VIEWER, "Asia/Kolkata").get("/live.json").get_json()
    utc = signed_in(app, db, Role.OPERATOR, None).get("/live.json").get_json()
    now = utcnow()
    # Kolkata's midnight is 18:30 UTC the day before: both messages around it fall on that
    # UTC day, which is "today" in UTC only until UTC's own midnight.
    assert kolkata["today"]["sent"] == 1
    if now.astimezone(KOLKATA).date() == now.date():
        assert utc["today"]["sent"] == 0
    else:
        assert utc["today"]["sent"] == 2


def test_nothing_live_and_a_campaign_list_followed_by_id(dual) -> None:
    app, db = dual
    list_id = make_contacts(db, phones(2), "Few")
    sender = make_sender(db)
    draft = make_campaign(db, [list_id], [sender], name="Draft", launch=False)
    client = signed_in(app, db)

    live = client.get("/live.json").get_json()
    assert live["live"] is False and live["running"] == [] and live["scheduled"] == []
    html = client.get("/").get_data(as_text=True)
    assert 'data-live="0"' in html and "No campaign is sending right now." in html

    running = make_campaign(db, [list_id], [sender], name="Now")
    answer = client.get(f"/live/campaigns.json?ids={draft},{running},x,999").get_json()
    assert answer["live"] is True
    assert [(c["id"], c["status"], c["total"]) for c in answer["campaigns"]] == [
        (draft, "draft", 0),
        (running, "running", 2),
    ]
    listing = client.get("/campaigns").get_data(as_text=True)
    assert f"/live/campaigns.json?ids={running}" in listing
    assert f'data-campaign="{running}"' in listing and f'data-campaign="{draft}"' not in listing


def test_first_run_dashboard_keeps_its_empty_state(client, as_role) -> None:
    as_role(Role.ADMIN)
    html = client.get("/").get_data(as_text=True)
    assert "No campaigns yet" in html and "Import contacts" in html
    assert 'data-testid="demo-offer"' in html  # the demo partial, when it is installed
    assert _number(html, "today-sent") == 0 and _number(html, "month-sent") == 0
