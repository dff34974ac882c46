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
- hearing: the product run again with hearing back on (the lane reads the chat list in
  its pacing waits) while the stand-in moves every message's ticks by itself (delivered
  DELIVER_AFTER s after the single tick shows, read READ_AFTER s after it) and a quarter of
  the recipients reply REPLY_AFTER s after their message, one of them "STOP". The plain
  product run has hearing switched off in its lane, as before hearing back existed.
  Lag: a thread notes the time the stand-in showed each tick (the time it set) and reply
  (the time it recorded it), and polls the database every POLL s for the first time each
  tick (messages.status moved) and reply (an `inbound` row) is seen there; the lag is the
  difference, in pacing intervals. After the last send the run goes on, the lane idle,
  until all of them are stored (or LAG_DEADLINE s pass): the slowest of those is printed
  apart, as an idle lane looks on its own schedule (a pace after its last send, then
  further apart), not once a wait.

All runs are checked at the end: every recipient got exactly one message with its text;
the hearing run also that each reply is stored once, attributed to its campaign message,
and the STOP sender opted out.
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
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from statistics import median

from sqlalchemy import func, select

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
    Inbound,
    Message,
    Sender,
    SenderState,
    utcnow,
)
from wabulk.senders.service import SenderInput, create_sender  # noqa: E402

PACE_SECONDS = 2.0
LOAD_SECONDS = 1.5
TARGET_FACTOR = 1.15  # within 15% of the floor
TARGET_LAG_INTERVALS = 2.0  # every tick and reply stored within two pacing intervals
ACCOUNT = "+919876543210"
HEARING_ACCOUNT = "+919876500001"  # its own chat list, apart from the plain run's
DELIVER_AFTER = 1.0  # the stand-in's delivered tick, seconds after the single tick
READ_AFTER = 3.0  # ... and its read tick
REPLY_AFTER = 4.0  # a replying customer writes this long after our message arrives
POLL = 0.1
LAG_DEADLINE = 120.0
RANK = {"delivered": 1, "read": 2}


def phones(n: int, block: int) -> list[str]:
    return [f"+9198{block}{i + 1:07d}" for i in range(n)]


def repliers(n: int) -> dict[str, str]:
    """A quarter of the hearing run's recipients and what each writes back."""
    chosen = phones(n, 3)[1::4]
    return {
        p: ("STOP" if i == 0 else f"Thanks! Is size {i} in stock?") for i, p in enumerate(chosen)
    }


def link(channel: WhatsAppWebChannel, fake: FakeWhatsAppWeb, account: str = ACCOUNT) -> None:
    deadline = time.monotonic() + 30
    while not (channel.link_status().kind == "qr" and fake.pending_qr()):
        if time.monotonic() > deadline:
            raise SystemExit("the stand-in never showed its QR")
        time.sleep(0.2)
    fake.scan(phone=account)
    while channel.link_status().kind != "linked":
        if time.monotonic() > deadline:
            raise SystemExit("the stand-in never linked")
        time.sleep(0.2)
    channel.close()  # a clean quit writes the login into the profile folder


@dataclass
class Run:
    db: Database
    lane: Lane
    campaign_id: int


def start_campaign(
    fake: FakeWhatsAppWeb, work: Path, n: int, name: str, block: int, account: str
) -> Run:
    """A fresh database, a linked sender paced at exactly PACE_SECONDS, a launched campaign."""
    db = Database(f"sqlite:///{work / (name + '.db')}")
    migrate.upgrade(db.engine)
    instance = work / name
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
                name=name,
                channel="whatsapp_web",
                pacing=pacing,
                settings={"warmup_skipped": True},
            ),
        )
        sender_id = sender.id
        lst = ContactList(name=name)
        session.add(lst)
        session.flush()
        contacts = [Contact(phone=p, name=f"Customer {i}") for i, p in enumerate(phones(n, block))]
        session.add_all(contacts)
        session.flush()
        add_members(session, lst.id, [c.id for c in contacts], utcnow())
        list_id = lst.id
    channel = WhatsAppWebChannel(ChannelConfig(name, {}, instance, opts))
    link(channel, fake, account)
    with db.session() as session:
        row = session.get(Sender, sender_id)
        assert row is not None
        row.state, row.link_requested_until, row.phone = SenderState.LINKED, None, account
        campaign = save_draft(
            session,
            None,
            DraftInput(
                name=name,
                list_ids=[list_id],
                sender_ids=[sender_id],
                body="Hello {{ name }} 😀\nYour order is ready.",
            ),
        )
        campaign_id = campaign.id
    lane = Lane(db, sender_id, f"bench:{name}", instance, lease_seconds=120, options=opts)
    with db.session() as session:
        lifecycle.launch(session, None, campaign_id)
    return Run(db, lane, campaign_id)


def sent_count(run: Run) -> int:
    """Messages settled: a message heard back counts as delivered or read, not sent."""
    with run.db.session() as session:
        done = session.get(Campaign, run.campaign_id)
        assert done is not None
        return done.n_sent + done.n_delivered + done.n_read + done.n_failed


def step(run: Run) -> None:
    wait = run.lane.step()
    if wait:
        time.sleep(min(wait, 0.05))


def finish(run: Run, n: int) -> None:
    run.lane.close()
    with run.db.session() as session:
        lifecycle.complete_finished(session, utcnow())
        final = session.get(Campaign, run.campaign_id)
        assert final is not None
        went = final.n_sent + final.n_delivered + final.n_read
        assert final.status == CampaignStatus.COMPLETED and went == n, went


def product(fake: FakeWhatsAppWeb, work: Path, n: int) -> float:
    run = start_campaign(fake, work, n, "plain", 1, ACCOUNT)
    # As before hearing back: the lane never looks at the chats.
    run.lane._hears = lambda: False  # type: ignore[method-assign]
    started = time.perf_counter()
    try:
        while sent_count(run) < n:
            step(run)
        elapsed = time.perf_counter() - started
    finally:
        finish(run, n)
    run.db.dispose()
    return elapsed / n


class Watcher(threading.Thread):
    """The customers' side and the clock on the lag, beside the lane's thread.

    Writes the replies on time, keeps the stand-in's automatic ticks moving on time (its
    state moves when asked: every POLL here, not only when a page polls), and notes the
    first time the database holds each tick and reply.
    """

    def __init__(self, fake: FakeWhatsAppWeb, run: Run, n: int) -> None:
        super().__init__(daemon=True)
        self.fake, self.campaign, self.n = fake, run, n
        self.to_reply = repliers(n)
        self.replied: dict[str, dict] = {}  # phone -> the stand-in's incoming message
        self.shown: dict[tuple[str, str], float] = {}  # (phone, tick) -> epoch seconds
        self.stored: dict[tuple[str, str], float] = {}  # (phone, tick | "reply") -> epoch
        self.sends: list[float] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def expected(self) -> int:
        return 2 * self.n + len(self.to_reply)

    def done(self) -> bool:
        return len(self.stored) >= self.expected()

    def run(self) -> None:  # type: ignore[override]
        try:
            while not self.stop.wait(POLL):
                self._look()
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def _look(self) -> None:
        now = time.time()
        ours = [m for m in self.fake.messages() if m["account"] == HEARING_ACCOUNT]
        for m in ours:
            phone = "+" + m["phone"].lstrip("+")
            for tick in ("delivered", "read"):
                if m[f"{tick}_at"] and (phone, tick) not in self.shown:
                    self.shown[phone, tick] = datetime.fromisoformat(m[f"{tick}_at"]).timestamp()
            sent = datetime.fromisoformat(m["at"]).timestamp()
            if phone in self.to_reply and phone not in self.replied and now - sent >= REPLY_AFTER:
                self.replied[phone] = self.fake.reply(phone, self.to_reply[phone])
        self.sends = sorted(datetime.fromisoformat(m["at"]).timestamp() for m in ours)
        with self.campaign.db.session() as session:
            rows = session.execute(select(Message.phone, Message.status)).all()
            answered = session.scalars(select(Inbound.phone)).all()
        seen = time.time()
        for phone, status in rows:
            for tick, rank in RANK.items():
                if RANK.get(str(status.value), 0) >= rank:
                    self.stored.setdefault((phone, tick), seen)
        for phone in answered:
            self.stored.setdefault((phone, "reply"), seen)

    def lags(self) -> list[tuple[str, str, float]]:
        """(phase, what, seconds from the stand-in showing it to the database holding it);
        phase "sending" for what showed before the last send went, else "idle"."""
        shown = dict(self.shown)
        for phone, message in self.replied.items():
            shown[phone, "reply"] = datetime.fromisoformat(message["at"]).timestamp()
        last_send = self.sends[-1] if self.sends else 0.0
        return [
            (
                "sending" if at <= last_send else "idle",
                what,
                max(0.0, self.stored.get((phone, what), time.time()) - at),
            )
            for (phone, what), at in shown.items()
        ]


def hearing(fake: FakeWhatsAppWeb, work: Path, n: int) -> tuple[float, Watcher]:
    fake.set(auto_deliver_after=DELIVER_AFTER, auto_read_after=READ_AFTER)
    run = start_campaign(fake, work, n, "hearing", 3, HEARING_ACCOUNT)
    watcher = Watcher(fake, run, n)
    watcher.start()
    started = time.perf_counter()
    try:
        while sent_count(run) < n:
            step(run)
        elapsed = time.perf_counter() - started
        # Then the lane idles in its hearing period until everything shown is stored.
        deadline = time.monotonic() + LAG_DEADLINE
        while not watcher.done() and time.monotonic() < deadline and watcher.error is None:
            step(run)
    finally:
        watcher.stop.set()
        watcher.join()
        fake.set(auto_deliver_after=None, auto_read_after=None)
        finish(run, n)
    if watcher.error is not None:
        raise watcher.error
    check_hearing(run, watcher, n)
    run.db.dispose()
    return elapsed / n, watcher


def check_hearing(run: Run, watcher: Watcher, n: int) -> None:
    """Every tick stored, every reply stored once on its campaign message, STOP obeyed."""
    missing = [key for key in watcher.shown if key not in watcher.stored]
    assert len(watcher.shown) == 2 * n, f"the stand-in showed {len(watcher.shown)} ticks"
    assert not missing, f"ticks never stored: {missing[:5]}"
    assert len(watcher.replied) == len(watcher.to_reply), "not every customer replied"
    with run.db.session() as session:
        statuses = Counter(str(s.value) for s in session.scalars(select(Message.status)))
        assert statuses == {"read": n}, statuses
        stored = session.execute(
            select(Inbound.phone, Inbound.provider_message_id, Inbound.body, Message.phone)
            .outerjoin(Message, Message.id == Inbound.message_id)
            .where(Inbound.campaign_id == run.campaign_id)
        ).all()
        assert len(stored) == len(watcher.replied), (len(stored), len(watcher.replied))
        for phone, provider_id, body, answered in stored:
            incoming = watcher.replied[phone]
            assert provider_id == incoming["data_id"] and body == incoming["text"], phone
            assert answered == phone, (phone, answered)
        replied = session.scalar(
            select(func.count()).select_from(Message).where(Message.replied_at.is_not(None))
        )
        assert replied == len(watcher.replied), replied
        stop = next(p for p, text in watcher.to_reply.items() if text == "STOP")
        out = session.scalars(select(Contact.phone).where(Contact.opted_out_at.is_not(None)))
        assert list(out) == [stop], list(out)


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
    for block in (1, 2, 3):
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
        per_hearing, watcher = hearing(fake, work, n)
        print(f"product hearing back (ticks, replies):   {per_hearing:.3f} s/message")
        per_naive = naive(fake, work, n)
        print(f"naive (load, wait, send):                {per_naive:.3f} s/message")
        check(fake, n)
    finally:
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    lags = watcher.lags()
    lag_max = max(lag for _, _, lag in lags) / PACE_SECONDS
    sending_max = max((lag for phase, _, lag in lags if phase == "sending"), default=0.0)
    print(f"pacing floor:                            {PACE_SECONDS:.3f} s/message")
    print(
        f"product is {per_product / PACE_SECONDS:.3f}x the pacing floor, "
        f"{per_hearing / PACE_SECONDS:.3f}x hearing back (target at most {TARGET_FACTOR}x); "
        f"naive is {per_naive / per_product:.2f}x slower than the product"
    )
    print(
        f"hearing back: {2 * n} ticks and {len(watcher.replied)} replies (one STOP) stored, "
        "each once. Lag from the stand-in showing one to the database holding it, in "
        f"{PACE_SECONDS:g} s pacing intervals (target at most {TARGET_LAG_INTERVALS:g}), "
        "median / max (count):"
    )
    gaps = [b - a for a, b in zip(watcher.sends, watcher.sends[1:], strict=False)]
    print(
        f"  sends hearing back: {median(gaps):.2f} s apart (median), the longest gap "
        f"{max(gaps):.2f} s (a look that opened a chat is to leave the pace alone)"
    )
    for phase, title in (("sending", "while sending"), ("idle", "after the last send")):
        cells = []
        for what in ("delivered", "read", "reply"):
            got = [lag / PACE_SECONDS for p, w, lag in lags if p == phase and w == what]
            if got:
                cells.append(f"{what} {median(got):.2f} / {max(got):.2f} ({len(got)})")
        if cells:
            print(f"  shown {title}: " + ", ".join(cells))
    summary = {
        "bench": "web_channel",
        "unit": "seconds per message",
        "product": round(per_product, 3),
        "baseline": {"pacing_floor": PACE_SECONDS, "naive_sequential": round(per_naive, 3)},
        "ratio": {
            "floor_over_product": round(PACE_SECONDS / per_product, 3),
            "naive_over_product": round(per_naive / per_product, 3),
            "floor_over_product_hearing": round(PACE_SECONDS / per_hearing, 3),
        },
        "target": {
            "floor_over_product": round(1 / TARGET_FACTOR, 3),
            "floor_over_product_hearing": round(1 / TARGET_FACTOR, 3),
            "lag_intervals_max": TARGET_LAG_INTERVALS,
        },
        "messages": n,
        "product_hearing": round(per_hearing, 3),
        "lag_intervals_max": round(lag_max, 2),
        "lag_intervals_max_while_sending": round(sending_max / PACE_SECONDS, 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
