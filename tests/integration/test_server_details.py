"""Issue 14, item 6: a sender's reason that names a server path reaches admins whole, and
operators and viewers as a sentence without it, on every page, poll and API answer."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk import events
from wabulk.campaigns import lifecycle
from wabulk.db import Database
from wabulk.models import Campaign, EventLevel, Role, Sender, SenderState
from wabulk.senders.disclosure import (
    BROWSER_TROUBLE,
    HIDDEN,
    PROFILE_IN_USE,
    PROFILE_MISSING,
    reason_for,
    text_for,
)

from ..conftest import get_csrf, login

SECRET = "/srv/shop data/instance/browsers/Main"  # a space, as in macOS's Application Support
REASON = f"The Chrome profile folder {SECRET} does not exist."


def _broken_sender(db: Database) -> tuple[int, int]:
    """A sender whose browser failed on a missing profile, its Event, and a campaign paused
    because of it; (sender id, campaign id)."""
    sender_id = make_sender(db, "Main")
    campaign_id = make_campaign(db, [make_contacts(db, phones(2), "Buyers")], [sender_id])
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        sender.state = SenderState.BROWSER_FAILED
        sender.state_reason = REASON
        events.record(
            session,
            "sender.browser_failed",
            f"The browser for Main failed: {REASON}",
            level=EventLevel.ERROR,
        )
    with db.session() as session:
        assert lifecycle.pause_orphaned(session) == [campaign_id]
        assert SECRET in session.get(Campaign, campaign_id).status_reason
    return sender_id, campaign_id


def _everything_shown(client: FlaskClient, campaign_id: int) -> dict[str, str]:
    return {
        url: client.get(url).get_data(as_text=True)
        for url in (
            "/senders",
            "/",
            "/live.json",
            "/activity",
            "/api/v1/senders",
            "/api/v1/campaigns",
            f"/campaigns/{campaign_id}",
            f"/campaigns/{campaign_id}/progress.json",
            "/campaigns",
            f"/campaigns/{campaign_id}/summary",
            f"/live/campaigns.json?ids={campaign_id}",
        )
    }


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_never_see_the_path(
    client: FlaskClient, make_user, db: Database, role: Role
) -> None:
    sender_id, campaign_id = _broken_sender(db)
    login(client, make_user(role).email)
    shown = _everything_shown(client, campaign_id)
    for url, body in shown.items():
        assert "/srv/" not in body and "shop data" not in body, url
    # The sentence instead, on each of the four places the issue names.
    assert PROFILE_MISSING in shown["/senders"]
    # The dashboard cuts no reason short: it links to the Senders page, which shows it.
    assert 'data-testid="sender-problem" href="/senders">' in shown["/"]
    assert "The browser for Main failed: The Chrome profile folder" in shown["/activity"]
    assert HIDDEN.replace("(", "") in shown["/activity"]
    listed = json.loads(shown["/api/v1/senders"])["data"]
    assert [s["state_reason"] for s in listed if s["id"] == sender_id] == [PROFILE_MISSING]
    api_one = client.get(f"/api/v1/senders/{sender_id}").get_json()
    assert api_one["state_reason"] == PROFILE_MISSING
    # The wizard lists the sender as unusable, with the sentence.
    if role == Role.OPERATOR:
        wizard = client.get("/campaigns/new").get_data(as_text=True)
        assert "/srv/" not in wizard and PROFILE_MISSING in wizard


def test_admins_see_the_path_to_fix_it(client: FlaskClient, make_user, db: Database) -> None:
    sender_id, campaign_id = _broken_sender(db)
    login(client, make_user(Role.ADMIN).email)
    shown = _everything_shown(client, campaign_id)
    for url in ("/senders", "/", "/activity", f"/campaigns/{campaign_id}"):
        assert SECRET in shown[url], url
    assert client.get(f"/api/v1/senders/{sender_id}").get_json()["state_reason"] == REASON
    with db.session() as session:  # stored whole: only what is shown differs by role
        assert session.get(Sender, sender_id).state_reason == REASON


@pytest.mark.parametrize(
    ("reason", "sentence"),
    [
        (REASON, PROFILE_MISSING),
        (
            "The Chrome profile /Users/asha/Library/Application Support/Google/Chrome is open "
            "in another Chrome window. Close that Chrome, then link again.",
            PROFILE_IN_USE,
        ),
        (
            "WABULK_CHROMEDRIVER is '/opt/drivers/chromedriver', which is not an executable "
            "file. Install Google Chrome.",
            BROWSER_TROUBLE,
        ),
        (
            "WABULK_CHROME_BINARY is '/opt/chrome/chrome', which does not exist. Install Google "
            "Chrome.",
            BROWSER_TROUBLE,
        ),
        ("Chrome did not start: session not created. Install Google Chrome.", BROWSER_TROUBLE),
        (r"The Chrome profile folder C:\Users\Asha\Chrome does not exist.", PROFILE_MISSING),
    ],
)
def test_each_reason_with_server_details_has_its_sentence(reason: str, sentence: str) -> None:
    assert reason_for(reason, Role.VIEWER) == sentence
    assert reason_for(reason, Role.OPERATOR) == sentence
    assert reason_for(reason, Role.ADMIN) == reason
    hidden = text_for(f"Sender Main stopped: {reason}", Role.VIEWER)
    for secret in ("/Users", "/opt", "/srv", "C:\\", "Application Support"):
        assert secret not in hidden


def test_reasons_without_server_details_are_shown_to_everyone() -> None:
    for reason in (
        "Scan the QR code with the phone to link it.",
        "Disabled by an admin",
        "WhatsApp Web was opened in another browser; link it again to send from here.",
        "Sent 24/7 from https://web.whatsapp.com/send",
        None,
    ):
        assert reason_for(reason, Role.VIEWER) == reason
        if reason is not None:
            assert text_for(reason, Role.VIEWER) == reason


def test_resuming_without_a_usable_sender_names_no_path_to_an_operator(
    client: FlaskClient, make_user, db: Database
) -> None:
    _, campaign_id = _broken_sender(db)
    login(client, make_user(Role.OPERATOR).email)
    token = get_csrf(client, f"/campaigns/{campaign_id}")
    page = client.post(
        f"/campaigns/{campaign_id}/actions/resume",
        data={"csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "No sender of this campaign can send now: Main (" in page
    assert PROFILE_MISSING in page and "/srv/" not in page
