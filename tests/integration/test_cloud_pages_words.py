"""What a shop owner found confusing on the Cloud API pages, said plainly (issue 15's walk-
through): the campaign page's two blocks of counts never disagree, a WhatsApp template
campaign names its template, an empty preview says a WhatsApp template is used, a Cloud API
sender is "connected" rather than "linked", and Meta's daily limit holding a campaign back
is said with when it resumes, on the page, in its poll and in the REST API. On SQLite and
PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from tests.analytics_support import signed_in
from tests.funnel_support import funnel_campaign
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.models import (
    Campaign,
    Channel,
    CloudTemplate,
    Message,
    Role,
    Sender,
    SenderState,
    Template,
)
from wabulk.senders import budget
from wabulk.web.sender_words import state_words

from ..conftest import PASSWORD

BODY = "Hi {{1}}, use code {{2}} before Sunday."
COMPONENTS = [
    {"type": "HEADER", "format": "TEXT", "text": "Spring sale at Acme"},
    {"type": "BODY", "text": BODY, "example": {"body_text": [["Pablo", "CARIBE25"]]}},
]


def _flat(page: str) -> str:
    return html.unescape(" ".join(page.split()))


def _block(page: str, testid: str, end: str) -> tuple[str, str]:
    """(the opening tag, what follows up to `end`) of the element with `testid`."""
    match = re.search(rf'(<[^>]*data-testid="{testid}"[^>]*>)(.*?){end}', page, re.S)
    assert match, f"no {testid} on the page"
    return match.group(1), _flat(match.group(2))


def _hint(page: str) -> str:
    """The words of the live preview while it shows no message."""
    match = re.search(
        r'data-testid="preview"[^>]*>\s*<p class="wa-chat-hint[^"]*">([^<]*)</p>', page
    )
    assert match, "no hint in the preview"
    return _flat(match.group(1))


def _cloud_sender(db: Database, name: str = "Shop number") -> int:
    with db.session() as session:
        sender = Sender(name=name, channel=Channel.CLOUD_API, state=SenderState.LINKED)
        session.add(sender)
        session.flush()
        session.add(
            CloudTemplate(
                sender_id=sender.id,
                name="spring_sale",
                language="en_US",
                category="MARKETING",
                status="APPROVED",
                parameter_format="positional",
                components=COMPONENTS,
            )
        )
        return sender.id


def _snapshot() -> dict[str, object]:
    """What a launch freezes on the campaign (campaigns.cloud_template.snapshot)."""
    return {
        "name": "spring_sale",
        "language": "en_US",
        "category": "MARKETING",
        "parameter_format": "positional",
        "components": COMPONENTS,
        "mapping": {"body.1": "{{ first_name }}", "body.2": "SPRING10"},
        "header_media_kind": None,
        "media_id": None,
    }


# --- 1. one consistent set of counts --------------------------------------------------


def test_the_top_card_leaves_sent_delivered_and_read_to_the_funnel(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)  # sent 4 (1 still "sent", 1 delivered, 2 read), failed 2
    client = signed_in(app, db, Role.VIEWER)
    page = client.get(f"/campaigns/{seeded.campaign_id}").get_data(as_text=True)

    _tag, counters = _block(page, "counters", "</div></div>\\s*</div>")
    labels = re.findall(r'<div class="counter-label">(\w+)</div>', counters)
    assert labels == ["Waiting", "Sending", "Failed", "Skipped", "Unknown"]
    shown = dict(re.findall(r'data-count="(\w+)">([\d,]+)<', page))
    assert shown == {"queued": "0", "sending": "0", "failed": "2", "skipped": "0", "unknown": "0"}
    # The funnel alone says how far messages got: no second, smaller "Sent".
    assert re.search(r'data-funnel="sent">4<', page)
    assert re.search(r'data-funnel="read">2<', page)

    # The poll carries every count the page follows, each the number the page was served.
    answer = client.get(f"/campaigns/{seeded.campaign_id}/progress.json").get_json()
    assert {key: str(answer["counts"][key]) for key in shown} == shown
    assert {s["key"]: s["n"] for s in answer["funnel"]["steps"]}["sent"] == 4


# --- 2. the WhatsApp template under Details ---------------------------------------------


def test_a_whatsapp_template_campaign_names_its_template_and_words(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    with db.session() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == seeded.campaign_id)
            .values(cloud_template=_snapshot(), body="")
        )
        session.execute(
            update(Message).where(Message.campaign_id == seeded.campaign_id).values(body=None)
        )
    client = signed_in(app, db, Role.VIEWER)
    url = f"/campaigns/{seeded.campaign_id}"

    page = client.get(url).get_data(as_text=True)
    _tag, named = _block(page, "whatsapp-template", "</div>")
    assert named == "WhatsApp template spring_sale (en_US)"
    # Nothing rendered yet: the template's own words, blanks and all.
    assert _block(page, "whatsapp-words", "</div>")[1] == BODY
    assert "Its words:" in _flat(page) and "As one customer got it" not in page

    with db.session() as session:
        first = min(seeded.contact_ids)
        session.execute(
            update(Message)
            .where(Message.campaign_id == seeded.campaign_id, Message.contact_id == first)
            .values(body="Spring sale at Acme\nHi Asha, use code SPRING10 before Sunday.")
        )
    page = client.get(url).get_data(as_text=True)
    assert "As one customer got it:" in _flat(page)
    words = _block(page, "whatsapp-words", "</div>")[1]
    assert words == "Spring sale at Acme Hi Asha, use code SPRING10 before Sunday."


# --- 3. an empty preview when a WhatsApp template is linked ---------------------------


def test_an_empty_preview_says_the_whatsapp_template_is_used(dual) -> None:
    app, db = dual
    _cloud_sender(db)
    with db.session() as session:
        linked = Template(
            name="Spring",
            body="",
            cloud_template_name="spring_sale",
            cloud_language="en_US",
            cloud_parameters={"body.1": "{{ first_name }}", "body.2": "SPRING10"},
        )
        plain = Template(name="Plain", body="")
        session.add_all([linked, plain])
        session.flush()
        linked_id, plain_id = linked.id, plain.id
    client = signed_in(app, db, Role.OPERATOR)

    editor = client.get(f"/templates/{linked_id}").get_data(as_text=True)
    assert _hint(editor) == (
        "No message of its own: the WhatsApp template spring_sale (en_US) is sent, "
        "as its preview below shows."
    )
    assert 'data-whatsapp-source="#cloud_template_id"' in editor
    assert 'data-whatsapp-template="spring_sale (en_US)"' in editor  # what preview.js names
    unlinked = client.get(f"/templates/{plain_id}").get_data(as_text=True)
    assert _hint(unlinked) == ("Write the message to see it as your customers will.")

    wizard = client.get(f"/campaigns/new?template_id={linked_id}").get_data(as_text=True)
    assert _hint(wizard) == (
        "No message of its own: this template sends the WhatsApp template spring_sale "
        "(en_US), filled in for each customer. Its preview is on the template's page."
    )
    option = re.search(rf'<option value="{linked_id}"[^>]*>', wizard)
    assert option and 'data-whatsapp-template="spring_sale (en_US)"' in option.group(0)
    other = re.search(rf'<option value="{plain_id}"[^>]*>', wizard)
    assert other and "data-whatsapp-template" not in other.group(0)
    blank = client.get("/campaigns/new").get_data(as_text=True)
    assert _hint(blank) == ("Write the message to see it as your customers will.")


# --- 4. a Cloud API sender's state in its own words -----------------------------------


def test_state_words_follow_the_channel() -> None:
    assert state_words(SenderState.LINKED, Channel.CLOUD_API) == "connected"
    assert state_words("needs_link", "cloud_api") == "check the connection"
    assert state_words(SenderState.LINKED, Channel.WHATSAPP_WEB) == "linked"
    assert state_words(SenderState.NEEDS_LINK, Channel.WHATSAPP_WEB) == "needs linking"
    assert state_words(SenderState.DISABLED, Channel.CLOUD_API) == "disabled"


def _badges(page: str, name: str) -> list[str]:
    """The state badges written right after `name` on a page."""
    return [
        _flat(words)
        for words in re.findall(
            rf"{re.escape(name)}\s*<span class=\"badge sender-\w+[^\"]*\"[^>]*>([^<]+)</span>", page
        )
    ]


def test_a_cloud_api_sender_is_connected_everywhere_its_state_shows(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)  # on a rehearsal sender, linked
    cloud_id = _cloud_sender(db)
    with db.session() as session:
        campaign = session.get(Campaign, seeded.campaign_id)
        assert campaign is not None
        campaign.senders.append(session.get(Sender, cloud_id))
        rehearsal = session.get(Sender, seeded.sender_id)
        assert rehearsal is not None
        rehearsal_name = rehearsal.name
    client = signed_in(app, db, Role.ADMIN)

    def everywhere(words: str) -> None:
        senders = client.get("/senders").get_data(as_text=True)
        row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*Shop number(?:(?!</tr>).)*</tr>", senders, re.S)
        assert row and re.search(rf'data-testid="health"><span[^>]*>{words}</span>', row.group(0))
        own = client.get(f"/senders/{cloud_id}").get_data(as_text=True)
        assert re.search(rf'data-testid="state">{words}</span>', own)
        detail = client.get(f"/campaigns/{seeded.campaign_id}").get_data(as_text=True)
        assert _badges(detail, "Shop number") == [words]
        assert _badges(detail, rehearsal_name) == ["linked"]  # a rehearsal keeps its words
        wizard = client.get("/campaigns/new").get_data(as_text=True)
        assert _badges(wizard, "Shop number") == [words]
        dashboard = client.get("/").get_data(as_text=True)
        assert words in _flat(dashboard)
        live = client.get("/live.json").get_json()
        assert {s["id"]: s["label"] for s in live["senders"]}[cloud_id] == words

    everywhere("connected")
    with db.session() as session:
        session.execute(
            update(Sender).where(Sender.id == cloud_id).values(state=SenderState.NEEDS_LINK)
        )
    everywhere("check the connection")
    detail = client.get(f"/campaigns/{seeded.campaign_id}").get_data(as_text=True)
    assert "needs linking" not in detail and "needs link" not in detail


# --- 5. Meta's daily limit holding a campaign back ------------------------------------


def _token(db: Database) -> dict[str, str]:
    with db.session() as session:
        user = users.create_user(session, None, "api@example.com", PASSWORD, Role.VIEWER)
        return {"Authorization": f"Bearer {tokens.create_token(session, user, 'held').secret}"}


def _held_alert(client: FlaskClient, campaign_id: int) -> tuple[bool, str]:
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    tag, inside = _block(page, "held", "</div>")
    return " hidden" not in tag, _flat(re.sub(r"<[^>]+>", "", inside))


def test_the_page_its_poll_and_the_api_say_when_meta_s_limit_holds_a_campaign(dual) -> None:
    app: Flask
    app, db = dual
    seeded = funnel_campaign(db)
    client = signed_in(app, db, Role.VIEWER, tz="Asia/Kolkata")
    headers = _token(db)
    poll = f"/campaigns/{seeded.campaign_id}/progress.json"
    api = f"/api/v1/campaigns/{seeded.campaign_id}"

    shown, _text = _held_alert(client, seeded.campaign_id)
    assert not shown
    answer = client.get(poll).get_json()
    assert (answer["held_reason"], answer["held_until"], answer["held_until_text"]) == (
        None,
        None,
        None,
    )
    body = client.get(api, headers=headers).get_json()
    assert (body["held_reason"], body["held_until"]) == (None, None)

    until = datetime(2031, 3, 14, 9, 0, tzinfo=UTC)
    with db.session() as session:
        assert budget.hold(session, seeded.campaign_id, 1000, until) is True
    shown, text = _held_alert(client, seeded.campaign_id)
    assert shown
    assert "Meta's daily limit for this WhatsApp account is reached (1,000 customers" in text
    assert text.endswith("Resumes about 2031-03-14 14:30 IST.")  # the viewer's timezone
    answer = client.get(poll).get_json()
    assert answer["held_reason"].startswith("Meta's daily limit for this WhatsApp account")
    assert answer["held_until_text"] == "2031-03-14 14:30 IST"
    assert datetime.fromisoformat(answer["held_until"]) == until
    body = client.get(api, headers=headers).get_json()
    assert body["held_reason"] == answer["held_reason"]
    assert datetime.fromisoformat(body["held_until"].replace("Z", "+00:00")) == until
    listed = client.get("/api/v1/campaigns", headers=headers).get_json()["data"]
    assert [c["held_reason"] for c in listed if c["id"] == seeded.campaign_id] == [
        answer["held_reason"]
    ]

    with db.session() as session:
        budget.release(session, seeded.campaign_id)
    shown, _text = _held_alert(client, seeded.campaign_id)
    assert not shown
    answer = client.get(poll).get_json()
    assert answer["held_reason"] is None and answer["held_until_text"] is None
    body = client.get(api, headers=headers).get_json()
    assert (body["held_reason"], body["held_until"]) == (None, None)


def test_the_openapi_schema_describes_the_hold(dual) -> None:
    app, db = dual
    spec = app.test_client().get("/api/v1/openapi.json", headers=_token(db)).get_json()
    campaign = spec["components"]["schemas"]["CampaignOut"]["properties"]
    assert "Meta's daily limit" in campaign["held_reason"]["description"]
    assert {"held_reason", "held_until"} <= set(
        spec["components"]["schemas"]["CampaignSummary"]["properties"]
    )
    until = campaign["held_until"]
    assert any(t.get("format") == "date-time" for t in until.get("anyOf", [until]))


def test_a_hold_without_a_known_end_says_no_time(dual) -> None:
    app, db = dual
    seeded = funnel_campaign(db)
    client = signed_in(app, db, Role.VIEWER)
    with db.session() as session:
        budget.hold(session, seeded.campaign_id, 250, None)  # no known end: no time said
    shown, text = _held_alert(client, seeded.campaign_id)
    assert shown and "Resumes about" in text  # the span is in the page, hidden
    page = client.get(f"/campaigns/{seeded.campaign_id}").get_data(as_text=True)
    assert re.search(r'data-field="held-until" hidden', page)
    answer = client.get(f"/campaigns/{seeded.campaign_id}/progress.json").get_json()
    assert answer["held_reason"] and answer["held_until_text"] is None
