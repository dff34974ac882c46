"""The Inbox pages: the list, its filters and search, a conversation, the team's actions and
who may take them, the 24-hour window of the Cloud API, and Settings → Quick replies."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from tests.campaigns_support import make_campaign, make_contacts, make_sender
from tests.inbound_support import make_cloud_sender
from tests.page_tour import COMPONENTS
from wabulk.auth import service as users
from wabulk.channels.heard import Reply
from wabulk.db import Database
from wabulk.inbound import replies
from wabulk.inbox import conversations
from wabulk.models import (
    Answer,
    CloudTemplate,
    Contact,
    Conversation,
    Message,
    MessageStatus,
    QuickReply,
    Role,
    User,
    utcnow,
)
from wabulk.web.inbox import views as inbox_views

from ..conftest import PASSWORD, csrf_from, login

PHONES = ["+919876500001", "+919876500002", "+919876500003"]


def _client(app: Flask, db: Database, role: Role) -> FlaskClient:
    client = app.test_client()
    email = f"{role.value}@shop.example"
    with db.session() as session:
        users.create_user(session, None, email, PASSWORD, role)
    assert login(client, email).status_code == 302
    return client


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _post(client: FlaskClient, url: str, page: str = "/inbox", **form: object):  # type: ignore[no-untyped-def]
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **form})


def _reply(
    db: Database,
    sender_id: int,
    phone: str,
    text: str,
    at: datetime,
    keywords: tuple[str, ...] = (),
) -> int:
    """A customer's reply stored as the webhook stores it; returns its conversation's id
    (`keywords`: the opt-out keywords it is read against)."""
    with db.session() as session:
        replies.store_replies(
            session,
            sender_id,
            [
                Reply(
                    at=at,
                    provider_message_id=f"in-{phone}-{at.timestamp()}",
                    phone=phone,
                    text=text,
                )
            ],
            keywords,
            at,
        )
    with db.session() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.phone == phone))
        found = session.scalar(
            select(Conversation.id).where(
                Conversation.contact_id == contact_id, Conversation.sender_id == sender_id
            )
        )
        assert found is not None
        return found


def _shop(db: Database, sender_id: int | None = None) -> tuple[int, int]:
    """Three customers a campaign reached through one sender; returns (sender, campaign)."""
    list_id = make_contacts(db, PHONES, "Customers", attributes={"city": "Pune"})
    sender = sender_id or make_sender(db, "Shop phone")
    campaign = make_campaign(db, [list_id], [make_sender(db, "Rehearsal")], name="Diwali sale")
    with db.session() as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == campaign)
            .values(
                status=MessageStatus.SENT,
                sender_id=sender,
                sent_at=utcnow() - timedelta(hours=2),
                provider_message_id=None,
            )
        )
    return sender, campaign


def _unread_in_nav(page: str) -> str:
    match = re.search(r"data-inbox-unread[^>]*>\s*<span data-count>(\d+)<", page)
    assert match, "no unread count in the navigation"
    return match.group(1)


def test_list_filters_search_and_a_conversation(dual, monkeypatch) -> None:
    app, db = dual
    monkeypatch.setattr(inbox_views, "PAGE_SIZE", 2)
    client = _client(app, db, Role.OPERATOR)
    assert "No replies yet." in _text(_page(client, "/inbox"))
    sender, _ = _shop(db)
    now = utcnow()
    first = _reply(db, sender, PHONES[0], "Price?", now - timedelta(minutes=30))
    _reply(db, sender, PHONES[1], "Do you deliver to Pune?", now - timedelta(minutes=20))
    third = _reply(db, sender, PHONES[2], "Book me for Saturday", now - timedelta(minutes=10))

    page = _page(client, "/inbox")
    assert _unread_in_nav(page) == "3"
    rows = re.findall(r'data-conversation="(\d+)"', page)
    assert rows[0] == str(third)  # newest activity first
    assert "Book me for Saturday" in _text(page)

    assert len(rows) == 2  # a page of two here: the oldest is on the next page
    older = re.search(r'href="([^"]+)" data-testid="older"', page)
    assert older is not None
    assert re.findall(r'data-conversation="(\d+)"', _page(client, html.unescape(older[1]))) == [
        str(first)
    ]
    rows.append(str(first))

    found = _page(client, "/inbox?q=500002")
    assert re.findall(r'data-conversation="(\d+)"', found) == [rows[1]]
    found = _page(client, "/inbox?q=Person+2")
    assert re.findall(r'data-conversation="(\d+)"', found) == [str(third)]
    assert "No conversation matches" in _text(_page(client, "/inbox?q=nobody+here"))

    # Opening one reads it: the campaign that started it, both ways in order, the contact.
    page = _page(client, f"/inbox/{first}")
    said = _text(page)
    assert "started by the campaign Diwali sale" in said
    thread = _text(page.split('data-testid="thread"', 1)[1])
    assert thread.index("Campaign: Diwali sale") < thread.index("Price?")
    assert "Pune" in said and "Customers" in said
    assert _unread_in_nav(page) == "2"
    unread = _page(client, "/inbox?f=unread")
    assert str(first) not in re.findall(r'data-conversation="(\d+)"', unread)

    live = client.get(f"/inbox/live.json?c={third}").get_json()
    assert live["unread"] == 1 and "Book me for Saturday" in live["thread"]
    assert f'data-conversation="{third}"' in live["list"]
    assert client.get("/inbox/unread.json").get_json() == {"unread": 1}

    # A contact's page opens their conversation.
    with db.session() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.phone == PHONES[0]))
    assert f'href="/inbox?contact={contact_id}"' in _page(client, f"/contacts/{contact_id}")
    response = client.get(f"/inbox?contact={contact_id}")
    assert response.status_code == 302 and response.location.endswith(f"/inbox/{first}")


def test_the_team_answers_assigns_notes_finishes_and_opts_out(dual) -> None:
    app, db = dual
    sender, _ = _shop(db)
    conversation = _reply(db, sender, PHONES[0], "Price?", utcnow() - timedelta(minutes=5))
    viewer = _client(app, db, Role.VIEWER)
    operator = _client(app, db, Role.OPERATOR)
    url = f"/inbox/{conversation}"

    # A viewer reads everything, has no controls, and the server refuses them anyway.
    page = _page(viewer, url)
    assert "Price?" in page and 'data-testid="read-only"' in page
    assert "send-answer" not in page and "team-actions" not in page
    for action, form in [
        ("answer", {"text": "Hello"}),
        ("assign", {"assignee": ""}),
        ("done", {"done": "1"}),
        ("note", {"body": "x"}),
        ("opt-out", {}),
    ]:
        assert _post(viewer, f"{url}/{action}", url, **form).status_code == 403, action

    # A form without its token is refused.
    assert operator.post(f"{url}/answer", data={"text": "Hello"}).status_code == 400

    # The answer form, sent twice as it stands (a double click, a browser's resend): one answer.
    page = _page(operator, url)
    token = re.search(r'name="once" value="([^"]+)"', page)
    assert token, "the answer form carries no one-time token"
    form = {"csrf_token": csrf_from(page), "once": token[1]}
    for _ in range(2):
        sent = operator.post(
            f"{url}/answer", data={**form, "text": "It is 499 rupees, {{ first_name }}."}
        )
        assert sent.status_code == 302
    page = _page(operator, url)
    assert "Answer queued" in page
    said = _text(page)
    assert "It is 499 rupees, Person." in said and "Answer by operator@shop.example" in said
    assert "Waiting to go out" in said
    with db.session() as session:
        answer = session.scalars(select(Message).where(Message.campaign_id.is_(None))).one()
        assert answer.status == MessageStatus.QUEUED and answer.sender_id == sender
        assert session.get(Answer, answer.id) is not None

    _post(operator, f"{url}/assign", url, assignee=str(_user_id(db, "operator@shop.example")))
    assert str(conversation) in _page(operator, "/inbox?f=mine")
    assert str(conversation) not in re.findall(
        r'data-conversation="(\d+)"', _page(operator, "/inbox?f=unassigned")
    )
    _post(operator, f"{url}/note", url, body="Call back after 6 pm")
    said = _text(_page(operator, url))
    assert "Internal note by operator@shop.example" in said and "Call back after 6 pm" in said

    _post(operator, f"{url}/done", url, done="1")
    assert f'data-conversation="{conversation}"' in _page(operator, "/inbox?f=done")
    assert f'data-conversation="{conversation}"' not in _page(operator, "/inbox")
    _reply(db, sender, PHONES[0], "One more thing", utcnow())  # reopens it
    assert f'data-conversation="{conversation}"' in _page(operator, "/inbox")

    response = _post(operator, f"{url}/opt-out", url)
    assert response.status_code == 302
    with db.session() as session:
        contact = session.scalar(select(Contact).where(Contact.phone == PHONES[0]))
        assert contact.opted_out_at is not None and "One more thing" in (
            contact.opt_out_reason or ""
        )
    page = _page(operator, url)
    assert 'data-testid="opted-out"' in page and 'data-testid="answer-refused"' in page
    _post(operator, f"{url}/answer", url, text="Are you sure?")
    assert "opted out" in _text(_page(operator, url)).lower()
    with db.session() as session:
        count = select(func.count()).select_from(Message).where(Message.campaign_id.is_(None))
        assert session.scalar(count) == 1


def _user_id(db: Database, email: str) -> int:
    with db.session() as session:
        found = session.scalar(select(User.id).where(User.email == email))
        assert found is not None
        return found


def test_the_cloud_window_closes_and_a_template_is_offered(dual) -> None:
    app, db = dual
    cloud = make_cloud_sender(db)
    with db.session() as session:
        session.add(
            CloudTemplate(
                sender_id=cloud,
                name="spring_sale",
                language="en_US",
                category="MARKETING",
                status="APPROVED",
                parameter_format="positional",
                components=COMPONENTS,
            )
        )
    _shop(db, cloud)
    fresh = _reply(db, cloud, PHONES[1], "Hi", utcnow() - timedelta(hours=1))
    stale = _reply(db, cloud, PHONES[0], "Price?", utcnow() - timedelta(hours=25))
    with db.session() as session:
        silent = session.scalar(select(Contact.id).where(Contact.phone == PHONES[2]))
        assert silent is not None
        never = conversations.ensure(session, silent, cloud, utcnow())
    operator = _client(app, db, Role.OPERATOR)

    page = _page(operator, f"/inbox/{never}")
    assert "has not written to this number yet" in _text(page) and "spring_sale" in page
    page = _page(operator, f"/inbox/{fresh}")
    assert 'data-testid="window-left"' in page and "22 h" in _text(page)

    url = f"/inbox/{stale}"
    page = _page(operator, url)
    assert 'data-testid="window-closed"' in page and "spring_sale" in page
    assert "send-answer" not in page
    _post(operator, f"{url}/answer", url, text="Price is 499")
    assert "24-hour window closed" in _text(_page(operator, url))
    with db.session() as session:
        template_id = session.scalar(select(CloudTemplate.id))
        assert session.scalar(select(func.count()).select_from(Answer)) == 0
    response = _post(
        operator,
        f"{url}/answer",
        url,
        template_id=str(template_id),
        **{"var.body.1": "{{ first_name }}", "var.body.2": "SPRING10"},
    )
    assert response.status_code == 302
    with db.session() as session:
        answer = session.scalars(select(Answer)).one()
        assert answer.template and answer.template.get("name") == "spring_sale"


def test_admins_keep_quick_replies_and_operators_pick_them(dual) -> None:
    app, db = dual
    sender, _ = _shop(db)
    conversation = _reply(db, sender, PHONES[0], "When are you open?", utcnow())
    admin = _client(app, db, Role.ADMIN)
    operator = _client(app, db, Role.OPERATOR)
    settings = "/settings/quick-replies"

    assert "No quick replies yet." in _text(_page(admin, settings))
    assert "Quick replies" in _page(admin, "/settings/general")
    response = _post(admin, settings, settings, name="Hours", body="Hi {{ nme }}")
    assert response.status_code == 400
    assert "nme" in _text(response.get_data(as_text=True))
    response = _post(
        admin, settings, settings, name="Hours", body="Hi {{ first_name }}, 10 am to 8 pm."
    )
    assert response.status_code == 302
    with db.session() as session:
        reply_id = session.scalar(select(QuickReply.id))
    _post(admin, f"{settings}/{reply_id}", settings, name="Opening hours", body="Hi {{ name }}!")
    assert "Opening hours" in _text(_page(admin, settings))

    # Offered in the answer box, filled for this contact before it is sent.
    page = _page(operator, f"/inbox/{conversation}")
    assert 'data-text="Hi Person 0!"' in page
    assert operator.get(settings).status_code == 403
    assert _post(operator, settings, "/inbox", name="X", body="Y").status_code == 403

    _post(admin, f"{settings}/{reply_id}/delete", settings)
    assert "No quick replies yet." in _text(_page(admin, settings))
