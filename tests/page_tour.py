"""Every page of the app, filled: a seeded instance and the list of page URLs to visit.

- `seed` loads the demo data as an admin and adds what the demo lacks: WhatsApp Web
  senders waiting to be linked, whose browser failed, held back by a limit; a connected
  Cloud API sender with an approved template, a template linked to it, campaigns in every
  state, imports waiting for their columns, queued and finished with rejected rows, a
  second user, an API token and an opted-out contact.
- `page_urls` walks the app's URL map: every GET rule is a page unless it is listed in
  NOT_PAGES, and its ids come from the seeded rows, so a new page cannot be missed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select
from werkzeug.routing import Rule

from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.campaigns import followups, lifecycle, recurrence
from wabulk.campaigns.followups import StepInput
from wabulk.campaigns.service import DraftInput, save_draft
from wabulk.campaigns.templates import CloudChoice, create_template
from wabulk.channels.heard import Reply
from wabulk.contacts import importer
from wabulk.contacts import service as contacts
from wabulk.db import Database
from wabulk.demo import load_demo
from wabulk.dispatch import registry
from wabulk.inbound.replies import store_replies
from wabulk.inbox import quick_replies
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Channel,
    CloudTemplate,
    Contact,
    ContactList,
    Conversation,
    Import,
    ImportStatus,
    Role,
    Sender,
    SenderState,
    Template,
    utcnow,
)
from wabulk.outbox import endpoints as webhook_endpoints
from wabulk.segments import service as segments

ADMIN_EMAIL = "owner@shop.example"
PASSWORD = "a long pass phrase"

# GET endpoints that answer with data for scripts, files or other programs, not a page.
NOT_PAGES = {
    "static",
    "pages.analytics_json",
    "pages.analytics_download",
    "pages.wizard_plan",
    "pages.live",
    "pages.live_campaigns",
    "campaigns.progress_json",
    "campaigns.audience_json",
    "campaigns.report_csv",
    "campaigns.report_xlsx",
    "campaign_sheet.download",
    "contacts.export_file",
    "contacts.sample",
    "imports.report",
    "imports.status",
    "inbox.live",
    "inbox.unread",
    "senders.link_json",
    "senders.screenshot",
    "templates.attachment_file",
    "templates.cloud_notes",
    "templates.sample_contacts",
    "webhooks.verify",
    "health.healthz",  # for load balancers and Prometheus: plain text, no sign-in
    "health.readyz",
    "health.metrics_page",
}
# Pieces of a page that its script fetches and puts in place: checked for words, not as a
# whole document (the page they belong to is).
FRAGMENTS = {"campaigns.outcomes", "campaigns.recipients", "workers.table"}
# Pages only their signed-out visitor sees (a signed-in visit redirects).
SIGNED_OUT = {"auth.login", "auth.setup"}

COMPONENTS = [
    {"type": "HEADER", "format": "TEXT", "text": "Spring sale at the shop"},
    {"type": "BODY", "text": "Hi {{1}}, use code {{2}} before Sunday."},
]
SHEET = (
    "Name,Phone,City\n"
    "Asha Rao,+91 98765 10001,Pune\n"
    "Vikram Shah,not a phone,Mumbai\n"
    "Asha again,+91 98765 10001,Pune\n"
)


@dataclass
class Seeded:
    ids: dict[str, list[int]] = field(default_factory=dict)

    def first(self, key: str) -> int:
        return self.ids[key][0]


def _sheet(path: Path) -> Path:
    path.write_text(SHEET, encoding="utf-8")
    return path


def seed(db: Database, instance: Path) -> Seeded:
    """The filled instance; `ids` by URL argument name, the most telling row first."""
    out = Seeded()
    with db.session() as session:
        admin = users.create_user(session, None, ADMIN_EMAIL, PASSWORD, Role.ADMIN)
        users.create_user(session, admin, "helper@shop.example", PASSWORD, Role.OPERATOR)
        tokens.create_token(session, admin, "Accounts sheet")
        # Settings → Webhooks: an n8n address, made first so the replies and the opt-out
        # below fill its delivery log.
        hook, _ = webhook_endpoints.create(
            session,
            admin,
            "tour-secret-key",
            name="n8n replies",
            url="https://n8n.shop.example/webhook/wabulk",
            events_wanted=["message.replied", "contact.opted_out"],
        )
        out.ids["endpoint_id"] = [hook.id]
        load_demo(session, admin, instance)
        web = Sender(
            name="Shop phone",
            channel=Channel.WHATSAPP_WEB,
            state=SenderState.NEEDS_LINK,
            state_reason="WhatsApp Web could not be reached: check the internet connection.",
        )
        cloud = Sender(
            name="Shop number",
            channel=Channel.CLOUD_API,
            state=SenderState.LINKED,
            phone="+15550001111",
            max_per_second=80,
            health={
                "display_name": "Acme Shop",
                "display_phone": "+1 555-000-1111",
                "quality_rating": "GREEN",
                "messaging_tier": "TIER_1K",
                "checked_at": utcnow().isoformat(),
            },
        )
        troubled = [
            Sender(
                name="Back office phone",
                channel=Channel.WHATSAPP_WEB,
                state=SenderState.BROWSER_FAILED,
                state_reason="Google Chrome could not start: is it installed?",
            ),
            Sender(
                name="Counter phone",
                channel=Channel.WHATSAPP_WEB,
                state=SenderState.LIMITED,
                state_reason="WhatsApp showed a limit banner.",
                limited_until=utcnow() + timedelta(hours=6),
            ),
        ]
        session.add_all([web, cloud, *troubled])
        session.flush()
        session.add(
            CloudTemplate(
                sender_id=cloud.id,
                name="spring_sale",
                language="en_US",
                category="MARKETING",
                status="APPROVED",
                parameter_format="positional",
                components=COMPONENTS,
            )
        )
        session.flush()
        linked = create_template(
            session,
            admin,
            "Spring sale",
            "",
            cloud=CloudChoice(
                "spring_sale", "en_US", {"body.1": "{{ name }}", "body.2": "SPRING10"}
            ),
        )
        dry = session.scalar(select(Sender.id).where(Sender.channel == Channel.DRY_RUN))
        demo_list = session.scalar(select(ContactList.id).order_by(ContactList.id))
        assert dry and demo_list

        def campaign(name: str) -> int:
            draft = DraftInput(
                name=name, list_ids=[demo_list], sender_ids=[dry], body="Hello {{ name }}!"
            )
            return save_draft(session, admin, draft).id

        draft = campaign("Spring newsletter")
        paused = campaign("Summer sale")
        # Follow-ups: a draft's to edit, and a launched campaign's funnel.
        again = [StepInput(2880, body="Still interested, {{ name }}?")]
        followups.set_steps(session, admin, draft, again)
        followups.set_steps(session, admin, paused, again)
        out.ids["position"] = [1]
        lifecycle.launch(session, admin, paused)
        lifecycle.pause(session, admin, paused)
        # A recurring series: its model draft and its page.
        monthly = recurrence.RuleInput("monthly", day_of_month=1, name="Dues reminder")
        out.ids["recurrence_id"] = [
            recurrence.create(session, admin, campaign("Dues reminder"), monthly).id
        ]
        cancelled = campaign("Old offer")
        lifecycle.launch(session, admin, cancelled)
        lifecycle.cancel(session, admin, cancelled)
        by_status = {
            status: session.scalar(
                select(Campaign.id).where(Campaign.status == status).order_by(Campaign.id)
            )
            for status in CampaignStatus
        }
        assert by_status[CampaignStatus.DRAFT] == draft
        out.ids["campaign_id"] = [c for c in by_status.values() if c]
        out.ids["draft_id"] = [draft]
        out.ids["completed_id"] = [by_status[CampaignStatus.COMPLETED] or draft]
        out.ids["sender_id"] = [cloud.id, web.id, dry]
        out.ids["web_sender_id"] = [web.id]
        out.ids["cloud_sender_id"] = [cloud.id]
        out.ids["template_id"] = [
            linked.id,
            *session.scalars(select(Template.id).where(Template.id != linked.id)),
        ][:3]
        out.ids["list_id"] = [demo_list]
        # A segment: the demo list's customers whose name is known.
        out.ids["segment_id"] = [
            segments.create(
                session,
                admin,
                "Known demo customers",
                "For the reminders",
                {
                    "match": "all",
                    "conditions": [
                        {"field": "list", "op": "in", "value": [demo_list]},
                        {"field": "name", "op": "not_empty", "value": None},
                    ],
                },
            ).id
        ]
        quitter = session.scalar(select(Contact).order_by(Contact.id))
        assert quitter is not None
        contacts.opt_out(session, admin, [quitter.id], "Asked in the shop")
        out.ids["contact_id"] = [quitter.id, quitter.id + 1]
        out.ids["user_id"] = [admin.id]
        # The Inbox: a customer who asked something on the Cloud API number (window open,
        # a quick reply to pick) and the opted-out one, whose conversation refuses answers.
        asker = session.get(Contact, quitter.id + 1)
        assert asker is not None
        heard = [
            Reply(at=utcnow(), provider_message_id=f"tour-{c.id}", phone=c.phone, text=said)
            for c, said in ((asker, "Do you deliver to Pune?"), (quitter, "Stop"))
        ]
        store_replies(session, cloud.id, heard, (), utcnow())
        quick_replies.create(session, admin, "Delivery", "Hi {{ first_name }}, yes we deliver.")
        # The Cloud API ones (the demo's replies have conversations of their own).
        out.ids["conversation_id"] = list(
            session.scalars(
                select(Conversation.id)
                .where(Conversation.sender_id == cloud.id)
                .order_by(Conversation.id)
            )
        )

    # One import waiting for its columns, one finished with rejected rows, one queued.
    imports = []
    for n in (1, 2, 3):
        sheet = _sheet(instance / f"customers-{n}.csv")
        with db.session() as session:
            data = io.BytesIO(sheet.read_bytes())
            imp = importer.save_upload(session, None, instance, data, sheet.name)
            imports.append(imp.id)
    with db.session() as session:
        imp = session.get(Import, imports[1])
        assert imp is not None
        guessed = importer.preview(imp, instance, "IN").mapping
        importer.configure(session, None, imp, instance, guessed, "IN")
    with db.session() as session:
        importer.claim_next(session, "tour")
    importer.run(db, imports[1], instance, "tour")
    with db.session() as session:
        done = session.get(Import, imports[1])
        assert done is not None and done.status == ImportStatus.COMPLETED, done and done.status
        waiting = session.get(Import, imports[2])
        assert waiting is not None
        guessed = importer.preview(waiting, instance, "IN").mapping
        importer.configure(session, None, waiting, instance, guessed, "IN")
    out.ids["import_id"] = imports
    _workers(db, out)
    return out


def _workers(db: Database, out: Seeded) -> None:
    """Settings → Workers: one running, holding a sender, a campaign and an import; one
    lost a few minutes ago; one stopped."""
    now = utcnow()
    for identity, age in (("shop:1:a", 0), ("back:2:b", 600), ("old:3:c", 3600)):
        registry.register(
            db,
            identity=identity,
            name=identity.split(":")[0],
            labels=("shop-pc",),
            lease_seconds=120,
            now=now - timedelta(seconds=age),
        )
    registry.beat(
        db,
        "shop:1:a",
        holds={
            "senders": out.ids["sender_id"][:1],
            "campaigns": out.ids["campaign_id"][:1],
            "imports": out.ids["import_id"][:1],
        },
        per_minute=42,
        stats={},
        now=now,
    )
    registry.stopped(db, "old:3:c", now - timedelta(seconds=3000))


# Pages whose ids must be of one kind (a draft to edit, a WhatsApp Web sender to link…).
_KIND = {
    "campaigns.edit": {"campaign_id": "draft_id"},
    "campaigns.summary": {"campaign_id": "completed_id"},
    "followups.new": {"campaign_id": "draft_id"},
    "followups.edit": {"campaign_id": "draft_id"},
    "senders.show": {"sender_id": "cloud_sender_id"},
    "senders.link": {"sender_id": "web_sender_id"},
}
# Query strings that show another face of a page.
EXTRA = [
    ("senders.new", {"channel": "cloud_api"}),
    ("senders.new", {"channel": "dry_run"}),
    ("campaigns.new", {"template_id": "template_id"}),
    ("contacts.index", {"q": "Demo"}),
    ("activity.index", {"level": "warning"}),
    ("inbox.index", {"f": "done"}),
]


def _values(endpoint: str, rule: Rule, seeded: Seeded) -> list[dict[str, object]]:
    """One set of URL values per seeded row of the kind the page shows."""
    keys = {arg: _KIND.get(endpoint, {}).get(arg, arg) for arg in rule.arguments}
    missing = [key for key in keys.values() if key not in seeded.ids]
    assert not missing, f"{endpoint}: no seeded row for {missing}: add one in page_tour.seed"
    longest = max((len(seeded.ids[key]) for key in keys.values()), default=1)
    return [
        {arg: seeded.ids[key][min(i, len(seeded.ids[key]) - 1)] for arg, key in keys.items()}
        for i in range(longest)
    ]


def page_urls(app: Flask, seeded: Seeded, *, signed_in: bool = True) -> list[tuple[str, str]]:
    """(endpoint, URL) of every page to visit, signed in or out."""
    out: list[tuple[str, str]] = []
    adapter = app.url_map.bind("localhost")
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        endpoint = rule.endpoint
        if "GET" not in (rule.methods or ()) or endpoint in NOT_PAGES:
            continue
        if endpoint.startswith("api."):  # the REST API answers JSON to programs
            continue
        if (endpoint in SIGNED_OUT) == signed_in:
            continue
        for values in _values(endpoint, rule, seeded):
            out.append((endpoint, adapter.build(endpoint, values)))
    if signed_in:
        for endpoint, query in EXTRA:
            filled = {k: seeded.first(v) if v in seeded.ids else v for k, v in query.items()}
            out.append((endpoint, adapter.build(endpoint, filled)))
        out.append(("errors.not_found", "/campaigns/999999"))
    return out
