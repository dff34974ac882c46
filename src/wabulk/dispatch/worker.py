"""The dispatcher: background loops of small steps that drain, sleep, and stop cleanly.

- Each loop's step does one round of work and says whether it found any; the loop repeats
  at once while there is work and sleeps its poll interval when there is none.
- Loops run in their own threads so a long import never delays message work.
- The "campaigns" loop starts scheduled campaigns, completes finished ones, and keeps
  one sending lane (lane.py) running per sender that has work, each in its own thread,
  so a slow browser never holds up another account. A linked WhatsApp Web sender keeps
  its lane for its hearing period after its last send, reading ticks and replies
  (hearing.py); the lane itself ends when that period does.
- An error in a step is logged and the loop carries on after a pause: one bad row must
  not crash-loop the process.
- The "templates" loop re-reads each linked Cloud API sender's templates from Meta once an
  hour (senders/cloud.py `sync_due`); it wakes every minute to see whose hour is up.
- The "receipts" loop applies stored webhook deliveries (receipts.py); the receiver in
  this process wakes it at once, and it polls every second for those stored by others.
- The "heartbeat" loop keeps this process's `workers` row fresh (registry.py): what it
  holds, its sends a minute and counters. A database that drops the connection only costs
  a logged beat; the next one reconnects (or registers again if the row went).
- A worker drives only the senders it may (`may_drive`): those its `--senders` list names
  (all when empty) and whose worker label, if any, is one of its labels; a WhatsApp Web
  account's browser profile lives on one machine.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DisconnectionError, OperationalError

from ..campaigns import followups, lifecycle, recurrence
from ..config import Settings
from ..contacts import importer
from ..db import Database
from ..models import (
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
    Sender,
    SenderState,
    campaign_senders,
    utcnow,
)
from ..outbox import delivery as webhooks_out
from ..outbox import retention
from ..senders import cloud, cooldown
from ..senders.service import name_key
from . import hearing, receipts, registry, tally
from .lane import Lane
from .recovery import expire_stale_leases

log = logging.getLogger(__name__)


def worker_identity() -> str:
    """Unique per process, readable in the lease columns: host:pid:random."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _log_failure(exc: Exception, message: str, *args: object) -> None:
    """A database that went away (a restart, a failover) or stayed locked is one line per
    failed step, not a traceback a second; anything else keeps its traceback, being a bug."""
    if isinstance(exc, OperationalError | DisconnectionError):
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [""])[0][:200]
        log.warning(message + ": the database did not answer (%s)", *args, first)
    else:
        log.exception(message, *args)


class _Stopping(Exception):
    """Raised between import chunks when the process is shutting down."""


@dataclass
class Loop:
    name: str
    step: Callable[[], bool]
    poll_seconds: float
    # How an idle loop sleeps; None: until the poll interval passes or the process stops.
    sleep: Callable[[float], object] | None = None


class Dispatcher:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        name: str | None = None,
        labels: tuple[str, ...] | list[str] = (),
        only_senders: tuple[str, ...] | list[str] | None = None,
        embedded: bool = False,
    ) -> None:
        self.db = db
        self.settings = settings
        self.identity = worker_identity()
        self.name = (name or settings.worker_name or registry.this_host())[:100]
        self.labels = tuple(dict.fromkeys([*settings.worker_labels, *labels]))
        self.only_senders = tuple(only_senders or ())
        self._only_keys = frozenset(name_key(n) for n in self.only_senders)
        self.embedded = embedded
        self.stop_event = threading.Event()
        self._registered = False
        self._pruned_at = 0.0  # monotonic time of the last pruning of old worker rows
        self._importing: set[int] = set()
        self.loops = [
            Loop("messages", self.message_step, settings.worker_poll_seconds),
            Loop("campaigns", self.campaign_step, min(settings.worker_poll_seconds, 1.0)),
            Loop("imports", self.import_step, min(settings.worker_poll_seconds, 1.0)),
            Loop("templates", self.template_step, 60.0),
            # Webhook receipts: woken by the receiver in this process, polled for others'.
            Loop("receipts", self.receipt_step, 1.0, sleep=receipts.wait_for_nudge),
            # Outgoing webhooks: signed POSTs of the events endpoints subscribed to.
            Loop("webhooks", self.webhook_step, 1.0),
            Loop(
                "heartbeat",
                self.heartbeat_step,
                registry.heartbeat_seconds(settings.lease_seconds),
            ),
        ]
        self._threads: list[threading.Thread] = []
        self._lanes: dict[int, threading.Thread] = {}
        self._lanes_lock = threading.Lock()
        self._mature_after = 0.0  # monotonic time of the next look for due follow-ups

    def may_drive(self, sender: Any) -> bool:
        """Whether this worker may run a lane for `sender` (anything with `name` and
        `worker_label`)."""
        if self._only_keys and name_key(sender.name) not in self._only_keys:
            return False
        return sender.worker_label is None or sender.worker_label in self.labels

    def register(self) -> None:
        registry.register(
            self.db,
            identity=self.identity,
            name=self.name,
            labels=self.labels,
            only_senders=self.only_senders or None,
            embedded=self.embedded,
            lease_seconds=self.settings.lease_seconds,
        )
        self._registered = True

    def holds(self) -> dict[str, list[int]]:
        """Senders with a live lane, the running campaigns they serve, imports being run."""
        with self._lanes_lock:
            senders = sorted(sid for sid, t in self._lanes.items() if t.is_alive())
            imports = sorted(self._importing)
        campaigns: list[int] = []
        if senders:
            with self.db.session() as session:
                campaigns = sorted(
                    session.scalars(
                        select(campaign_senders.c.campaign_id)
                        .join(Campaign, Campaign.id == campaign_senders.c.campaign_id)
                        .where(
                            campaign_senders.c.sender_id.in_(senders),
                            Campaign.status == CampaignStatus.RUNNING,
                        )
                        .distinct()
                    )
                )
        return {"senders": senders, "campaigns": campaigns, "imports": imports}

    def heartbeat_step(self) -> bool:
        """Keep this worker's row fresh; never reports work, so the loop sleeps its beat."""
        if not self._registered:
            self.register()
        elif not registry.beat(
            self.db,
            self.identity,
            holds=self.holds(),
            per_minute=tally.per_minute(),
            stats=tally.snapshot(),
        ):
            log.warning("worker %s: its registry row was gone; registering again", self.name)
            self.register()
        if time.monotonic() - self._pruned_at > 3600:
            with self.db.session() as session:
                registry.prune(session)
            self._pruned_at = time.monotonic()
        return False

    def message_step(self) -> bool:
        with self.db.session() as session:
            recovered = expire_stale_leases(
                session,
                self.settings.instance_path,
                alive_owner=self.identity,
                options=self.settings.channel_options(),
                hold=timedelta(seconds=self.settings.lease_seconds),
                may_drive=self.may_drive,
            )
        return recovered > 0

    def campaign_step(self) -> bool:
        """Start due campaigns, complete finished ones, and run a lane per busy sender."""
        now = utcnow()
        with self.db.session() as session:
            recurrence.run_due(session, now)  # recurring campaigns' runs whose time came
        with self.db.session() as session:
            started = lifecycle.start_due(session, now)
        if time.monotonic() >= self._mature_after:  # follow-ups whose wait is over
            with self.db.session() as session:
                followups.mature(session, now)
            self._mature_after = time.monotonic() + followups.MATURE_SECONDS
        with self.db.session() as session:
            completed = lifecycle.complete_finished(session, now)
            lifecycle.pause_expired(session, now)
            cooldown.resume_due(session, now)
            lifecycle.pause_orphaned(session)
            lifecycle.skip_cancelled(session, now)
        with self.db.session() as session:
            busy = set(
                session.scalars(
                    select(Sender.id)
                    .join(campaign_senders, campaign_senders.c.sender_id == Sender.id)
                    .join(Campaign, Campaign.id == campaign_senders.c.campaign_id)
                    .where(
                        Sender.state == SenderState.LINKED,
                        Campaign.status == CampaignStatus.RUNNING,
                        Campaign.n_queued > 0,
                    )
                    .distinct()
                )
            )
            # WhatsApp Web senders still hearing back after their campaigns.
            busy.update(hearing.hearing_senders(session, now))
            # Senders with an answer from the Inbox to send (read through the claim's
            # index: answers are the rows with no campaign).
            busy.update(
                session.scalars(
                    select(Message.sender_id)
                    .join(Sender, Sender.id == Message.sender_id)
                    .where(
                        Message.campaign_id.is_(None),
                        Message.status == MessageStatus.QUEUED,
                        Message.next_attempt_at <= now,
                        Sender.state == SenderState.LINKED,
                    )
                    .distinct()
                )
            )
            # Senders being linked by QR: their lane opens the browser and shows the QR.
            busy.update(
                session.scalars(
                    select(Sender.id).where(
                        Sender.link_requested_until > now,
                        Sender.state != SenderState.DISABLED,
                    )
                )
            )
            if busy:
                allowed = session.execute(
                    select(Sender.id, Sender.name, Sender.worker_label).where(
                        Sender.id.in_(sorted(busy))
                    )
                ).all()
                busy = {row.id for row in allowed if self.may_drive(row)}
        with self._lanes_lock:
            for sender_id in busy:
                thread = self._lanes.get(sender_id)
                if thread is None or not thread.is_alive():
                    self._start_lane(sender_id)
        return bool(started or completed)

    def _start_lane(self, sender_id: int) -> None:
        lane = Lane(
            self.db,
            sender_id,
            self.identity,
            self.settings.instance_path,
            self.settings.lease_seconds,
            options=self.settings.channel_options(),
            secret_key=self.settings.secret_key,
        )
        thread = threading.Thread(
            target=self._run_lane, args=(lane,), name=f"wabulk-lane-{sender_id}", daemon=True
        )
        self._lanes[sender_id] = thread
        thread.start()

    def _run_lane(self, lane: Lane) -> None:
        """Step the lane until it runs out of work or the process stops."""
        idle_since: float | None = None
        try:
            while not self.stop_event.is_set():
                try:
                    wait = lane.step()
                except Exception as exc:
                    _log_failure(
                        exc, "sender %s: lane step failed; retrying after a pause", lane.sender_id
                    )
                    wait = self.settings.worker_poll_seconds
                if wait is None:
                    # Idle: linger a little (new work often follows), then give the sender back.
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 3 * self.settings.worker_poll_seconds:
                        return
                    wait = min(self.settings.worker_poll_seconds, 1.0)
                else:
                    idle_since = None
                if wait > 0:
                    self.stop_event.wait(wait)
        finally:
            try:
                lane.close()
            except Exception:
                log.exception("sender %s: could not release the lane cleanly", lane.sender_id)

    def receipt_step(self) -> bool:
        """Apply stored webhook deliveries (statuses, replies, opt-outs)."""
        return receipts.process_receipts(self.db) > 0

    def webhook_step(self) -> bool:
        """Post one batch of due outgoing webhooks (outbox/delivery.py); once an hour,
        drop the delivery log's rows past keeping (outbox/retention.py)."""
        retention.prune_now_and_then(self.db)
        return webhooks_out.deliver_due(self.db, self.settings.secret_key, self.identity) > 0

    def import_step(self) -> bool:
        """Run one queued (or abandoned) import to its end."""
        with self.db.session() as session:
            import_id = importer.claim_next(session, self.identity)
        if import_id is None:
            return False
        log.info("running import %s", import_id)
        with self._lanes_lock:
            self._importing.add(import_id)

        def stop_between_chunks(_imp: object) -> None:
            if self.stop_event.is_set():
                raise _Stopping

        try:
            importer.run(
                self.db,
                import_id,
                self.settings.instance_path,
                self.identity,
                progress=stop_between_chunks,
            )
        except _Stopping:
            with self.db.session() as session:
                importer.release(session, import_id, self.identity)
            log.info("import %s paused for shutdown; it resumes at the next start", import_id)
        finally:
            with self._lanes_lock:
                self._importing.discard(import_id)
        return True

    def template_step(self) -> bool:
        """Sync the templates of Cloud API senders whose hour is up; never reports work, so
        the loop always sleeps its minute after."""
        cloud.sync_due(self.db, self.settings, utcnow())
        return False

    def run_step(self) -> bool:
        """One step of every loop, in order (tests and single-threaded callers)."""
        found = [loop.step() for loop in self.loops]
        return any(found)

    def _run_loop(self, loop: Loop) -> None:
        while not self.stop_event.is_set():
            try:
                found = loop.step()
            except Exception as exc:
                _log_failure(exc, "dispatcher %s step failed; retrying after a pause", loop.name)
                found = False
            if not found and not self.stop_event.is_set():
                (loop.sleep or self.stop_event.wait)(loop.poll_seconds)

    def run(self) -> None:
        """Run every loop until `stop_event` is set (the `wabulk worker` foreground)."""
        self.start_thread()
        self.stop_event.wait()
        self.stop()

    def start_thread(self) -> None:
        """Run in the background of the web process (the embedded default)."""
        try:
            self.register()
        except Exception:  # the heartbeat loop registers once the database answers
            log.exception("worker %s: could not register; retrying with the heartbeat", self.name)
        log.info("dispatcher %s started", self.identity)
        for loop in self.loops:
            thread = threading.Thread(
                target=self._run_loop, args=(loop,), name=f"wabulk-{loop.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        with self._lanes_lock:
            lanes = list(self._lanes.values())
            self._lanes = {}
        for thread in [*self._threads, *lanes]:
            thread.join(timeout)
        self._threads = []
        if self._registered:
            try:
                registry.stopped(self.db, self.identity)
            except Exception:  # the row then shows lost once its lease passes
                log.exception("worker %s: could not record its stop", self.name)
            self._registered = False
        log.info("dispatcher %s stopped", self.identity)

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)
