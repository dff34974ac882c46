"""The campaign wizard's plan: the only sender ticked, how long the campaign takes and when
it ends (page and endpoint), and a warning when the audience heard from another campaign
in the last 7 days."""

from __future__ import annotations

import html as htmllib
import re
from datetime import timedelta

from sqlalchemy import select, update

from tests.analytics_support import signed_in
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.models import Contact, Message, MessageStatus, Role, Sender, SenderState, utcnow
from wabulk.zones import zone

from ..conftest import get_csrf

PACE = {"min_delay_seconds": 30, "max_delay_seconds": 60, "break_every": 30, "break_seconds": 300}


def _words(html: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _checked(html: str) -> set[int]:
    return {
        int(m.group(1))
        for m in re.finditer(r'name="sender_ids" value="(\d+)"[^>]*?\bchecked\b', html)
    }


def _estimate(html: str) -> str | None:
    found = re.search(r'data-testid="estimate"\s*(hidden)?\s*>(.*?)</div>', html, re.S)
    assert found, "no estimate box on the wizard"
    return None if found.group(1) else _words(found.group(2))


def test_the_only_sender_that_can_send_is_ticked(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR)
    assert _checked(client.get("/campaigns/new").get_data(as_text=True)) == set()
    only = make_sender(db, "Rehearsal")
    unlinked = make_sender(db, "Old phone")
    with db.session() as session:
        session.execute(
            update(Sender).where(Sender.id == unlinked).values(state=SenderState.NEEDS_LINK)
        )
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert _checked(page) == {only}
    # A sender's kind in words beside its name.
    assert "dry-run" in _words(page) and "dry_run" not in _words(page)

    # A posted form keeps the user's choice, none included.
    token = get_csrf(client, "/campaigns/new")
    back = client.post(
        "/campaigns/new",
        data={"csrf_token": token, "name": "", "schedule": "now", "body": "Hi"},
        content_type="multipart/form-data",
    )
    assert back.status_code == 400
    assert _checked(back.get_data(as_text=True)) == set()

    # Two that can send: the user chooses.
    make_sender(db, "Second")
    assert _checked(client.get("/campaigns/new").get_data(as_text=True)) == set()


def test_the_wizard_says_how_long_and_until_when_and_the_endpoint_follows(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR, tz="Asia/Kolkata")
    shop = make_sender(db, "Shop", **PACE, daily_cap=200)
    lst = make_contacts(db, phones(500), "Customers")

    page = client.get("/campaigns/new").get_data(as_text=True)
    assert _estimate(page) is None  # no audience chosen yet
    edit = client.get(f"/campaigns/new?list_ids={lst}").get_data(as_text=True)
    assert _estimate(edit) is None  # lists come from the form, not the address

    # The endpoint, as the page asks it while the boxes change.
    answer = client.get(f"/campaigns/plan.json?list_ids={lst}&sender_ids={shop}").get_json()
    assert answer["recipients"] == 500
    assert answer["overlap"] == [] and answer["warnings"] == []
    # 200 a day: today, tomorrow and the day after, in the user's timezone.
    assert re.fullmatch(
        r"The 500 messages take about \d+ days?( and \d+ hours?)? at this pace, spread over "
        r"[34] days by the senders' daily caps: the last should go out .+ \(Asia/Kolkata time\)\.",
        answer["estimate"],
    ), answer["estimate"]

    # The campaign's own pace is read from its boxes: no cap, 1 s apart (and the sender's
    # break, 300 s every 30, left blank): 11 s a message.
    fast = client.get(
        f"/campaigns/plan.json?list_ids={lst}&sender_ids={shop}&daily_cap=100000"
        "&min_delay_seconds=1&max_delay_seconds=1&break_every=&break_seconds="
    ).get_json()
    assert fast["estimate"].startswith("The 500 messages take about 1 hour 32 min at this pace:")

    # A finish-by time too soon is warned of, as on the draft's page.
    # Typed in the user's timezone.
    soon = (
        (utcnow() + timedelta(hours=1)).astimezone(zone("Asia/Kolkata")).strftime("%Y-%m-%dT%H:%M")
    )
    late = client.get(
        f"/campaigns/plan.json?list_ids={lst}&sender_ids={shop}&ends_at={soon}"
    ).get_json()
    assert any("of 500 messages can go out by" in w for w in late["warnings"])

    # A malformed box: nothing estimated, nothing broken; the form says what is wrong on saving.
    wrong = client.get(f"/campaigns/plan.json?list_ids={lst}&sender_ids={shop}&ends_at=tomorrow")
    assert wrong.status_code == 200 and wrong.get_json()["estimate"] is None
    # Long or many values are cut before anything is read.
    many = "&".join(f"list_ids={i}" for i in range(5000))
    bounded = client.get(f"/campaigns/plan.json?{many}&ends_at={'9' * 5000}")
    assert bounded.status_code == 200

    # The page shows the same words when it comes back with the choices.
    token = get_csrf(client, "/campaigns/new")
    back = client.post(
        "/campaigns/new",
        data={
            "csrf_token": token,
            "name": "",
            "list_ids": [str(lst)],
            "sender_ids": [str(shop)],
            "schedule": "now",
            "body": "Hi",
            "max_attempts": "3",
            "retry_seconds": "60",
        },
        content_type="multipart/form-data",
    )
    assert back.status_code == 400
    shown = _estimate(back.get_data(as_text=True))
    assert shown is not None and shown.startswith("The 500 messages take about")


def test_a_viewer_cannot_ask_for_the_plan(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.VIEWER)
    assert client.get("/campaigns/plan.json").status_code == 403
    anonymous = app.test_client().get("/campaigns/plan.json")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_the_audience_overlapping_a_campaign_of_the_last_7_days_is_warned_of(dual) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR)
    sender = make_sender(db, "Rehearsal")
    everyone = phones(12)
    customers = make_contacts(db, everyone, "Customers")
    vip = make_contacts(db, everyone[:5], "VIP")
    diwali = make_campaign(db, [vip], [sender], name="Diwali offer")
    old = make_campaign(db, [customers], [sender], name="Summer sale")
    now = utcnow()
    with db.session() as session:
        ids = session.scalars(
            select(Message.id).where(Message.campaign_id == diwali).order_by(Message.id)
        ).all()
        # Three of the five got it today; two never did.
        session.execute(
            update(Message)
            .where(Message.id.in_(ids[:3]))
            .values(status=MessageStatus.DELIVERED, sent_at=now - timedelta(minutes=5))
        )
        # Every customer got the summer sale, but eight days ago.
        session.execute(
            update(Message)
            .where(Message.campaign_id == old)
            .values(status=MessageStatus.READ, sent_at=now - timedelta(days=8))
        )

    answer = client.get(f"/campaigns/plan.json?list_ids={customers}").get_json()
    assert answer["overlap"] == ["3 of these 12 contacts got 'Diwali offer' today."]
    # The page says it beside the audience when it comes back with the lists.
    token = get_csrf(client, "/campaigns/new")
    back = client.post(
        "/campaigns/new",
        data={"csrf_token": token, "name": "", "list_ids": [str(customers)], "body": "Hi"},
        content_type="multipart/form-data",
    )
    said = re.search(r'data-testid="overlap">(.*?)</div>', back.get_data(as_text=True), re.S)
    assert said, "no overlap warning on the wizard"
    assert "3 of these 12 contacts got 'Diwali offer' today." in _words(said.group(1))

    # An opted-out contact is not in the audience, so not among those who got it.
    with db.session() as session:
        first = session.scalar(select(Message.contact_id).where(Message.id == ids[0]))
        session.execute(update(Contact).where(Contact.id == first).values(opted_out_at=now))
    answer = client.get(f"/campaigns/plan.json?list_ids={customers}").get_json()
    assert answer["overlap"] == ["2 of these 11 contacts got 'Diwali offer' today."]
    # Lists nobody in which heard from us: nothing to say.
    others = make_contacts(db, phones(3, "+9199999"), "Walk-ins")
    assert client.get(f"/campaigns/plan.json?list_ids={others}").get_json()["overlap"] == []
