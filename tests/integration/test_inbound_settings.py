"""The opt-out keyword list on the Settings page: admins edit it, it is checked, and the
worker uses the saved list for the next replies."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.conftest import csrf_from
from tests.inbound_support import inbound_body, make_cloud_sender
from wabulk.dispatch import receipts
from wabulk.inbound import keywords
from wabulk.models import Contact, Event, Role, utcnow


def test_an_admin_edits_the_list_and_replies_follow_it(app, db, client, as_role) -> None:
    as_role(Role.ADMIN)
    page = client.get("/settings/general")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Opt-out keywords" in html
    assert "UNSUBSCRIBE" in html and "BERHENTI" in html  # the defaults until changed
    token = csrf_from(html)

    refused = client.post(
        "/settings/opt-out-keywords", data={"opt_out_keywords": "!!!\nSTOP", "csrf_token": token}
    )
    assert refused.status_code == 400
    assert "has no letters or digits" in refused.get_data(as_text=True)
    assert "!!!" in refused.get_data(as_text=True)  # what was typed is kept for fixing

    saved = client.post(
        "/settings/opt-out-keywords",
        data={"opt_out_keywords": "Hentikan\nNo more offers", "csrf_token": token},
    )
    assert saved.status_code == 302
    with db.session() as session:
        assert keywords.keywords(session) == ("Hentikan", "No more offers")
        logged = session.scalars(select(Event.text).where(Event.kind == "settings.changed")).all()
    assert any("Hentikan, No more offers" in text for text in logged)

    # The worker judges replies by the saved list: STOP is no longer on it.
    sender = make_cloud_sender(db)
    with db.session() as session:
        session.add_all([Contact(phone="+919876500000"), Contact(phone="+919876500001")])
    now = utcnow() + timedelta(seconds=1)
    for i, (phone, text) in enumerate(
        (("919876500000", "no more offers!"), ("919876500001", "STOP"))
    ):
        body = inbound_body(
            {"id": f"wamid.k{i}", "type": "text", "text": {"body": text}}, phone=phone, at=now
        )
        with db.session() as session:
            receipts.store_receipt(session, sender, body, now)
    assert receipts.process_receipts(db, now=now) == 2
    with db.session() as session:
        opted = dict(session.execute(select(Contact.phone, Contact.opted_out_at)).all())
    assert opted["+919876500000"] is not None and opted["+919876500001"] is None

    back = client.post(
        "/settings/opt-out-keywords",
        data={"opt_out_keywords": "", "reset": "1", "csrf_token": token},
    )
    assert back.status_code == 302
    with db.session() as session:
        assert keywords.keywords(session) == keywords.DEFAULT_KEYWORDS


def test_only_admins_change_the_list(client, as_role) -> None:
    as_role(Role.OPERATOR)
    token = csrf_from(client.get("/settings/").get_data(as_text=True))
    answer = client.post(
        "/settings/opt-out-keywords", data={"opt_out_keywords": "STOP", "csrf_token": token}
    )
    assert answer.status_code == 403
