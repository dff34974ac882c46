"""The Templates and Campaigns pages over HTTP: editor, preview, wizard, live page, actions."""

from __future__ import annotations

import gc
import io
import re
import warnings
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select, update

from tests.campaigns_support import (
    FakeClock,
    drive,
    make_campaign,
    make_contacts,
    make_lane,
    make_sender,
    phones,
)
from wabulk import migrate
from wabulk.app import create_app
from wabulk.auth import service as users
from wabulk.campaigns import lifecycle
from wabulk.channels.dry_run import log_path, read_log
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.events import record
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Media,
    Role,
    Template,
    utcnow,
)

from ..conftest import PASSWORD, get_csrf, login


def _png(color: str = "green") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, "PNG")
    return buf.getvalue()


def _token(client: FlaskClient) -> str:
    return get_csrf(client, "/campaigns")


def _post(client: FlaskClient, url: str, **data):  # type: ignore[no-untyped-def]
    data.setdefault("csrf_token", _token(client))
    return client.post(url, data=data, content_type="multipart/form-data")


def _preview(client: FlaskClient, **data) -> dict:  # type: ignore[no-untyped-def, type-arg]
    response = client.post(
        "/templates/preview.json", data=data, headers={"X-CSRFToken": _token(client)}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def _wizard(**fields) -> dict:  # type: ignore[no-untyped-def, type-arg]
    form = {
        "name": "Spring sale",
        "template_id": "",
        "body": "Hello {{ first_name }}",
        "schedule": "now",
        "max_attempts": "3",
        "retry_seconds": "60",
    }
    form.update(fields)
    return form


def _visible_actions(html: str) -> set[str]:
    forms = re.findall(r'<form[^>]*data-action="(\w+)"[^>]*>', html)
    hidden = set(re.findall(r'<form[^>]*data-action="(\w+)"[^>]*\shidden[\s>]', html))
    return set(forms) - hidden


def _run_to_the_end(db: Database, sender_id: int, settings: Settings) -> None:
    clock = FakeClock()
    drive([make_lane(db, sender_id, settings.instance_path, clock)], clock, db)
    with db.session() as session:
        lifecycle.complete_finished(session, utcnow())


# --- templates ----------------------------------------------------------------------------


def test_templates_are_written_listed_and_edited(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    assert "No templates yet" in client.get("/templates").get_data(as_text=True)
    response = _post(
        client, "/templates/new", name="Diwali offer", body="Hi {{ first_name }}!\nSecond line"
    )
    assert response.status_code == 302
    listing = client.get("/templates").get_data(as_text=True)
    assert "Diwali offer" in listing and "Hi {{ first_name }}!" in listing
    assert "Second line" not in re.sub(r'title="[^"]*"', "", listing)  # first line only
    with db.session() as session:
        template = session.scalars(select(Template)).one()
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert 'value="Diwali offer"' in page and "Second line</textarea>" in page

    response = _post(client, f"/templates/{template.id}", name="Diwali offer", body="Changed")
    assert response.status_code == 302
    with db.session() as session:
        assert session.get(Template, template.id).body == "Changed"


def test_template_errors_sit_next_to_their_box_and_keep_the_input(client, as_role) -> None:
    as_role(Role.OPERATOR)
    _post(client, "/templates/new", name="Greeting", body="Hello")
    response = _post(client, "/templates/new", name="greeting", body="Hi {{ name }}, welcome")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'data-error-for="name">There is already a template called', page)
    assert "Hi {{ name }}, welcome</textarea>" in page  # nothing typed is lost

    response = _post(client, "/templates/new", name="Broken", body="Hi\nthere {{ name ")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'data-error-for="body">Line 2:', page)
    assert 'value="Broken"' in page


def test_preview_renders_real_contacts_warns_of_empty_placeholders_and_names_the_line(
    client, as_role, db
) -> None:
    as_role(Role.OPERATOR)
    vip = make_contacts(db, phones(3), "VIP", attributes={"city": "Pune"})
    with db.session() as session:
        first = session.scalars(select(Contact).order_by(Contact.id)).first()
        first.attributes = {}  # one recipient without a city
    make_contacts(db, phones(2, prefix="+9199999"), "Others", attributes={"city": "Goa"})

    result = _preview(client, body="Hi {{ first_name }} from {{ city }}", list_ids=[vip])
    assert result["error"] is None
    assert [s["text"] for s in result["samples"]] == [
        "Hi Person from",
        "Hi Person from Pune",
        "Hi Person from Pune",
    ]
    assert result["samples"][1]["phone"] == phones(3)[1]
    assert result["warnings"] == ["{{ city }} is empty for 1 of 3 recipient(s)."]
    assert result["checked"] == 3

    broken = _preview(client, body="Hello\n{{ first_name | nosuchfilter }}", list_ids=[vip])
    assert broken["error"].startswith("Line 2:") and "nosuchfilter" in broken["error"]
    assert broken["samples"] == []

    assert _preview(client, body="  ")["empty"] is True

    with db.session() as session:
        template = Template(name="Saved", body="Saved text for {{ name }}")
        session.add(template)
    saved = _preview(client, template_id=template.id, body="ignored", list_ids=[vip])
    assert saved["samples"][0]["text"] == "Saved text for Person 0"


def test_attachments_are_accepted_by_content_and_refused_clearly(
    client, as_role, db, settings
) -> None:
    as_role(Role.OPERATOR)
    refused = _post(
        client,
        "/templates/new",
        name="Offer",
        body="See the picture",
        media=(io.BytesIO(b"this is just text"), "photo.jpg"),
    )
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert re.search(r'data-error-for="media">photo.jpg is not an image', page)
    assert 'value="Offer"' in page and "See the picture</textarea>" in page
    with db.session() as session:
        assert session.scalars(select(Template)).all() == []
        assert session.scalars(select(Media)).all() == []

    # Accepted, but the rest of the form is refused: the upload is kept, not asked for again.
    kept = _post(
        client,
        "/templates/new",
        name="",
        body="See the picture",
        media=(io.BytesIO(_png()), "offer.png"),
    )
    assert kept.status_code == 400
    page = kept.get_data(as_text=True)
    assert "Give the template a name." in page and "offer.png" in page
    media_id = int(re.search(r'name="media_id" value="(\d+)"', page).group(1))

    assert _post(
        client, "/templates/new", name="Offer", body="See it", media_id=str(media_id)
    ).status_code == (302)
    with db.session() as session:
        template = session.scalars(select(Template)).one()
        assert template.media_id == media_id
        media = session.get(Media, media_id)
        assert (media.mime_type, media.original_name) == ("image/png", "offer.png")
    assert "offer.png" in client.get("/templates").get_data(as_text=True)
    served = client.get(f"/templates/attachments/{media_id}")
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.data == _png()
    served.close()

    # Removing it.
    _post(
        client,
        f"/templates/{template.id}",
        name="Offer",
        body="See it",
        media_id=str(media_id),
        remove_media="1",
    )
    with db.session() as session:
        assert session.get(Template, template.id).media_id is None


def test_an_attachment_over_the_upload_limit_is_refused(tmp_path) -> None:
    app = create_app(
        Settings(instance_path=tmp_path / "i", secret_key="k", worker=False, max_upload_mb=1)
    )
    migrate.upgrade(app.extensions["wabulk.db"].engine)
    with app.extensions["wabulk.db"].session() as session:
        users.create_user(session, None, "op@example.com", PASSWORD, Role.OPERATOR)
    client = app.test_client()
    login(client, "op@example.com")
    page = client.get("/templates/new").get_data(as_text=True)
    assert 'data-max-bytes="1048576"' in page and "up to 1 MB" in page
    response = _post(
        client,
        "/templates/new",
        name="Big",
        body="x",
        media=(io.BytesIO(b"%PDF-1.4 " + b"0" * (1024 * 1024 + 10)), "big.pdf"),
    )
    assert response.status_code == 413
    assert "larger than the 1 MB limit" in response.get_data(as_text=True)
    # Werkzeug abandons its spooled temp file when it aborts a body at the limit; collect it
    # here so its ResourceWarning is not blamed on the next test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del response
        gc.collect()


def test_a_template_used_by_a_draft_cannot_be_deleted(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    lst = make_contacts(db, phones(1), "VIP")
    sender = make_sender(db)
    with db.session() as session:
        template = Template(name="Greeting", body="Hello")
        session.add(template)
    make_campaign(db, [lst], [sender], body="", template_id=template.id, launch=False)
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert re.search(r'action="/templates/\d+/delete" data-confirm="Delete the template', page)
    response = _post(client, f"/templates/{template.id}/delete")
    assert response.headers["Location"] == f"/templates/{template.id}"
    assert "draft campaign(s) use" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    with db.session() as session:
        session.execute(update(Campaign).values(template_id=None))
    response = _post(client, f"/templates/{template.id}/delete")
    assert response.headers["Location"] == "/templates"
    assert "Template &#39;Greeting&#39; deleted." in client.get("/templates").get_data(as_text=True)


# --- the wizard, launch and the live page (both databases) ------------------------------


def _signed_in(app: Flask, db: Database, role: Role = Role.OPERATOR) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, f"{role.value}@example.com", PASSWORD, role)
    assert login(client, f"{role.value}@example.com").status_code == 302
    return client


def test_wizard_to_launch_to_a_finished_campaign(dual, settings) -> None:
    app, db = dual
    client = _signed_in(app, db)
    customers = make_contacts(db, phones(5), "Customers", attributes={"city": "Pune"})
    newsletter = make_contacts(db, phones(8)[3:], "Newsletter")  # 2 overlap
    with db.session() as session:
        session.execute(
            update(Contact).where(Contact.phone == phones(8)[7]).values(opted_out_at=utcnow())
        )
    sender = make_sender(db, "Rehearsal")

    audience = client.get(f"/campaigns/audience.json?list_ids={customers}&list_ids={newsletter}")
    assert audience.get_json() == {"recipients": 7, "opted_out": 1, "lists": 2}

    response = _post(
        client,
        "/campaigns/new",
        **_wizard(
            list_ids=[str(customers), str(newsletter)],
            sender_ids=[str(sender)],
            body="Hi {{ first_name }}, from {{ city | default('us') }}",
            max_delay_seconds="0",
        ),
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    url = response.headers["Location"]
    page = client.get(url).get_data(as_text=True)
    count = re.search(r'data-testid="recipient-count">(.*?)</div>', page, re.S).group(1)
    assert ">7</span> recipient(s)" in count and "1 opted out, left out" in count
    assert "Hi Person, from Pune" in page  # the preview before launch
    assert _visible_actions(page) == {"launch"}
    assert re.search(r'action="[^"]*/delete" data-confirm="Delete the draft', page)

    assert _post(client, url + "/actions/launch").status_code == 302
    progress = client.get(url + "/progress.json").get_json()
    assert (progress["status"], progress["total"], progress["counts"]["queued"]) == (
        "running",
        7,
        7,
    )
    assert progress["actions"] == ["pause", "cancel"] and progress["live"] is True
    assert any("launched" in e["text"] for e in progress["events"])
    newest = progress["events"][0]["id"]
    assert client.get(f"{url}/progress.json?after_event={newest}").get_json()["events"] == []

    _run_to_the_end(db, sender, settings)
    progress = client.get(f"{url}/progress.json?after_event={newest}").get_json()
    assert progress["status"] == "completed" and progress["live"] is False
    assert (progress["counts"]["sent"], progress["done"], progress["percent"]) == (7, 7, 100.0)
    assert progress["finished_at"] is not None
    assert progress["events"][0]["text"].startswith("Finished: 7 sent")
    page = client.get(url).get_data(as_text=True)
    assert _visible_actions(page) == set()  # nothing failed: no "retry failed" to offer
    assert 'data-live="0"' in page


def test_progress_is_read_from_the_counters_not_counted_from_rows(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    lst = make_contacts(db, phones(4), "Customers")
    sender = make_sender(db)
    campaign_id = make_campaign(db, [lst], [sender])
    with db.session() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(n_queued=1, n_sent=2, n_failed=1)
        )
    progress = client.get(f"/campaigns/{campaign_id}/progress.json").get_json()
    assert progress["counts"]["sent"] == 2 and progress["counts"]["queued"] == 1
    assert (progress["done"], progress["percent"]) == (3, 75.0)


def test_wizard_errors_are_shown_next_to_their_box_and_the_input_is_kept(
    client, as_role, db
) -> None:
    as_role(Role.OPERATOR)
    lst = make_contacts(db, phones(2), "Customers")
    sender = make_sender(db)
    response = _post(
        client,
        "/campaigns/new",
        **_wizard(name=" ", list_ids=[str(lst)], sender_ids=[str(sender)], body="Keep me"),
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'data-error-for="name">Give the campaign a name.', page)
    assert "Keep me</textarea>" in page
    assert re.search(rf'name="list_ids" value="{lst}"[^>]*checked', page)
    assert re.search(rf'name="sender_ids" value="{sender}"[^>]*checked', page)

    cases = [
        ({"min_delay_seconds": "9", "max_delay_seconds": "2"}, "min_delay_seconds", "shortest"),
        ({"active_from": "09:00"}, "active_from", "both ends"),
        ({"max_attempts": "0"}, "max_attempts", "between 1 and"),
        ({"retry_seconds": "soon"}, "retry_seconds", "whole number"),
        ({"schedule": "later", "scheduled_at": ""}, "scheduled_at", "Choose the date"),
        ({"body": "Hi {{ name "}, "body", "Line 1:"),
    ]
    for fields, box, words in cases:
        response = _post(client, "/campaigns/new", **_wizard(list_ids=[str(lst)], **fields))
        assert response.status_code == 400, fields
        page = response.get_data(as_text=True)
        error = re.search(rf'data-error-for="{box}">([^<]*)<', page)
        assert error and words in error.group(1), (fields, error)
    with db.session() as session:
        assert session.scalars(select(Campaign)).all() == []


def test_the_schedule_is_typed_in_the_users_timezone(client, as_role, db) -> None:
    user = as_role(Role.OPERATOR)
    with db.session() as session:
        users.set_timezone(session, user, "Asia/Kolkata")
    lst = make_contacts(db, phones(1), "Customers")
    response = _post(
        client,
        "/campaigns/new",
        **_wizard(list_ids=[str(lst)], schedule="later", scheduled_at="2031-01-15T09:30"),
    )
    assert response.status_code == 302
    with db.session() as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.scheduled_at == datetime(2031, 1, 15, 4, 0, tzinfo=UTC)
    edit = client.get(f"/campaigns/{campaign.id}/edit").get_data(as_text=True)
    assert 'value="2031-01-15T09:30"' in edit and "Asia/Kolkata" in edit


def test_only_linked_senders_can_be_chosen_and_their_pacing_shows(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    make_sender(db, "Fast", min_delay_seconds=1, max_delay_seconds=3, daily_cap=200)
    off = make_sender(db, "Old phone")
    with db.session() as session:
        from wabulk.senders.service import set_enabled

        set_enabled(session, None, off, False)
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert re.search(rf'name="sender_ids" value="{off}" id="sender-{off}"\s*disabled', page)
    assert "Disabled by an admin" in page
    assert "&#34;daily_cap&#34;: &#34;200&#34;" in page  # wizard.js turns it into placeholders


def test_actions_follow_the_allowed_transitions(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    lst = make_contacts(db, phones(3), "Customers")
    sender = make_sender(db)
    campaign_id = make_campaign(db, [lst], [sender])
    url = f"/campaigns/{campaign_id}"
    page = client.get(url).get_data(as_text=True)
    assert _visible_actions(page) == {"pause", "cancel"}
    assert re.search(r'data-action="cancel"\s*data-confirm="Cancel Spring sale\?', page)
    assert "/edit" not in re.sub(r'action="[^"]*"', "", page.split('id="recipients"')[0])

    assert _post(client, url + "/actions/pause").status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "Paused." in page and _visible_actions(page) == {"resume", "cancel"}

    refused = _post(client, url + "/actions/pause")  # not allowed from paused
    assert refused.status_code == 302
    assert "you cannot pause it now" in client.get(url).get_data(as_text=True)
    assert _post(client, url + "/actions/launch").status_code == 302
    assert "you cannot launch it now" in client.get(url).get_data(as_text=True)
    assert _post(client, url + "/actions/start").status_code == 404  # the engine's own move

    _post(client, url + "/actions/resume")
    assert client.get(url + "/progress.json").get_json()["status"] == "running"
    _post(client, url + "/actions/cancel")
    progress = client.get(url + "/progress.json").get_json()
    assert (progress["status"], progress["counts"]["skipped"]) == ("cancelled", 3)
    _post(client, url + "/actions/retry")
    assert "no failed or unknown messages" in client.get(url).get_data(as_text=True)
    assert client.get(url + "/edit").headers["Location"] == url


def test_duplicate_and_delete_a_draft(client, as_role, db) -> None:
    as_role(Role.OPERATOR)
    lst = make_contacts(db, phones(2), "Customers")
    sender = make_sender(db)
    launched = make_campaign(db, [lst], [sender], name="Launched one")
    response = _post(client, f"/campaigns/{launched}/duplicate")
    copy_url = response.headers["Location"]
    page = client.get(copy_url).get_data(as_text=True)
    assert "Launched one (copy)" in page and "draft" in page
    assert _visible_actions(page) == {"launch"}

    assert _post(client, f"/campaigns/{launched}/delete").headers["Location"] == (
        f"/campaigns/{launched}"
    )
    assert "Only drafts can be deleted" in client.get(f"/campaigns/{launched}").get_data(
        as_text=True
    )
    response = _post(client, copy_url + "/delete")
    assert response.headers["Location"] == "/campaigns"
    listing = client.get("/campaigns").get_data(as_text=True)
    assert "Draft &#39;Launched one (copy)&#39; deleted." in listing
    assert client.get(copy_url).status_code == 404


def test_send_test_writes_one_line_to_the_dry_run_log(client, as_role, db, settings) -> None:
    as_role(Role.OPERATOR)
    lst = make_contacts(db, phones(2), "Customers", attributes={"city": "Pune"})
    sender = make_sender(db, "Rehearsal")
    campaign_id = make_campaign(
        db, [lst], [sender], body="Hi {{ name }} in {{ city }}", launch=False
    )
    url = f"/campaigns/{campaign_id}"
    bad = _post(client, url + "/test", phone="12", sender_id=str(sender))
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert re.search(r'data-error-for="phone">The phone number', page) and 'value="12"' in page
    assert read_log(log_path(settings.instance_path, "Rehearsal")) == []

    response = _post(client, url + "/test", phone=phones(2)[1], sender_id=str(sender))
    assert response.status_code == 302
    assert "Test sent to" in client.get(url).get_data(as_text=True)
    lines = read_log(log_path(settings.instance_path, "Rehearsal"))
    assert [(line["phone"], line["text"]) for line in lines] == [
        (phones(2)[1], "Hi Person 1 in Pune")
    ]


def test_recipients_filter_by_status_page_by_key_and_show_why_a_send_failed(
    client, as_role, db, settings
) -> None:
    as_role(Role.VIEWER)
    lst = make_contacts(db, phones(60), "Customers")
    sender = make_sender(db, "Flaky", settings={"failure_rate": 0.3})
    campaign_id = make_campaign(db, [lst], [sender])
    _run_to_the_end(db, sender, settings)
    url = f"/campaigns/{campaign_id}"
    progress = client.get(url + "/progress.json").get_json()
    failed, sent = progress["counts"]["failed"], progress["counts"]["sent"]
    assert failed > 0 and failed + sent == 60

    page = client.get(url + "?status=failed").get_data(as_text=True)
    table = re.search(r'data-testid="recipients">(.*?)</table>', page, re.S).group(1)
    assert table.count('class="badge msg-failed"') == failed
    assert "msg-sent" not in table
    assert table.count("Dry run: simulated failure") == failed

    first = client.get(url).get_data(as_text=True)
    assert first.count("<tr>") - 1 == 50  # a header row and one page of 50
    after = re.search(r'href="([^"]*after=\d+)#recipients"', first).group(1).replace("&amp;", "&")
    second = client.get(after).get_data(as_text=True)
    assert second.count("<tr>") - 1 == 10 and "« First" in second
    fragment = client.get(url + "/recipients?status=failed").get_data(as_text=True)
    assert fragment.count('class="badge msg-failed"') == failed and "<html" not in fragment
    assert client.get(url + "?status=bogus").status_code == 200  # falls back to all


def test_a_viewer_sees_everything_and_changes_nothing(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    lst = make_contacts(db, phones(2), "Customers")
    sender = make_sender(db)
    draft = make_campaign(db, [lst], [sender], launch=False)
    running = make_campaign(db, [lst], [sender], name="Running")
    with db.session() as session:
        template = Template(name="Greeting", body="Hello {{ name }}")
        session.add(template)
    for url in ("/templates", f"/templates/{template.id}", "/campaigns", f"/campaigns/{draft}"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert "Save template" not in page.get_data(as_text=True)
    running_page = client.get(f"/campaigns/{running}").get_data(as_text=True)
    assert "data-action" not in running_page and "Send test" not in running_page
    assert _preview(client, body="Hi {{ name }}")["samples"]  # reading is allowed
    token = _token(client)
    refused = [
        ("/templates/new", {"name": "X", "body": "Y"}),
        (f"/templates/{template.id}", {"name": "X", "body": "Y"}),
        (f"/templates/{template.id}/delete", {}),
        ("/campaigns/new", _wizard(list_ids=[str(lst)])),
        (f"/campaigns/{draft}/edit", _wizard()),
        (f"/campaigns/{draft}/actions/launch", {}),
        (f"/campaigns/{running}/actions/pause", {}),
        (f"/campaigns/{running}/actions/cancel", {}),
        (f"/campaigns/{draft}/duplicate", {}),
        (f"/campaigns/{draft}/delete", {}),
        (f"/campaigns/{draft}/test", {"phone": phones(1)[0], "sender_id": str(sender)}),
    ]
    for url, data in refused:
        response = client.post(url, data={**data, "csrf_token": token})
        assert response.status_code == 403, url
    assert client.get("/campaigns/new").status_code == 403
    with db.session() as session:
        assert session.get(Campaign, draft).status == CampaignStatus.DRAFT
        assert session.get(Campaign, running).status == CampaignStatus.RUNNING
        assert len(session.scalars(select(Campaign)).all()) == 2


def test_empty_campaigns_page_says_what_to_do_first(client, as_role, db) -> None:
    as_role(Role.ADMIN)
    page = client.get("/campaigns").get_data(as_text=True)
    assert "Add a dry-run sender first" in page and 'href="/senders/new"' in page
    make_sender(db)
    page = client.get("/campaigns").get_data(as_text=True)
    assert "Import your customer sheet into a list first" in page
    make_contacts(db, phones(1), "Customers")
    page = client.get("/campaigns").get_data(as_text=True)
    assert 'href="/campaigns/new"' in page


def test_a_paused_campaign_says_why(client, as_role, db) -> None:
    as_role(Role.VIEWER)
    lst = make_contacts(db, phones(2), "Customers")
    sender = make_sender(db, "Phone A")
    campaign_id = make_campaign(db, [lst], [sender])
    reason = "Paused: sender Phone A cannot send (logged out on the phone)."
    with db.session() as session:
        lifecycle.pause(session, None, campaign_id, reason=reason)
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    shown = re.search(
        r'<div class="alert[^"]*"[^>]*data-testid="reason"([^>]*)>(.*?)</div>', page, re.S
    )
    assert shown and "hidden" not in shown.group(1) and reason in shown.group(2)
    progress = client.get(f"/campaigns/{campaign_id}/progress.json").get_json()
    assert (progress["status"], progress["reason"], progress["live"]) == ("paused", reason, True)
    assert reason in client.get("/campaigns").get_data(as_text=True)


def test_the_new_pages_have_no_inline_scripts_or_styles(client, as_role, db) -> None:
    as_role(Role.ADMIN)
    lst = make_contacts(db, phones(2), "Customers")
    sender = make_sender(db)
    draft = make_campaign(db, [lst], [sender], launch=False)
    running = make_campaign(db, [lst], [sender], name="Running")
    with db.session() as session:
        template = Template(name="Greeting", body="Hello {{ name }}")
        session.add(template)
    for url in (
        "/templates/new",
        f"/templates/{template.id}",
        "/campaigns/new",
        f"/campaigns/{draft}",
        f"/campaigns/{draft}/edit",
        f"/campaigns/{running}",
        "/senders/new",
        f"/senders/{sender}/edit",
    ):
        html = client.get(url).get_data(as_text=True)
        for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S):
            assert "src=" in attrs and body.strip() == "", (url, attrs)
        assert not re.search(r"\sstyle=", html), url
        assert not re.search(r"\son[a-z]+=", html), url


def test_the_text_goes_before_or_after_a_document_and_a_copy_keeps_it(dual) -> None:
    app, db = dual
    client = _signed_in(app, db)
    pdf = b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n"
    form = client.get("/campaigns/new").get_data(as_text=True)
    assert re.search(r'name="text_before_document"[^>]*value="0"\s+checked', form)  # default
    response = _post(
        client,
        "/campaigns/new",
        **_wizard(text_before_document="1", media=(io.BytesIO(pdf), "price-list.pdf")),
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    url = response.headers["Location"]
    with db.session() as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.text_before_document is True
        media_id = campaign.media_id
    page = client.get(url).get_data(as_text=True)
    shown = re.search(r'data-testid="text-position">([^<]*)<', page)
    assert shown and shown.group(1).startswith("Before the document")
    edit = client.get(url + "/edit").get_data(as_text=True)
    assert re.search(r'name="text_before_document"[^>]*value="1"\s+checked', edit)

    copy_url = _post(client, url + "/duplicate").headers["Location"]
    assert copy_url != url
    with db.session() as session:
        copy = session.get(Campaign, int(copy_url.rsplit("/", 1)[1]))
        assert (copy.text_before_document, copy.media_id) == (True, media_id)

    # Back to the default; and a photo carries its text as a caption, so nothing is said.
    edited = _post(
        client, url + "/edit", **_wizard(text_before_document="0", media_id=str(media_id))
    )
    assert edited.status_code == 302
    with db.session() as session:
        assert session.get(Campaign, int(url.rsplit("/", 1)[1])).text_before_document is False
    assert "After the document" in client.get(url).get_data(as_text=True)
    edited = _post(client, url + "/edit", **_wizard(media=(io.BytesIO(_png()), "offer.png")))
    assert edited.status_code == 302
    assert 'data-testid="text-position">' not in client.get(url).get_data(as_text=True)


def test_the_log_links_the_screenshot_of_a_failed_send_for_operators(client, make_user, db) -> None:
    lst = make_contacts(db, phones(1), "Customers")
    campaign_id = make_campaign(db, [lst], [make_sender(db)])
    name = "20261124T101500123456-m1-unconfirmed.png"
    with db.session() as session:
        record(
            session,
            "message.unknown",
            "Could not confirm the message to +919876500000 was sent.",
            campaign_id=campaign_id,
            data={"screenshot": name},
        )
    link = f'href="/senders/screenshots/{name}"'
    seen = {}
    for role in (Role.OPERATOR, Role.VIEWER):
        user = make_user(role)
        login(client, user.email)
        page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
        log = re.search(r'data-testid="log">(.*?)</ul>', page, re.S).group(1)
        events = client.get(f"/campaigns/{campaign_id}/progress.json").get_json()["events"]
        seen[role] = (link in log, events[0]["screenshot"])
        client.post("/logout", data={"csrf_token": get_csrf(client, f"/campaigns/{campaign_id}")})
    assert seen == {
        Role.OPERATOR: (True, f"/senders/screenshots/{name}"),
        Role.VIEWER: (False, None),
    }
