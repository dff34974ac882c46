"""The Follow-ups section of a campaign's page over HTTP: add, edit and remove a draft's
steps with their errors next to the box; viewers only read; after launch each step's
funnel and a link to its own page; the campaigns list keeps steps under their campaign."""

from __future__ import annotations

import re
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.campaigns import followups, lifecycle
from wabulk.campaigns.followups import StepInput
from wabulk.models import Campaign, Role, StepCondition, utcnow

from ..conftest import get_csrf


def _post(client: FlaskClient, url: str, **data: str):  # type: ignore[no-untyped-def]
    data.setdefault("csrf_token", get_csrf(client, "/campaigns"))
    return client.post(url, data=data)


def _steps(db, campaign_id: int) -> list[tuple[int, int, str, str]]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return [
            (s.position, s.delay_minutes, s.condition.value, s.body)
            for s in followups.steps_of(session, campaign_id)
        ]


def _draft(db) -> int:  # type: ignore[no-untyped-def]
    lst = make_contacts(db, phones(3), "Customers")
    sender = make_sender(db)
    return make_campaign(db, [lst], [sender], launch=False)


def test_an_operator_adds_edits_and_removes_follow_ups(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    draft = _draft(db)
    page = client.get(f"/campaigns/{draft}").get_data(as_text=True)
    assert 'data-testid="no-followups"' in page and "Add a follow-up" in page
    form = client.get(f"/campaigns/{draft}/followups/new")
    assert form.status_code == 200 and 'name="csrf_token"' in form.get_data(as_text=True)

    added = _post(
        client,
        f"/campaigns/{draft}/followups/new",
        days="2",
        hours="0",
        condition="not_replied",
        template_id="",
        body="Still interested, {{ name }}?",
    )
    assert added.status_code == 302 and added.headers["Location"].endswith("#followups")
    _post(
        client,
        f"/campaigns/{draft}/followups/new",
        days="0",
        hours="6",
        condition="not_read",
        body="Last call",
    )
    assert _steps(db, draft) == [
        (1, 2880, "not_replied", "Still interested, {{ name }}?"),
        (2, 360, "not_read", "Last call"),
    ]
    page = client.get(f"/campaigns/{draft}").get_data(as_text=True)
    assert "2 days after the previous message" in page and "6 hours after" in page
    assert "To those who have not replied" in page

    _post(
        client,
        f"/campaigns/{draft}/followups/1",
        days="3",
        hours="2",
        condition="everyone",
        body="Changed",
    )
    assert _steps(db, draft)[0] == (1, 3 * 1440 + 120, "everyone", "Changed")
    removed = _post(client, f"/campaigns/{draft}/followups/1/delete")
    assert removed.status_code == 302
    assert _steps(db, draft) == [(1, 360, "not_read", "Last call")]


def test_mistakes_are_shown_next_to_their_box_and_the_input_is_kept(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    draft = _draft(db)
    cases = [
        ({"days": "0", "hours": "0", "body": "Keep me"}, "hours", "at least an hour"),
        ({"days": "soon", "hours": "0", "body": "Keep me"}, "days", "whole number"),
        ({"days": "1", "hours": "30", "body": "Keep me"}, "hours", "between 0 and 23"),
        ({"days": "1", "hours": "0", "body": "  "}, "body", "Write the message"),
        ({"days": "1", "hours": "0", "body": "Hi {{ nmae }}"}, "body", "nmae"),
        ({"days": "1", "hours": "0", "condition": "maybe", "body": "Keep me"}, "condition", ""),
    ]
    for fields, box, words in cases:
        data = {"condition": "not_replied", **fields}
        response = _post(client, f"/campaigns/{draft}/followups/new", **data)
        assert response.status_code == 400, fields
        page = response.get_data(as_text=True)
        error = re.search(rf'data-error-for="{box}">([^<]*)<', page)
        assert error and words in error.group(1), (fields, error)
        assert f"{fields['body']}</textarea>" in page
    assert _steps(db, draft) == []


def test_a_viewer_reads_follow_ups_but_cannot_change_them(client, as_role, db) -> None:
    draft = _draft(db)
    with db.session() as session:
        followups.set_steps(session, None, draft, [StepInput(2880, body="Hello again")])
    as_role(Role.VIEWER)
    page = client.get(f"/campaigns/{draft}").get_data(as_text=True)
    assert 'data-testid="followup-1"' in page
    assert "Add a follow-up" not in page and f"/campaigns/{draft}/followups/1/delete" not in page
    assert client.get(f"/campaigns/{draft}/followups/new").status_code == 403
    refused = _post(client, f"/campaigns/{draft}/followups/1/delete")
    assert refused.status_code == 403
    assert len(_steps(db, draft)) == 1


def test_after_launch_each_step_shows_its_funnel_and_links_its_own_page(
    client, as_role, db
) -> None:
    as_role(Role.OPERATOR)
    draft = _draft(db)
    with db.session() as session:
        followups.set_steps(
            session, None, draft, [StepInput(60, StepCondition.NOT_REPLIED, body="Hello again")]
        )
    with db.session() as session:
        lifecycle.launch(session, None, draft)
    with db.session() as session:
        run = followups.steps_of(session, draft)[0].run_campaign_id
        session.execute(
            Campaign.__table__.update().where(Campaign.id == draft).values(n_queued=0, n_sent=3)
        )
        from wabulk.models import Message, MessageStatus

        session.execute(
            Message.__table__.update()
            .where(Message.campaign_id == draft)
            .values(status=MessageStatus.SENT, sent_at=utcnow() - timedelta(minutes=30))
        )
    page = client.get(f"/campaigns/{draft}").get_data(as_text=True)
    funnel = re.search(r'data-testid="followup-funnel-1">(.*?)</table>', page, re.S)
    assert funnel and re.search(r'data-count="waiting">3<', funnel.group(1))
    assert f'href="/campaigns/{run}"' in page
    # No editing once launched.
    assert "Add a follow-up" not in page
    refused = _post(client, f"/campaigns/{draft}/followups/new", days="1", hours="0", body="x")
    assert refused.status_code == 302
    step_page = client.get(f"/campaigns/{run}").get_data(as_text=True)
    assert (
        'data-testid="followup-of"' in step_page
        and f'href="/campaigns/{draft}#followups"' in step_page
    )
    listed = client.get("/campaigns").get_data(as_text=True)
    with db.session() as session:
        name = session.scalar(select(Campaign.name).where(Campaign.id == run))
    assert name and name not in listed
