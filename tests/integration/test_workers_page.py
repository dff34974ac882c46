"""Settings → Workers (each worker's state, what it holds, the empty page, who may read it)
and a sender's worker label on its form, the Senders page and the API. On SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from tests.conftest import PASSWORD, get_csrf, login
from tests.page_words import internal_terms, visible_text
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.dispatch import registry
from wabulk.models import Import, ImportKind, Role, Sender, User, utcnow


@dataclass
class Site:
    app: Flask
    db: Database

    def client(self, role: Role | None) -> FlaskClient:
        """A browser signed in with `role` (None: signed out)."""
        client = self.app.test_client()
        if role is not None:
            email = f"{role.value}@example.com"
            with self.db.session() as session:
                if session.scalar(select(User).where(User.email == email)) is None:
                    users.create_user(session, None, email, PASSWORD, role)
            assert login(client, email).status_code == 302
        return client


@pytest.fixture
def site(dual: tuple[Flask, Database]) -> Site:
    return Site(*dual)


def _page(client: FlaskClient, url: str = "/settings/workers") -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _row(html: str, name: str) -> str:
    found = re.search(
        r'<tr data-worker="\d+"[^>]*>\s*<td class="fw-semibold[^"]*">' + name + r".*?</tr>",
        html,
        re.S,
    )
    assert found, f"no row for {name}"
    return found.group(0)


def test_each_worker_shows_its_state_what_it_holds_and_its_pace(site: Site) -> None:
    db = site.db
    shop = make_sender(db, "Shop phone")
    list_id = make_contacts(db, phones(3), "Customers")
    campaign = make_campaign(db, [list_id], [shop], name="Diwali offer")
    with db.session() as session:
        sheet = Import(
            kind=ImportKind.CONTACTS,
            original_name="customers.xlsx",
            stored_path="imports/x.xlsx",
            sha256="0" * 64,
        )
        session.add(sheet)
        session.flush()
        import_id = sheet.id
    now = utcnow()
    for identity, name, age in (
        ("till:1:a", "till", 0),
        ("back:2:b", "back-office", 600),
        ("old:3:c", "old-laptop", 7200),
    ):
        registry.register(
            db,
            identity=identity,
            name=name,
            labels=("shop-pc",) if name == "till" else (),
            only_senders=("Shop phone",) if name == "till" else None,
            lease_seconds=120,
            now=now - timedelta(seconds=age),
        )
    registry.register(
        db, identity="web:4:d", name="web-app", embedded=True, lease_seconds=120, now=now
    )
    registry.beat(
        db,
        "till:1:a",
        holds={"senders": [shop], "campaigns": [campaign], "imports": [import_id]},
        per_minute=42,
        stats={},
        now=now - timedelta(seconds=12),
    )
    registry.stopped(db, "old:3:c", now - timedelta(seconds=7000))

    html = _page(site.client(Role.OPERATOR))
    assert "<html" in html and "/static/js/workers.js" in html
    # Running ones first, then the lost one, then the stopped one.
    order = [html.index(f">{name}") for name in ("till", "web-app", "back-office", "old-laptop")]
    assert order[:2] == sorted(order[:2]) and max(order[:2]) < order[2] < order[3]

    till = _row(html, "till")
    assert 'data-state="running"' in till and ">Running<" in till
    assert registry.this_host() in till and "version" in till
    assert "shop-pc" in till and "Only Shop phone" in till
    assert f'href="/campaigns/{campaign}">Diwali offer</a>' in till
    assert f'href="/contacts/imports/{import_id}">customers.xlsx</a>' in till
    assert f'href="/senders#sender-{shop}">Shop phone</a>' in till
    assert ">42<" in till
    assert re.search(r'<span title="[^"]+">1\d seconds ago</span>', till)

    assert "Inside the web app" in _row(html, "web-app")

    lost = _row(html, "back-office")
    assert 'data-state="lost"' in lost and "text-bg-danger" in lost and ">Lost<" in lost
    assert (
        "No heartbeat for 10 minutes; its messages return to the queue when their leases "
        "expire." in lost
    )
    assert "10 minutes ago" in lost

    old = _row(html, "old-laptop")
    assert 'data-state="stopped"' in old and ">Stopped<" in old and "Nothing" in old

    # The table alone, as the page's script fetches it every 10 seconds.
    fragment = _page(site.client(Role.ADMIN), "/settings/workers/table")
    assert "<html" not in fragment and _row(fragment, "back-office") == lost
    assert internal_terms(visible_text(html)) == []


def test_no_worker_yet_says_sending_starts_when_wabulk_runs(site: Site) -> None:
    html = _page(site.client(Role.ADMIN))
    assert 'data-testid="workers"' not in html
    empty = html[html.index('data-testid="no-workers"') :]
    assert "No computer has sent for you yet" in empty
    assert "Sending starts as soon as wabulk is running on a computer" in empty
    assert internal_terms(visible_text(html)) == []


def test_admins_and_operators_see_workers_viewers_do_not(site: Site) -> None:
    for role in (Role.ADMIN, Role.OPERATOR):
        client = site.client(role)
        assert 'href="/settings/workers"' in _page(client, "/settings/")
        assert client.get("/settings/workers").status_code == 200
    viewer = site.client(Role.VIEWER)
    assert 'href="/settings/workers"' not in _page(viewer, "/settings/")
    for url in ("/settings/workers", "/settings/workers/table"):
        assert viewer.get(url).status_code == 403
        signed_out = site.client(None).get(url)
        assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]


def _form(**fields: str) -> dict[str, str]:
    return {"channel": "dry_run", "name": "Rehearsal", "timezone": "UTC", **fields}


def _sender(db: Database, name: str) -> Sender:
    with db.session() as session:
        found = session.scalar(select(Sender).where(Sender.name == name))
        assert found is not None
        session.expunge(found)
        return found


def test_a_sender_s_worker_label_is_saved_shown_and_checked(site: Site) -> None:
    admin = site.client(Role.ADMIN)
    form = _page(admin, "/senders/new")
    assert 'name="worker_label"' in form and "Worker label" in form
    assert "whose browser lives on one machine" in form

    csrf = get_csrf(admin, "/senders/new")
    bad = admin.post("/senders/new", data=_form(worker_label="shop pc", csrf_token=csrf))
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert 'data-error-for="worker_label"' in page and "A worker label is one word" in page
    assert 'value="shop pc"' in page  # given back to correct
    with site.db.session() as session:
        assert session.scalar(select(Sender).where(Sender.name == "Rehearsal")) is None

    saved = admin.post("/senders/new", data=_form(worker_label=" shop-pc ", csrf_token=csrf))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    sender = _sender(site.db, "Rehearsal")
    assert sender.worker_label == "shop-pc"
    listed = _page(site.client(Role.VIEWER), "/senders")
    assert "Only computers labelled" in listed and ">shop-pc<" in listed
    edit = _page(admin, f"/senders/{sender.id}/edit")
    assert re.search(r'name="worker_label"[^>]*value="shop-pc"', edit)

    cleared = admin.post(f"/senders/{sender.id}/edit", data=_form(worker_label="", csrf_token=csrf))
    assert cleared.status_code == 302
    assert _sender(site.db, "Rehearsal").worker_label is None
    assert "Only computers labelled" not in _page(admin, "/senders")


def test_the_api_reads_and_writes_a_cloud_sender_s_worker_label(site: Site) -> None:
    with site.db.session() as session:
        admin = users.create_user(session, None, "api-admin@example.com", PASSWORD, Role.ADMIN)
        secret = tokens.create_token(session, admin, "test").secret
    headers = {"Authorization": f"Bearer {secret}"}
    client = site.app.test_client()
    body = {
        "name": "Cloud till",
        "phone_number_id": "106540352242922",
        "waba_id": "102290129340398",
        "access_token": "EAAG-test-token-1234",
        "app_secret": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "verify_token": "a-long-random-string",
    }
    refused = client.post(
        "/api/v1/senders", json={**body, "worker_label": "two words"}, headers=headers
    )
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert "worker_label" in refused.get_data(as_text=True)
    created = client.post(
        "/api/v1/senders", json={**body, "worker_label": "shop-pc"}, headers=headers
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    sender_id = created.get_json()["id"]
    assert created.get_json()["worker_label"] == "shop-pc"
    assert (
        client.get(f"/api/v1/senders/{sender_id}", headers=headers).get_json()["worker_label"]
        == "shop-pc"
    )
    changed = client.put(f"/api/v1/senders/{sender_id}", json=body, headers=headers)
    assert changed.status_code == 200 and changed.get_json()["worker_label"] is None
