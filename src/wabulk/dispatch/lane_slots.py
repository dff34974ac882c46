"""A lane's send slots under its account's messages-per-second ceiling, reserved in the
database (senders/slots.py) when the first send is about to go, and kept one by one: a
request waits for its slot, and one that missed it takes a new slot rather than going in a
burst (lane_sending.py uses them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lane_sending import StillRunning

# Slots this long or longer (ceilings up to 200 a second) are kept strictly (`_Slots`).
STRICT_STEP = 0.005
# How late a strictly kept slot may still be used (or half a slot, when longer): the
# tenth of the ceiling left unused (senders/slots.py `USABLE`) absorbs it at the provider.
LATE_SECONDS = 0.03


class Slots:
    """Send slots for the lane, reserved at their first use: the i-th send goes at
    start + i/rate.

    - Under a ceiling a lane can keep up with (slots of `STRICT_STEP` or longer: up to 200
      a second), a send that cannot start within half a slot of its own, or
      `LATE_SECONDS` (the machine was busy), does not go late, into slots another worker
      may hold: it reserves a slot of its own again, at the end of the account's queue,
      and waits for that one. So stalls never turn into bursts at the provider.
    - Above that, a request's own time on a busy machine is of the order of a slot: late
      slots are used late.
    """

    def __init__(
        self,
        reserve: Callable[[int], datetime],
        n: int,
        per_second: float,
        clock: Any,
        lost: set[int],
    ) -> None:
        self._reserve = reserve
        self.n = n
        self.step = 1.0 / per_second
        self.strict = self.step >= STRICT_STEP
        self.clock = clock
        self.lost = lost
        self.start: datetime | None = None
        self.end: datetime | None = None  # the end of the last slot reserved
        self.used = 0

    def take(self) -> datetime:
        """The next slot's time (it is then used): of the reservation, or a new one."""
        if self.start is None:
            self.start = self._reserve(self.n)
            self.end = self.start + timedelta(seconds=self.n * self.step)
        if self.used < self.n:
            self.used += 1
            return self.start + timedelta(seconds=(self.used - 1) * self.step)
        return self.again()

    def again(self) -> datetime:
        """A slot of its own again, for a send that missed (or ran out of) its own."""
        due = self._reserve(1)
        ends = due + timedelta(seconds=self.step)
        self.end = ends if self.end is None else max(self.end, ends)
        return due

    def on_time(self, due: datetime) -> bool:
        """Whether a send starting now still keeps to its slot `due`."""
        late = (self.clock.now() - due).total_seconds()
        return not self.strict or late <= max(self.step / 2, LATE_SECONDS)

    def wait(self) -> None:
        """Until the next slot this lane can keep."""
        due = self.take()
        while True:
            seconds = (due - self.clock.now()).total_seconds()
            if seconds > 0:
                time.sleep(seconds)
            if self.on_time(due):
                return
            due = self.again()

    def gate(self, still_running: StillRunning) -> Gate:
        return Gate(self, still_running)


class Gate:
    """A batch's `may_send` under a rate: each request waits for its slot, then asks whether
    the campaign still runs, so a Pause still stops the batch within one message.

    - A channel that asks `delay()` (the Cloud API's, on its event loop) asks it again
      after each wait until it answers 0: each request, known by its asyncio task, gets
      its slot at the first ask, and a new one when it woke too late for it.
    - One that only calls the gate waits in the call (`Slots.wait`).
    """

    def __init__(self, slots_: Slots, still_running: StillRunning) -> None:
        self.slots = slots_
        self.still_running = still_running
        self.due: dict[object, datetime] = {}
        self.ready: set[object] = set()

    def delay(self) -> float:
        if self.still_running.stopped:
            return 0.0  # the call that follows says no
        me = _request()
        due = self.due.get(me)
        if due is None:  # the first ask: the request's slot
            due = self.due[me] = self.slots.take()
            wait = (due - self.slots.clock.now()).total_seconds()
            if wait > 0:
                return wait
        if not self.slots.on_time(due):  # it woke, or came, too late for its slot
            due = self.due[me] = self.slots.again()
            wait = (due - self.slots.clock.now()).total_seconds()
            if wait > 0:
                return wait
        # Asked again after its wait (a test's clock may not have moved): it goes now.
        del self.due[me]
        self.ready.add(me)
        return 0.0

    def __call__(self) -> bool:
        if self.still_running.stopped:
            return False
        me = _request()
        if me in self.ready:
            self.ready.discard(me)
        else:
            self.slots.wait()
        return self.still_running()


def _request() -> object:
    """Which request asks: its asyncio task on a channel's event loop, else none."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
