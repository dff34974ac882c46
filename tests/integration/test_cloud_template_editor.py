"""Approved WhatsApp templates in the template editor, its live preview, the campaign
wizard's Cloud API notes, the launch's refusals and snapshot, and the API (both databases)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.campaigns import cloud_template, lifecycle
from wabulk.db import Database
from wabulk.errors import ValidationError
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Channel,
    CloudTemplate,
    Contact,
    Inbound,
    Media,
    Message,
    Role,
    Sender,
    SenderState,
    Template,
    utcnow,
)

from ..conftest import PASSWORD, get_csrf, login

SPRING: list[dict[str, Any]] = [
    {
        "type": "HEADER",
        "format": "TEXT",
        "text": "Sale in {{1}}",
        "example": {"header_text": ["Pune"]},
    },
    {
        "type": "BODY",
        "text": "Hi {{2}}, use {{1}} before Sunday.",
        "example": {"body_text": [["CARIBE25", "Pablo"]]},
    },
    {"type": "FOOTER", "text": "Tap Stop promotions to stop"},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "URL", "text": "Shop now", "url": "https://shop.example/s/{{1}}"},
            {"type": "QUICK_REPLY", "text": "Stop promotions"},
            {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550001111"},
        ],
    },
]
ORDER: list[dict[str, Any]] = [
    {"type": "HEADER", "format": "IMAGE"},
    {"type": "BODY", "text": "Dear {{customer_name}}, your order is on its way."},
]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(buf, "PNG")
    return buf.getvalue()


def _no_inline_code(html: str) -> None:
    """The pages' CSP allows scripts from files only and no inline styles or handlers."""
    for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S):
        assert "src=" in attrs and body.strip() == "", attrs
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)


def _signed_in(app: Flask, db: Database, role: Role = Role.OPERATOR) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, f"{role.value}@example.com", PASSWORD, role)
    assert login(client, f"{role.value}@example.com").status_code == 302
    return client


def _cloud(db: Database) -> dict[str, int]:
    """A Cloud API sender with three synced templates: two approved, one pending."""
    with db.session() as session:
        sender = Sender(name="Shop line", channel=Channel.CLOUD_API, state=SenderState.LINKED)
        session.add(sender)
        session.flush()
        rows = {
            "spring": CloudTemplate(
                sender_id=sender.id,
                name="spring_sale",
                language="en_US",
                category="MARKETING",
                status="APPROVED",
                parameter_format="positional",
                components=SPRING,
            ),
            "order": CloudTemplate(
                sender_id=sender.id,
                name="order_update",
                language="en_US",
                category="UTILITY",
                status="APPROVED",
                parameter_format="named",
                components=ORDER,
            ),
            "pending": CloudTemplate(
                sender_id=sender.id,
                name="new_offer",
                language="es",
                category="MARKETING",
                status="PENDING",
                parameter_format="positional",
                components=[{"type": "BODY", "text": "Hola"}],
            ),
        }
        session.add_all(rows.values())
        session.flush()
        return {"sender": sender.id, **{k: r.id for k, r in rows.items()}}


def _spring_form(row: int, **changes: str) -> dict[str, str]:
    form = {
        "cloud_template_id": str(row),
        f"c{row}:header.1:kind": "field",
        f"c{row}:header.1:field": "city",
        f"c{row}:body.1:kind": "text",
        f"c{row}:body.1:text": "CARIBE25",
        f"c{row}:body.2:kind": "field",
        f"c{row}:body.2:field": "first_name",
        f"c{row}:button.0:kind": "field",
        f"c{row}:button.0:field": "order_ref",
        f"c{row}:button.1:kind": "opt_out",
        f"c{row}:button.1:text": "",
    }
    form.update(changes)
    return form


SPRING_MAPPING = {
    "header.1": "{{ city }}",
    "body.1": "CARIBE25",
    "body.2": "{{ first_name }}",
    "button.0": "{{ order_ref }}",
    "button.1": cloud_template.OPT_OUT_PAYLOAD,
}


def _post(client: FlaskClient, url: str, **data: Any):  # type: ignore[no-untyped-def]
    data.setdefault("csrf_token", get_csrf(client, "/templates/new"))
    return client.post(url, data=data, content_type="multipart/form-data")


def test_the_section_shows_only_with_a_cloud_api_sender(dual) -> None:
    app, db = dual
    client = _signed_in(app, db)
    make_sender(db, "Rehearsal")
    page = client.get("/templates/new").get_data(as_text=True)
    assert 'data-testid="cloud-section"' not in page and "cloud_template.js" not in page
    with db.session() as session:
        session.add(Sender(name="Shop line", channel=Channel.CLOUD_API, state=SenderState.LINKED))
    page = client.get("/templates/new").get_data(as_text=True)
    assert 'data-testid="cloud-section"' in page
    assert 'data-testid="cloud-none"' in page  # nothing synced yet: says where to sync


def test_the_editor_saves_a_mapping_of_an_approved_template(dual) -> None:
    app, db = dual
    client = _signed_in(app, db)
    ids = _cloud(db)
    spring, pending = ids["spring"], ids["pending"]

    page = client.get("/templates/new").get_data(as_text=True)
    option = re.search(rf'<option value="{spring}"\s*>([^<]*)</option>', page)
    assert option and "spring_sale · en_US · marketing" in option.group(1)
    greyed = re.search(rf'<option value="{pending}"\s*disabled>([^<]*)</option>', page)
    assert greyed and "new_offer · es · marketing (pending)" in greyed.group(1)
    assert "The heading&#39;s {{1}}" in page and "for example: CARIBE25" in page
    assert "The answer of the button “Stop promotions”" in page
    _no_inline_code(page)

    # No CSRF token: refused before anything is read or stored.
    form = {"name": "Spring", "body": "", **_spring_form(spring)}
    assert client.post("/templates/new", data=form).status_code == 400

    # A variable left without a value: named next to its box, what was typed is kept.
    missing = _post(
        client,
        "/templates/new",
        name="Spring",
        body="",
        **_spring_form(spring, **{f"c{spring}:body.2:field": ""}),
    )
    assert missing.status_code == 400
    page = missing.get_data(as_text=True)
    error = re.search(rf'data-error-for="c{spring}:body.2:kind">([^<]*)<', page)
    assert error and error.group(1) == (
        "The message&#39;s {{2}}: choose a contact field or write a fixed text for it."
    )
    assert 'value="CARIBE25"' in page
    with db.session() as session:
        assert session.scalars(select(Template)).all() == []

    # A pending template cannot be linked, even by a forged form.
    refused = _post(client, "/templates/new", name="Offer", body="", cloud_template_id=str(pending))
    assert refused.status_code == 400
    assert (
        "new_offer (es) is pending; only templates Meta approved can be used"
        in refused.get_data(as_text=True)
    )

    saved = _post(client, "/templates/new", name="Spring", body="", **_spring_form(spring))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with db.session() as session:
        template = session.scalars(select(Template)).one()
        assert (template.cloud_template_name, template.cloud_language) == ("spring_sale", "en_US")
        assert template.cloud_parameters == SPRING_MAPPING and template.body == ""

    listed = client.get("/templates").get_data(as_text=True)
    assert re.search(r'data-testid="cloud-badge">.*spring_sale</span>', listed)
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert re.search(rf'<option value="{spring}"\s*selected>', page)
    assert re.search(r'<option value="first_name" selected>', page)
    assert re.search(r'<option value="opt_out" selected>Opt the contact out', page)

    # Unlinking: "None" keeps the body as the only message.
    _post(
        client,
        f"/templates/{template.id}",
        name="Spring",
        body="Hi {{ name }}",
        cloud_template_id="",
    )
    with db.session() as session:
        again = session.get(Template, template.id)
        assert again.cloud_template_name is None and again.cloud_parameters == {}


def test_a_media_header_needs_an_attachment_of_its_kind(dual) -> None:
    app, db = dual
    client = _signed_in(app, db)
    order = _cloud(db)["order"]
    fields = {
        "cloud_template_id": str(order),
        f"c{order}:body.customer_name:kind": "field",
        f"c{order}:body.customer_name:field": "name",
    }
    page = client.get("/templates/new").get_data(as_text=True)
    assert "This template starts with a photo: attach it below." in page
    bare = _post(client, "/templates/new", name="Order", body="", **fields)
    assert bare.status_code == 400
    assert re.search(
        r'data-error-for="media">This WhatsApp template starts with a photo: attach one.',
        bare.get_data(as_text=True),
    )
    pdf = _post(
        client,
        "/templates/new",
        name="Order",
        body="",
        media=(io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "list.pdf"),
        **fields,
    )
    assert pdf.status_code == 400
    assert "starts with a photo, and list.pdf is not one." in pdf.get_data(as_text=True)
    saved = _post(
        client,
        "/templates/new",
        name="Order",
        body="",
        media=(io.BytesIO(_png()), "shop.png"),
        **fields,
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with db.session() as session:
        template = session.scalars(select(Template)).one()
        media = session.get(Media, template.media_id)
        assert media.mime_type == "image/png"
        assert template.cloud_parameters == {"body.customer_name": "{{ name }}"}


def _preview(client: FlaskClient, csrf: bool = True, **data: Any):  # type: ignore[no-untyped-def]
    headers = {"X-CSRFToken": get_csrf(client, "/templates/new")} if csrf else {}
    return client.post("/templates/cloud-preview.json", data=data, headers=headers)


def test_the_preview_fills_the_template_for_real_contacts(dual) -> None:
    app, db = dual
    client = _signed_in(app, db)
    spring = _cloud(db)["spring"]
    vip = make_contacts(db, phones(3), "VIP", attributes={"city": "Pune", "order_ref": "A1"})
    make_contacts(db, phones(1, prefix="+9197000"), "Walk-ins")  # no city, no order

    result = _preview(client, list_ids=str(vip), **_spring_form(spring)).get_json()
    assert result["error"] is None and len(result["samples"]) == 3
    first = result["samples"][0]
    assert (first["phone"], first["heading"], first["message"], first["footer"]) == (
        phones(3)[0],
        "Sale in Pune",
        "Hi Person, use CARIBE25 before Sunday.",
        "Tap Stop promotions to stop",
    )
    assert first["buttons"] == [
        {"kind": "url", "text": "Shop now", "url": "https://shop.example/s/A1"},
        {
            "kind": "quick_reply",
            "text": "Stop promotions",
            "payload": "wabulk:opt-out",
            "opt_out": True,
        },
        {"kind": "phone_number", "text": "Call us", "phone": "+15550001111"},
    ]

    # One contact, picked by the number as typed; a value empty for them is named.
    walk_in = phones(1, prefix="+9197000")[0]
    typed = "+" + " ".join([walk_in[1:4], walk_in[4:9], walk_in[9:]])
    one = _preview(client, preview_phone=typed, **_spring_form(spring)).get_json()
    assert one["samples"] == []
    assert one["error"].startswith(
        "For Person 0: The heading's {{1}} comes out empty for this contact"
    )

    # An unmapped variable: the error names it; the template is shown with its blanks.
    partial = _preview(
        client, list_ids=str(vip), **_spring_form(spring, **{f"c{spring}:body.2:field": ""})
    ).get_json()
    assert partial["error"].startswith("The message's {{2}}: choose a contact field")
    assert partial["skeleton"]["message"] == "Hi {{2}}, use {{1}} before Sunday."

    assert _preview(client, cloud_template_id="").get_json()["empty"] is True
    huge = _preview(client, **_spring_form(spring, **{f"c{spring}:body.1:text": "x" * 1_100_000}))
    assert huge.status_code == 413
    assert (
        huge.get_json()["error"] == "The values are too long to preview; shorten the fixed texts."
    )
    assert _preview(client, csrf=False, **_spring_form(spring)).status_code == 400
    anonymous = app.test_client().post("/templates/cloud-preview.json", data=_spring_form(spring))
    assert anonymous.status_code in (302, 401)


def _window(db: Database, cloud_sender: int) -> tuple[int, int]:
    """Five contacts: two wrote to the Cloud API sender within 24 h, one 30 h ago, one to
    another sender; returns (list id, other sender id)."""
    audience = make_contacts(db, phones(5), "Audience")
    other = make_sender(db, "Rehearsal")
    now = utcnow()
    with db.session() as session:
        contacts = session.scalars(select(Contact).order_by(Contact.id)).all()
        for contact, sender, hours in (
            (contacts[0], cloud_sender, 2),
            (contacts[0], cloud_sender, 1),  # twice: counted once
            (contacts[1], cloud_sender, 23),
            (contacts[2], cloud_sender, 30),
            (contacts[3], other, 1),
        ):
            session.add(
                Inbound(
                    phone=contact.phone,
                    contact_id=contact.id,
                    sender_id=sender,
                    body="hi",
                    received_at=now - timedelta(hours=hours),
                )
            )
    return audience, other


def test_the_wizard_says_what_a_cloud_api_sender_needs(dual) -> None:
    app, db = dual
    client = _signed_in(app, db)
    ids = _cloud(db)
    audience, other = _window(db, ids["sender"])
    with db.session() as session:
        plain = Template(name="Plain", body="Hello {{ name }}")
        linked = Template(
            name="Spring",
            body="",
            cloud_template_name="spring_sale",
            cloud_language="en_US",
            cloud_parameters=SPRING_MAPPING,
        )
        session.add_all([plain, linked])

    def notes(**query: Any) -> list[dict[str, Any]]:
        answer = client.get("/templates/cloud-notes.json", query_string=query)
        return answer.get_json()["notes"]  # type: ignore[no-any-return]

    free = notes(sender_ids=[ids["sender"], other], list_ids=audience)
    assert free == [
        {
            "text": "Only customers who wrote to you in the last 24 hours can get a free-form "
            "message; 2 of 5 in this audience. The others are skipped; choose a template "
            "linked to an approved WhatsApp template to reach everyone.",
            "blocking": False,
        }
    ]
    [unlinked] = notes(sender_ids=ids["sender"], list_ids=audience, template_id=plain.id)
    assert unlinked["blocking"] is True
    assert "Shop line sends through the WhatsApp Cloud API" in unlinked["text"]
    assert "the template 'Plain' is not linked to one" in unlinked["text"]
    [ok] = notes(sender_ids=ids["sender"], template_id=linked.id)
    assert ok == {
        "text": "Shop line will send the approved WhatsApp template spring_sale (en_US).",
        "blocking": False,
    }
    assert notes(sender_ids=other, list_ids=audience) == []  # no Cloud API sender: nothing to say

    # The page says it too, for the draft as saved.
    response = client.post(
        "/campaigns/new",
        data={
            "csrf_token": get_csrf(client, "/campaigns/new"),
            "name": "Spring",
            "list_ids": str(audience),
            "sender_ids": str(ids["sender"]),
            "template_id": str(plain.id),
            "schedule": "now",
            "max_attempts": "3",
            "retry_seconds": "60",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    draft = int(response.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/campaigns/{draft}/edit").get_data(as_text=True)
    shown = re.search(r'data-testid="cloud-notes">(.*?)</div>\s*</div>', page, re.S)
    assert shown and 'data-blocking="1"' in shown.group(1)
    assert "is not linked to one. Choose one in the template editor." in shown.group(1)
    assert "js/cloud_wizard.js" in page
    _no_inline_code(page)

    # Launching it is refused with the same reason; the draft stays a draft.
    launch = client.post(
        f"/campaigns/{draft}/actions/launch", data={"csrf_token": get_csrf(client, "/campaigns")}
    )
    assert launch.status_code == 302
    assert "is not linked to one" in client.get(f"/campaigns/{draft}").get_data(as_text=True)
    with db.session() as session:
        assert session.get(Campaign, draft).status == CampaignStatus.DRAFT


def _launch(db: Database, campaign_id: int) -> None:
    with db.session() as session:
        lifecycle.launch(session, None, campaign_id)


def test_the_launch_snapshots_the_approved_template_and_refuses_one_no_longer_approved(
    dual,
) -> None:
    _app, db = dual
    ids = _cloud(db)
    audience, _other = _window(db, ids["sender"])
    with db.session() as session:
        spring = Template(
            name="Spring",
            body="",
            cloud_template_name="spring_sale",
            cloud_language="en_US",
            cloud_parameters=SPRING_MAPPING,
        )
        media = Media(
            stored_path="media/x.png",
            original_name="shop.png",
            mime_type="image/png",
            size=10,
            sha256="0" * 64,
        )
        session.add_all([spring, media])
        session.flush()
        order = Template(
            name="Order",
            body="",
            media_id=media.id,
            cloud_template_name="order_update",
            cloud_language="en_US",
            cloud_parameters={"body.customer_name": "{{ name }}"},
        )
        session.add(order)
        session.flush()
        spring_id, order_id, media_id = spring.id, order.id, media.id

    launched = make_campaign(db, [audience], [ids["sender"]], body="", template_id=spring_id)
    with db.session() as session:
        campaign = session.get(Campaign, launched)
        assert campaign.status == CampaignStatus.RUNNING and campaign.total == 5
        assert campaign.cloud_template == {
            "name": "spring_sale",
            "language": "en_US",
            "category": "MARKETING",
            "parameter_format": "positional",
            "components": SPRING,
            "mapping": SPRING_MAPPING,
            "header_media_kind": None,
            "media_id": None,
        }
        snap = campaign.cloud_template
    # What the dispatcher will do with it for one of these recipients.
    ctx = {"first_name": "Asha", "city": "Pune", "order_ref": "A1"}
    text, params = cloud_template.render_params(snap, ctx, seed=launched)
    assert text.startswith("Sale in Pune\n\nHi Asha, use CARIBE25")
    assert cloud_template.call_from(snap, params).marketing is True

    with_media = make_campaign(
        db, [audience], [ids["sender"]], body="", template_id=order_id, name="Order"
    )
    with db.session() as session:
        snap = session.get(Campaign, with_media).cloud_template
        assert (snap["header_media_kind"], snap["media_id"], snap["parameter_format"]) == (
            "image",
            media_id,
            "named",
        )

    # Meta paused the template after it was linked: the launch says so and nothing is queued.
    with db.session() as session:
        session.get(CloudTemplate, ids["spring"]).status = "PAUSED"
    draft = make_campaign(
        db, [audience], [ids["sender"]], body="", template_id=spring_id, launch=False
    )
    try:
        _launch(db, draft)
    except ValidationError as exc:
        assert str(exc) == (
            "The WhatsApp template spring_sale (en_US) is paused for Shop line, not approved; "
            "Meta sends only approved templates."
        )
    else:
        raise AssertionError("a paused template was launched")
    with db.session() as session:
        assert session.get(Campaign, draft).status == CampaignStatus.DRAFT
        assert session.scalar(select(Message.id).where(Message.campaign_id == draft)) is None

    # A one-off message on a Cloud API sender launches without a snapshot (24-hour window).
    free = make_campaign(db, [audience], [ids["sender"]], body="Hi {{ name }}", name="Free")
    with db.session() as session:
        campaign = session.get(Campaign, free)
        assert campaign.status == CampaignStatus.RUNNING and campaign.cloud_template is None


def test_the_api_links_a_template_and_lists_the_synced_ones(dual) -> None:
    app, db = dual
    ids = _cloud(db)
    with db.session() as session:
        user = users.create_user(session, None, "api@example.com", PASSWORD, Role.OPERATOR)
        secret = tokens.create_token(session, user, "tests").secret
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}

    listed = client.get("/api/v1/cloud-templates", headers=headers).get_json()["data"]
    spring = next(row for row in listed if row["id"] == ids["spring"])
    assert spring["status"] == "APPROVED" and spring["header_media"] is None
    assert [v["slot"] for v in spring["variables"]] == [
        "header.1",
        "body.1",
        "body.2",
        "button.0",
        "button.1",
    ]
    body = {
        "name": "Spring",
        "body": "",
        "cloud": {"name": "spring_sale", "language": "en_US", "mapping": SPRING_MAPPING},
    }
    created = client.post("/api/v1/templates", json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["cloud"] == {
        "name": "spring_sale",
        "language": "en_US",
        "mapping": SPRING_MAPPING,
    }
    partial = {**SPRING_MAPPING}
    del partial["button.0"]
    refused = client.post(
        "/api/v1/templates",
        json={**body, "name": "Other", "cloud": {**body["cloud"], "mapping": partial}},
        headers=headers,
    )
    assert refused.status_code == 422
    assert refused.get_json()["error"]["message"].startswith(
        "The link ending of the button “Shop now”: choose a contact field"
    )
    plain = client.get(f"/api/v1/templates/{created.get_json()['id']}", headers=headers)
    assert plain.get_json()["cloud"]["mapping"]["button.1"] == "wabulk:opt-out"


def test_a_linked_template_without_words_of_its_own_on_other_senders(dual) -> None:
    app, db = dual
    client = _signed_in(app, db)
    ids = _cloud(db)
    audience = make_contacts(db, phones(2), "Audience", attributes={"city": "Pune"})
    rehearsal = make_sender(db, "Rehearsal")
    with db.session() as session:
        spring = Template(
            name="Spring",
            body="",
            cloud_template_name="spring_sale",
            cloud_language="en_US",
            cloud_parameters=SPRING_MAPPING,
        )
        session.add(spring)
        session.flush()
        spring_id = spring.id

    # A dry-run (or WhatsApp Web) sender sends the WhatsApp template's words, filled in.
    launched = make_campaign(db, [audience], [rehearsal], body="", template_id=spring_id)
    with db.session() as session:
        snap = session.get(Campaign, launched).cloud_template
        assert snap["name"] == "spring_sale" and snap["mapping"] == SPRING_MAPPING

    # Once Meta no longer approves it, such a template has nothing to send: said plainly.
    with db.session() as session:
        session.get(CloudTemplate, ids["spring"]).status = "REJECTED"
    draft = make_campaign(
        db, [audience], [rehearsal], body="", template_id=spring_id, launch=False, name="Again"
    )
    try:
        _launch(db, draft)
    except ValidationError as exc:
        assert "has no message of its own" in str(exc) and "write its message" in str(exc)
    else:
        raise AssertionError("a template with nothing to send was launched")

    # With no Cloud API sender left, the editor has no WhatsApp part, and saving the body
    # keeps the link as it was rather than dropping it unseen.
    with db.session() as session:
        session.delete(session.get(Sender, ids["sender"]))
    page = client.get(f"/templates/{spring_id}").get_data(as_text=True)
    assert 'data-testid="cloud-section"' not in page
    saved = _post(client, f"/templates/{spring_id}", name="Spring", body="Hi {{ name }}")
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with db.session() as session:
        kept = session.get(Template, spring_id)
        assert (kept.body, kept.cloud_template_name) == ("Hi {{ name }}", "spring_sale")
        assert kept.cloud_parameters == SPRING_MAPPING
