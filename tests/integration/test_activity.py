"""The Activity page: filters by campaign, user, level and days, keyset pages, bad input."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.auth import service as users
from wabulk.db import Database
from wabulk.models import Event, EventLevel, Role

from ..conftest import PASSWORD, login

T0 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
IST = ZoneInfo("Asia/Kolkata")
LEVELS = [EventLevel.INFO, EventLevel.INFO, EventLevel.WARNING, EventLevel.INFO, EventLevel.ERROR]


@dataclass
class World:
    client: FlaskClient
    campaigns: list[int]
    users: list[int]


def _sign_in(app: Flask, db: Database, email: str, role: Role, timezone: str = "") -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        user = users.create_user(session, None, email, PASSWORD, role)
        if timezone:
            users.set_timezone(session, user, timezone)
    assert login(client, email).status_code == 302
    return client


def _world(app: Flask, db: Database, n: int = 130) -> World:
    """`n` events an hour apart from T0, spread over two campaigns, two people and levels;
    plus one written a few minutes late (its time before the event before it)."""
    lst = make_contacts(db, phones(2), "Customers")
    sender = make_sender(db)
    first = make_campaign(db, [lst], [sender], name="Spring sale", launch=False)
    second = make_campaign(db, [lst], [sender], name="Diwali offer", launch=False)
    client = _sign_in(app, db, "viewer@example.com", Role.VIEWER, "Asia/Kolkata")
    with db.session() as session:
        a = users.create_user(session, None, "asha@example.com", PASSWORD, Role.OPERATOR)
        b = users.create_user(session, None, "ravi@example.com", PASSWORD, Role.ADMIN)
        people = [a.id, b.id, None]
        for i in range(n):
            session.add(
                Event(
                    at=T0 + timedelta(hours=i),
                    kind="test.event",
                    text=f"event number {i}",
                    level=LEVELS[i % len(LEVELS)],
                    user_id=people[i % 3],
                    campaign_id=[first, second, None][(i // 3) % 3],
                )
            )
            if i == 42:
                # 2026-01-02 18:29 UTC is 23:59 in India: inside 2 January there, although
                # it was written after an event from 18:35 and 18:00.
                session.add(Event(at=T0 + timedelta(hours=42, minutes=35), kind="t", text="late"))
                session.add(Event(at=T0 + timedelta(hours=42, minutes=29), kind="t", text="edge"))
            session.flush()
    return World(client, [first, second], [a.id, b.id])


def _all_events(db: Database) -> list[Event]:
    with db.session() as session:
        return list(session.scalars(select(Event).order_by(Event.id.desc())))


def _ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-event-id="(\d+)"', page)]


def _link(page: str, testid: str) -> str | None:
    found = re.search(rf'href="([^"]+)" data-testid="{testid}"', page)
    return html.unescape(found.group(1)) if found else None


def _walk(client: FlaskClient, url: str) -> list[int]:
    """Every event from `url` following "Older" to the end, then back with "Newer"."""
    pages: list[list[int]] = []
    page = client.get(url).get_data(as_text=True)
    while True:
        pages.append(_ids(page))
        older = _link(page, "older")
        if older is None:
            break
        page = client.get(older).get_data(as_text=True)
    back: list[list[int]] = []
    while True:
        back.append(_ids(page))
        newer = _link(page, "newer")
        if newer is None:
            break
        page = client.get(newer).get_data(as_text=True)
    assert back == pages[::-1], "Newer walks back through the same pages"
    assert all(0 < len(p) <= 50 for p in pages), (url, [len(p) for p in pages])
    return [i for p in pages for i in p]


def test_paging_walks_every_event_once_both_ways(dual) -> None:
    app, db = dual
    world = _world(app, db)
    expected = [e.id for e in _all_events(db)]
    assert len(expected) > 130
    seen = _walk(world.client, "/activity")
    assert seen == expected and len(set(seen)) == len(seen)


def test_each_filter_narrows_and_they_combine(dual) -> None:
    app, db = dual
    world = _world(app, db)
    everything = _all_events(db)
    first, second = world.campaigns
    asha, ravi = world.users
    day_start = datetime(2026, 1, 2, tzinfo=IST)
    cases = [
        ({"campaign": first}, lambda e: e.campaign_id == first),
        ({"user": asha}, lambda e: e.user_id == asha),
        ({"level": "error"}, lambda e: e.level == EventLevel.ERROR),
        (
            {"from": "2026-01-02", "to": "2026-01-02"},
            lambda e: day_start <= e.at < day_start + timedelta(days=1),
        ),
        ({"from": "2026-01-05"}, lambda e: e.at >= datetime(2026, 1, 5, tzinfo=IST)),
        ({"to": "2026-01-01"}, lambda e: e.at < datetime(2026, 1, 2, tzinfo=IST)),
        (
            {"campaign": second, "user": ravi, "level": "info"},
            lambda e: e.campaign_id == second and e.user_id == ravi and e.level == EventLevel.INFO,
        ),
        (
            {"campaign": first, "level": "warning", "from": "2026-01-02", "to": "2026-01-04"},
            lambda e: (
                e.campaign_id == first
                and e.level == EventLevel.WARNING
                and day_start <= e.at < day_start + timedelta(days=3)
            ),
        ),
    ]
    for args, keep in cases:
        expected = [e.id for e in everything if keep(e)]
        query = "&".join(f"{k}={v}" for k, v in args.items())
        seen = _walk(world.client, f"/activity?{query}")
        assert seen == expected, args
        assert 0 < len(expected) < len(everything), args  # each case really narrows
    # The day in India holds the late-written event from 23:59 but not the one from 00:05.
    page = world.client.get("/activity?from=2026-01-02&to=2026-01-02").get_data(as_text=True)
    assert "<td>edge</td>" in page and "<td>late</td>" not in page
    assert len(_ids(page)) == 25


def test_filters_are_kept_in_the_form_and_the_page_links(dual) -> None:
    app, db = dual
    world = _world(app, db, n=300)
    first = world.campaigns[0]
    url = f"/activity?campaign={first}&level=info&from=2026-01-01&to=2026-02-01"
    page = world.client.get(url).get_data(as_text=True)
    assert re.search(rf'<option value="{first}" selected>Spring sale</option>', page)
    assert re.search(r'<option value="info" selected>info</option>', page)
    assert 'name="from" type="date" value="2026-01-01"' in page
    assert 'name="to" type="date" value="2026-02-01"' in page
    assert "Days run midnight to midnight in Asia/Kolkata." in page
    older = _link(page, "older")
    assert older and f"campaign={first}" in older and "level=info" in older
    assert "from=2026-01-01" in older and "to=2026-02-01" in older
    newer = _link(world.client.get(older).get_data(as_text=True), "newer")
    assert newer and f"campaign={first}" in newer and "to=2026-02-01" in newer
    # Campaigns are offered newest first.
    options = re.findall(r'<option value="(\d+)"[^>]*>(Spring sale|Diwali offer)</option>', page)
    assert [name for _, name in options] == ["Diwali offer", "Spring sale"]


def test_bad_filters_are_explained_not_crashed_on(dual) -> None:
    app, db = dual
    world = _world(app, db, n=3)
    cases = {
        "campaign=abc": "'abc' is not a campaign number.",
        "user=-1": "'-1' is not a user number.",
        "campaign=99999999999999": "'99999999999999' is not a campaign number.",
        "level=fatal": "There is no level 'fatal'; choose info, warning or error.",
        "from=2026-13-01": "'2026-13-01' is not a date; give the start day as YYYY-MM-DD.",
        "to=yesterday": "'yesterday' is not a date; give the end day as YYYY-MM-DD.",
        "from=2026-02-03&to=2026-02-01": (
            "The start date 2026-02-03 is after the end date 2026-02-01."
        ),
    }
    for query, message in cases.items():
        response = world.client.get(f"/activity?{query}")
        assert response.status_code == 400, query
        page = html.unescape(response.get_data(as_text=True))
        shown = re.search(r'data-testid="filter-error">.*?</i> ([^<]*)<', page, re.S)
        assert shown and shown.group(1).strip() == message, (query, shown)
        assert 'data-testid="activity"' not in page
    # An unknown campaign is a filter like any other: nothing matches.
    page = world.client.get("/activity?campaign=424242").get_data(as_text=True)
    assert "Nothing matches these filters" in page and "Campaign #424242 (deleted)" in page


def test_events_link_their_campaign_and_screenshot(dual) -> None:
    app, db = dual
    lst = make_contacts(db, phones(1), "Customers")
    campaign_id = make_campaign(db, [lst], [make_sender(db)], name="Spring sale")
    shot = "20261120T093000-m7-chat-not-opened.png"
    with db.session() as session:
        session.add(
            Event(
                kind="message.failed",
                text="The chat did not open.",
                level=EventLevel.ERROR,
                campaign_id=campaign_id,
                data={"screenshot": shot},
            )
        )
    viewer = _sign_in(app, db, "viewer@example.com", Role.VIEWER)
    page = viewer.get("/activity").get_data(as_text=True)
    assert re.search(
        rf'<a href="/campaigns/{campaign_id}" data-testid="event-campaign">Spring sale</a>', page
    )
    assert "/senders/screenshots/" not in page  # viewers may not open screenshots
    operator = _sign_in(app, db, "operator@example.com", Role.OPERATOR)
    page = operator.get("/activity").get_data(as_text=True)
    assert f'href="/senders/screenshots/{shot}"' in page


def test_an_empty_log_and_an_empty_filter_are_designed(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    with db.session() as session:
        session.execute(delete(Event))
    page = client.get("/activity").get_data(as_text=True)
    assert "No activity yet" in page and "Clear filters" not in page
    page = client.get("/activity?level=error").get_data(as_text=True)
    assert "Nothing matches these filters" in page and 'href="/activity"' in page


def test_the_activity_page_needs_a_signed_in_user(client, make_user) -> None:
    make_user(Role.ADMIN)
    response = client.get("/activity?level=error")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
