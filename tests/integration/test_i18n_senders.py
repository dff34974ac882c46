"""The Senders pages in each of our languages: the table with senders in every state, the
add and edit forms (WhatsApp Web, Cloud API, dry run), a Cloud API sender's page with its
health, a failed check, refused webhooks and synced templates, the link page in each of its
panels, and Settings → Workers with running, lost and stopped workers, show no sentence the
catalogue translates. The services' English sentences (a form mistake, a flash, an Event, a
failure reason the link page polls) are read in the reader's language; English stays."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.campaigns_support import make_sender
from wabulk.db import Database
from wabulk.dispatch import registry
from wabulk.models import Channel, CloudTemplate, Role, Sender, SenderState, User, utcnow
from wabulk.senders.linking import IN_USE_REASON

from ..conftest import get_csrf, login
from .test_i18n_groundwork import LOCALES, english_runs, untranslated

QR = "data:image/png;base64,iVBORw0KGgo="
# What reads the same in every language: the seeded names, numbers, template and worker
# names, Meta's field names and the product names.
BANNER = "Your account is restricted right now"
ALLOWED = (
    "Dukaan",
    "Abhyas",
    "Godown",
    "Mela",
    "Purana",
    "Kiran",
    "Asha Stores",
    "Naya",
    "diwali_offer",
    "order_update",
    BANNER,
    # Product names and Meta's own screens and buttons, named as Meta names them.
    "WhatsApp Cloud API",
    "WhatsApp Web",
    "WhatsApp Business Account",
    "Marketing Messages API",
    "WhatsApp → Configuration → Webhook",
    "Verify and save",
    "Settings → Basic → App secret",
    "Business settings → System users",
)
# Catalogue words that are also everyday words of the language ("no" is Portuguese too).
SAME_WORD = {"pt_BR": {"no"}, "es": set(), "hi": set(), "id": set()}


def _left(page: str, locale: str) -> list[str]:
    """`untranslated` on what the reader sees of our words: without code, the timezone
    choices, Meta's webhook field names and the seeded data."""
    page = re.sub(r"<(code|option)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<strong>[a-z_]+</strong>", " ", page)
    for phrase in ALLOWED:
        page = page.replace(phrase, " ")
    return [m for m in untranslated(page, locale) if m not in SAME_WORD[locale]]


def _speak(db: Database, user: User, language: str | None) -> None:
    with db.session() as session:
        session.get(User, user.id).language = language  # type: ignore[union-attr]
        session.commit()


def _get(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def _cloud(session, name: str, state: SenderState, **extra: object) -> Sender:  # type: ignore[no-untyped-def]
    sender = Sender(
        name=name,
        channel=Channel.CLOUD_API,
        state=state,
        timezone="Asia/Kolkata",
        max_per_second=80,
        settings={
            "phone_number_id": "106540352242922",
            "waba_id": "102290129340398",
            "api_version": "v26.0",
            "hints": {"access_token": "…Zx9Q", "app_secret": "…a1b2", "verify_token": "…k3l4"},
        },
        **extra,
    )
    session.add(sender)
    session.flush()
    return sender


@pytest.fixture
def shop(db: Database, make_user: Callable[..., User], client: FlaskClient) -> dict[str, object]:
    """An admin signed in, and senders in every state a page words differently."""
    admin = make_user(Role.ADMIN)
    assert login(client, admin.email).status_code == 302
    now = utcnow()
    ids: dict[str, object] = {"admin": admin}
    ids["dry"] = make_sender(
        db,
        "Abhyas",
        min_delay_seconds=2,
        max_delay_seconds=5,
        daily_cap=300,
        active_from="09:00",
        active_until="20:00",
        break_every=50,
        break_seconds=120,
        settings={"latency_seconds": 1, "failure_rate": 0.1, "transient_rate": 0.05},
    )
    with db.session() as session:
        web = Sender(
            name="Dukaan",
            channel=Channel.WHATSAPP_WEB,
            state=SenderState.NEEDS_LINK,
            state_reason="Scan the QR code with the phone to link it.",
            timezone="Asia/Kolkata",
            worker_label="shop-pc",
            min_delay_seconds=30,
            max_delay_seconds=60,
            daily_cap=200,
            settings={"read_replies": True, "hear_days": 3},
        )
        linked = Sender(
            name="Mela",
            channel=Channel.WHATSAPP_WEB,
            state=SenderState.LINKED,
            phone="+919876543210",
            timezone="Asia/Kolkata",
            daily_cap=200,
            settings={},
        )
        in_use = Sender(
            name="Godown",
            channel=Channel.WHATSAPP_WEB,
            state=SenderState.IN_USE,
            state_reason=IN_USE_REASON,
            timezone="UTC",
            settings={},
        )
        failed = Sender(
            name="Purana",
            channel=Channel.WHATSAPP_WEB,
            state=SenderState.BROWSER_FAILED,
            state_reason=(
                "WhatsApp Web (https://web.whatsapp.com) could not be reached from this machine "
                "(net::ERR_NAME_NOT_RESOLVED). Check its internet connection, then try again."
            ),
            timezone="UTC",
            settings={},
        )
        limited = Sender(
            name="Kiran",
            channel=Channel.WHATSAPP_WEB,
            state=SenderState.LIMITED,
            state_reason=f"WhatsApp shows: “{BANNER}”",
            limited_until=now + timedelta(hours=20),
            timezone="UTC",
            settings={},
        )
        session.add_all([web, linked, in_use, failed, limited])
        session.flush()
        meta = _cloud(
            session,
            "Asha Stores",
            SenderState.LINKED,
            phone="+15550001111",
            health={
                "display_name": "Asha Stores",
                "display_phone": "+1 555-000-1111",
                "quality_rating": "GREEN",
                "throughput_level": "STANDARD",
                "messaging_tier": "TIER_1K",
                "account_name": "Asha Stores Pvt",
                "checked_at": (now - timedelta(hours=1)).isoformat(),
                "problem": "Meta did not answer properly; trying again.",
                "problem_at": (now - timedelta(minutes=5)).isoformat(),
                "webhooks_refused": 3,
                "webhook_refused_at": (now - timedelta(minutes=9)).isoformat(),
                "templates_synced_at": (now - timedelta(minutes=30)).isoformat(),
            },
        )
        unchecked = _cloud(
            session,
            "Naya",
            SenderState.NEEDS_LINK,
            state_reason="Check the connection to start sending.",
            health={},
        )
        for name, status, quality, category in (
            ("diwali_offer", "APPROVED", "GREEN", "MARKETING"),
            ("order_update", "PENDING", None, "UTILITY"),
            ("old_promo", "DELETED", "RED", "MARKETING"),
        ):
            session.add(
                CloudTemplate(
                    sender_id=meta.id,
                    name=name,
                    language="en_US",
                    category=category,
                    status=status,
                    quality=quality,
                    components=[{"type": "BODY", "text": "Hello {{1}}"}],
                    synced_at=now,
                )
            )
        session.commit()
        ids.update(
            web=web.id,
            linked=linked.id,
            in_use=in_use.id,
            failed=failed.id,
            limited=limited.id,
            meta=meta.id,
            unchecked=unchecked.id,
        )
    for identity, name, age in (("till:1:a", "till", 0), ("back:2:b", "back-office", 600)):
        registry.register(
            db,
            identity=identity,
            name=name,
            labels=("shop-pc",) if name == "till" else (),
            only_senders=("Dukaan",) if name == "till" else None,
            lease_seconds=120,
            now=now - timedelta(seconds=age),
        )
    registry.register(db, identity="old:3:c", name="old-laptop", lease_seconds=120, now=now)
    registry.beat(
        db, "till:1:a", holds={"senders": [ids["web"], ids["meta"]]}, per_minute=42, stats={}
    )
    registry.stopped(db, "old:3:c", now - timedelta(seconds=7000))
    return ids


def _link_states(db: Database, shop: dict[str, object]) -> None:
    """The WhatsApp Web senders' link pages each show another panel."""
    now = utcnow()
    with db.session() as session:
        web = session.get(Sender, shop["web"])
        web.link_requested_until = now + timedelta(minutes=4)  # type: ignore[union-attr]
        web.link_qr, web.link_qr_at = QR, now  # type: ignore[union-attr]
        session.commit()


def _pages(shop: dict[str, object]) -> list[str]:
    return [
        "/senders",
        "/senders/new",
        f"/senders/{shop['dry']}/edit",
        f"/senders/{shop['web']}/edit",
        f"/senders/{shop['meta']}/edit",
        f"/senders/{shop['meta']}",
        f"/senders/{shop['unchecked']}",
        f"/senders/{shop['web']}/link",
        f"/senders/{shop['linked']}/link",
        f"/senders/{shop['in_use']}/link",
        f"/senders/{shop['failed']}/link",
        f"/senders/{shop['limited']}/link",
        "/settings/workers",
        "/settings/workers/table",
    ]


@pytest.mark.parametrize("locale", LOCALES)
def test_every_senders_page_reads_in_the_user_s_language(
    db: Database, client: FlaskClient, shop: dict[str, object], locale: str
) -> None:
    _link_states(db, shop)
    _speak(db, shop["admin"], locale)  # type: ignore[arg-type]
    for url in _pages(shop):
        page = _get(client, url)
        assert _left(page, locale) == [], url
        if locale == "hi":  # Devanagari: any run of English words left is ours to mark
            assert english_runs(page, allow=ALLOWED) == [], (url, english_runs(page, allow=ALLOWED))


def test_the_empty_pages_read_in_the_user_s_language(
    app: Flask, db: Database, make_user: Callable[..., User]
) -> None:
    admin, viewer = make_user(Role.ADMIN), make_user(Role.VIEWER)
    for user, urls in ((admin, ("/senders", "/settings/workers")), (viewer, ("/senders",))):
        client = app.test_client()
        assert login(client, user.email).status_code == 302
        for locale in LOCALES:
            _speak(db, user, locale)
            for url in urls:
                page = _get(client, url)
                assert _left(page, locale) == [], (locale, url)
                if locale == "hi":
                    assert english_runs(page, allow=ALLOWED) == [], (url, english_runs(page))


def test_known_sentences_read_in_hindi_and_portuguese_and_english_stays(
    db: Database, client: FlaskClient, shop: dict[str, object]
) -> None:
    page = _get(client, "/senders")
    assert "2\N{EN DASH}5 s between messages" in page and "Pacing" in page
    assert "Only computers labelled" in page and "needs linking" in page
    _speak(db, shop["admin"], "hi")  # type: ignore[arg-type]
    page = _get(client, "/senders")
    assert "भेजने वाले नंबर" in page and "लिंक करना है" in page
    assert "संदेशों के बीच 2\N{EN DASH}5 सेकंड" in page
    _speak(db, shop["admin"], "pt_BR")  # type: ignore[arg-type]
    cloud = _get(client, f"/senders/{shop['meta']}")
    assert "Modelos de mensagem" in cloud and "Sincronizar modelos" in cloud
    # Meta's own words and the stored problem, translated.
    assert "Aprovado" in cloud and "Pendente" in cloud and "Alta" in cloud
    assert "A Meta não respondeu direito; tentando de novo." in cloud
    assert "até 1.000 clientes por dia" in cloud.lower()
    workers = _get(client, "/settings/workers")
    assert "Em execução" in workers and "Perdido" in workers and "Parado" in workers
    assert "Sem sinal há 10 minutos" in workers


def test_a_form_mistake_and_a_flash_read_in_the_user_s_language(
    db: Database, client: FlaskClient, shop: dict[str, object]
) -> None:
    _speak(db, shop["admin"], "hi")  # type: ignore[arg-type]
    token = get_csrf(client, "/senders/new")
    response = client.post(
        "/senders/new",
        data={"csrf_token": token, "channel": "dry_run", "name": "", "timezone": "UTC"},
    )
    assert response.status_code == 400
    assert "भेजने वाले नंबर का नाम दें।" in response.get_data(as_text=True)
    response = client.post(
        f"/senders/{shop['dry']}/disable",
        data={"csrf_token": get_csrf(client, "/senders")},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "भेजने वाला नंबर बंद हुआ" in page
    # A Conflict the service raises in English is flashed in the reader's language.
    response = client.post(
        f"/senders/{shop['dry']}/disable",
        data={"csrf_token": get_csrf(client, "/senders")},
        follow_redirects=True,
    )
    assert "Abhyas पहले से बंद है।" in response.get_data(as_text=True)


def test_an_event_and_the_link_page_s_reason_read_in_the_user_s_language(
    db: Database, client: FlaskClient, shop: dict[str, object]
) -> None:
    _speak(db, shop["admin"], "es")  # type: ignore[arg-type]
    client.post(
        f"/senders/{shop['dry']}/disable", data={"csrf_token": get_csrf(client, "/senders")}
    )
    activity = html.unescape(_get(client, "/activity"))
    assert "desactivó el remitente 'Abhyas'." in activity
    view = client.get(f"/senders/{shop['in_use']}/link.json").get_json()
    assert view["reason"].startswith("WhatsApp está abierto para esta cuenta")
    failed = client.get(f"/senders/{shop['failed']}/link.json").get_json()
    assert failed["reason"].startswith("No se pudo acceder a WhatsApp Web")
    # Our sentence around the browser's own error: translated, the error kept.
    assert failed["detail"].startswith("No se pudo acceder a WhatsApp Web (https://")
    assert "net::ERR_NAME_NOT_RESOLVED" in failed["detail"]
    _speak(db, shop["admin"], None)
    assert client.get(f"/senders/{shop['in_use']}/link.json").get_json()["reason"] == IN_USE_REASON
