"""End-to-end Cloud API campaigns: the fake Cloud API, a Cloud API sender added through the
service, an approved template mapped in wabulk, and `wabulk serve` (web and embedded
worker) receiving the fake's signed webhooks over real HTTP."""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.campaigns_support import make_contacts
from tests.fakes.cloud_api import FakeCloudApi
from tests.support import Server, running_server
from wabulk.campaigns import lifecycle
from wabulk.campaigns.cloud_template import OPT_OUT_PAYLOAD
from wabulk.campaigns.media import save_media
from wabulk.campaigns.service import DraftInput, save_draft
from wabulk.campaigns.templates import CloudChoice, create_template
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import Campaign, Sender
from wabulk.senders import cloud
from wabulk.senders.service import Keys, SenderInput, create_sender

PHONE_NUMBER_ID = "109876543210987"
WABA_ID = "208765432109876"
TOKEN = "EAAG-e2e-token-7f3a"
APP_SECRET = "e2e-app-secret-55aa"
VERIFY_TOKEN = "e2e-verify-token"

# An approved marketing template as Meta lists it: a photo header, named body variables,
# a footer, a URL button with a variable suffix and a quick-reply button.
SPRING_SALE = [
    {"type": "HEADER", "format": "IMAGE"},
    {
        "type": "BODY",
        "text": "Hi {{customer_name}}, our spring sale starts today. Use code {{code}}.",
        "example": {
            "body_text_named_params": [
                {"param_name": "customer_name", "example": "Pablo"},
                {"param_name": "code", "example": "CARIBE25"},
            ]
        },
    },
    {"type": "FOOTER", "text": "Reply STOP to stop these messages"},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "URL", "text": "Shop now", "url": "https://shop.example.com/s/{{1}}"},
            {"type": "QUICK_REPLY", "text": "Stop promotions"},
        ],
    },
]


def png_bytes() -> bytes:
    """A real 2x2 PNG (the media checks decode it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@dataclass
class Rig:
    fake: FakeCloudApi
    db: Database
    settings: Settings
    sender_id: int

    def options(self) -> dict[str, object]:
        return self.settings.channel_options()

    def campaign(self, campaign_id: int) -> Campaign:
        with self.db.session() as session:
            found = session.get(Campaign, campaign_id)
            assert found is not None
            session.expunge(found)
            return found

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
        """Poll `check` until it is truthy; fail saying what was awaited."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout} s for {what}\n{self.diagnose()}")
            time.sleep(0.1)

    def diagnose(self) -> str:
        """What the database and the fake show, for a failed wait's message."""
        from wabulk.models import Event, Message

        with self.db.session() as session:
            counts = session.execute(
                select(Message.campaign_id, Message.status, Message.error_code)
            ).all()
            logged = session.scalars(select(Event.text).order_by(Event.id)).all()
            state = session.get(Sender, self.sender_id)
            said = f"sender: {state.state.value} {state.state_reason}" if state else "no sender"
        return "\n".join(
            [said, f"messages: {Counter(counts)}", f"fake: {self.fake.counters()}", "events:"]
            + [f"  {line}" for line in logged[-25:]]
        )


def cloud_settings(settings: Settings, fake: FakeCloudApi) -> Settings:
    from dataclasses import replace

    return replace(settings, cloud_api_url=fake.base_url)


def add_sender(db: Database, settings: Settings, fake: FakeCloudApi, tier: str = "TIER_250") -> int:
    """The number at the fake, and the sender added, checked and synced as an admin would."""
    fake.add_number(PHONE_NUMBER_ID, WABA_ID, TOKEN, APP_SECRET, tier=tier)
    fake.add_template(
        WABA_ID, "spring_sale", "en_US", components=SPRING_SALE, parameter_format="NAMED"
    )
    with db.session() as session:
        sender = create_sender(
            session,
            None,
            SenderInput(
                name="Shop number",
                channel="cloud_api",
                settings={
                    "phone_number_id": PHONE_NUMBER_ID,
                    "waba_id": WABA_ID,
                    "access_token": TOKEN,
                    "app_secret": APP_SECRET,
                    "verify_token": VERIFY_TOKEN,
                },
            ),
            Keys(settings.secret_key),
        )
        checked = cloud.check_connection(
            session, sender, settings.secret_key, settings.channel_options()
        )
        assert checked.ok, checked.problem
        synced = cloud.sync_templates(
            session, sender, settings.secret_key, settings.channel_options()
        )
        assert synced.ok, synced.problem
        return sender.id


def spring_template(db: Database, settings: Settings, opt_out_button: bool = True) -> int:
    """The wabulk template linked to `spring_sale`: name from the contact, a fixed code, the
    URL suffix from an attribute, the quick-reply button marked as opt-out."""
    with db.session() as session:
        media = save_media(
            session, io.BytesIO(png_bytes()), "spring.png", Path(settings.instance_path), 10**6
        )
        template = create_template(
            session,
            None,
            "Spring sale",
            "",
            media_id=media.id,
            cloud=CloudChoice(
                "spring_sale",
                "en_US",
                {
                    "body.customer_name": "{{name}}",
                    "body.code": "CARIBE25",
                    "button.0": "{{City}}",
                    "button.1": OPT_OUT_PAYLOAD if opt_out_button else "MORE_PLEASE",
                },
            ),
        )
        return template.id


def launch(
    db: Database, name: str, list_id: int, sender_id: int, template_id: int | None, body: str = ""
) -> int:
    with db.session() as session:
        draft = save_draft(
            session,
            None,
            DraftInput(
                name=name,
                list_ids=[list_id],
                sender_ids=[sender_id],
                template_id=template_id,
                body=body,
            ),
        )
        lifecycle.launch(session, None, draft.id)
        return draft.id


def customers(db: Database, n: int, list_name: str, prefix: str = "+9198110") -> int:
    return make_contacts(
        db, [f"{prefix}{i:05d}" for i in range(n)], list_name, attributes={"City": "pune"}
    )


@contextmanager
def served(
    db: Database, settings: Settings, fake: FakeCloudApi, sender_id: int
) -> Iterator[Server]:
    """`wabulk serve` with its worker, pointed at the fake; the fake's webhooks go to it."""
    with running_server(
        Path(settings.instance_path),
        WABULK_DATABASE_URL=db.engine.url.render_as_string(hide_password=False),
        WABULK_SECRET_KEY=settings.secret_key,
        WABULK_CLOUD_API_URL=fake.base_url,
    ) as server:
        fake.set_webhook(PHONE_NUMBER_ID, f"{server.url}/webhooks/whatsapp/{sender_id}")
        yield server


def sender_state(db: Database, sender_id: int) -> tuple[str, str | None]:
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender is not None
        return sender.state.value, sender.state_reason


def message_rows(db: Database, campaign_id: int) -> list[Any]:
    from wabulk.models import Contact, Message

    with db.session() as session:
        return session.execute(
            select(
                Message.id,
                Message.status,
                Message.error_code,
                Message.error_detail,
                Message.provider_message_id,
                Message.billed_category,
                Message.replied_at,
                Contact.phone,
            )
            .join(Contact, Contact.id == Message.contact_id)
            .where(Message.campaign_id == campaign_id)
            .order_by(Message.id)
        ).all()
