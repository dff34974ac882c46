"""A campaign to a segment through the wizard, and retargeting from a campaign's page: the
draft keeps its segment, the launch reaches exactly the segment's contacts, the page names
the segment and its conditions as they were at launch, and the retarget buttons make (once)
the outcome's segment and open the wizard with it chosen. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

from sqlalchemy import select, update

from tests.analytics_support import signed_in
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from tests.conftest import csrf_from
from tests.funnel_support import funnel_campaign
from wabulk.models import Campaign, Contact, Message, Role, Segment
from wabulk.segments import service as segments

PUNE = phones(6, "+9198733")
MUMBAI = phones(3, "+9198744")


def _flat(text: str) -> str:
    """The page's words, tags left out."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).split())


def _post(client, url: str, page: str | None = None, **data: object):  # type: ignore[no-untyped-def]
    token = csrf_from(client.get(page or url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def _wizard(**fields: object) -> dict[str, object]:
    form: dict[str, object] = {
        "name": "Dues reminder",
        "template_id": "",
        "body": "Hello {{ first_name }}",
        "schedule": "now",
        "max_attempts": "3",
        "retry_seconds": "60",
    }
    form.update(fields)
    return form


def _dues_segment(db) -> tuple[int, set[str]]:  # type: ignore[no-untyped-def]
    """Pune with dues over 250 (four of six; one of them opted out): the segment and who it
    reaches."""
    pune = make_contacts(db, PUNE, "Pune")
    make_contacts(db, MUMBAI, "Mumbai", attributes={"due_amount": "900"})
    with db.session() as session:
        for i, phone in enumerate(PUNE):
            contact = session.scalar(select(Contact).where(Contact.phone == phone))
            assert contact is not None
            contact.attributes = {"due_amount": str(100 * (i + 1))}
            if i == 5:
                contact.opted_out_at = contact.created_at
        seg = segments.create(
            session,
            None,
            "Pune dues",
            None,
            {
                "match": "all",
                "conditions": [
                    {"field": "list", "op": "in", "value": [pune]},
                    {"field": "attribute", "key": "due_amount", "op": "gt", "value": 250},
                ],
            },
        )
        return seg.id, set(PUNE[2:5])


def test_a_campaign_to_a_segment_launches_to_exactly_its_contacts(dual) -> None:
    app, db = dual
    seg_id, expected = _dues_segment(db)
    sender = make_sender(db)
    client = signed_in(app, db, Role.OPERATOR)

    page = client.get(f"/campaigns/new?segment_id={seg_id}").get_data(as_text=True)
    assert re.search(r'id="audience-segment" value="segment"\s+checked', page)
    assert re.search(rf'<option value="{seg_id}"[^>]*selected>Pune dues</option>', page)
    assert re.search(
        r'data-testid="audience">\s*<strong>3</strong> recipient\(s\) now · 1 opted out', page
    )
    assert client.get(f"/campaigns/audience.json?segment_id={seg_id}").get_json() == {
        "recipients": 3,
        "capped": False,
        "opted_out": 1,
        "segment": True,
        "lists": 0,
    }

    token = csrf_from(page)
    preview = client.post(
        "/templates/preview.json",
        data={"body": "Due: {{ due_amount }}", "segment_id": str(seg_id)},
        headers={"X-CSRFToken": token},
    ).get_json()
    # The segment's own first recipients (dues 300, 400, 500), checked among its own.
    assert [s["text"] for s in preview["samples"]] == ["Due: 300", "Due: 400", "Due: 500"]
    assert preview["checked"] == 3

    plan = client.get(
        f"/campaigns/plan.json?audience=segment&segment_id={seg_id}&sender_ids={sender}"
    ).get_json()
    assert plan["recipients"] == 3 and "3 message" in plan["estimate"]

    response = _post(
        client,
        "/campaigns/new",
        **_wizard(audience="segment", segment_id=str(seg_id), sender_ids=[str(sender)]),
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    url = response.headers["Location"]
    with db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == "Dues reminder"))
        assert campaign is not None and campaign.segment_id == seg_id and campaign.lists == []
    draft = _flat(client.get(url).get_data(as_text=True))
    assert "To the segment “Pune dues”" in draft
    assert "Segment “Pune dues” (In list Pune and" in draft
    # The message as the segment's first recipient (Pune 2, dues 300) will get it.
    assert re.search(r"As Person 2 will get it:\s*Hello Person", draft)
    assert re.findall(r"To (Person \d)", draft) == ["Person 2", "Person 3", "Person 4"]

    edit = client.get(url + "/edit").get_data(as_text=True)  # the draft keeps its segment
    assert re.search(r'id="audience-segment" value="segment"\s+checked', edit)
    assert re.search(rf'<option value="{seg_id}"[^>]*selected>', edit)

    assert _post(client, url + "/actions/launch", url).status_code == 302
    with db.session() as session:
        sent_to = set(
            session.scalars(select(Message.phone).where(Message.campaign_id == campaign.id))
        )
        launched = session.get(Campaign, campaign.id)
        assert launched is not None and launched.audience_terms is not None
        # The segment changes after launch; the campaign page keeps the launch's terms.
        seg = session.get(Segment, seg_id)
        seg.terms = {"match": "all", "conditions": []}
    assert sent_to == expected
    page = _flat(client.get(url).get_data(as_text=True))
    assert "Segment “Pune dues” (In list Pune and" in page and "as it was at launch" in page


def test_a_segment_audience_needs_a_segment_chosen(dual) -> None:
    app, db = dual
    _dues_segment(db)
    client = signed_in(app, db, Role.OPERATOR)
    response = _post(client, "/campaigns/new", **_wizard(audience="segment", segment_id=""))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'data-error-for="segment_id">Choose the segment to send to\.<', page)
    assert 'value="Dues reminder"' in page  # the rest is kept


def test_retarget_buttons_make_the_segment_once_and_open_the_wizard_with_it(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    campaign_id = seeded.campaign_id
    client = signed_in(app, db, Role.OPERATOR)
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    box = _flat(re.search(r'data-testid="retarget"(.*?)</div></div>', page, re.S).group(1))
    # One delivered and not read, one replied (the other replied STOP: opted out), one failed
    # for a reason worth retrying (131049; not 131026, not on WhatsApp).
    assert "to those who got it but did not read it 1 person" in box
    assert "to those who replied 1 person" in box
    assert "(reasons worth retrying) 1 person" in box

    url = f"/segments/retarget/{campaign_id}/delivered_not_read"
    response = _post(client, url, f"/campaigns/{campaign_id}")
    assert response.status_code == 302
    with db.session() as session:
        seg = session.scalar(select(Segment).where(Segment.name.like("Did not read%")))
        assert seg is not None
        seg_id = seg.id
    assert response.headers["Location"].endswith(f"/campaigns/new?segment_id={seg_id}")
    wizard = client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(rf'<option value="{seg_id}"[^>]*selected>Did not read', wizard)
    assert 'name="name" type="text"\n         value="Did not read: Diwali offer"' in wizard
    assert re.search(r'data-testid="audience">\s*<strong>1</strong> recipient', wizard)

    again = _post(client, url, f"/campaigns/{campaign_id}")  # the same segment, not another
    assert again.headers["Location"].endswith(f"segment_id={seg_id}")
    with db.session() as session:
        assert len(session.scalars(select(Segment.id)).all()) == 1


def test_retarget_is_for_operators_after_launch(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    viewer = signed_in(app, db, Role.VIEWER)
    page = viewer.get(f"/campaigns/{seeded.campaign_id}").get_data(as_text=True)
    assert 'data-testid="retarget"' not in page
    response = _post(viewer, f"/segments/retarget/{seeded.campaign_id}/replied", "/campaigns")
    assert response.status_code == 403

    draft = make_campaign(
        db, [make_contacts(db, phones(2), "Few")], [make_sender(db)], launch=False
    )
    operator = signed_in(app, db, Role.OPERATOR)
    assert 'data-testid="retarget"' not in operator.get(f"/campaigns/{draft}").get_data(
        as_text=True
    )


def test_a_launched_campaign_with_nobody_to_retarget_says_so(dual) -> None:
    # A rehearsal: sent, but no delivery, read, reply or failure yet: no button has anyone.
    app, db = dual
    campaign_id = make_campaign(db, [make_contacts(db, phones(2), "Few")], [make_sender(db)])
    operator = signed_in(app, db, Role.OPERATOR)
    page = operator.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'data-testid="retarget"' not in page
    assert 'data-testid="retarget-none"' in page
    assert "Nobody to follow up with yet." in _flat(page)
    viewer = signed_in(app, db, Role.VIEWER)
    page = viewer.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'data-testid="retarget-none"' not in page  # viewers get no retarget card at all
    # A follow-up step nobody has reached yet has no recipients: no card to say so either.
    with db.session() as session:
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(total=0))
    page = operator.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'data-testid="retarget-none"' not in page and "Nobody to follow up" not in page
