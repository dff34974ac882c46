"""Campaigns through the real WhatsApp Web channel (Chromium + the stand-in), end to end in
the engine: linking in the lane, every failure mode ending in a clear state, nothing lost
and nothing sent twice."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from wabulk import migrate
from wabulk.campaigns import lifecycle
from wabulk.campaigns.media import save_media
from wabulk.channels.dry_run import log_path, read_log
from wabulk.channels.whatsapp_web import browser
from wabulk.db import Database
from wabulk.dispatch import recovery
from wabulk.dispatch.lane import Lane
from wabulk.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Message,
    MessageStatus,
    Sender,
    SenderState,
    utcnow,
)
from wabulk.senders.service import SenderInput, create_sender

from ..campaigns_support import assert_counters_exact, make_campaign, make_contacts, make_sender
from ..fakes.whatsapp_web import FakeWhatsAppWeb
from ..web_channel_support import ACCOUNT, options, pdf_file, wait_for

pytestmark = pytest.mark.browser

QUICK = {
    "min_delay_seconds": 0.1,
    "max_delay_seconds": 0.2,
    "daily_cap": "",
    "break_every": "",
    "break_seconds": "",
}
BODY = (
    "Hello {{ name }} 😀\nOur Diwali price list is attached.\n100% genuine + free delivery & more"
)


@pytest.fixture
def sqlite_db(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'web.db'}")
    migrate.upgrade(db.engine)
    yield db
    db.dispose()


def web_sender(db: Database, name: str = "Shop phone") -> int:
    with db.session() as session:
        return create_sender(
            session, None, SenderInput(name=name, channel="whatsapp_web", pacing=dict(QUICK))
        ).id


def lane_for(db: Database, sender_id: int, instance: Path, fake: FakeWhatsAppWeb, owner: str):  # type: ignore[no-untyped-def]
    return Lane(db, sender_id, owner, instance, lease_seconds=60, options=options(fake, 6))


def run(lanes: list[Lane], db: Database, until, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    """Step lanes on the real clock (browsers are real) until `until()` holds."""
    deadline = time.monotonic() + timeout
    waits = dict.fromkeys(range(len(lanes)), 0.0)
    due = dict.fromkeys(range(len(lanes)), time.monotonic())
    while time.monotonic() < deadline:
        with db.session() as session:
            lifecycle.complete_finished(session, utcnow())
            lifecycle.pause_orphaned(session)
        if until():
            return
        now = time.monotonic()
        for i, lane in enumerate(lanes):
            if now >= due[i]:
                wait = lane.step()
                waits[i] = 0.5 if wait is None else min(wait, 0.5)
                due[i] = time.monotonic() + waits[i]
        time.sleep(max(0.0, min(due.values()) - time.monotonic()))
    raise AssertionError("the lanes did not get there in time")


def sender_row(db: Database, sender_id: int) -> Sender:
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender is not None
        session.expunge(sender)
        return sender


def campaign_row(db: Database, campaign_id: int) -> Campaign:
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        session.expunge(campaign)
        return campaign


def link_in_lane(db: Database, lane: Lane, sender_id: int, fake: FakeWhatsAppWeb) -> None:
    run([lane], db, lambda: (sender_row(db, sender_id).link_qr or "").startswith("data:image/png"))
    assert fake.scan(phone=ACCOUNT)
    run([lane], db, lambda: sender_row(db, sender_id).state == SenderState.LINKED)


def test_link_then_a_campaign_with_emoji_line_breaks_and_a_pdf(
    migrated_db: Database, fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    db = migrated_db
    instance = tmp_path / "instance"
    sender_id = web_sender(db)
    assert sender_row(db, sender_id).state == SenderState.NEEDS_LINK
    phones = [f"+91981230{i:04d}" for i in range(1, 5)] + ["+919812340000"]  # last: no WhatsApp
    list_id = make_contacts(db, phones, "Diwali")
    pdf = pdf_file(tmp_path)
    with db.session() as session:
        media_id = save_media(
            session, io.BytesIO(pdf.read_bytes()), "Price list.pdf", instance, 10**6
        ).id
    lane = lane_for(db, sender_id, instance, fake, "worker:1")
    try:
        link_in_lane(db, lane, sender_id, fake)
        linked = sender_row(db, sender_id)
        assert linked.phone == ACCOUNT and linked.link_qr is None
        campaign_id = make_campaign(db, [list_id], [sender_id], body=BODY, media_id=media_id)
        run([lane], db, lambda: campaign_row(db, campaign_id).status == CampaignStatus.COMPLETED)
    finally:
        lane.close()

    got = fake.messages()
    with db.session() as session:
        contacts = {c.phone: c for c in session.scalars(select(Contact))}
        rows = {m.phone: m for m in session.scalars(select(Message))}
    for i, phone in enumerate(phones[:4]):
        mine = [(m["kind"], m["filename"], m["text"]) for m in got if m["phone"] == phone[1:]]
        name = contacts[phone].name
        expected = BODY.replace("{{ name }}", name or "")
        assert mine == [("document", "Price list.pdf", ""), ("text", None, expected)], i
        assert rows[phone].status == MessageStatus.SENT
    invalid = rows["+919812340000"]
    assert invalid.status == MessageStatus.FAILED and invalid.error_code == "not_on_whatsapp"
    assert contacts["+919812340000"].not_on_whatsapp_at is not None
    assert_counters_exact(db, campaign_id)
    # The next campaign leaves the number WhatsApp refused out from the start.
    again = make_campaign(db, [list_id], [sender_id], body="Second", name="Next")
    assert campaign_row(db, again).total == 4


def test_logout_mid_campaign_moves_the_rest_to_the_other_sender(
    sqlite_db: Database, fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    db, instance = sqlite_db, tmp_path / "instance"
    web_id = web_sender(db)
    dry_id = make_sender(db, "Backup", **QUICK)
    phones = [f"+91981231{i + 1:04d}" for i in range(12)]
    list_id = make_contacts(db, phones, "All")
    web_lane = lane_for(db, web_id, instance, fake, "worker:web")
    dry_lane = lane_for(db, dry_id, instance, fake, "worker:dry")
    try:
        link_in_lane(db, web_lane, web_id, fake)
        # WhatsApp confirms the second message, then logs out in the very next moment: the
        # tick is on screen for no poll to see, and the channel must know it sent anyway.
        fake.set(logout_after=2, faults_after_tick=True)
        campaign_id = make_campaign(db, [list_id], [web_id, dry_id], body="Hi {{ name }}")
        run(
            [web_lane, dry_lane],
            db,
            lambda: campaign_row(db, campaign_id).status == CampaignStatus.COMPLETED,
        )
    finally:
        web_lane.close()
        dry_lane.close()
    on_whatsapp = ["+" + m["phone"] for m in fake.messages()]
    rehearsed = [str(r["phone"]) for r in read_log(log_path(instance, "Backup"))]
    assert len(on_whatsapp) == 2
    assert Counter(on_whatsapp + rehearsed) == Counter(phones)  # each exactly once
    sender = sender_row(db, web_id)
    assert sender.state == SenderState.NEEDS_LINK and "logged this phone out" in (
        sender.state_reason or ""
    )
    assert_counters_exact(db, campaign_id)
    assert campaign_row(db, campaign_id).n_sent == 12


def test_a_logout_before_whatsapp_confirms_leaves_that_message_unknown_and_sent_nowhere_else(
    sqlite_db: Database, fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    db, instance = sqlite_db, tmp_path / "instance"
    web_id = web_sender(db)
    dry_id = make_sender(db, "Backup", **QUICK)
    phones = [f"+91981234{i + 1:04d}" for i in range(6)]
    list_id = make_contacts(db, phones, "All")
    web_lane = lane_for(db, web_id, instance, fake, "worker:web")
    dry_lane = lane_for(db, dry_id, instance, fake, "worker:dry")

    def sent_by_web() -> int:
        with db.session() as session:
            return len(
                session.scalars(
                    select(Message.id).where(
                        Message.sender_id == web_id, Message.status == MessageStatus.SENT
                    )
                ).all()
            )

    try:
        link_in_lane(db, web_lane, web_id, fake)
        campaign_id = make_campaign(db, [list_id], [web_id, dry_id], body="Hi {{ name }}")
        run([web_lane, dry_lane], db, lambda: sent_by_web() == 1)
        # The lanes run in this thread, so nothing is in flight now. The next message
        # reaches the phone, but WhatsApp logs out before it confirms it (no tick ever
        # comes: the page's clock stays far longer than the test lasts).
        fake.set(logout_after=1, ack_delay=600)
        run(
            [web_lane, dry_lane],
            db,
            lambda: campaign_row(db, campaign_id).status == CampaignStatus.COMPLETED,
        )
    finally:
        web_lane.close()
        dry_lane.close()
    on_whatsapp = ["+" + m["phone"] for m in fake.messages()]
    rehearsed = [str(r["phone"]) for r in read_log(log_path(instance, "Backup"))]
    assert len(on_whatsapp) == 2
    assert Counter(on_whatsapp + rehearsed) == Counter(phones)  # each exactly once
    with db.session() as session:
        unknown = session.scalars(
            select(Message).where(Message.status == MessageStatus.UNKNOWN)
        ).all()
        assert [m.phone for m in unknown] == [on_whatsapp[1]]  # not given to the backup
        assert "Check the chat" in (unknown[0].error_detail or "")
    assert sender_row(db, web_id).state == SenderState.NEEDS_LINK
    campaign = campaign_row(db, campaign_id)
    assert campaign.n_sent == 5 and campaign.n_unknown == 1
    assert_counters_exact(db, campaign_id)


@pytest.mark.parametrize(
    ("fault", "state", "reason"),
    [
        ("logout_after", SenderState.NEEDS_LINK, "logged"),
        ("use_here_after", SenderState.IN_USE, "Use here"),
    ],
)
def test_the_only_sender_lost_pauses_the_campaign_and_keeps_the_rest_queued(
    sqlite_db: Database,
    fake: FakeWhatsAppWeb,
    tmp_path: Path,
    fault: str,
    state: SenderState,
    reason: str,
) -> None:
    db, instance = sqlite_db, tmp_path / "instance"
    sender_id = web_sender(db)
    phones = [f"+91981232{i + 1:04d}" for i in range(6)]
    list_id = make_contacts(db, phones, "All")
    lane = lane_for(db, sender_id, instance, fake, "worker:1")
    try:
        link_in_lane(db, lane, sender_id, fake)
        fake.set(**{fault: 3}, faults_after_tick=True)
        campaign_id = make_campaign(db, [list_id], [sender_id], body="Hi")
        run([lane], db, lambda: campaign_row(db, campaign_id).status == CampaignStatus.PAUSED)
    finally:
        lane.close()
    assert len(fake.messages()) == 3
    sender = sender_row(db, sender_id)
    assert sender.state == state and reason in (sender.state_reason or "")
    campaign = campaign_row(db, campaign_id)
    assert campaign.n_sent == 3 and campaign.n_queued == 3 and campaign.n_sending == 0
    assert sender.name in (campaign.status_reason or "")
    assert_counters_exact(db, campaign_id)


def test_a_browser_killed_mid_send_is_reconciled_without_duplicates(
    sqlite_db: Database, fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    db, instance = sqlite_db, tmp_path / "instance"
    sender_id = web_sender(db)
    phones = [f"+91981233{i + 1:04d}" for i in range(5)]
    list_id = make_contacts(db, phones, "All")
    lane = lane_for(db, sender_id, instance, fake, "worker:1")
    try:
        link_in_lane(db, lane, sender_id, fake)
        profile = browser.profile_folder(instance, "Shop phone")
        fake.set(kill_browser_after=2, kill_profile=str(profile))
        campaign_id = make_campaign(db, [list_id], [sender_id], body="Only once {{ name }}")
        run([lane], db, lambda: campaign_row(db, campaign_id).status == CampaignStatus.COMPLETED)
    finally:
        lane.close()
    assert Counter("+" + m["phone"] for m in fake.messages()) == Counter(phones)
    assert campaign_row(db, campaign_id).n_sent == 5
    assert_counters_exact(db, campaign_id)


ORPHAN = """
import sys, time
from pathlib import Path
from wabulk.channels.whatsapp_web import browser
driver = browser.start(browser.BrowserOptions(user_data_dir=Path(sys.argv[1])))
print("ready", flush=True)
time.sleep(600)
"""


def test_recovery_after_a_killed_worker_stops_its_orphaned_chrome_and_reads_the_chat(
    sqlite_db: Database, fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    db, instance = sqlite_db, tmp_path / "instance"
    sender_id = web_sender(db)
    phones = ["+919812340001", "+919812340002"]
    list_id = make_contacts(db, phones, "All")
    lane = lane_for(db, sender_id, instance, fake, "worker:dead")
    try:
        link_in_lane(db, lane, sender_id, fake)
        campaign_id = make_campaign(db, [list_id], [sender_id], body="Recovered {{ name }}")
        # The worker sent the first message, then died before settling either.
        run([lane], db, lambda: campaign_row(db, campaign_id).n_sent == 1, timeout=60)
    finally:
        lane.channel.close() if lane.channel else None
    with db.session() as session:
        first = session.scalar(select(Message).where(Message.status == MessageStatus.SENT))
        assert first is not None
        first.status = MessageStatus.SENDING  # as if the settle never happened
        session.execute(
            Message.__table__.update().values(
                status=MessageStatus.SENDING,
                lease_owner="worker:dead",
                lease_until=utcnow(),
                sender_id=sender_id,
            )
        )
        rest = session.scalar(select(Message).where(Message.phone == "+919812340002"))
        assert rest is not None
        rest.body = "Recovered Person 1"
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.n_sent, campaign.n_queued, campaign.n_sending = 0, 0, 2
        sender = session.get(Sender, sender_id)
        assert sender is not None
        sender.lease_owner, sender.lease_until = "worker:dead", utcnow()
    # The dead worker's Chrome is still running on the sender's profile.
    orphan_parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(browser.profile_folder(instance, "Shop phone"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert orphan_parent.stdout is not None and orphan_parent.stdout.readline().strip() == "ready"
    os.kill(orphan_parent.pid, signal.SIGKILL)
    orphan_parent.wait()
    orphan_parent.stdout.close()
    profile = browser.profile_folder(instance, "Shop phone")
    orphan = wait_for(lambda: browser._lock_owner(profile), what="the orphaned Chrome")
    time.sleep(0.2)
    now, hold = utcnow(), timedelta(seconds=1)
    for moment in (now, now + 2 * hold):  # taken, then asked a hold later
        with db.session() as session:
            settled = recovery.expire_stale_leases(
                session,
                instance,
                moment,
                alive_owner="worker:new",
                options=options(fake, 6),
                hold=hold,
            )
        assert settled == 2
    assert (
        not Path(f"/proc/{orphan}").exists()
        or "Z" in Path(f"/proc/{orphan}/stat").read_text().split()[2]
    )
    with db.session() as session:
        status = {m.phone: m.status for m in session.scalars(select(Message))}
    assert status == {"+919812340001": MessageStatus.SENT, "+919812340002": MessageStatus.QUEUED}
    assert len(fake.messages()) == 1
    assert_counters_exact(db, campaign_id)
    assert sender_row(db, sender_id).lease_owner is None  # recovery gave the sender back


def test_a_browser_that_cannot_start_says_what_to_install(
    sqlite_db: Database, fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    db = sqlite_db
    sender_id = web_sender(db)
    lane = Lane(
        db,
        sender_id,
        "worker:1",
        tmp_path / "instance",
        lease_seconds=60,
        options=options(fake) | {"chromedriver": str(tmp_path / "no-such-chromedriver")},
    )
    try:
        run([lane], db, lambda: sender_row(db, sender_id).state == SenderState.BROWSER_FAILED)
    finally:
        lane.close()
    sender = sender_row(db, sender_id)
    assert "WABULK_CHROMEDRIVER" in (sender.state_reason or "")
    assert "apt-get install chromium chromium-driver" in (sender.state_reason or "")
    assert sender.link_requested_until is None  # stops trying until someone asks again
