"""The Dashboard's last finished campaign and recent activity naming its campaign; sender
kinds in words on the Activity page, for events old and new."""

from __future__ import annotations

import html as htmllib
import re
from datetime import timedelta

from sqlalchemy import update

from tests.analytics_support import failed, seed_outcomes, sent, signed_in
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk import events
from wabulk.models import Campaign, CampaignStatus, Role, utcnow
from wabulk.senders.service import SenderInput, create_sender


def _words(html: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _card(html: str) -> str:
    found = re.search(r'data-testid="last-finished">(.*?)</div></div>', html, re.S)
    assert found, "no last finished campaign card"
    return found.group(1)


def _finish(db, campaign_id: int, status: CampaignStatus, ago: timedelta) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(status=status, finished_at=utcnow() - ago)
        )


def test_the_dashboard_shows_the_last_finished_campaigns_results(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.VIEWER)
    sender = make_sender(db, "Rehearsal")
    customers = make_contacts(db, phones(10), "Customers")

    # Nothing finished yet: said so, with what will show.
    running = make_campaign(db, [customers], [sender], name="Still going")
    card = _card(client.get("/").get_data(as_text=True))
    assert re.search(r'data-empty="last"\s*>', card), "the empty state is hidden"
    assert re.search(r'data-last=""\s*hidden', card), "the results are shown"
    assert "No campaign has finished yet" in _words(card)
    assert client.get("/live.json").get_json()["last_finished"]["id"] is None

    older = make_campaign(db, [customers], [sender], name="Summer sale")
    _finish(db, older, CampaignStatus.COMPLETED, timedelta(days=2))
    diwali = make_campaign(db, [customers], [sender], name="Diwali offer")
    now = utcnow()
    seed_outcomes(
        db,
        diwali,
        sender,
        [
            sent(now, "read", delivered_at=now, read_at=now, replied_at=now),
            sent(now, "read", delivered_at=now, read_at=now),
            sent(now, "delivered", delivered_at=now),
            sent(now),
            failed(now, "not_on_whatsapp"),
        ],
    )
    _finish(db, diwali, CampaignStatus.CANCELLED, timedelta(hours=1))

    page = client.get("/").get_data(as_text=True)
    card = _card(page)
    assert re.search(rf'href="/campaigns/{diwali}"[^>]*>Diwali offer</a>', card)
    assert re.search(r'data-empty="last"\s*hidden', card), "the empty state still shows"
    assert "Summer sale" not in card and "Still going" not in card
    said = _words(card)
    assert re.search(r"Cancelled \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", said), said

    def result(key: str) -> str:
        found = re.search(rf'data-result="{key}">(.*?)</div>', card, re.S)
        assert found, key
        return _words(found.group(1))

    # Of 10 recipients: 4 sent, 1 failed; delivered, read and replied as shares of sent.
    assert result("sent") == "Sent 4 40.0%"
    assert result("delivered") == "Delivered 3 75.0% of sent"
    assert result("read") == "Read 2 50.0% of sent"
    assert result("replied") == "Replied 1 25.0% of sent"
    assert result("failed") == "Failed 1 10.0%"
    assert running  # still running: never the "last finished"

    # The live answer brings the same, so a dashboard left open shows a campaign finishing.
    live = client.get("/live.json").get_json()["last_finished"]
    assert (live["id"], live["name"], live["url"]) == (
        diwali,
        "Diwali offer",
        f"/campaigns/{diwali}",
    )
    assert live["when"].startswith("Cancelled ")
    assert [(s["key"], s["n"], s["percent"]) for s in live["steps"]] == [
        ("sent", 4, "40.0%"),
        ("delivered", 3, "75.0% of sent"),
        ("read", 2, "50.0% of sent"),
        ("replied", 1, "25.0% of sent"),
        ("failed", 1, "10.0%"),
    ]


def test_recent_activity_names_and_links_the_campaign(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.VIEWER)
    sender = make_sender(db, "Rehearsal")
    customers = make_contacts(db, phones(3), "Customers")
    diwali = make_campaign(db, [customers], [sender], name="Diwali offer")
    with db.session() as session:
        events.record(session, "campaign.note", "Finished: 3 sent.", campaign_id=diwali)
    recent = re.search(
        r'data-testid="recent-activity">(.*?)</ul>', client.get("/").get_data(as_text=True), re.S
    )
    assert recent
    assert (
        f'<a href="/campaigns/{diwali}" data-testid="event-campaign">Diwali offer</a>:'
        in recent.group(1)
    )
    assert "Diwali offer : Finished: 3 sent." in _words(recent.group(1))
    # An event of no campaign names none.
    signed = [li for li in recent.group(1).split("<li>") if "signed in." in li]
    assert len(signed) == 1 and "event-campaign" not in signed[0]


def test_sender_kinds_are_said_in_words_on_the_activity_page(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.ADMIN)
    with db.session() as session:
        create_sender(session, None, SenderInput(name="Shop phone", channel="whatsapp_web"))
        # Recorded by an older version, before the kinds had words.
        events.record(session, "sender.created", "Asha added the cloud_api sender 'Meta'.")
        events.record(session, "sender.created", "Asha added the whatsapp_web sender 'Old'.")
        # A server path is not a sender kind: left as it is (admins see paths).
        events.record(session, "note", "Written to instance/dry_run/Rehearsal.jsonl.")
    page = _words(client.get("/activity").get_data(as_text=True))
    assert "The command line added the WhatsApp Web sender 'Shop phone'." in page
    assert "Asha added the WhatsApp Cloud API sender 'Meta'." in page
    assert "Asha added the WhatsApp Web sender 'Old'." in page
    assert "whatsapp_web" not in page and "cloud_api" not in page
    assert "instance/dry_run/Rehearsal.jsonl" in page
    dashboard = _words(client.get("/").get_data(as_text=True))
    assert "the WhatsApp Cloud API sender 'Meta'" in dashboard and "cloud_api" not in dashboard
