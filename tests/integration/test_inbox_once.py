"""An answer form sent twice makes one answer even when its two copies reach different web
processes (`wabulk serve --processes`): the form's token is claimed in the database, in the
answer's own transaction. Two apps on one database stand for two processes: they share
nothing in memory."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tests.integration.test_inbox_pages import _client, _page, _reply, _shop
from wabulk.app import create_app
from wabulk.models import FormClaim, Message, Role, utcnow

from ..conftest import csrf_from


def _answers(db) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(
            select(func.count()).select_from(Message).where(Message.campaign_id.is_(None))
        )


def test_one_answer_when_the_form_reaches_two_processes(dual, settings) -> None:  # type: ignore[no-untyped-def]
    app, db = dual
    other = create_app(
        settings, database_url=str(db.engine.url.render_as_string(hide_password=False))
    )
    other.config["TESTING"] = True
    try:
        _answer_twice(app, other, db)
    finally:
        other.extensions["wabulk.db"].dispose()


def _answer_twice(app, other, db) -> None:  # type: ignore[no-untyped-def]
    sender, _ = _shop(db)
    conversation = _reply(db, sender, "+919876500001", "Price?", utcnow() - timedelta(minutes=5))
    url = f"/inbox/{conversation}"
    first = _client(app, db, Role.OPERATOR)
    page = _page(first, url)
    token = page.split('name="once" value="', 1)[1].split('"', 1)[0]

    # The same operator in a second process (a second browser tab that went elsewhere).
    second = other.test_client()
    from ..conftest import login

    assert login(second, "operator@shop.example").status_code == 302
    second_page = _page(second, url)

    answered = first.post(
        f"{url}/answer",
        data={"csrf_token": csrf_from(page), "once": token, "text": "It is 499 rupees."},
    )
    again = second.post(
        f"{url}/answer",
        data={"csrf_token": csrf_from(second_page), "once": token, "text": "It is 499 rupees."},
        follow_redirects=True,
    )
    assert answered.status_code == 302 and again.status_code == 200
    assert "This answer was already sent" in again.get_data(as_text=True)
    assert _answers(db) == 1


def test_a_refused_answer_leaves_its_form_usable_and_old_claims_go(dual) -> None:  # type: ignore[no-untyped-def]
    app, db = dual
    sender, _ = _shop(db)
    conversation = _reply(db, sender, "+919876500001", "Price?", utcnow() - timedelta(minutes=5))
    url = f"/inbox/{conversation}"
    operator = _client(app, db, Role.OPERATOR)
    page = _page(operator, url)
    form = {
        "csrf_token": csrf_from(page),
        "once": page.split('name="once" value="', 1)[1].split('"', 1)[0],
    }
    with db.session() as session:
        session.add(FormClaim(token="from-two-days-ago", claimed_at=utcnow() - timedelta(days=2)))

    refused = operator.post(f"{url}/answer", data={**form, "text": "  "}, follow_redirects=True)
    assert refused.status_code == 200 and _answers(db) == 0
    with db.session() as session:
        assert session.scalars(select(FormClaim.token)).all() == ["from-two-days-ago"]

    sent = operator.post(f"{url}/answer", data={**form, "text": "It is 499 rupees."})
    assert sent.status_code == 302 and _answers(db) == 1
    with db.session() as session:
        # The old claim went as the new one came.
        assert session.scalars(select(FormClaim.token)).all() == [form["once"]]
