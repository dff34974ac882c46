"""What the Cloud API benchmarks share: the fake Graph API as its own process, and a SQLite
instance with one Cloud API sender, contacts and a launched template campaign.

- The fake runs as `python -m tests.fakes.cloud_api --no-rate-limit`, so its event loop has
  a core of its own instead of sharing the product's GIL.
- The sender is made the way the Senders page makes it (`create_sender` with the secret key,
  then the connection check and the template sync against the fake); only its messages per
  second is then raised past the form's 1,000, out of the dispatcher's way.
- The campaign uses an approved template whose body variable is the contact's name, so
  every message is rendered for its recipient.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_setup import FIRST, LAST, connect, stamp

ROOT = Path(__file__).resolve().parent.parent
PNID, WABA = "106540352242922", "102290129340398"
# The fake's credentials, made up for this run.
TOKEN = "EAAGbenchTOKEN-0123456789abcdef"  # noqa: S105
APP_SECRET = "benchAPPsecret-0f1e2d3c4b5a6978"  # noqa: S105
VERIFY = "bench-verify-token-0001"
SECRET_KEY = "bench-secret-key-not-for-production-0123456789"  # noqa: S105
TEMPLATE, LANGUAGE = "order_ready", "en_US"
TEMPLATE_TEXT = "Hello {{1}}, your order is ready. Reply STOP to opt out."
SENDER = "Bench Cloud"
OWNER = "bench:cloud"
RATE = 100_000.0  # messages per second: out of the dispatcher's way
SEED = 20261205


class Fake:
    """`python -m tests.fakes.cloud_api` on a free port, until `stop()`."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.cloud_api", "--port", "0", "--no-rate-limit"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("http"):
            self.stop()
            raise SystemExit(f"the fake Cloud API did not start: {line!r}")
        self.url = line
        # Keep its pipe drained (it prints nothing more, but a full pipe would block it).
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def control(self, action: str, **kwargs: Any) -> Any:
        request = urllib.request.Request(  # noqa: S310 (loopback)
            f"{self.url}/_control/{action}",
            data=json.dumps(kwargs).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (loopback)
            return json.loads(answer.read())["result"]

    def read(self, what: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/_control/{what}", timeout=120) as answer:  # noqa: S310
            return json.loads(answer.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def prepare_fake(fake: Fake) -> None:
    fake.control(
        "add_number",
        phone_number_id=PNID,
        waba_id=WABA,
        token=TOKEN,
        app_secret=APP_SECRET,
        tier="TIER_UNLIMITED",
        throughput="HIGH",
    )
    fake.control(
        "add_template",
        waba_id=WABA,
        name=TEMPLATE,
        language=LANGUAGE,
        category="MARKETING",
        components=[
            {"type": "BODY", "text": TEMPLATE_TEXT, "example": {"body_text": [["Asha"]]}},
        ],
    )


def phone(i: int) -> str:
    return f"+91{9_100_000_000 + i}"


@dataclass
class Instance:
    path: Path  # the SQLite file
    instance: Path  # the instance folder (dry-run logs, media)
    sender_id: int
    campaign_id: int
    n: int

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"


def linked_sender(
    db: Any, fake_url: str, *, name: str, timezone: str, settings: dict[str, Any] | None = None
) -> int:
    """A Cloud API sender made, checked and synced against the fake as the Senders page does,
    then its messages per second raised to RATE and `settings` added to its settings."""
    from wabulk.models import Sender, SenderState
    from wabulk.senders import cloud
    from wabulk.senders.service import Keys, SenderInput, create_sender

    options = {"cloud_api_url": fake_url}
    with db.session() as session:
        sender = create_sender(
            session,
            None,
            SenderInput(
                name=name,
                channel="cloud_api",
                timezone=timezone,
                settings={
                    "phone_number_id": PNID,
                    "waba_id": WABA,
                    "access_token": TOKEN,
                    "app_secret": APP_SECRET,
                    "verify_token": VERIFY,
                },
                max_per_second=1000,
            ),
            Keys(SECRET_KEY),
        )
        checked = cloud.check_connection(session, sender, SECRET_KEY, options)
        if checked.problem:
            raise SystemExit(f"the sender's connection check failed: {checked.problem}")
        synced = cloud.sync_templates(session, sender, SECRET_KEY, options)
        if synced.problem:
            raise SystemExit(f"the template sync failed: {synced.problem}")
        sender_id = sender.id
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender is not None and sender.state == SenderState.LINKED, sender
        if (sender.health or {}).get("messaging_tier") != "TIER_UNLIMITED":
            raise SystemExit(f"the sender's tier is not unlimited: {sender.health}")
        sender.max_per_second = RATE  # past the form's ceiling: the fake has no limit here
        if settings:
            sender.settings = {**(sender.settings or {}), **settings}
    return sender_id


def order_template(session: Any) -> Any:
    """The approved template the campaigns send (synced from the fake by `linked_sender`),
    its body variable filled with the contact's name."""
    from wabulk.models import Template

    template = Template(
        name="Order ready",
        body="",
        cloud_template_name=TEMPLATE,
        cloud_language=LANGUAGE,
        cloud_parameters={"body.1": "{{ name }}"},
    )
    session.add(template)
    session.flush()
    return template


def build(folder: Path, n: int, fake_url: str) -> Instance:
    """A migrated SQLite instance with n contacts in a list, the Cloud API sender checked and
    its templates synced against the fake, and the template campaign launched (all queued)."""
    from wabulk import migrate
    from wabulk.campaigns import lifecycle
    from wabulk.campaigns.service import DraftInput, save_draft
    from wabulk.db import Database

    instance = folder / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "wabulk.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    db.dispose()

    rng = random.Random(SEED)
    now = stamp(datetime.now(UTC))
    con = connect(path)
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO contacts (phone, name, attributes, country, timezone, created_at, "
        "updated_at) VALUES (?, ?, '{}', 'IN', 'Asia/Kolkata', ?, ?)",
        [(phone(i), f"{rng.choice(FIRST)} {rng.choice(LAST)}", now, now) for i in range(n)],
    )
    list_id = con.execute(
        "INSERT INTO contact_lists (name, created_at) VALUES ('Bench', ?) RETURNING id", (now,)
    ).fetchone()[0]
    con.execute(
        "INSERT INTO contact_list_members (list_id, contact_id, added_at) "
        "SELECT ?, id, ? FROM contacts",
        (list_id, now),
    )
    con.execute("COMMIT")
    con.close()

    db = Database(f"sqlite:///{path}")
    sender_id = linked_sender(db, fake_url, name=SENDER, timezone="Asia/Kolkata")
    with db.session() as session:
        template = order_template(session)
        campaign = save_draft(
            session,
            None,
            DraftInput(
                name="Bench Cloud API",
                list_ids=[list_id],
                sender_ids=[sender_id],
                template_id=template.id,
            ),
        )
        campaign_id = campaign.id
    with db.session() as session:
        launched = lifecycle.launch(session, None, campaign_id).total
    db.dispose()
    if launched != n:
        raise SystemExit(f"the launch queued {launched:,} messages, expected {n:,}")
    return Instance(path, instance, sender_id, campaign_id, n)


def drive(inst: Instance, fake_url: str) -> dict[str, Any]:
    """Step one real `Lane` until the campaign has nothing queued; wall seconds and steps."""
    from sqlalchemy import text

    from wabulk.db import Database
    from wabulk.dispatch.lane import Lane
    from wabulk.models import Campaign

    db = Database(inst.url)
    with db.session() as session:  # connect (pragmas) before the clock starts
        session.execute(text("SELECT 1"))
    lane = Lane(
        db,
        inst.sender_id,
        OWNER,
        inst.instance,
        lease_seconds=120,
        options={"cloud_api_url": fake_url},
        secret_key=SECRET_KEY,
    )
    steps = waits = 0
    start = time.perf_counter()
    try:
        while True:
            wait = lane.step()
            steps += 1
            if wait is None:
                with db.session() as session:
                    campaign = session.get(Campaign, inst.campaign_id)
                    assert campaign is not None
                    queued, sending = campaign.n_queued, campaign.n_sending
                if queued == 0 and sending == 0:
                    break
                raise SystemExit(f"the lane went idle with {queued:,} queued, {sending:,} sending")
            if wait > 0:
                waits += 1
                time.sleep(min(wait, 1.0))
            if steps > 1_000_000:
                raise SystemExit("the lane did not finish")
        seconds = time.perf_counter() - start
    finally:
        lane.close()
        db.dispose()
    return {"seconds": seconds, "steps": steps, "waits": waits}


def sent_rows(path: Path, campaign_id: int) -> list[tuple]:
    """(id, status, attempts, provider id, contact name) of the campaign's messages, by id."""
    con = connect(path)
    rows = con.execute(
        "SELECT m.id, m.status, m.attempts, m.provider_message_id, c.name FROM messages m "
        "JOIN contacts c ON c.id = m.contact_id WHERE m.campaign_id = ? ORDER BY m.id",
        (campaign_id,),
    ).fetchall()
    con.close()
    return rows


def check_sends(inst: Instance, records: list[dict[str, Any]]) -> None:
    """Stop unless the fake accepted exactly one send per message, each with its recipient's
    name and the wamid stored on the row, and every row is `sent` after one attempt."""
    rows = sent_rows(inst.path, inst.campaign_id)
    problems = []
    if len(rows) != inst.n:
        problems.append(f"{len(rows):,} rows, expected {inst.n:,}")
    if len(records) != inst.n:
        problems.append(f"the fake counted {len(records):,} sends for {inst.n:,} messages")
    by_id: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_id.setdefault(int(record["callback"]), []).append(record)
    doubled = sum(1 for sends in by_id.values() if len(sends) > 1)
    lost = sum(1 for row in rows if row[0] not in by_id)
    if doubled or lost:
        problems.append(f"{lost:,} messages never reached the fake, {doubled:,} reached it twice")
    wrong = []
    for mid, status, attempts, wamid, name in rows:
        sends = by_id.get(mid)
        if not sends:
            continue
        body = sends[0]["body"]
        value = body["template"]["components"][0]["parameters"][0]["text"]
        if status != "sent" or attempts != 1 or wamid != sends[0]["wamid"] or value != name:
            wrong.append(mid)
    if wrong:
        problems.append(
            f"{len(wrong):,} messages with a wrong state, wamid or name, e.g. #{wrong[0]}"
        )
    con = connect(inst.path)
    counters = con.execute(
        "SELECT total, n_queued, n_sending, n_sent, n_failed, n_unknown FROM campaigns "
        "WHERE id = ?",
        (inst.campaign_id,),
    ).fetchone()
    con.close()
    if counters != (inst.n, 0, 0, inst.n, 0, 0):
        problems.append(
            f"campaign counters (total, queued, sending, sent, failed, unknown) = {counters}"
        )
    if problems:
        raise SystemExit("the campaign is wrong: " + "; ".join(problems))
