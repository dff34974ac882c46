"""The campaign page and the printable summary show the message as a real customer gets it,
with WhatsApp's formatting, never the template's code (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import select, update

from tests.analytics_support import signed_in
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.models import Contact, Message, Role

BODY = "*Hi* {{ first_name }}, {Diwali|festival} gifts in {{ city }}"


def _pages(client, campaign_id: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    detail = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    summary = client.get(f"/campaigns/{campaign_id}/summary").get_data(as_text=True)
    return detail, summary


def test_a_draft_shows_its_first_customer_s_message_formatted(dual) -> None:
    app, db = dual
    list_id = make_contacts(db, phones(2), "VIP", attributes={"city": "<Pune>"})
    with db.session() as session:
        first = session.scalars(select(Contact).order_by(Contact.id)).first()
        first.name = "Asha <b>Rao</b>"
    campaign = make_campaign(db, [list_id], [make_sender(db)], body=BODY, launch=False)
    client = signed_in(app, db, Role.VIEWER)
    detail, summary = _pages(client, campaign)
    for page in (detail, summary):
        assert "As Asha &lt;b&gt;Rao&lt;/b&gt; will get it:" in page
        assert "<strong>Hi</strong> Asha, " in page and "gifts in &lt;Pune&gt;" in page
        assert "{{ first_name }}" not in page and "<b>Rao</b>" not in page


def test_a_launched_campaign_shows_a_message_as_sent_or_as_it_will_go(dual) -> None:
    app, db = dual
    list_id = make_contacts(db, phones(3), "VIP", attributes={"city": "Goa"})
    campaign = make_campaign(db, [list_id], [make_sender(db)], body=BODY)
    client = signed_in(app, db, Role.VIEWER)
    # The first recipient's message made the last by id, as PostgreSQL's join may insert
    # them: the sample still names the first recipient.
    with db.session() as session:
        first = session.scalar(
            select(Message.id).where(Message.campaign_id == campaign).order_by(Message.contact_id)
        )
        session.execute(update(Message).where(Message.id == first).values(id=first + 1000))

    # Nothing written yet: the first recipient (by contact id, whatever order the launch
    # inserted their messages in) with their message's own choice of words.
    detail, summary = _pages(client, campaign)
    for page in (detail, summary):
        assert "As Person 0 will get it:" in page
        assert "<strong>Hi</strong> Person, " in page and " gifts in Goa" in page
        assert "{Diwali|festival}" not in page

    # Once a message is written, the page shows it word for word.
    with db.session() as session:
        second = session.scalars(
            select(Message.id).where(Message.campaign_id == campaign).order_by(Message.contact_id)
        ).all()[1]
        session.execute(
            update(Message).where(Message.id == second).values(body="~Sent~ _as is_ ```{{ x }}```")
        )
    detail, summary = _pages(client, campaign)
    for page in (detail, summary):
        assert "As Person 1 got it:" in page
        assert "<del>Sent</del> <em>as is</em> <code>{{ x }}</code>" in page


def test_a_message_that_no_longer_fills_in_says_why(dual) -> None:
    app, db = dual
    list_id = make_contacts(db, phones(1), "VIP", attributes={"n": "0"})
    campaign = make_campaign(
        db, [list_id], [make_sender(db)], body="Due: {{ 10 // n|int }}", launch=False
    )
    client = signed_in(app, db, Role.VIEWER)
    detail, summary = _pages(client, campaign)
    assert "divides by zero" in detail and "divides by zero" in summary
