"""WhatsApp Web channel: seconds per message beside the pacing floor and a naive sender.

Runs the local WhatsApp Web stand-in (tests/fakes/whatsapp_web) on loopback with a 1.5 s
page load, and real Chromium through ChromeDriver:

- product: a campaign of N recipients (200; `--quick` 20) through the engine — one
  `Lane` on a fresh SQLite database, a WhatsApp Web sender paced at exactly 2 s between
  messages — from the first claim to the campaign's last message settled; wall seconds ÷ N.
  The lane loads the next chat while the pacing delay of the previous one runs;
- floor: the pacing delay itself, 2 s per message: no sender can go faster and stay paced;
- naive: the same channel class with no overlap, as the scripts people pass around do it:
  load the chat, then wait the 2 s, then click send and confirm; wall seconds ÷ N.

Both runs are checked at the end: every recipient got exactly one message with its text.
Prints; never fails on a slow machine. The last line is the JSON summary
(see docs/performance.md).

    .venv/bin/python bench/web_channel.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.fakes.whatsapp_web import FakeWhatsAppWeb  # noqa: E402

from wabulk import migrate  # noqa: E402
from wabulk.campaigns import lifecycle  # noqa: E402
from wabulk.campaigns.service import DraftInput, save_draft  # noqa: E402
from wabulk.channels.base import ChannelConfig, OutgoingMessage  # noqa: E402
from wabulk.channels.whatsapp_web import WhatsAppWebChannel  # noqa: E402
from wabulk.contacts.bulk import add_members  # noqa: E402
from wabulk.db import Database  # noqa: E402
from wabulk.dispatch.lane import Lane  # noqa: E402
from wabulk.models import (  # noqa: E402
    Campaign,
    CampaignStatus,
    Contact,
    ContactList,
    Sender,
    SenderState,
    utcnow,
)
from wabulk.senders.service import SenderInput, create_sender  # noqa: E402

PACE_SECONDS = 2.0
LOAD_SECONDS = 1.5
TARGET_FACTOR = 1.15  # within 15% of the floor
ACCOUNT = "+919876543210"


def phones(n: int, block: int) -> list[str]:
    return [f"+9198{block}{i + 1:07d}" for i in range(n)]


def link(channel: WhatsAppWebChannel, fake: FakeWhatsAppWeb) -> None:
    deadline = time.monotonic() + 30
    while not (channel.link_status().kind == "qr" and fake.pending_qr()):
        if time.monotonic() > deadline:
            raise SystemExit("the stand-in never showed its QR")
        time.sleep(0.2)
    fake.scan(phone=ACCOUNT)
    while channel.link_status().kind != "linked":
        if time.monotonic() > deadline:
            raise SystemExit("the stand-in never linked")
        time.sleep(0.2)
    channel.close()  # a clean quit writes the login into the profile folder


def product(fake: FakeWhatsAppWeb, work: Path, n: int) -> float:
    db = Database(f"sqlite:///{work / 'bench.db'}")
    migrate.upgrade(db.engine)
    instance = work / "instance"
    opts = {"whatsapp_web_url": fake.url, "browser_timeout": 30}
    pacing = {
        "min_delay_seconds": PACE_SECONDS,
        "max_delay_seconds": PACE_SECONDS,
        "daily_cap": "",
        "break_every": "",
        "break_seconds": "",
    }
    with db.session() as session:
        sender = create_sender(
            session,
            None,
            # The stand-in is no new number: no warm-up ramp holding the run at 20 a day.
            SenderInput(
                name="Bench",
                channel="whatsapp_web",
                pacing=pacing,
                settings={"warmup_skipped": True},
            ),
        )
        sender_id = sender.id
        lst = ContactList(name="Bench")
        session.add(lst)
        session.flush()
        contacts = [Contact(phone=p, name=f"Customer {i}") for i, p in enumerate(phones(n, 1))]
        session.add_all(contacts)
        session.flush()
        add_members(session, lst.id, [c.id for c in contacts], utcnow())
        list_id = lst.id
    channel = WhatsAppWebChannel(ChannelConfig("Bench", {}, instance, opts))
    link(channel, fake)
    with db.session() as session:
        row = session.get(Sender, sender_id)
        assert row is not None
        row.state, row.link_requested_until, row.phone = SenderState.LINKED, None, ACCOUNT
        campaign = save_draft(
            session,
            None,
            DraftInput(
                name="Bench",
                list_ids=[list_id],
                sender_ids=[sender_id],
                body="Hello {{ name }} 😀\nYour order is ready.",
            ),
        )
        campaign_id = campaign.id
    lane = Lane(db, sender_id, "bench:1", instance, lease_seconds=120, options=opts)
    with db.session() as session:
        lifecycle.launch(session, None, campaign_id)
    started = time.perf_counter()
    try:
        while True:
            wait = lane.step()
            with db.session() as session:
                done = session.get(Campaign, campaign_id)
                assert done is not None
                if done.n_sent + done.n_failed >= n:
                    break
            if wait:
                time.sleep(min(wait, 0.05))
        elapsed = time.perf_counter() - started
    finally:
        lane.close()
    with db.session() as session:
        lifecycle.complete_finished(session, utcnow())
        final = session.get(Campaign, campaign_id)
        assert final is not None
        assert final.status == CampaignStatus.COMPLETED and final.n_sent == n, final.n_sent
    db.dispose()
    return elapsed / n


def naive(fake: FakeWhatsAppWeb, work: Path, n: int) -> float:
    opts = {"whatsapp_web_url": fake.url, "browser_timeout": 30}
    channel = WhatsAppWebChannel(ChannelConfig("Naive", {}, work / "naive", opts))
    link(channel, fake)
    started = time.perf_counter()
    try:
        for i, phone in enumerate(phones(n, 2)):
            message = OutgoingMessage(i + 1, phone, f"Hello Customer {i} 😀\nYour order is ready.")
            channel._load(channel.chat_url(phone, message.text))  # load the chat...
            channel.prepared = (message.message_id, channel.chat_url(phone, message.text))
            time.sleep(PACE_SECONDS)  # ...then wait out the pace...
            channel.send(message)  # ...then send and confirm
        elapsed = time.perf_counter() - started
    finally:
        channel.close()
    return elapsed / n


def check(fake: FakeWhatsAppWeb, n: int) -> None:
    got = Counter(m["phone"] for m in fake.messages())
    for block in (1, 2):
        for _i, phone in enumerate(phones(n, block)):
            assert got[phone[1:]] == 1, (phone, got[phone[1:]])
    texts = {m["phone"]: m["text"] for m in fake.messages()}
    assert texts[phones(n, 1)[0][1:]] == "Hello Customer 0 😀\nYour order is ready."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 messages instead of 200")
    args = parser.parse_args()
    n = 20 if args.quick else 200
    work = Path(tempfile.mkdtemp(prefix="wabulk-bench-web-"))
    fake = FakeWhatsAppWeb()
    fake.start()
    try:
        fake.set(load_delay=LOAD_SECONDS)
        print(f"{n} messages, {PACE_SECONDS:g} s pacing, {LOAD_SECONDS:g} s page load")
        per_product = product(fake, work, n)
        print(f"product (engine, load overlaps the wait): {per_product:.3f} s/message")
        per_naive = naive(fake, work, n)
        print(f"naive (load, wait, send):                {per_naive:.3f} s/message")
        check(fake, n)
    finally:
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    factor = per_product / PACE_SECONDS
    print(
        f"product is {factor:.3f}x the pacing floor (target at most {TARGET_FACTOR}x); "
        f"naive is {per_naive / per_product:.2f}x slower than the product"
    )
    summary = {
        "bench": "web_channel",
        "unit": "seconds per message",
        "product": round(per_product, 3),
        "baseline": {"pacing_floor": PACE_SECONDS, "naive_sequential": round(per_naive, 3)},
        "ratio": {
            "floor_over_product": round(PACE_SECONDS / per_product, 3),
            "naive_over_product": round(per_naive / per_product, 3),
        },
        "target": {"floor_over_product": round(1 / TARGET_FACTOR, 3)},
        "messages": n,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
