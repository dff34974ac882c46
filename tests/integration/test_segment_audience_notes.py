"""The wizard's words about its audience when the audience is a segment, not lists: who of
it heard from another campaign this week, and how many of it a Cloud API sender can reach
with a one-off message (the 24-hour window). On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import select, update

from tests.analytics_support import signed_in
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.campaigns import audience, cloud_launch
from wabulk.models import (
    Channel,
    Contact,
    Inbound,
    Message,
    MessageStatus,
    Role,
    Sender,
    SenderState,
    utcnow,
)
from wabulk.segments import service as segments

from ..conftest import get_csrf

EVERYONE = phones(12, "+9198755")
PUNE_CITY = {
    "match": "all",
    "conditions": [{"field": "attribute", "key": "city", "op": "eq", "value": "Pune"}],
}


def _flat(text: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def _customers(db) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Twelve customers in one list, eight of them in Pune; the segment "Pune" (by the
    City column, no list named) and the list's id."""
    customers = make_contacts(db, EVERYONE[:8], "Customers", attributes={"city": "Pune"})
    make_contacts(db, EVERYONE[8:], "Customers", attributes={"city": "Mumbai"})
    with db.session() as session:
        seg = segments.create(session, None, "Pune", None, PUNE_CITY)
        return seg.id, customers


def test_the_overlap_warning_is_worked_out_for_a_segment(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR)
    seg, customers = _customers(db)
    sender = make_sender(db, "Rehearsal")
    # Diwali offer went today to three in Pune and two in Mumbai.
    vip = make_contacts(db, EVERYONE[:3] + EVERYONE[8:10], "VIP")
    diwali = make_campaign(db, [vip], [sender], name="Diwali offer")
    with db.session() as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == diwali)
            .values(status=MessageStatus.DELIVERED, sent_at=utcnow() - timedelta(minutes=5))
        )

    by_list = client.get(f"/campaigns/plan.json?list_ids={customers}").get_json()
    assert by_list["overlap"] == ["5 of these 12 contacts got 'Diwali offer' today."]
    # The segment: only its own eight are looked at (the lists ticked before do not count).
    query = f"audience=segment&segment_id={seg}&list_ids={customers}"
    by_segment = client.get(f"/campaigns/plan.json?{query}").get_json()
    assert by_segment["recipients"] == 8
    assert by_segment["overlap"] == ["3 of these 8 contacts got 'Diwali offer' today."]

    # The page says it beside the audience when it comes back with the segment chosen.
    back = client.post(
        "/campaigns/new",
        data={
            "csrf_token": get_csrf(client, "/campaigns/new"),
            "name": "",
            "audience": "segment",
            "segment_id": str(seg),
            "body": "Hi",
        },
        content_type="multipart/form-data",
    )
    assert back.status_code == 400
    said = re.search(r'data-testid="overlap">(.*?)</div>', back.get_data(as_text=True), re.S)
    assert said, "no overlap warning on the wizard"
    assert "3 of these 8 contacts got 'Diwali offer' today." in _flat(said.group(1))

    # One of them opts out: out of the segment, so not among those who got it.
    with db.session() as session:
        session.execute(
            update(Contact).where(Contact.phone == EVERYONE[0]).values(opted_out_at=utcnow())
        )
    again = client.get(f"/campaigns/plan.json?audience=segment&segment_id={seg}").get_json()
    assert again["overlap"] == ["2 of these 7 contacts got 'Diwali offer' today."]


def _wrote(db, sender: int, hours_ago: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        for phone, hours in hours_ago.items():
            contact = session.scalar(select(Contact).where(Contact.phone == phone))
            assert contact is not None
            session.add(
                Inbound(
                    phone=phone,
                    contact_id=contact.id,
                    sender_id=sender,
                    body="hi",
                    received_at=utcnow() - timedelta(hours=hours),
                )
            )


def test_the_24_hour_window_is_counted_for_a_segment(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR)
    seg, customers = _customers(db)
    with db.session() as session:
        cloud = Sender(name="Shop line", channel=Channel.CLOUD_API, state=SenderState.LINKED)
        session.add(cloud)
        session.flush()
        cloud_id = cloud.id
    # Two in Pune wrote within 24 h, one in Pune 30 h ago, one in Mumbai within 24 h.
    _wrote(db, cloud_id, {EVERYONE[0]: 1, EVERYONE[1]: 20, EVERYONE[2]: 30, EVERYONE[9]: 2})

    def note(**query: object) -> str:
        answer = client.get("/templates/cloud-notes.json", query_string=query).get_json()
        [only] = answer["notes"]
        return str(only["text"])

    assert "; 3 of 12 in this audience." in note(sender_ids=cloud_id, list_ids=customers)
    by_segment = note(sender_ids=cloud_id, audience="segment", segment_id=seg)
    assert "; 2 of 8 in this audience." in by_segment
    # The same from the engine: the audience as a launch reaches it.
    with db.session() as session:
        terms = segments.get(session, seg).terms
        people = audience.of([], terms, utcnow())
        assert cloud_launch.window_open_count(session, people, [cloud_id], utcnow()) == 2
        assert cloud_launch.window_open_count(session, None, [cloud_id], utcnow()) == 0

    # A draft to the segment says it on its wizard page.
    saved = client.post(
        "/campaigns/new",
        data={
            "csrf_token": get_csrf(client, "/campaigns/new"),
            "name": "Pune hello",
            "audience": "segment",
            "segment_id": str(seg),
            "sender_ids": str(cloud_id),
            "body": "Hello",
            "schedule": "now",
            "max_attempts": "3",
            "retry_seconds": "60",
        },
        content_type="multipart/form-data",
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    draft = int(saved.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/campaigns/{draft}/edit").get_data(as_text=True)
    shown = re.search(r'data-testid="cloud-notes">(.*?)</div>\s*</div>', page, re.S)
    assert shown and "2 of 8 in this audience" in _flat(shown.group(1))
