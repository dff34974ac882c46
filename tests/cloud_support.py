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

import pytest
from sqlalchemy import func, select, update

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
from wabulk.models import Campaign, Contact, Event, Inbound, Sender
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
    db: Database,
    name: str,
    list_id: int,
    sender_id: int | list[int],
    template_id: int | None,
    body: str = "",
    media_id: int | None = None,
    retry_seconds: int | None = None,
) -> int:
    """Save and launch a campaign; `sender_id` may list several senders."""
    extra: dict[str, Any] = {} if retry_seconds is None else {"retry_seconds": retry_seconds}
    with db.session() as session:
        draft = save_draft(
            session,
            None,
            DraftInput(
                name=name,
                list_ids=[list_id],
                sender_ids=sender_id if isinstance(sender_id, list) else [sender_id],
                template_id=template_id,
                body=body,
                media_id=media_id,
                **extra,
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
    db: Database, settings: Settings, fake: FakeCloudApi, sender_id: int, **env: str
) -> Iterator[Server]:
    """`wabulk serve` with its worker, pointed at the fake; the fake's webhooks go to it.
    `env`: more WABULK_* variables (a short lease, a longer Cloud API timeout)."""
    with running_server(
        Path(settings.instance_path),
        WABULK_DATABASE_URL=db.engine.url.render_as_string(hide_password=False),
        WABULK_SECRET_KEY=settings.secret_key,
        WABULK_CLOUD_API_URL=fake.base_url,
        **env,
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


def save_file(db: Database, settings: Settings, data: bytes, name: str) -> int:
    """A campaign attachment stored as the wizard stores it; returns its media id."""
    with db.session() as session:
        media = save_media(session, io.BytesIO(data), name, Path(settings.instance_path), 10**7)
        return media.id


PDF_BYTES = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
# An MP4's first box: its size, `ftyp` and the `isom` brand are what the upload checks read.
MP4_BYTES = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64


class WebhookGate:
    """A loopback relay between the fake's webhooks and `wabulk serve`: while shut it answers
    503 (the fake retries), once opened it passes each POST on to `target` as it came.

    A crash test needs the status webhooks held back while the server is down and restarted
    (on a new port), then delivered: the fake keeps retrying the gate's fixed address."""

    def __init__(self) -> None:
        import http.client
        import http.server
        import threading
        from urllib.parse import urlsplit

        gate = self
        self.target: str | None = None
        self.passed = 0
        self.held = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = 503
                if gate.target is None:
                    gate.held += 1
                else:
                    headers = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() in ("content-type", "x-hub-signature-256", "user-agent")
                    }
                    target = urlsplit(gate.target)
                    connection = http.client.HTTPConnection(
                        target.hostname or "127.0.0.1", target.port or 80, timeout=30
                    )
                    try:
                        connection.request("POST", target.path, body, headers)
                        answer = connection.getresponse()
                        answer.read()
                        status = answer.status
                    except OSError:
                        status = 502
                    finally:
                        connection.close()
                    if status == 200:
                        gate.passed += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def open(self, target: str) -> None:
        self.target = target

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


# --- scenario helpers (tests/integration/test_cloud_scenarios.py) ---------------------


def numbered(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


def people(db: Database, phones: list[str], list_name: str) -> int:
    return make_contacts(db, phones, list_name, attributes={"City": "pune"})


def sync(db: Database, settings: Settings, sender_id: int) -> None:
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender is not None
        synced = cloud.sync_templates(
            session, sender, settings.secret_key, settings.channel_options()
        )
        assert synced.ok, synced.problem


def linked_template(db: Database, name: str, meta_name: str, mapping: dict[str, str]) -> int:
    with db.session() as session:
        template = create_template(
            session, None, name, "", cloud=CloudChoice(meta_name, "en_US", mapping)
        )
        return template.id


def another_number(
    db: Database, settings: Settings, fake: FakeCloudApi, pnid: str, token: str, name: str
) -> int:
    """A second Cloud API number of the same account, added, checked and synced."""
    fake.add_number(pnid, WABA_ID, token, APP_SECRET, display_phone=f"+1555{pnid[-7:]}")
    with db.session() as session:
        sender = create_sender(
            session,
            None,
            SenderInput(
                name=name,
                channel="cloud_api",
                settings={
                    "phone_number_id": pnid,
                    "waba_id": WABA_ID,
                    "access_token": token,
                    "app_secret": APP_SECRET,
                    "verify_token": f"verify-{pnid}",
                },
            ),
            Keys(settings.secret_key),
        )
        options = settings.channel_options()
        checked = cloud.check_connection(session, sender, settings.secret_key, options)
        assert checked.ok, checked.problem
        synced = cloud.sync_templates(session, sender, settings.secret_key, options)
        assert synced.ok, synced.problem
        return sender.id


def by_phone(db: Database, campaign_id: int) -> dict[str, Any]:
    return {row.phone: row for row in message_rows(db, campaign_id)}


def sends_of(fake: FakeCloudApi, db: Database, campaign_id: int) -> list[dict[str, Any]]:
    """What the fake accepted for this campaign's messages (matched by our callback data)."""
    ids = {str(row.id) for row in message_rows(db, campaign_id)}
    return [s for s in fake.sent if s["callback"] in ids]


def counts(rig: Rig, campaign_id: int, *fields: str) -> tuple[int, ...]:
    campaign = rig.campaign(campaign_id)
    return tuple(getattr(campaign, f"n_{f}") for f in fields)


def wait_counts(rig: Rig, campaign_id: int, timeout: float = 120.0, **expected: int) -> None:
    fields = tuple(expected)
    want = tuple(expected.values())
    rig.wait(
        f"campaign {campaign_id} to reach {expected}",
        lambda: counts(rig, campaign_id, *fields) == want,
        timeout,
    )


def events_of(db: Database, kind: str, campaign_id: int | None = None) -> list[str]:
    with db.session() as session:
        query = select(Event.text).where(Event.kind == kind).order_by(Event.id)
        if campaign_id is not None:
            query = query.where(Event.campaign_id == campaign_id)
        return list(session.scalars(query))


def write_first(rig: Rig, db: Database, phones: list[str]) -> None:
    """Each customer writes to the shop, opening their 24-hour window; waits until stored."""
    for phone in phones:
        rig.fake.inbound(PHONE_NUMBER_ID, phone, "Hello, is the shop open?")

    def heard() -> bool:
        with db.session() as session:
            return session.scalar(
                select(func.count())
                .select_from(Inbound)
                .join(Contact, Contact.id == Inbound.contact_id)
                .where(Contact.phone.in_(phones))
            ) == len(phones)

    rig.wait(f"{len(phones)} customers' first messages to be stored", heard)


def revoke_after(fake: FakeCloudApi, monkeypatch: pytest.MonkeyPatch, pnid: str, k: int) -> None:
    """Meta revokes the number's token right after accepting its k-th send: the sends after
    it are refused with 190, mid-batch, exactly at that point."""
    accept = fake._accept
    accepted = Counter[str]()

    def accept_then_revoke(request: Any, raw: bytes, endpoint: str) -> Any:
        answer = accept(request, raw, endpoint)
        if request.match_info["pnid"] == pnid:
            accepted[pnid] += 1
            if accepted[pnid] == k:
                fake.revoke_token(fake.numbers[pnid].token)
        return answer

    monkeypatch.setattr(fake, "_accept", accept_then_revoke)


def hold_sender(db: Database, sender_id: int) -> None:
    """Keep a sender's lane from starting until `let_go`: a worker label no worker has (a
    Cloud API or dry-run sender is driven by every worker, so holding its lease would not)."""
    with db.session() as session:
        session.execute(
            update(Sender).where(Sender.id == sender_id).values(worker_label="held-by-test")
        )


def let_go(db: Database, sender_id: int) -> None:
    with db.session() as session:
        session.execute(update(Sender).where(Sender.id == sender_id).values(worker_label=None))
