"""The lane's side of hearing back: when to look at the chats, and for how long.

- In a pacing wait: one look as soon as the next message is claimed, before its chat is
  prepared (`_look_then_prepare`), and more in a long wait (a break, the daily cap). The
  look may open chats until the next send is due less the time preparing a chat takes
  (`_prepare_reserve`). Looking first, a reply's chat costs the look one click; looking
  after the preparation, opening it would close the prepared chat and cost a whole page
  load again before the send. A chat just sent to may still be on screen then, with a
  reply WhatsApp marked read at once (no unread badge): the channel finds it by its row.
  A wait shorter than MIN_LOOK_SECONDS gets no look, and `next_send_at` never moves for
  one.
- Idle (nothing to send): looks while the sender is in its hearing period or has `unknown`
  messages to settle (hearing.still_hearing), soon after its last send and then further
  apart, up to one every LOOK_EVERY (`_next_look_at`); and a step every IDLE_POLL_SECONDS
  for new work, since the worker starts no second lane for the sender.
- What a look heard is kept on the lane until written, as sends are (`unsettled`): a
  dropped database connection fails the step, and the next step writes it first.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..channels.base import SenderUnavailable
from ..inbound.statuses import StaleRead
from ..models import Contact, Message, Sender
from . import hearing, queue

if TYPE_CHECKING:
    from ..channels.heard import Heard

log = logging.getLogger(__name__)

LOOK_EVERY = timedelta(seconds=30)
MIN_LOOK_SECONDS = 1.0
IDLE_POLL_SECONDS = 5.0
# After a send, the gap to the next look is this share of the time since the send (at least
# the sender's pace): what is shown soon after a send is read within about a pace, later
# within half its age, and the gaps grow half again each look (1, 1, 1, 1.5, 2.25 ... paces)
# to LOOK_EVERY a minute after the send. A few looks more per campaign; the days of a
# hearing period keep the old rate, what many idle senders cost.
LOOK_GAP_SHARE = 0.5
# Preparation times the estimate is drawn from, and the estimate before any was measured.
PREPARE_SAMPLES = 5
PREPARE_GUESS = 1.0
# The most of a wait kept free to prepare a chat again after a look: some of every wait is
# left for reading replies, even when preparing takes most of a short pace.
PREPARE_SHARE = 0.75
# Steps that may fail writing one look before it is given up (a bug must not stop sending).
APPLY_TRIES = 3


class LooksInWaits:
    """Mixed into `Lane`: the attributes below are the lane's."""

    db: Any
    sender_id: int
    owner: str
    clock: Any
    channel: Any
    pending: deque
    next_send_at: datetime
    hearing: hearing.Hearing | None
    looked_at: datetime | None
    looked_since_send: bool
    sent_at: datetime | None
    pace_seconds: float
    prepare_times: deque[float]
    seconds_per_send: float
    unapplied: tuple[Heard, set[int]] | None
    unapplied_tries: int

    if TYPE_CHECKING:

        def _prepare(self) -> None: ...

        def _sender_lost(self, session: Session, exc: SenderUnavailable, now: datetime) -> None: ...

    def _hears(self) -> bool:
        return self.hearing is not None and callable(getattr(self.channel, "hear", None))

    stopwatch = staticmethod(time.perf_counter)

    def _prepared(self, took: float) -> None:
        """Note how long preparing a chat took (seconds of `stopwatch`).

        Not before the lane's first send: that preparation starts the browser too, and
        seconds of it would leave the looks of a short pace no time for many sends.
        """
        if self.seconds_per_send > 0:
            self.prepare_times.append(took)

    def _prepare_reserve(self, wait: float) -> float:
        """Seconds of a `wait` a look leaves free to prepare the next chat again.

        The lower median of the last few preparations: one slow page load (a busy machine)
        neither raises it nor, as a running average would, keeps it raised for the next
        dozen waits, leaving their looks no time to open a reply's chat; a lasting slowdown
        (most of the last few) moves it in a few sends. Capped at a share of the wait: with
        preparing near a whole short pace, a look still reads a reply now and then at the
        cost of a fraction of one send's pace, rather than leaving every reply to the end
        of the campaign.
        """
        times = sorted(self.prepare_times)
        estimate = times[(len(times) - 1) // 2] if times else PREPARE_GUESS
        return min(estimate, PREPARE_SHARE * max(0.0, wait))

    def _look_due(self, now: datetime, wait: float) -> bool:
        if not self._hears() or wait < MIN_LOOK_SECONDS:
            return False
        if not self.looked_since_send or self.looked_at is None:
            return True
        return self._next_look_in(now) <= 0

    def _next_look_in(self, now: datetime) -> float:
        if self.looked_at is None:
            return 0.0
        return max(0.0, (self._next_look_at(self.looked_at) - now).total_seconds())

    def _next_look_at(self, looked_at: datetime) -> datetime:
        """When the next look is due after one at `looked_at` (LOOK_GAP_SHARE)."""
        every = LOOK_EVERY.total_seconds()
        if self.sent_at is None:  # nothing sent since the lane started
            return looked_at + LOOK_EVERY
        pace = min(every, max(MIN_LOOK_SECONDS, self.pace_seconds))
        if self.sent_at >= looked_at:  # no look since the last send
            return self.sent_at + timedelta(seconds=pace)
        since = (looked_at - self.sent_at).total_seconds()
        return looked_at + timedelta(seconds=min(every, max(pace, LOOK_GAP_SHARE * since)))

    def _look_then_prepare(self) -> None:
        """The next message is in hand and its chat not prepared yet: look first if due."""
        now = self.clock.now()
        wait = (self.next_send_at - now).total_seconds()
        if self._look_due(now, wait) and self._look(
            now, wait - self._prepare_reserve(wait), settle=False
        ):
            return  # the sender stopped: its messages went back to the queue
        self._prepare()

    def _wait(self, now: datetime) -> float:
        """The message in hand is due later: look at the chats if a look fits."""
        wait = (self.next_send_at - now).total_seconds()
        if not self._look_due(now, wait):
            if self._hears() and wait >= MIN_LOOK_SECONDS:
                return max(MIN_LOOK_SECONDS, min(wait, self._next_look_in(now)))
            return wait
        if self._look(now, wait - self._prepare_reserve(wait), settle=False):
            return 0.0  # the sender stopped: the next step finds it out of rotation
        if self.pending and getattr(self.channel, "prepared", True) is None:
            self._prepare()  # the look opened another chat
        now = self.clock.now()
        wait = max(0.0, (self.next_send_at - now).total_seconds())
        return min(wait, max(MIN_LOOK_SECONDS, self._next_look_in(now)))

    def _idle(self, now: datetime, wait: float | None) -> float | None:
        """Nothing to send now (`wait`: until something may be, None: no work)."""
        if not self._hears() or (wait is not None and wait < MIN_LOOK_SECONDS):
            return wait
        if self._next_look_in(now) <= 0:
            with self.db.session() as session:
                sender = session.get(Sender, self.sender_id)
                active = sender is not None and hearing.still_hearing(session, sender, now)
            if not active:
                return wait
            budget = wait if wait is not None else LOOK_EVERY.total_seconds()
            if self._look(now, budget, settle=True):
                return 0.0
            now = self.clock.now()
        if wait is None:
            return min(IDLE_POLL_SECONDS, max(self._next_look_in(now), MIN_LOOK_SECONDS))
        return max(MIN_LOOK_SECONDS, min(wait, self._next_look_in(now)))

    def _look(self, now: datetime, seconds: float, settle: bool) -> bool:
        """One look; True when it found the sender unable to send (it is taken out)."""
        assert self.hearing is not None
        self.looked_at = now
        self.looked_since_send = True
        with self.db.session() as session:
            watch = hearing.build_watch(
                session,
                self.sender_id,
                self.hearing,
                now,
                hearing.monotonic_deadline(seconds),
                settle=settle,
            )
        if not (watch.messages or watch.reply_phones or watch.settle):
            return False
        try:
            heard = self.channel.hear(watch)
        except SenderUnavailable as exc:
            with self.db.session() as session:
                self._sender_lost(session, exc, self.clock.now())
            return True
        except Exception:
            log.warning("sender %s: reading the chats failed", self.sender_id, exc_info=True)
            return False
        self.unapplied = (heard, {w.message_id for w in watch.settle})
        self.unapplied_tries = 0
        self._apply_heard()
        return False

    def _apply_heard(self) -> None:
        assert self.unapplied is not None
        heard, settle = self.unapplied
        now = self.clock.now()
        self.unapplied_tries += 1
        try:
            for attempt in range(3):
                try:
                    with self.db.session() as session:
                        done = hearing.apply_heard(session, self.sender_id, heard, now, settle)
                        if done.applied.opted_out and self.pending:
                            self._drop_opted_out(session, now)
                    break
                except StaleRead:  # a row moved under SQLite between read and write
                    if attempt == 2:
                        raise
        except Exception:
            if self.unapplied_tries < APPLY_TRIES:
                raise  # kept: the next step writes it again
            log.exception("sender %s: what its chats showed could not be stored", self.sender_id)
        self.unapplied = None

    def _drop_opted_out(self, session: Session, now: datetime) -> None:
        """Messages in hand to customers who just opted out by reply go back to the queue,
        where the claim skips them."""
        ids = [p.claimed.id for p in self.pending]
        stopped = set(
            session.scalars(
                select(Message.id)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Message.id.in_(ids), Contact.opted_out_at.is_not(None))
            )
        )
        if not stopped:
            return
        first = self.pending[0].claimed.id
        gone = [p for p in self.pending if p.claimed.id in stopped]
        queue.settle(
            session,
            self.owner,
            [queue.Outcome(p.claimed.id, p.campaign.id, "requeue") for p in gone],
            now,
            sender_id=self.sender_id,
        )
        self.pending = deque(p for p in self.pending if p.claimed.id not in stopped)
        if first in stopped:
            self._prepare()
