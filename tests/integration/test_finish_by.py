"""A campaign's finish-by time and the warnings before launch: a pace faster than is safe
for WhatsApp Web, an audience too big for the time given; the campaign pausing at its end."""

from __future__ import annotations

import html as htmllib
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.campaigns import lifecycle, outlook
from wabulk.db import Database
from wabulk.dispatch.worker import Dispatcher
from wabulk.errors import Conflict, ValidationError
from wabulk.models import Campaign, CampaignStatus, Event, Role, Sender, SenderState, utcnow
from wabulk.senders.pace import Pace
from wabulk.senders.service import WEB_PACING, SenderInput, create_sender
from wabulk.zones import zone

from ..conftest import PASSWORD, get_csrf, login

FORM = "%Y-%m-%dT%H:%M"


def _signed_in(app: Flask, db: Database) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, "operator@example.com", PASSWORD, Role.OPERATOR)
    assert login(client, "operator@example.com").status_code == 302
    return client


def _words(html: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _web_sender(db: Database, name: str = "Shop phone", timezone: str = "UTC") -> int:
    """A linked WhatsApp Web sender with the shipped safe pacing, never sent yet."""
    with db.session() as session:
        sender = create_sender(
            session, None, SenderInput(name=name, channel="whatsapp_web", timezone=timezone)
        )
        sender.state, sender.link_requested_until = SenderState.LINKED, None
        return sender.id


def _post(client: FlaskClient, url: str, **data):  # type: ignore[no-untyped-def]
    data.setdefault("csrf_token", get_csrf(client, "/campaigns"))
    return client.post(url, data=data, content_type="multipart/form-data")


def _wizard(**fields) -> dict:  # type: ignore[no-untyped-def, type-arg]
    form = {
        "name": "Spring sale",
        "template_id": "",
        "body": "Hello {{ first_name }}",
        "schedule": "now",
        "max_attempts": "3",
        "retry_seconds": "60",
    }
    form.update(fields)
    return form


def _outlook(html: str) -> str | None:
    found = re.search(r'data-testid="outlook">(.*?)</div>', html, re.S)
    return _words(found.group(1)) if found else None


def test_the_estimate_counts_pace_active_hours_and_the_warm_up_day_by_day(migrated_db) -> None:
    db = migrated_db
    sender_id = _web_sender(db)
    # Monday 09:00 UTC; finish by Friday 18:00, sending 09:00-18:00 only.
    now = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
    ends = datetime(2030, 3, 8, 18, 0, tzinfo=UTC)
    hours = {"active_from": "09:00", "active_until": "18:00"}
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender is not None
        # The warm-up holds it to 20, 40, 60, 100, 140 on Monday to Friday.
        assert outlook.capacity(session, sender, hours, now, ends, now) == 360
        texts = outlook.warnings(session, [sender], hours, 1200, now, ends, now, zone("UTC"))
        assert texts == [
            "About 360 of 1,200 messages can go out by Friday 18:00 at the senders' pace, "
            "active hours, daily caps and warm-up. The rest would wait: the campaign pauses "
            "at that time, and you can set a later finish-by time and resume it."
        ]
        # Without the warm-up, the pace is the limit: 9 h of 55 s a message (the average
        # delay of 45 s and a 300 s break every 30) is 589 a day, under the cap of 200.
        sender.settings = {"warmup_skipped": True}
        assert outlook.capacity(session, sender, hours, now, ends, now) == 5 * 200
        assert outlook.capacity(session, sender, {**hours, "daily_cap": 1000}, now, ends, now) == (
            5 * 589
        )
        # Enough time, a safe pace: nothing to say.
        assert outlook.warnings(session, [sender], {}, 900, now, ends, now, zone("UTC")) == []


def test_the_shipped_web_pacing_is_the_safe_one() -> None:
    safe = Pace().with_overrides(dict(WEB_PACING))
    assert outlook.pace_faults(safe) == []
    fast = Pace().with_overrides({"min_delay_seconds": 5, "max_delay_seconds": 10})
    assert outlook.pace_faults(fast) == [
        "it waits as little as 5 s between messages (safe: 30 to 60 s, at random)",
        "it has no daily cap (safe: 200 a day at most)",
        "it takes no breaks (safe: a pause of several minutes every 20 to 50)",
    ]


def test_the_wizard_and_the_draft_warn_before_launch_and_stay_quiet_when_safe(dual) -> None:
    app, db = dual
    client = _signed_in(app, db)
    sender_id = _web_sender(db)
    rehearsal = make_sender(db, "Rehearsal", max_delay_seconds=0)
    lst = make_contacts(db, phones(100), "Customers")
    soon = (utcnow() + timedelta(hours=2)).astimezone(UTC).strftime(FORM)
    later = (utcnow() + timedelta(days=60)).astimezone(UTC).strftime(FORM)

    # The safe pace with plenty of time: no warning on the draft.
    safe = _post(
        client,
        "/campaigns/new",
        **_wizard(list_ids=[str(lst)], sender_ids=[str(sender_id)], ends_at=later),
    )
    assert safe.status_code == 302, safe.get_data(as_text=True)
    page = client.get(safe.headers["Location"]).get_data(as_text=True)
    assert _outlook(page) is None
    assert "Finish by" in _words(page)
    draft_id = int(safe.headers["Location"].rsplit("/", 1)[1])
    with db.session() as session:
        campaign = session.get(Campaign, draft_id)
        assert campaign is not None and campaign.ends_at is not None
    # The wizard shows the finish-by time back as typed.
    assert f'value="{later}"' in client.get(f"/campaigns/{draft_id}/edit").get_data(as_text=True)

    # Faster than is safe, and finishing in two hours: both said, with numbers.
    fast = _post(
        client,
        f"/campaigns/{draft_id}/edit",
        **_wizard(
            list_ids=[str(lst)],
            sender_ids=[str(sender_id), str(rehearsal)],
            ends_at=soon,
            min_delay_seconds="5",
            max_delay_seconds="10",
            daily_cap="500",
        ),
    )
    assert fast.status_code == 302, fast.get_data(as_text=True)
    said = _outlook(client.get(fast.headers["Location"]).get_data(as_text=True))
    assert said is not None
    assert (
        "Shop phone would send faster than is safe for a WhatsApp Web number: it waits as "
        "little as 5 s between messages (safe: 30 to 60 s, at random); it may send 500 a day "
        "(safe: 200 a day at most)." in said
    )
    assert "get banned more often" in said
    assert "Rehearsal would send" not in said  # a dry run messages nobody
    # The dry run sends without a limit, so the time is enough: no count.
    assert "can go out by" not in said

    # The Web sender alone: its warm-up (20 today, 40 tomorrow at most) is short of 100.
    fast = _post(
        client,
        f"/campaigns/{draft_id}/edit",
        **_wizard(list_ids=[str(lst)], sender_ids=[str(sender_id)], ends_at=soon),
    )
    page = client.get(fast.headers["Location"]).get_data(as_text=True)
    said = _outlook(page)
    assert said is not None and "faster than is safe" not in said
    found = re.search(r"About (\d+) of 100 messages can go out by", said)
    assert found and 0 < int(found.group(1)) <= 60, said
    assert "warm-up" in said
    # The same words in the wizard when the draft is edited again.
    edit = client.get(f"/campaigns/{draft_id}/edit").get_data(as_text=True)
    assert _outlook(edit) is not None and "of 100 messages can go out by" in _outlook(edit)

    # A finish-by time before the start is refused next to its box.
    start = (utcnow() + timedelta(days=3)).strftime(FORM)
    wrong = _post(
        client,
        f"/campaigns/{draft_id}/edit",
        **_wizard(
            list_ids=[str(lst)],
            sender_ids=[str(sender_id)],
            schedule="later",
            scheduled_at=start,
            ends_at=soon,
        ),
    )
    assert wrong.status_code == 400
    assert re.search(
        r'data-error-for="ends_at">Finish by must be after the start time',
        wrong.get_data(as_text=True),
    )


def test_a_running_campaign_pauses_at_its_finish_by_time_and_resumes_once_moved(
    dual, settings
) -> None:
    app, db = dual
    client = _signed_in(app, db)
    sender = make_sender(db, "Rehearsal", min_delay_seconds=30, max_delay_seconds=60)
    ends = utcnow() + timedelta(hours=1)
    campaign_id = make_campaign(
        db, [make_contacts(db, phones(6), "Customers")], [sender], ends_at=ends
    )
    url = f"/campaigns/{campaign_id}"
    shown = re.search(
        r'data-testid="finish-by-text">(.*?)</span>', client.get(url).get_data(as_text=True)
    )
    assert shown and shown.group(1).startswith(ends.strftime("%Y-%m-%d %H:%M"))

    # The time comes (moved into the past here) while all six still wait.
    with db.session() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(ends_at=utcnow() - timedelta(seconds=1))
        )
    Dispatcher(db, settings).campaign_step()
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        assert campaign.status == CampaignStatus.PAUSED
        assert (campaign.n_queued, campaign.n_skipped) == (6, 0)  # nothing skipped or lost
        assert "finish-by time" in (campaign.status_reason or "")
        assert "6 message(s) not sent yet" in (campaign.status_reason or "")
        event = session.scalars(select(Event).where(Event.kind == "campaign.paused")).one()
        assert event.level.value == "warning"
    progress = client.get(url + "/progress.json").get_json()
    assert progress["status"] == "paused" and "set a later finish-by time" in progress["reason"]

    # Resuming is refused until the time moves; a past time is refused too.
    assert _post(client, url + "/actions/resume").status_code == 302
    with db.session() as session:
        assert session.get(Campaign, campaign_id).status == CampaignStatus.PAUSED  # type: ignore[union-attr]
    with db.session() as session, pytest.raises(Conflict, match="has passed"):
        lifecycle.resume(session, None, campaign_id)
    with db.session() as session, pytest.raises(ValidationError, match="already passed"):
        lifecycle.set_finish_by(session, None, campaign_id, utcnow() - timedelta(hours=1))
    moved = utcnow() + timedelta(days=2)
    done = _post(client, url + "/finish-by", ends_at=moved.strftime(FORM))
    assert done.status_code == 302
    assert "now finishes by" in _words(client.get(url).get_data(as_text=True))
    assert 'data-testid="summary-finish-by"' in client.get(url + "/summary").get_data(as_text=True)
    assert _post(client, url + "/actions/resume").status_code == 302
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status == CampaignStatus.RUNNING
        assert campaign.ends_at is not None
        assert abs((campaign.ends_at - moved).total_seconds()) < 60
    # Cleared: no end at all.
    _post(client, url + "/finish-by", ends_at="")
    with db.session() as session:
        assert session.get(Campaign, campaign_id).ends_at is None  # type: ignore[union-attr]
    assert "No end" in _words(client.get(url).get_data(as_text=True))


def test_the_api_takes_and_returns_the_finish_by_time(dual) -> None:
    app, db = dual
    with db.session() as session:
        user = users.create_user(session, None, "api@example.com", PASSWORD, Role.OPERATOR)
        secret = tokens.create_token(session, user, "tests").secret
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    sender = make_sender(db, "Rehearsal")
    lst = make_contacts(db, phones(3), "Customers")
    draft = {"name": "Api sale", "list_ids": [lst], "sender_ids": [sender], "body": "Hi"}
    made = client.post(
        "/api/v1/campaigns",
        json={**draft, "ends_at": "2099-01-02T18:00:00+05:30"},
        headers=headers,
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    body = made.get_json()
    assert body["ends_at"] == "2099-01-02T12:30:00Z"
    campaign_id = body["id"]
    launched = client.post(f"/api/v1/campaigns/{campaign_id}/launch", headers=headers)
    assert launched.status_code == 200, launched.get_data(as_text=True)
    moved = client.put(
        f"/api/v1/campaigns/{campaign_id}/finish-by", json={"ends_at": None}, headers=headers
    )
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert moved.get_json()["ends_at"] is None
    past = client.put(
        f"/api/v1/campaigns/{campaign_id}/finish-by",
        json={"ends_at": "2001-01-01T00:00:00Z"},
        headers=headers,
    )
    assert past.status_code == 422
