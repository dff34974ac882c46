"""The account's send slots under its messages-per-second ceiling, shared by every worker.

- A Cloud API or dry-run sender is driven by a lane in every worker at once (lease.py), so
  no lane can keep the account's pace alone: each reserves the slots it is about to use in
  `senders.pace_next_at`, the account's next free slot. n slots of 1/rate seconds start at
  the later of that and now; the lane sends its i-th message not before start + i/rate, so
  all workers together send evenly spaced, never more than the rate in any one second.
- The slots fill nine tenths of the ceiling (`USABLE`): requests leave on their slots
  here but reach the provider with the network's and the machines' jitter, and the
  provider counts them per second at its end. A send that cannot start within half a
  slot (or 30 ms) of its own reserves a new one at the end of the queue and waits for it
  (dispatch/lane_sending.py), so a busy moment never turns into a burst.
- A reservation is written under the sender row's lock (PostgreSQL: the row lock its UPDATE
  takes; SQLite: the file's write lock), so two lanes never get the same slots. The lock
  lasts until the caller commits, which it does at once.
- `lock` takes the same lock on one or more sender rows for the claim's shared counts
  (shared.py): PostgreSQL `SELECT … FOR UPDATE` in id order, so two claims never wait on
  each other in a circle; SQLite a write that takes the file's write lock before counting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from ..models import Sender
from ..models.base import UTCDateTime

# The share of a messages-per-second ceiling the slots fill (see above).
USABLE = 0.9

# A write that changes nothing but takes the lock (and, here, reads the slot under it).
# Plain SQL: SQLAlchemy's update() would also stamp `updated_at`, a change nobody made.
_TAKE = text(
    "UPDATE senders SET pace_next_at = pace_next_at WHERE id = :sid RETURNING pace_next_at"
).columns(pace_next_at=UTCDateTime())
_MOVE = text("UPDATE senders SET pace_next_at = :until WHERE id = :sid").bindparams(
    bindparam("until", type_=UTCDateTime())
)
_LOCK_SQLITE = text("UPDATE senders SET pace_next_at = pace_next_at WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)


def reserve(
    session: Session,
    sender_id: int,
    n: int,
    per_second: float,
    now: datetime,
    *,
    clock: Callable[[], datetime] | None = None,
) -> datetime:
    """Reserve n consecutive slots of 1/`per_second` seconds; returns when the first starts.

    - The slots are the caller's even when it sends fewer: keep n to what is about to go.
    - `clock`: read once the lock is held, so that a wait for the lock (another worker
      reserving) does not leave the first slots already gone by when they are handed out.
    """
    if n <= 0 or per_second <= 0:
        raise ValueError("a reservation needs at least one slot and a positive rate")
    free = session.execute(_TAKE, {"sid": sender_id}).scalar()
    if clock is not None:
        now = max(now, clock())
    start = now if free is None or free < now else free
    session.execute(_MOVE, {"sid": sender_id, "until": start + timedelta(seconds=n / per_second)})
    return start


def lock(session: Session, sender_ids: Iterable[int]) -> None:
    """Hold these sender rows until the caller commits (see the module's docstring)."""
    ids = sorted(set(sender_ids))
    if not ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Sender.id).where(Sender.id.in_(ids)).order_by(Sender.id).with_for_update()
        ).all()
    else:
        session.execute(_LOCK_SQLITE, {"ids": ids})
