"""A shared sender's caps, counted in the database at claim time.

- A Cloud API or dry-run sender has a lane in every worker at once (senders/lease.py), so a
  lane's own tally of today's sends or of the customers its templates reached is only its
  share. Before it claims, such a lane locks the sender row (and the rows of the senders
  sharing its Meta budget; senders/slots.py `lock`), and counts what all workers sent today
  and hold in flight (`sending`): it claims no more than the daily cap and the tier budget
  leave. The lock lasts until the claim commits, so the next lane counts these too.
- In flight is not sent: a message that fails or is retried frees its place. A lane whose
  cap is taken by messages in flight elsewhere looks again in a few seconds
  (`IN_FLIGHT_RECHECK`), while one whose cap is spent by sends sleeps until the day ends.
- The counts are read once per claim, whatever the number of campaigns tried in it.
- A pinned sender (WhatsApp Web) keeps its lane's own tally: it is the only one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Channel, Message, MessageStatus, Sender
from ..senders import budget, slots
from ..senders.service import sent_today

IN_FLIGHT_RECHECK = timedelta(seconds=3)


@dataclass(slots=True)
class _Counts:
    sent: int  # today, in the sender's timezone, by every worker
    in_flight: int  # `sending` now, by every worker (this lane holds none when it claims)


class SharesCaps:
    """Mixed into `Lane`: the attributes below are the lane's."""

    shared: bool
    sender_id: int
    sent_today: int
    budget: budget.Budget | None
    _held_until: datetime | None
    _counts: _Counts | None
    _locked: bool

    def _claim_began(self) -> None:
        """A claim starts: counts and locks are read afresh for it."""
        self._counts = None
        self._locked = False

    def _lock_shared(self, session: Session, sender: Sender) -> None:
        if self._locked:
            return
        # The budget's group too, always, so that rows are locked in one order (slots.py).
        group = budget.sharing(session, sender) if sender.channel == Channel.CLOUD_API else []
        slots.lock(session, [sender.id, *group])
        self._locked = True

    def _room_today(self, session: Session, sender: Sender, cap: int, now: datetime) -> int:
        """How many more this sender may claim today under `cap`: all workers counted for a
        shared sender, the lane's own tally for a pinned one (it is the only lane)."""
        if not self.shared:
            return cap - self.sent_today
        if self._counts is None:
            self._lock_shared(session, sender)
            sent = sent_today(session, sender, now)
            m = Message.__table__
            flying = session.scalar(
                select(func.count()).where(
                    m.c.sender_id == sender.id, m.c.status == MessageStatus.SENDING
                )
            )
            self._counts = _Counts(sent, flying or 0)
            # What the rest of the lane compares with its caps (answers, the step's check).
            self.sent_today = self._counts.sent
        room = cap - self._counts.sent - self._counts.in_flight
        if room <= 0 and self._counts.sent < cap:
            self._hold_briefly(now)
        return max(0, room)

    def _budget_room(self, session: Session, sender: Sender, limit: int, now: datetime) -> int:
        """Customers the tier budget still allows, all workers counted (budget.py)."""
        self._lock_shared(session, sender)
        group = budget.sharing(session, sender)
        fresh = self.budget is None or self.budget.stale(now)
        if self.budget is None or fresh:
            self.budget = budget.count(session, sender, now)
        used, flying = budget.upper_bound(session, group, self.budget, now)
        if used >= limit and not fresh:
            # Close to the limit on an estimate: count exactly before holding anything back.
            self.budget = budget.count(session, sender, now)
            used, flying = budget.upper_bound(session, group, self.budget, now)
        if used >= limit and flying:
            self._hold_briefly(now)
        return limit - used

    def _hold_briefly(self, now: datetime) -> None:
        until = now + IN_FLIGHT_RECHECK
        if self._held_until is None or until < self._held_until:
            self._held_until = until
