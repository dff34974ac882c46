"""The lane's sends: one by one, or many at once for a channel that can (Cloud API).

- Pause and Cancel stop within one message: the campaign's state is read again before
  every send starts (`StillRunning`), also inside a channel's batch, which asks before each
  request. What was not started goes back to the queue untouched: no attempt is used.
- Opt-outs are absolute (DESIGN §3): a message claimed a while before its send slot (an
  answer, a paced campaign message) is read again with its contact just before it goes, in
  the same query as the campaign's state, and skipped as the claim would skip it when the
  contact opted out meanwhile, or, for free-form text on the Cloud API, when the customer's
  24-hour window closed; a follow-up also when the customer replied to any message of its
  campaign (campaigns/followups.py). A batch (Cloud API) reads its contacts once before it
  starts.
- The counts on the campaign page follow the sends: outcomes are written about every
  second (`SETTLE_SECONDS`) while a claimed batch goes out, not only at its end. The claim
  stays one per batch, and each write is the same lease-guarded settle as before, so a crash
  between two writes leaves the rest `sending` for recovery, as it always did.
- A channel's `send_batch(messages, may_send)` answers in order; an item it never started
  because `may_send()` said no is `None`.
- Under a messages-per-second ceiling the lane reserves the account's send slots for what
  it is about to send (senders/slots.py: about a second's worth, shared with every worker
  sending for the account) and sends its i-th message not before the i-th slot: inside a
  batch, `may_send` waits for the slot before it answers, so requests go out evenly
  spaced, never in bursts. Without a ceiling nothing is reserved.
- A message is sent only while this lane still holds it: the read before each send also
  checks its lease, and a batch that waits for slots renews its messages' leases first,
  so another worker's recovery never queues again a message that is about to go.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.engine import Connection

from ..channels.base import OutgoingMessage, SenderUnavailable, SendResult
from ..models import Campaign, CampaignStatus, Contact, Inbound, Message, MessageStatus
from ..senders import slots
from . import queue, tally
from .lane_outcomes import Unsettled
from .lane_slots import Slots

if TYPE_CHECKING:
    from .lane import _Pending

log = logging.getLogger("wabulk.dispatch.lane")

# About how often outcomes are written while a batch goes out (seconds of sending).
SETTLE_SECONDS = 1.0
# `StillRunning.refusal`: the campaign stopped, so this message and the rest go back.
STOPPED = "stopped"
# `StillRunning.refusal`: the message is no longer this lane's (its lease ran out and
# recovery took it): it is dropped from the lane untouched.
LOST = "lost"

_messages = Message.__table__
_contacts = Contact.__table__
_inbound = Inbound.__table__


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

    def __init__(
        self,
        db: Any,
        campaign_id: int | None,
        sender_id: int | None = None,
        sequence: tuple[int, ...] = (),
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.owner = owner
        self.sequence = sequence
        self.campaign_id = campaign_id
        self.sender_id = sender_id
        self.stopped = False
        self._conn: Connection | None = None
        self._query = select(Campaign.status).where(Campaign.id == campaign_id)
        # One message and its contact by their keys, with the campaign's state beside them:
        # one statement per send, built once (a window's EXISTS walks the replies' index).
        state = [self._query.scalar_subquery().label("campaign_status")] if campaign_id else []
        by_key = (
            select(_contacts.c.opted_out_at, _messages.c.status, _messages.c.lease_owner, *state)
            .select_from(_messages.join(_contacts, _contacts.c.id == _messages.c.contact_id))
            .where(_messages.c.id == bindparam("mid"))
        )
        wrote = exists().where(
            _inbound.c.contact_id == _messages.c.contact_id,
            _inbound.c.sender_id == sender_id,
            _inbound.c.received_at >= bindparam("since", type_=_inbound.c.received_at.type),
        )
        if sequence:
            # A follow-up: a reply to any message of its sequence stops it (contact index).
            seq = _messages.alias("seq")
            answered = exists().where(
                seq.c.contact_id == _messages.c.contact_id,
                seq.c.campaign_id.in_(sequence),
                seq.c.replied_at.is_not(None),
            )
            by_key = by_key.add_columns(answered.label("replied"))
        self._one = by_key
        self._one_in_window = by_key.add_columns(wrote.label("window_open"))

    def __call__(self) -> bool:
        if self.stopped:
            return False
        if self.campaign_id is None:
            return True  # answers: no campaign to pause or cancel
        try:
            status = self._connection().execute(self._query).scalar()
            self._end_read()
        except Exception:
            log.warning("could not read campaign %s's state", self.campaign_id, exc_info=True)
            self.stopped = True
            return False
        if status != CampaignStatus.RUNNING:
            self.stopped = True
        return not self.stopped

    def refusal(self, message_id: int, window_since: datetime | None) -> str | None:
        """Why this message must not go now, asked just before it is sent: None to send it,
        `STOPPED` when its campaign stopped (or the read failed), or the code to skip it
        with. `window_since`: for free-form Cloud API text, when the customer must have
        written since."""
        if self.stopped:
            return STOPPED
        query = self._one if window_since is None else self._one_in_window
        params: dict[str, Any] = {"mid": message_id}
        if window_since is not None:
            params["since"] = window_since
        try:
            row = self._connection().execute(query, params).first()
            self._end_read()
        except Exception:
            log.warning("could not read message %s before sending", message_id, exc_info=True)
            row = None
        if row is None or (self.campaign_id and row.campaign_status != CampaignStatus.RUNNING):
            self.stopped = True
            return STOPPED
        if not self._holds(row):
            return LOST
        if row.opted_out_at is not None:
            return "opted_out"
        if self.sequence and row.replied:
            return queue.REPLIED
        if window_since is not None and not row.window_open:
            return queue.OUTSIDE_WINDOW
        return None

    def refusals(self, asked: list[tuple[int, datetime | None]]) -> dict[int, str]:
        """`refusal` for a batch's messages at once, before it starts: the skip code of
        each that must not go. A read that fails stops the batch (nothing is started)."""
        try:
            conn = self._connection()
            rows = conn.execute(
                select(
                    _messages.c.id,
                    _messages.c.contact_id,
                    _messages.c.status,
                    _messages.c.lease_owner,
                    _contacts.c.opted_out_at,
                )
                .join(_contacts, _contacts.c.id == _messages.c.contact_id)
                .where(_messages.c.id.in_([mid for mid, _ in asked]))
            ).all()
            since = {mid: at for mid, at in asked if at is not None}
            people = {r.contact_id for r in rows if r.id in since and r.opted_out_at is None}
            wrote: set[int] = set()
            if people:
                # One window for the batch: every item is asked at the same moment.
                wrote = set(
                    conn.scalars(
                        select(_inbound.c.contact_id)
                        .where(
                            _inbound.c.contact_id.in_(people),
                            _inbound.c.sender_id == self.sender_id,
                            _inbound.c.received_at >= min(since.values()),
                        )
                        .distinct()
                    )
                )
            answered: set[int] = set()
            if self.sequence:
                answered = set(
                    conn.scalars(
                        select(_messages.c.contact_id)
                        .where(
                            _messages.c.contact_id.in_({r.contact_id for r in rows}),
                            _messages.c.campaign_id.in_(self.sequence),
                            _messages.c.replied_at.is_not(None),
                        )
                        .distinct()
                    )
                )
            self._end_read()
        except Exception:
            log.warning("could not read the batch's contacts before sending", exc_info=True)
            self.stopped = True
            return {}
        out: dict[int, str] = {}
        for r in rows:
            if not self._holds(r):
                out[r.id] = LOST
            elif r.opted_out_at is not None:
                out[r.id] = "opted_out"
            elif r.contact_id in answered:
                out[r.id] = queue.REPLIED
            elif r.id in since and r.contact_id not in wrote:
                out[r.id] = queue.OUTSIDE_WINDOW
        return out

    def _holds(self, row: Any) -> bool:
        """Whether the lane still holds this message (its lease was not taken back)."""
        if self.owner is None:
            return True
        return bool(row.status == MessageStatus.SENDING and row.lease_owner == self.owner)

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.db.engine.connect()
        return self._conn

    def _end_read(self) -> None:
        # The read transaction ends each time: what was committed a moment ago is seen next.
        assert self._conn is not None
        self._conn.rollback()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class SendsMessages:
    """Mixed into `Lane`: the attributes below are the lane's."""

    db: Any
    sender_id: int
    owner: str
    lease: timedelta
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
        still_running = StillRunning(
            self.db,
            self.pending[0].campaign.id,
            self.sender_id,
            self.pending[0].campaign.sequence,
            self.owner,
        )
        slot: Slots | None = None
        if pace.max_per_second and not pace.paced:
            # One by one under a ceiling (a dry run given a rate): the same shared slots.
            slot = self._reserve(list(self.pending), pace.max_per_second)
        began = time.perf_counter()
        try:
            while self.pending:
                p = self.pending[0]
                pace = p.campaign.pace
                if pace.daily_cap and self.sent_today >= pace.daily_cap:
                    break
                if slot is not None and p.claimed.id in slot.lost:
                    self.pending.popleft()  # recovery took it back: not this lane's to send
                    continue
                if slot is not None:
                    slot.wait()
                refused = still_running.refusal(p.claimed.id, self._window_since(p))
                if refused == STOPPED:
                    break
                if refused == LOST:
                    self.pending.popleft()
                    continue
                if refused is not None:
                    # Skipped as the claim would have: no attempt used, no send slot taken.
                    self.pending.popleft()
                    unsettled.outcomes.append(_skipped(p, refused))
                    continue
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
        if slot is not None and slot.end is not None:
            # Not before the end of what was reserved: the account's next free slot.
            self.next_send_at = max(self.next_send_at, slot.end)
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
        still_running = StillRunning(
            self.db, items[0].campaign.id, self.sender_id, items[0].campaign.sequence, self.owner
        )
        unsettled = Unsettled([], [], None)
        sent_from = self.clock.now()
        started = time.perf_counter()
        slot: Slots | None = None
        try:
            refused = still_running.refusals([(p.claimed.id, self._window_since(p)) for p in items])
            if refused:
                unsettled.outcomes.extend(
                    _skipped(p, refused[p.claimed.id])
                    for p in items
                    if refused.get(p.claimed.id, LOST) != LOST
                )
                # A message recovery took back is dropped untouched: it is not this lane's.
                items = [p for p in items if p.claimed.id not in refused]
            if items and pace.max_per_second and not still_running.stopped:
                slot = self._reserve(items, pace.max_per_second)
                items = [p for p in items if p.claimed.id not in slot.lost]
            results: list[Any] = []
            if items:
                may_send: Callable[[], bool] = (
                    still_running if slot is None else slot.gate(still_running)
                )
                results = send_batch([self._outgoing(p) for p in items], may_send)
        finally:
            still_running.close()
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
        if slot is not None and slot.end is not None:
            # Not before the end of what was reserved: the account's next free slot.
            self.next_send_at = max(sent_from, slot.end)
        if still_running.stopped and unsettled.unavailable is None:
            self._hand_back(unsettled)
        self.unsettled = unsettled
        return self._write_unsettled()

    def _reserve(self, items: list[_Pending], per_second: float) -> Slots:
        """The account's next slots for these messages (senders/slots.py), reserved when the
        first of them is about to go, not now: a channel that starts up first (the Cloud
        API's opens its connections) would otherwise find its first slots gone by and send
        them all at once.

        The messages' leases are renewed now, so a wait for slots others reserved first
        never lets them expire; any no longer held by this lane (recovery took it back) is
        reported lost, not to be sent.
        """
        now = self.clock.now()
        ids = [p.claimed.id for p in items]
        with self.db.session() as session:
            kept = set(
                session.execute(
                    update(_messages)
                    .where(
                        _messages.c.id.in_(ids),
                        _messages.c.status == MessageStatus.SENDING,
                        _messages.c.lease_owner == self.owner,
                        _messages.c.sender_id == self.sender_id,
                    )
                    .values(lease_until=now + self.lease)
                    .returning(_messages.c.id)
                ).scalars()
            )
        n = len(kept)
        per_second *= slots.USABLE

        def reserve(count: int) -> datetime:
            with self.db.session() as session:
                now = self.clock.now()
                return slots.reserve(
                    session, self.sender_id, count, per_second, now, clock=self.clock.now
                )

        return Slots(reserve, n, per_second, self.clock, set(ids) - kept)

    def _window_since(self, p: _Pending) -> datetime | None:
        """When the customer must have written since for this message to go: free-form
        text on the Cloud API (a template reaches them outside the window)."""
        if not p.campaign.pace.window_only:
            return None
        if p.campaign.id is None and p.claimed.template is not None:
            return None  # an answer by template
        return self.clock.now() - queue.WINDOW

    def _hand_back(self, unsettled: Unsettled) -> None:
        """The campaign stopped: what was not started goes back to the queue in the same
        write, attempts unchanged (a cancelled campaign's are then skipped)."""
        unsettled.outcomes.extend(
            queue.Outcome(p.claimed.id, p.campaign.id, "requeue") for p in self.pending
        )
        self.pending.clear()

    def _timed(self, elapsed: float, n: int) -> None:
        tally.latency(self.sender_id, elapsed, n)
        per = elapsed / max(1, n)
        self.seconds_per_send = (
            per if self.seconds_per_send == 0 else 0.9 * self.seconds_per_send + 0.1 * per
        )


def _skipped(p: _Pending, code: str) -> queue.Outcome:
    return queue.Outcome(
        p.claimed.id,
        p.campaign.id,
        "skipped",
        error_code=code,
        error_detail=queue.SKIP_REASONS[code],
    )
