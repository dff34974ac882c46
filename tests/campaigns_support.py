"""Builders and a fake-clock driver for campaign and dispatch tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from wabulk.campaigns import lifecycle
from wabulk.campaigns.service import DraftInput, campaign_counts_by_status, save_draft
from wabulk.contacts.bulk import add_members
from wabulk.db import Database
from wabulk.dispatch.lane import Lane
from wabulk.models import Campaign, Contact, ContactList, Message, MessageStatus, utcnow
from wabulk.senders.service import SenderInput, create_sender


@dataclass
class FakeClock:
    current: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def make_contacts(
    db: Database,
    phones: Iterable[str],
    list_name: str,
    attributes: dict | None = None,
    timezone: str | None = None,
) -> int:
    """Contacts (created or reused by phone) in a list (created if new); returns the list id."""
    with db.session() as session:
        lst = session.scalar(select(ContactList).where(ContactList.name == list_name))
        if lst is None:
            lst = ContactList(name=list_name)
            session.add(lst)
            session.flush()
        ids = []
        for i, phone in enumerate(phones):
            contact = session.scalar(select(Contact).where(Contact.phone == phone))
            if contact is None:
                contact = Contact(
                    phone=phone,
                    name=f"Person {i}",
                    attributes=dict(attributes or {}),
                    timezone=timezone,
                )
                session.add(contact)
                session.flush()
            ids.append(contact.id)
        add_members(session, lst.id, ids, utcnow())
        return lst.id


def phones(n: int, prefix: str = "+9198765") -> list[str]:
    width = 12 - len(prefix) + 1
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


def make_sender(db: Database, name: str = "Rehearsal", **pacing: object) -> int:
    settings = pacing.pop("settings", {})
    timezone = str(pacing.pop("timezone", "UTC"))
    with db.session() as session:
        sender = create_sender(
            session,
            None,
            SenderInput(name=name, timezone=timezone, pacing=dict(pacing), settings=settings),  # type: ignore[arg-type]
        )
        return sender.id


def make_campaign(
    db: Database,
    list_ids: list[int],
    sender_ids: list[int],
    body: str = "Hello {{ name }}",
    launch: bool = True,
    **extra: object,
) -> int:
    with db.session() as session:
        campaign = save_draft(
            session,
            None,
            DraftInput(
                name=str(extra.pop("name", "Spring sale")),
                list_ids=list_ids,
                sender_ids=sender_ids,
                body=body,
                **extra,  # type: ignore[arg-type]
            ),
        )
        campaign_id = campaign.id
    if launch:
        with db.session() as session:
            lifecycle.launch(session, None, campaign_id)
    return campaign_id


def counters(db: Database, campaign_id: int) -> dict[str, int]:
    with db.session() as session:
        c = session.get(Campaign, campaign_id)
        assert c is not None
        return {s.value: getattr(c, f"n_{s.value}") for s in MessageStatus}


def assert_counters_exact(db: Database, campaign_id: int) -> None:
    with db.session() as session:
        rows = campaign_counts_by_status(session, campaign_id)
        total = session.scalar(
            select(func.count()).select_from(Message).where(Message.campaign_id == campaign_id)
        )
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        assert campaign.total == total
    assert counters(db, campaign_id) == rows


def status_counts(db: Database, campaign_id: int) -> Counter[MessageStatus]:
    """How many of the campaign's rows are in each status, read from the rows (statuses no
    row has are left out)."""
    with db.session() as session:
        rows = session.execute(
            select(Message.status, func.count())
            .where(Message.campaign_id == campaign_id)
            .group_by(Message.status)
        ).all()
    return Counter({status: n for status, n in rows})


def make_lane(
    db: Database,
    sender_id: int,
    instance: Path,
    clock: FakeClock,
    seed: int = 1,
    owner: str = "test:1",
) -> Lane:
    import random

    return Lane(
        db, sender_id, owner, instance, lease_seconds=120, clock=clock, rng=random.Random(seed)
    )


def drive(lanes: list[Lane], clock: FakeClock, db: Database, max_steps: int = 100_000) -> None:
    """Run lanes in time order under the fake clock until no message is left to send.

    When every lane is idle but messages wait for a later time (a retry, a recipient's
    morning), the clock jumps to the earliest of them.
    """
    due = {id(lane): clock.now() for lane in lanes}
    idle: set[int] = set()
    for _ in range(max_steps):
        active = [lane for lane in lanes if id(lane) not in idle]
        if not active:
            with db.session() as session:
                nxt = session.scalar(
                    select(func.min(Message.next_attempt_at)).where(
                        Message.status == MessageStatus.QUEUED
                    )
                )
                running = session.scalar(
                    select(func.count()).select_from(Campaign).where(Campaign.status == "running")
                )
            if nxt is None or not running:
                return
            clock.current = max(clock.current, nxt)
            idle.clear()
            due = {id(lane): clock.now() for lane in lanes}
            continue
        lane = min(active, key=lambda ln: due[id(ln)])
        clock.current = max(clock.current, due[id(lane)])
        wait = lane.step()
        if wait is None:
            idle.add(id(lane))
        else:
            due[id(lane)] = clock.now() + timedelta(seconds=wait)
    raise AssertionError("lanes did not finish")


def step_through_failures(
    lane: Lane,
    clock: FakeClock,
    on_failure: Callable[[Exception], None] | None = None,
    max_steps: int = 200,
) -> list[Exception]:
    """Step one lane until it is idle (steps, not seconds), as the worker does: a step that
    raises is retried at once. Returns what the failed steps raised; the lane is closed."""
    failures: list[Exception] = []
    for _ in range(max_steps):
        try:
            wait = lane.step()
        except Exception as exc:
            failures.append(exc)
            if on_failure is not None:
                on_failure(exc)
            wait = 0.0
        if wait is None:
            break
        clock.advance(wait)
    lane.close()
    return failures


def assert_each_sent_once(db: Database, campaign_id: int, instance: Path, sender: str) -> None:
    """Every message of the campaign is sent, and the dry-run channel took each exactly once."""
    from wabulk.channels.dry_run import log_path, read_log

    with db.session() as session:
        statuses = dict(
            session.execute(  # type: ignore[arg-type]
                select(Message.status, func.count())
                .where(Message.campaign_id == campaign_id)
                .group_by(Message.status)
            ).all()
        )
        ids = set(session.scalars(select(Message.id).where(Message.campaign_id == campaign_id)))
    assert statuses == {MessageStatus.SENT: len(ids)}
    delivered = Counter(int(d["message_id"]) for d in read_log(log_path(instance, sender)))  # type: ignore[call-overload]
    assert set(delivered) == ids and set(delivered.values()) == {1}
    assert_counters_exact(db, campaign_id)
