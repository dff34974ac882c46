"""The pages of hearing back for WhatsApp Web senders: the reading settings on the sender
form, Resume for a sender a limit banner stopped, and the campaign page's line counting
unknown messages settled from their chat."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk import events
from wabulk.dispatch import hearing
from wabulk.models import Event, Message, Role, Sender, SenderState, utcnow
from wabulk.senders import cooldown

from ..conftest import get_csrf


def _post(client, url: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(url, data={**data, "csrf_token": get_csrf(client, "/senders")})


WEB_FORM = {
    "channel": "whatsapp_web",
    "name": "Shop phone",
    "timezone": "Asia/Kolkata",
    "min_delay_seconds": "30",
    "max_delay_seconds": "60",
    "daily_cap": "200",
    "break_every": "30",
    "break_seconds": "300",
}


def test_reading_replies_and_its_days_are_set_on_the_sender_form(client, as_role, db) -> None:
    as_role(Role.ADMIN)
    page = client.get("/senders/new").get_data(as_text=True)
    assert re.search(r'name="read_replies"[^>]*checked', page)
    assert re.search(r'name="hear_days"[^>]*value="3"', page)
    assert "opening a chat marks it read on your phone too" in page

    # A box left unticked turns reading replies off; a bad number of days is named.
    response = _post(client, "/senders/new", **WEB_FORM, hear_days="2.5")
    assert response.status_code == 400
    error = re.search(r'data-error-for="hear_days">([^<]*)<', response.get_data(as_text=True))
    assert error and "whole number from 0 to 30" in error.group(1)
    response = _post(client, "/senders/new", **WEB_FORM, hear_days="7")
    assert response.status_code == 302
    with db.session() as session:
        sender = session.scalars(select(Sender)).one()
        assert (sender.settings["read_replies"], sender.settings["hear_days"]) == (False, 7)
        assert hearing.Hearing.of(sender) == hearing.Hearing(False, timedelta(days=7))
    page = client.get(f"/senders/{sender.id}/edit").get_data(as_text=True)
    assert not re.search(r'name="read_replies"[^>]*checked', page)
    assert re.search(r'name="hear_days"[^>]*value="7"', page)
    response = _post(
        client, f"/senders/{sender.id}/edit", **WEB_FORM, read_replies="1", hear_days="0"
    )
    assert response.status_code == 302
    with db.session() as session:
        settings = session.get(Sender, sender.id).settings
        assert (settings["read_replies"], settings["hear_days"]) == (True, 0)


def test_a_person_resumes_a_web_sender_a_limit_banner_stopped(client, as_role, db) -> None:
    as_role(Role.ADMIN)
    response = _post(client, "/senders/new", **WEB_FORM, read_replies="1")
    assert response.status_code == 302
    with db.session() as session:
        sender = session.scalars(select(Sender)).one()
        cooldown.limit(
            session,
            sender,
            "WhatsApp shows: \u201cToo many messages\u201d",
            utcnow(),
            screenshot="20261205T201500-limit-banner.png",
        )
        sender_id = sender.id
    table = client.get("/senders").get_data(as_text=True)
    assert "limited" in table and "Too many messages" in table
    assert f'action="/senders/{sender_id}/resume"' in table
    activity = client.get("/activity").get_data(as_text=True)
    assert "rests for 24 hours" in activity
    assert "/senders/screenshots/20261205T201500-limit-banner.png" in activity
    response = _post(client, f"/senders/{sender_id}/resume")
    assert response.status_code == 302
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert (sender.state, sender.limited_until) == (SenderState.LINKED, None)
        resumed = session.scalars(select(Event.text).where(Event.kind == "sender.resumed")).one()
        assert "Too many messages" in resumed


def test_the_campaign_page_counts_unknown_messages_settled_from_their_chat(
    client, as_role, db
) -> None:
    as_role(Role.VIEWER)
    lst = make_contacts(db, phones(3), "Customers")
    campaign_id = make_campaign(db, [lst], [make_sender(db)], name="Sale")
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'data-testid="settled"' not in page
    with db.session() as session:
        ids = session.scalars(select(Message.id).where(Message.campaign_id == campaign_id)).all()
        for mid in ids[:2]:
            events.record(
                session, hearing.SETTLED, "settled", campaign_id=campaign_id, message_id=mid
            )
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    line = re.search(r'data-testid="settled">([^<]*)<', page)
    assert line and line.group(1) == (
        "2 messages with an unknown outcome were settled by reading their chats on WhatsApp."
    )
