"""Cloud API senders end to end, on SQLite and PostgreSQL, against the local fake Graph API:
added on the page and over the API, checked, templates synced, media uploaded once,
a limited sender resumed, and secrets never shown back anywhere."""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from tests.fakes.cloud_api import FakeCloudApi
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.campaigns.media import save_media
from wabulk.channels.cloud_api import account
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.dispatch.worker import Dispatcher
from wabulk.logs import LOG_FILE
from wabulk.models import (
    Channel,
    CloudMedia,
    CloudTemplate,
    Event,
    Media,
    Role,
    Sender,
    SenderState,
    User,
    utcnow,
)
from wabulk.senders import cloud, cloud_input
from wabulk.senders.service import Keys, SenderInput, create_sender

from ..conftest import PASSWORD, csrf_from, get_csrf, login

PNID, WABA = "106540352242922", "102290129340398"
TOKEN = "EAAGtokenSECRET-abc123XYZ7"
APP_SECRET = "appsecretSECRET0f1e2d3c4b5a"
VERIFY = "verifySECRET-tok9"
SECRETS = (TOKEN, APP_SECRET, VERIFY)


@pytest.fixture
def settings(tmp_path: Path, fake_cloud_server: FakeCloudApi) -> Settings:
    """The app's settings, with Meta's address pointing at the fake."""
    return Settings(
        instance_path=tmp_path / "instance",
        secret_key="test-secret-key-not-for-production",
        worker=False,
        log_level="DEBUG",
        cloud_api_url=fake_cloud_server.base_url,
    ).resolved()


@dataclass
class Site:
    app: Flask
    db: Database
    client: FlaskClient
    fake: FakeCloudApi
    settings: Settings

    def user(self, role: Role, email: str | None = None) -> str:
        email = email or f"{role.value}@example.com"
        with self.db.session() as session:
            users.create_user(session, None, email, PASSWORD, role)
            session.commit()
        return email

    def sign_in(self, role: Role) -> None:
        self.client = self.app.test_client()  # a new browser: signed out
        email = f"{role.value}@example.com"
        with self.db.session() as session:
            known = session.scalar(select(User).where(User.email == email))
        if known is None:
            self.user(role, email)
        assert login(self.client, email).status_code == 302

    def post(self, url: str, **data: str):  # type: ignore[no-untyped-def]
        return self.client.post(url, data={**data, "csrf_token": get_csrf(self.client, "/senders")})

    def sender(self, sender_id: int) -> Sender:
        with self.db.session() as session:
            found = session.get(Sender, sender_id)
            assert found is not None
            session.expunge(found)
            return found


@pytest.fixture
def site(dual: tuple[Flask, Database], fake_cloud: FakeCloudApi, settings: Settings) -> Site:
    app, db = dual
    return Site(app, db, app.test_client(), fake_cloud, settings)


def _form(**fields: str) -> dict[str, str]:
    form = {
        "channel": "cloud_api",
        "name": "Shop Cloud",
        "timezone": "Asia/Kolkata",
        "phone_number_id": PNID,
        "waba_id": WABA,
        "access_token": TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY,
        "api_version": "v26.0",
        "max_per_second": "80",
        "marketing_ttl_seconds": "",
    }
    form.update(fields)
    return form


def _settings() -> dict[str, str]:
    form = _form()
    return {key: form[key] for key in cloud_input.FIELDS if key in form}


def _add(site: Site, **fields: str) -> int:
    response = site.post("/senders/new", **_form(**fields))
    assert response.status_code == 302, response.get_data(as_text=True)
    found = re.fullmatch(r"/senders/(\d+)", response.headers["Location"])
    assert found, response.headers["Location"]
    return int(found.group(1))


def _no_secret_in(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def _api(site: Site, role: Role = Role.ADMIN) -> dict[str, str]:
    with site.db.session() as session:
        user = session.scalar(select(User).where(User.email == f"{role.value}@example.com"))
        if user is None:
            user = users.create_user(session, None, f"{role.value}@example.com", PASSWORD, role)
        secret = tokens.create_token(session, user, f"test {role.value}").secret
        session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_an_admin_adds_a_cloud_api_sender_on_the_page(site: Site) -> None:
    site.sign_in(Role.ADMIN)
    form = site.client.get("/senders/new?channel=cloud_api").get_data(as_text=True)
    assert (
        'id="channel-cloud_api" value="cloud_api" aria-describedby="channel-cloud_api-help" checked'
        in form
    )
    offered = re.search(r'id="verify_token" name="verify_token" type="text" value="([^"]+)"', form)
    assert offered and len(offered.group(1)) >= 30, "a random verify token is offered"
    assert 'value="v26.0"' in form and 'data-copy="#verify_token"' in form

    no_csrf = site.client.post("/senders/new", data=_form())
    assert no_csrf.status_code == 400
    sender_id = _add(site)
    sender = site.sender(sender_id)
    assert (sender.channel, sender.state) == (Channel.CLOUD_API, SenderState.NEEDS_LINK)
    assert sender.state_reason == "Check the connection to start sending."
    assert (sender.max_per_second, sender.min_delay_seconds, sender.max_delay_seconds) == (80, 0, 0)
    assert sender.daily_cap is None
    assert sender.settings["phone_number_id"] == PNID and sender.settings["waba_id"] == WABA
    assert sender.settings["hints"] == {
        "access_token": "…" + TOKEN[-4:],
        "app_secret": "…" + APP_SECRET[-4:],
        "verify_token": "…" + VERIFY[-4:],
    }
    _no_secret_in(json.dumps(sender.settings))

    page = site.client.get(f"/senders/{sender_id}").get_data(as_text=True)
    assert f'value="http://localhost/webhooks/whatsapp/{sender_id}"' in page
    assert "…" + VERIFY[-4:] in page and "Check connection" in page
    assert "No templates synced yet" in page and "Not checked yet" in page
    _no_secret_in(page)
    listing = site.client.get("/senders").get_data(as_text=True)
    assert f'href="/senders/{sender_id}"' in listing and "Cloud API" in listing


def test_meta_s_handshake_succeeds_with_the_verify_token_offered_on_the_form(site: Site) -> None:
    site.sign_in(Role.ADMIN)
    form = site.client.get("/senders/new?channel=cloud_api").get_data(as_text=True)
    offered = re.search(r'id="verify_token" name="verify_token" type="text" value="([^"]+)"', form)
    assert offered
    sender_id = _add(site, verify_token=offered.group(1))
    page = site.client.get(f"/senders/{sender_id}").get_data(as_text=True)
    url = re.search(r'id="webhook-url" type="text" value="([^"]+)"', page).group(1)
    meta = site.app.test_client()  # Meta is not signed in
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    answer = meta.get(url, query_string={**query, "hub.verify_token": offered.group(1)})
    assert (answer.status_code, answer.get_data(as_text=True)) == (200, "1158201444")
    wrong = meta.get(url, query_string={**query, "hub.verify_token": VERIFY})
    assert wrong.status_code == 403


def test_the_webhook_url_uses_the_public_address_when_set(site: Site) -> None:
    site.app.extensions["wabulk.settings"] = replace(
        site.settings, public_url="https://shop.example.com"
    )
    site.sign_in(Role.ADMIN)
    sender_id = _add(site)
    page = site.client.get(f"/senders/{sender_id}").get_data(as_text=True)
    assert f'value="https://shop.example.com/webhooks/whatsapp/{sender_id}"' in page
    assert 'data-testid="https-note"' not in page


def test_operators_and_viewers_cannot_add_check_or_resume(site: Site) -> None:
    site.sign_in(Role.ADMIN)
    sender_id = _add(site)
    site.sign_in(Role.OPERATOR)
    assert site.client.get("/senders/new?channel=cloud_api").status_code == 403
    token = csrf_from(site.client.get(f"/senders/{sender_id}").get_data(as_text=True))
    for url in ("/senders/new", f"/senders/{sender_id}/check", f"/senders/{sender_id}/resume"):
        response = site.client.post(url, data={**_form(name="Other"), "csrf_token": token})
        assert response.status_code == 403, url
    page = site.client.get(f"/senders/{sender_id}").get_data(as_text=True)
    assert "Sync templates" in page and 'data-testid="check"' not in page
    with site.db.session() as session:
        assert session.scalars(select(Sender)).all()[0].state == SenderState.NEEDS_LINK
        assert len(session.scalars(select(Sender)).all()) == 1


def test_a_mistake_is_named_and_typed_secrets_are_not_sent_back(site: Site) -> None:
    site.sign_in(Role.ADMIN)
    response = site.post("/senders/new", **_form(phone_number_id="+1 555 0100"))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'data-error-for="phone_number_id"' in page and "digits only" in page
    _no_secret_in(page)
    missing = site.post("/senders/new", **_form(access_token=""))
    assert "Paste the access token." in missing.get_data(as_text=True)

    first = _add(site)
    duplicate = site.post("/senders/new", **_form(name="Second"))
    assert duplicate.status_code == 400
    assert "Shop Cloud&#39; already sends from the phone-number id" in duplicate.get_data(
        as_text=True
    )
    with site.db.session() as session:
        assert [s.id for s in session.scalars(select(Sender))] == [first]


def test_editing_keeps_a_blank_secret_and_a_new_token_needs_a_new_check(site: Site) -> None:
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET)
    site.sign_in(Role.ADMIN)
    sender_id = _add(site)
    site.post(f"/senders/{sender_id}/check")
    assert site.sender(sender_id).state == SenderState.LINKED
    form = site.client.get(f"/senders/{sender_id}/edit").get_data(as_text=True)
    assert "Saved, ends in …" + TOKEN[-4:] in form
    _no_secret_in(form)

    kept = site.post(
        f"/senders/{sender_id}/edit",
        **_form(access_token="", app_secret="", verify_token="", max_per_second="40"),
    )
    assert kept.status_code == 302
    sender = site.sender(sender_id)
    assert cloud.channel_settings(sender, site.settings.secret_key)["access_token"] == TOKEN
    assert (sender.state, sender.max_per_second) == (SenderState.LINKED, 40)

    site.post(f"/senders/{sender_id}/edit", **_form(access_token="EAAGanotherTOKEN-xyz9"))
    sender = site.sender(sender_id)
    assert sender.state == SenderState.NEEDS_LINK
    assert sender.settings["hints"]["access_token"] == "…xyz9"
    assert sender.settings["hints"]["app_secret"] == "…" + APP_SECRET[-4:]


def test_check_connection_reads_the_number_and_links_the_sender(site: Site) -> None:
    site.fake.add_number(
        PNID,
        WABA,
        TOKEN,
        APP_SECRET,
        display_phone="+1 555-078-3881",
        display_name="Asha's Shop",
        quality="YELLOW",
        tier="TIER_2K",
        throughput="HIGH",
    )
    site.sign_in(Role.ADMIN)
    sender_id = _add(site)
    response = site.post(f"/senders/{sender_id}/check")
    assert response.headers["Location"] == f"/senders/{sender_id}"
    sender = site.sender(sender_id)
    assert (sender.state, sender.state_reason, sender.phone) == (
        SenderState.LINKED,
        None,
        "+1 555-078-3881",
    )
    assert sender.health["messaging_tier"] == "TIER_2K" and sender.health["checked_at"]
    assert cloud.messaging_tier_limit(sender.health) == 2000
    with site.db.session() as session:  # what the webhooks keep beside the check's values
        sender = session.get(Sender, sender_id)
        sender.health = {
            **sender.health,
            "updated_from_provider_at": "2026-12-01T10:00:00+00:00",
            "webhooks_refused": 3,
            "webhook_refused_at": "2026-12-02T11:30:00+00:00",
        }
        session.commit()
    page = site.client.get(f"/senders/{sender_id}").get_data(as_text=True)
    assert "Connected: Meta answered for this number." in page
    assert 'data-testid="provider-news">2026-12-01 10:00 UTC' in page
    assert "wabulk refused 3 webhooks for this sender" in page and "2026-12-02 11:30 UTC" in page
    for text in (
        "Asha&#39;s Shop",
        "+1 555-078-3881",
        ">Medium<",
        ">High<",
        "Up to 2,000 customers a day",
    ):
        assert text in page, text
    with site.db.session() as session:
        event = session.scalars(select(Event).where(Event.kind == "sender.checked")).one()
        assert "admin@example.com checked the connection of 'Shop Cloud'" in event.text


@pytest.mark.parametrize(
    ("setup", "sentence"),
    [
        ("revoked", "The access token is not valid or has expired"),
        ("wrong_id", "Meta knows no phone number with id 999000111"),
        ("wrong_account", "Meta knows no WhatsApp Business Account with id 555000"),
    ],
)
def test_check_connection_says_what_is_wrong(site: Site, setup: str, sentence: str) -> None:
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET)
    site.sign_in(Role.ADMIN)
    fields = {
        "revoked": {},
        "wrong_id": {"phone_number_id": "999000111"},
        "wrong_account": {"waba_id": "555000"},
    }[setup]
    sender_id = _add(site, **fields)
    if setup == "revoked":
        site.fake.revoke_token(TOKEN)
    response = site.post(f"/senders/{sender_id}/check")
    page = site.client.get(response.headers["Location"]).get_data(as_text=True)
    sender = site.sender(sender_id)
    assert sender.state == SenderState.NEEDS_LINK
    assert sender.state_reason and sentence in sender.state_reason
    assert sentence in sender.health["problem"] and "checked_at" not in sender.health
    assert "The connection check failed: " + sentence in page
    _no_secret_in(page)
    with site.db.session() as session:
        event = session.scalars(select(Event).where(Event.kind == "sender.check_failed")).one()
        assert sentence in event.text


def test_a_linked_sender_whose_token_is_revoked_needs_linking_again(site: Site) -> None:
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET)
    site.sign_in(Role.ADMIN)
    sender_id = _add(site)
    site.post(f"/senders/{sender_id}/check")
    assert site.sender(sender_id).state == SenderState.LINKED
    site.fake.revoke_token(TOKEN)
    site.post(f"/senders/{sender_id}/check")
    sender = site.sender(sender_id)
    assert sender.state == SenderState.NEEDS_LINK
    assert sender.health["display_name"] == "Acme Shop", "what was read before is kept"


def _templates(site: Site, sender_id: int) -> dict[tuple[str, str], str]:
    with site.db.session() as session:
        rows = session.scalars(select(CloudTemplate).where(CloudTemplate.sender_id == sender_id))
        return {(t.name, t.language): t.status for t in rows}


def test_sync_templates_reads_every_page_and_marks_removed_ones(site: Site) -> None:
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET)
    body = [{"type": "BODY", "text": "Hi {{1}}, {{2}} off today"}]
    for i in range(130):  # more than one page of Meta's (the account reads 100 a page)
        site.fake.add_template(WABA, f"offer_{i:03d}", "en_US", components=body)
    site.fake.add_template(WABA, "offer_000", "hi", status="PENDING", quality="UNKNOWN")
    site.sign_in(Role.OPERATOR)
    with site.db.session() as session:
        admin = users.create_user(session, None, "a@example.com", PASSWORD, Role.ADMIN)
        sender = create_sender(
            session,
            admin,
            SenderInput(name="Shop Cloud", channel="cloud_api", settings=_settings()),
            Keys(site.settings.secret_key),
        )
        session.commit()
        sender_id = sender.id

    site.post(f"/senders/{sender_id}/sync-templates")
    found = _templates(site, sender_id)
    assert len(found) == 131 and found[("offer_000", "hi")] == "PENDING"
    assert found[("offer_129", "en_US")] == "APPROVED"
    page = site.client.get(f"/senders/{sender_id}").get_data(as_text=True)
    assert "Templates synced: 131 new, 0 updated, 0 removed." in page
    assert page.count("<tr") >= 132 and "offer_129" in page
    site.post(f"/senders/{sender_id}/sync-templates")
    page = site.client.get(f"/senders/{sender_id}").get_data(as_text=True)
    assert "Templates synced: 0 new, 0 updated, 0 removed." in page

    # The account loses all but ten templates and one changes its status; the fake gives
    # the ten it holds again new ids, so they count as updated too.
    site.fake.reset()
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET)
    for i in range(10):
        site.fake.add_template(WABA, f"offer_{i:03d}", "en_US", components=body)
    site.fake.add_template(WABA, "offer_000", "hi", status="APPROVED", quality="GREEN")
    site.post(f"/senders/{sender_id}/sync-templates")
    found = _templates(site, sender_id)
    assert len(found) == 131, "rows of removed templates stay, marked"
    assert sum(status == cloud.REMOVED for status in found.values()) == 120
    assert found[("offer_000", "hi")] == "APPROVED"
    page = site.client.get(f"/senders/{sender_id}").get_data(as_text=True)
    assert "Templates synced: 0 new, 11 updated, 120 removed." in page
    assert "No longer in the account" in page


def test_a_failed_sync_says_why_and_keeps_the_templates(site: Site) -> None:
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET)
    site.fake.add_template(WABA, "welcome", "en")
    site.sign_in(Role.ADMIN)
    sender_id = _add(site)
    site.post(f"/senders/{sender_id}/sync-templates")
    site.fake.revoke_token(TOKEN)
    response = site.post(f"/senders/{sender_id}/sync-templates")
    page = site.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The templates could not be read: The access token is not valid" in page
    assert _templates(site, sender_id) == {("welcome", "en"): "APPROVED"}


def test_the_hourly_sync_runs_for_linked_senders_and_survives_failures(site: Site) -> None:
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET)
    site.fake.add_number("200", "300", "EAAGsecondTOKEN-0001", APP_SECRET)
    site.fake.add_template(WABA, "welcome", "en")
    site.fake.add_template("300", "hello", "pt_BR")
    site.sign_in(Role.ADMIN)
    first = _add(site)
    second = _add(
        site,
        name="Second",
        phone_number_id="200",
        waba_id="300",
        access_token="EAAGsecondTOKEN-0001",
    )
    unlinked = _add(site, name="Third", phone_number_id="201", waba_id="301")
    for sender_id in (first, second):
        site.post(f"/senders/{sender_id}/check")
    site.fake.revoke_token("EAAGsecondTOKEN-0001")

    dispatcher = Dispatcher(site.db, site.settings)
    assert dispatcher.template_step() is False
    assert _templates(site, first) == {("welcome", "en"): "APPROVED"}
    assert _templates(site, second) == {} and _templates(site, unlinked) == {}
    with site.db.session() as session:
        failed = session.scalars(select(Event).where(Event.kind == "sender.sync_failed")).one()
        assert "The hourly sync could not sync the templates of 'Second'" in failed.text
    # Within the hour nothing is tried again; an hour later both are.
    assert cloud.sync_due(site.db, site.settings) == 0
    later = utcnow() + timedelta(hours=1, minutes=1)
    site.fake.add_template(WABA, "second", "en")
    assert cloud.sync_due(site.db, site.settings, later) == 2
    assert set(_templates(site, first)) == {("welcome", "en"), ("second", "en")}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (37, 211, 102)).save(out, "PNG")
    return out.getvalue()


def _media(site: Site, name: str = "banner.png") -> Media:
    data = _png()
    with site.db.session() as session:
        media = save_media(session, io.BytesIO(data), name, site.settings.instance_path, 10**6)
        session.commit()
        session.expunge(media)
        return media


def test_media_is_uploaded_once_per_sender_and_again_when_old(site: Site) -> None:
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET)
    site.fake.add_number("200", "300", "EAAGsecondTOKEN-0001", APP_SECRET)
    site.sign_in(Role.ADMIN)
    first, second = (
        _add(site),
        _add(
            site,
            name="Second",
            phone_number_id="200",
            waba_id="300",
            access_token="EAAGsecondTOKEN-0001",
        ),
    )
    media = _media(site)
    options = site.settings.channel_options()
    path = site.settings.instance_path

    def ref(sender_id: int) -> str:
        with site.db.session() as session:
            sender = session.get(Sender, sender_id)
            found = session.get(Media, media.id)
            value = cloud.media_ref(session, sender, found, site.settings.secret_key, options, path)
            session.commit()
            return value

    one = ref(first)
    assert ref(first) == one and site.fake.counters()["media"] == 1
    assert site.fake.media[one]["pnid"] == PNID and site.fake.media[one]["mime"] == "image/png"
    other = ref(second)
    assert other != one and site.fake.counters()["media"] == 2
    with site.db.session() as session:
        row = session.scalars(select(CloudMedia).where(CloudMedia.sender_id == first)).one()
        row.uploaded_at = utcnow() - timedelta(days=29, minutes=1)
        session.commit()
    renewed = ref(first)
    assert renewed not in (one, other) and site.fake.counters()["media"] == 3
    with site.db.session() as session:
        rows = session.scalars(select(CloudMedia).where(CloudMedia.sender_id == first)).all()
        assert [
            (r.provider_media_id, r.expires_at > utcnow() + timedelta(days=29)) for r in rows
        ] == [(renewed, True)]


def test_two_uploads_of_one_file_at_once_keep_the_first_id(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another thread stores its upload of the same file while ours is at Meta: ours gives
    way on the unique (sender, media) and the stored id is used, on both databases."""
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET)
    site.sign_in(Role.ADMIN)
    sender_id = _add(site)
    media = _media(site)
    upload = account.upload_media

    def upload_while_another_finishes(*args: object) -> str:
        ours = upload(*args)  # type: ignore[arg-type]
        with site.db.session() as other:
            now = utcnow()
            other.add(
                CloudMedia(
                    sender_id=sender_id,
                    media_id=media.id,
                    provider_media_id="first-one",
                    uploaded_at=now,
                    expires_at=now + timedelta(days=30),
                )
            )
            other.commit()
        return ours

    monkeypatch.setattr(account, "upload_media", upload_while_another_finishes)
    with site.db.session() as session:
        sender = session.get(Sender, sender_id)
        found = session.get(Media, media.id)
        ref = cloud.media_ref(
            session,
            sender,
            found,
            site.settings.secret_key,
            site.settings.channel_options(),
            site.settings.instance_path,
        )
        session.commit()
    assert ref == "first-one"
    with site.db.session() as session:
        rows = session.scalars(select(CloudMedia)).all()
        assert [r.provider_media_id for r in rows] == ["first-one"]


def test_an_admin_resumes_a_limited_sender(site: Site) -> None:
    site.sign_in(Role.ADMIN)
    sender_id = _add(site)
    with site.db.session() as session:
        sender = session.get(Sender, sender_id)
        sender.state = SenderState.LIMITED
        sender.state_reason = "Meta rated the number's quality low."
        sender.limited_until = utcnow() + timedelta(hours=24)
        session.commit()
    page = site.client.get(f"/senders/{sender_id}").get_data(as_text=True)
    assert "Meta rated the number&#39;s quality low." in page and 'data-testid="limited"' in page
    assert f'action="/senders/{sender_id}/resume"' in page
    site.sign_in(Role.OPERATOR)
    assert site.post(f"/senders/{sender_id}/resume").status_code == 403
    site.sign_in(Role.ADMIN)
    response = site.post(f"/senders/{sender_id}/resume")
    assert response.headers["Location"] == f"/senders/{sender_id}"
    sender = site.sender(sender_id)
    assert (sender.state, sender.state_reason, sender.limited_until) == (
        SenderState.LINKED,
        None,
        None,
    )
    again = site.post(f"/senders/{sender_id}/resume")
    page = site.client.get(again.headers["Location"]).get_data(as_text=True)
    assert "is not limited: there is nothing to resume." in page
    with site.db.session() as session:
        event = session.scalars(select(Event).where(Event.kind == "sender.resumed")).one()
        assert "(it was limited: Meta rated the number's quality low.)" in event.text


def test_the_api_adds_checks_syncs_and_never_answers_a_secret(site: Site) -> None:
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET, tier="TIER_UNLIMITED")
    for i in range(3):
        site.fake.add_template(WABA, f"t{i}", "en", parameter_format="NAMED")
    admin, operator = _api(site), _api(site, Role.OPERATOR)
    body = {
        "name": "API Cloud",
        "phone_number_id": PNID,
        "waba_id": WABA,
        "access_token": TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY,
        "use_marketing_messages": True,
        "marketing_ttl_seconds": 86400,
    }
    assert site.client.post("/api/v1/senders", json=body, headers=operator).status_code == 403
    created = site.client.post("/api/v1/senders", json=body, headers=admin)
    assert created.status_code == 201, created.get_data(as_text=True)
    answers = [created.get_data(as_text=True)]
    data = created.get_json()
    sender_id = data["id"]
    assert (data["state"], data["max_per_second"], data["daily_cap"]) == ("needs_link", 80, None)
    assert data["cloud_api"]["hints"]["access_token"] == "…" + TOKEN[-4:]
    assert data["cloud_api"]["api_version"] == "v26.0"
    assert data["cloud_api"]["marketing_ttl_seconds"] == 86400
    assert data["cloud_api"]["messaging_limit"] == 250, "unknown tier: the safe floor"

    again = site.client.post("/api/v1/senders", json={**body, "name": "Twice"}, headers=admin)
    assert again.status_code == 422 and "already sends from" in again.get_json()["error"]["message"]
    bad = site.client.post(
        "/api/v1/senders", json={**body, "phone_number_id": "12ab"}, headers=admin
    )
    assert bad.status_code == 422
    assert bad.get_json()["error"]["details"][0]["field"] == "phone_number_id"

    checked = site.client.post(f"/api/v1/senders/{sender_id}/check-connection", headers=admin)
    answers.append(checked.get_data(as_text=True))
    assert checked.get_json()["ok"] is True
    assert checked.get_json()["sender"]["state"] == "linked"
    assert checked.get_json()["sender"]["cloud_api"]["messaging_limit"] is None

    synced = site.client.post(f"/api/v1/senders/{sender_id}/sync-templates", headers=operator)
    assert synced.get_json() == {
        "ok": True,
        "added": 3,
        "updated": 0,
        "removed": 0,
        "problem": None,
    }
    listed = site.client.get(f"/api/v1/senders/{sender_id}/templates?limit=2", headers=operator)
    page = listed.get_json()
    assert [t["name"] for t in page["data"]] == ["t0", "t1"] and page["next_cursor"]
    assert page["data"][0]["parameter_format"] == "named"

    changed = site.client.put(
        f"/api/v1/senders/{sender_id}",
        json={k: v for k, v in body.items() if k not in ("access_token", "app_secret")}
        | {"max_per_second": 20, "verify_token": None},
        headers=admin,
    )
    answers.append(changed.get_data(as_text=True))
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["state"] == "linked", "same number and token: still linked"
    assert changed.get_json()["max_per_second"] == 20
    sender = site.sender(sender_id)
    assert cloud.channel_settings(sender, site.settings.secret_key)["access_token"] == TOKEN

    for url in (f"/api/v1/senders/{sender_id}", "/api/v1/senders"):
        answers.append(site.client.get(url, headers=operator).get_data(as_text=True))
    for text in answers:
        _no_secret_in(text)
        assert '"secrets"' not in text


def test_secrets_never_reach_the_log(site: Site) -> None:
    """Everything a Cloud API sender goes through, then the instance's log is read whole."""
    site.fake.add_number(PNID, WABA, TOKEN, APP_SECRET)
    site.fake.add_template(WABA, "welcome", "en")
    site.sign_in(Role.ADMIN)
    sender_id = _add(site)
    site.post(f"/senders/{sender_id}/check")
    site.post(f"/senders/{sender_id}/sync-templates")
    site.post(f"/senders/{sender_id}/edit", **_form(app_secret="appsecretSECRET-new1"))
    site.fake.revoke_token(TOKEN)
    site.post(f"/senders/{sender_id}/check")
    site.client.post(
        "/api/v1/senders",
        json={
            "name": "X",
            "phone_number_id": "7",
            "waba_id": "8",
            "access_token": TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY,
        },
        headers=_api(site),
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    log = (site.settings.instance_path / LOG_FILE).read_text(encoding="utf-8")
    assert "sender.checked" in log and "sender.templates_synced" in log, "the log was written"
    for secret in (*SECRETS, "appsecretSECRET-new1"):
        assert secret not in log
    with site.db.session() as session:
        texts = " ".join(e.text + json.dumps(e.data) for e in session.scalars(select(Event)))
    _no_secret_in(texts)
