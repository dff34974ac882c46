"""Retry failed says what happened, and a rehearsal flags contacts as a real sender would."""

from __future__ import annotations

import html
import re

from flask.testing import FlaskClient

from tests.campaigns_support import (
    FakeClock,
    assert_counters_exact,
    counters,
    drive,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from tests.fakes.scripted_channel import ScriptedChannel
from wabulk.auth import service as users
from wabulk.campaigns import lifecycle
from wabulk.channels import registry
from wabulk.channels.base import NOT_ON_WHATSAPP, PermanentError, TransientError
from wabulk.models import Role, utcnow

from ..conftest import PASSWORD, get_csrf, login


def _signed_in(app, db) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, "operator@example.com", PASSWORD, Role.OPERATOR)
    assert login(client, "operator@example.com").status_code == 302
    return client


def _run_to_the_end(db, sender: int, settings, owner: str = "test:1") -> None:
    clock = FakeClock()
    lane = make_lane(db, sender, settings.instance_path, clock, owner=owner)
    try:
        drive([lane], clock, db)
    finally:
        lane.close()
    with db.session() as session:
        lifecycle.complete_finished(session, utcnow())


def _retry(client: FlaskClient, url: str) -> str:
    token = get_csrf(client, url)
    response = client.post(url + "/actions/retry", data={"csrf_token": token})
    assert response.status_code == 302
    return html.unescape(client.get(url).get_data(as_text=True))


def _round(page: str) -> str | None:
    found = re.search(r'data-testid="retry-round">(.*?)</div>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split()) if found else None


def test_a_rehearsal_flags_numbers_not_on_whatsapp_and_a_retry_round_reports_itself(
    dual, settings
) -> None:
    app, db = dual
    client = _signed_in(app, db)
    lst = make_contacts(db, phones(6), "Customers")
    sender = make_sender(db, "Rehearsal", max_delay_seconds=0, settings={"failure_rate": 1.0})
    campaign_id = make_campaign(db, [lst], [sender], max_attempts=1)
    _run_to_the_end(db, sender, settings)
    assert counters(db, campaign_id)["failed"] == 6

    # The Contacts page's "not on WhatsApp" filter shows them, as after a real send.
    listed = client.get("/contacts/?status=not_on_whatsapp").get_data(as_text=True)
    assert listed.count('data-testid="not-on-whatsapp"') == 6
    for phone in phones(6):
        assert phone in listed

    url = f"/campaigns/{campaign_id}"
    assert _round(client.get(url).get_data(as_text=True)) is None
    page = _retry(client, url)
    assert "6 message(s) queued again." in page
    assert _round(page) == ("Retrying 6 message(s); their result shows here once they are done.")
    _run_to_the_end(db, sender, settings)
    page = html.unescape(client.get(url).get_data(as_text=True))
    shown = _round(page)
    assert shown is not None
    assert shown.endswith("6 retried: 0 sent, 6 failed again: Number not on WhatsApp.")
    assert_counters_exact(db, campaign_id)


def test_a_round_with_mixed_results_names_each_reason(dual, settings, monkeypatch) -> None:
    app, db = dual
    monkeypatch.setitem(registry.FACTORIES, "dry_run", ScriptedChannel)
    ScriptedChannel.sent = []
    client = _signed_in(app, db)
    lst = make_contacts(db, phones(7), "Customers")
    sender = make_sender(db, "Rehearsal", max_delay_seconds=0)
    campaign_id = make_campaign(db, [lst], [sender], max_attempts=1)
    ids: list[int] = []

    def first_round(channel, message):
        ids.append(message.message_id)
        if len(ids) > 1:  # one goes, six fail for a moment
            raise TransientError("network hiccup", code="timeout")

    ScriptedChannel.script = first_round
    try:
        _run_to_the_end(db, sender, settings)
        assert counters(db, campaign_id)["failed"] == 6
        url = f"/campaigns/{campaign_id}"
        assert "6 message(s) queued again." in _retry(client, url)
        failing = sorted(ids[1:])

        def second_round(channel, message):
            position = failing.index(message.message_id)
            if position in (2, 3, 4):
                raise PermanentError("This number is not on WhatsApp.", code=NOT_ON_WHATSAPP)
            if position == 5:
                raise TransientError("network hiccup", code="timeout")

        ScriptedChannel.script = second_round
        _run_to_the_end(db, sender, settings, owner="test:2")
    finally:
        ScriptedChannel.script = None
    shown = _round(html.unescape(client.get(url).get_data(as_text=True)))
    assert shown is not None
    assert shown.endswith(
        "6 retried: 2 sent, 4 failed again: Number not on WhatsApp (3); Timeout (1)."
    ), shown
    c = counters(db, campaign_id)
    assert (c["sent"], c["failed"]) == (3, 4)
