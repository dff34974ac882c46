"""The lane's sends: one by one, or many at once for a channel that can (Cloud API).

- Pause and Cancel stop within one message: the campaign's state is read again before
  every send starts (`StillRunning`), also inside a channel's batch, which asks before each
  request. What was not started goes back to the queue untouched: no attempt is used.
- The counts on the campaign page follow the sends: outcomes are written about every
  second (`SETTLE_SECONDS`) while a claimed batch goes out, not only at its end. The claim
  stays one per batch, and each write is the same lease-guarded settle as before, so a crash
  between two writes leaves the rest `sending` for recovery, as it always did.
- A channel's `send_batch(messages, may_send)` answers in order; an item it never started
  because `may_send()` said no is `None`.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..channels.base import OutgoingMessage, SenderUnavailable, SendResult
from ..models import Campaign, CampaignStatus
from . import queue
from .lane_outcomes import Unsettled

if TYPE_CHECKING:
    from .lane import _Pending

log = logging.getLogger("wabulk.dispatch.lane")

# About how often outcomes are written while a batch goes out (seconds of sending).
SETTLE_SECONDS = 1.0


class StillRunning:
    """Asks the database whether a campaign is still running, each time it is called.

    - One connection kept for the batch and a read of one row by its key: a few tens of
      microseconds on SQLite, so it can come before every send. The read transaction ends
      each time, so a Pause committed a moment ago is seen by the next call.
    - Once it has said no it says no without asking again; an error reading says no too
      (the messages go back to the queue: a later step tries again).
    - Called from the lane's thread, or from a channel's own sending thread while the lane
      waits for its batch: never from two threads at once.
    """

    def __init__(self, db: Any, campaign_id: int | None) -> None:
        self.db = db
        self.campaign_id = campaign_id
        self.stopped = False
        self._conn: Connection | None = None
        self._query = select(Campaign.status).where(Campaign.id == campaign_id)

    def __call__(self) -> bool:
        if self.stopped:
            return False
        if self.campaign_id is None:
            return True  # answers: no campaign to pause or cancel
        try:
            if self._conn is None:
                self._conn = self.db.engine.connect()
            status = self._conn.execute(self._query).scalar()
            self._conn.rollback()
        except Exception:
            log.warning("could not read campaign %s's state", self.campaign_id, exc_info=True)
            self.stopped = True
            return False
        if status != CampaignStatus.RUNNING:
            self.stopped = True
        return not self.stopped

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class SendsMessages:
    """Mixed into `Lane`: the attributes below are the lane's."""

    db: Any
    channel: Any
    rng: random.Random
    clock: Any
    pending: deque
    next_send_at: datetime
    sent_today: int
    sent_since_break: int
    seconds_per_send: float
    pace_seconds: float
    unsettled: Unsettled | None

    if TYPE_CHECKING:

        def _note(
            self, unsettled: Unsettled, p: _Pending, result: SendResult | Exception
        ) -> None: ...

        def _write_unsettled(self) -> float: ...

        def _outgoing(self, p: _Pending) -> OutgoingMessage: ...

    def _send_due(self) -> float:
        assert self.channel is not None
        send_batch = getattr(self.channel, "send_batch", None)
        pace = self.pending[0].campaign.pace
        if send_batch is not None and not pace.paced and not pace.break_every:
            return self._send_batch(send_batch)
        unsettled = Unsettled([], [], None)
        still_running = StillRunning(self.db, self.pending[0].campaign.id)
        began = time.perf_counter()
        try:
            while self.pending:
                p = self.pending[0]
                pace = p.campaign.pace
                if pace.daily_cap and self.sent_today >= pace.daily_cap:
                    break
                if not still_running():
                    break
                started = time.perf_counter()
                # The pace is the gap between one send starting and the next: a browser's own
                # seconds clicking and confirming count towards the wait, not on top of it.
                sent_from = self.clock.now()
                result: SendResult | Exception
                try:
                    result = self.channel.send(self._outgoing(p))
                except SenderUnavailable as exc:
                    unsettled.unavailable = exc
                    break
                except Exception as exc:
                    result = exc
                self.pending.popleft()
                self._note(unsettled, p, result)
                self._timed(time.perf_counter() - started, 1)
                if pace.paced or pace.break_every:
                    self.pace_seconds = pace.delay(self.rng)
                    self.next_send_at = sent_from + timedelta(seconds=self.pace_seconds)
                    if pace.break_every and self.sent_since_break >= pace.break_every:
                        self.next_send_at += timedelta(seconds=pace.break_seconds or 0)
                        self.sent_since_break = 0
                    if pace.paced:
                        break
                if time.perf_counter() - began >= SETTLE_SECONDS:
                    break  # written now; the next step carries on with the rest
        finally:
            still_running.close()
        if still_running.stopped:
            self._hand_back(unsettled)
        # Kept on the lane until written: a dropped database connection or a locked SQLite
        # file fails this step, and the next one writes the same outcomes again (the settle
        # is guarded by the lease, so a late write changes nothing it should not).
        self.unsettled = unsettled
        return self._write_unsettled()

    def _send_batch(self, send_batch: Callable[..., list[Any]]) -> float:
        """Hand the channel as much of the claimed batch as it sends in about a second."""
        pace = self.pending[0].campaign.pace
        n = len(self.pending)
        if self.seconds_per_send > 0:
            n = min(n, max(1, int(SETTLE_SECONDS / self.seconds_per_send)))
        if pace.daily_cap:
            n = min(n, max(0, pace.daily_cap - self.sent_today))
        items = [self.pending[i] for i in range(n)]
        still_running = StillRunning(self.db, items[0].campaign.id)
        sent_from = self.clock.now()
        started = time.perf_counter()
        try:
            results = send_batch([self._outgoing(p) for p in items], still_running)
        finally:
            still_running.close()
        unsettled = Unsettled([], [], None)
        left: deque[_Pending] = deque()
        handed = 0
        for p, result in zip(items, results, strict=True):
            if result is None:  # never started: the campaign stopped
                left.append(p)
                continue
            handed += 1
            if isinstance(result, SenderUnavailable):
                # Not sent: it goes back to the queue with the rest when the sender stops.
                unsettled.unavailable = unsettled.unavailable or result
                left.append(p)
                continue
            self._note(unsettled, p, result)
        if handed:
            self._timed(time.perf_counter() - started, handed)
        # Those not handed over (the next second's, or over the daily cap) stay pending.
        self.pending = deque([*left, *list(self.pending)[n:]])
        if pace.max_per_second:
            self.next_send_at = sent_from + timedelta(seconds=handed / pace.max_per_second)
        if still_running.stopped and unsettled.unavailable is None:
            self._hand_back(unsettled)
        self.unsettled = unsettled
        return self._write_unsettled()

    def _hand_back(self, unsettled: Unsettled) -> None:
        """The campaign stopped: what was not started goes back to the queue in the same
        write, attempts unchanged (a cancelled campaign's are then skipped)."""
        unsettled.outcomes.extend(
            queue.Outcome(p.claimed.id, p.campaign.id, "requeue") for p in self.pending
        )
        self.pending.clear()

    def _timed(self, elapsed: float, n: int) -> None:
        per = elapsed / max(1, n)
        self.seconds_per_send = (
            per if self.seconds_per_send == 0 else 0.9 * self.seconds_per_send + 0.1 * per
        )
