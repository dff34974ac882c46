"""The worker registry: one `workers` row per running dispatcher, kept fresh by heartbeats.

- A dispatcher registers when it starts (a row by its identity, inserted or updated), beats
  every `heartbeat_seconds(lease)` with what it holds and its counters, and marks the row
  stopped when it stops cleanly.
- A row silent for longer than its lease is `lost`: its process died or lost the database.
  The row only describes; the leases on messages, senders and imports decide who may act,
  and those expire on their own.
- Rows stopped or lost for more than a week are pruned, so the Workers page lists what ran
  lately, not every process since installation.
- Plain selects and updates by key: the same code on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .. import __version__, migrate
from ..config import redact_url
from ..db import Database
from ..models import Campaign, Import, Sender, Worker, utcnow

State = Literal["running", "stopped", "lost"]
KEEP = timedelta(days=7)
HEARTBEAT_MAX_SECONDS = 15.0
HOLD_KINDS = ("senders", "campaigns", "imports")


def heartbeat_seconds(lease_seconds: float) -> float:
    """How often a worker beats: four beats a lease, so one slow beat never makes it lost."""
    return min(HEARTBEAT_MAX_SECONDS, lease_seconds / 4)


def this_host() -> str:
    return socket.gethostname()[:100]


def register(
    db: Database,
    *,
    identity: str,
    name: str,
    labels: tuple[str, ...] | list[str] = (),
    only_senders: tuple[str, ...] | list[str] | None = None,
    embedded: bool = False,
    lease_seconds: int,
    now: datetime | None = None,
) -> int:
    """Insert or refresh this process's row (by identity); returns its id."""
    now = now or utcnow()
    with db.session() as session:
        row = session.scalar(select(Worker).where(Worker.identity == identity))
        if row is None:
            row = Worker(identity=identity[:100], started_at=now)
            session.add(row)
        row.name = (name or this_host())[:100]
        row.host = this_host()
        row.pid = os.getpid()
        row.version = __version__[:40]
        row.labels = list(labels)
        row.only_senders = list(only_senders) if only_senders else None
        row.embedded = embedded
        row.lease_seconds = int(lease_seconds)
        row.heartbeat_at = now
        row.stopped_at = None
        row.holds = row.holds or {kind: [] for kind in HOLD_KINDS}
        row.per_minute = row.per_minute or 0
        row.stats = row.stats or {}
        session.flush()
        worker_id = row.id
    with db.session() as session:
        prune(session, now)
    return worker_id


def beat(
    db: Database,
    identity: str,
    *,
    holds: dict[str, list[int]],
    per_minute: int,
    stats: dict[str, Any],
    now: datetime | None = None,
) -> bool:
    """Write a heartbeat; False when the row is gone (pruned, or a restored database), so
    the caller registers again."""
    now = now or utcnow()
    with db.session() as session:
        result = session.execute(
            update(Worker)
            .where(Worker.identity == identity)
            .values(
                heartbeat_at=now,
                holds={kind: sorted(holds.get(kind, [])) for kind in HOLD_KINDS},
                per_minute=int(per_minute),
                stats=stats,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def stopped(db: Database, identity: str, now: datetime | None = None) -> None:
    """A clean stop: the row says so, and holds nothing any more."""
    now = now or utcnow()
    with db.session() as session:
        session.execute(
            update(Worker)
            .where(Worker.identity == identity)
            .values(
                stopped_at=now,
                heartbeat_at=now,
                holds={kind: [] for kind in HOLD_KINDS},
                per_minute=0,
            )
            .execution_options(synchronize_session=False)
        )


def state(worker: Worker, now: datetime | None = None) -> State:
    now = now or utcnow()
    if worker.stopped_at is not None:
        return "stopped"
    if now - worker.heartbeat_at > timedelta(seconds=worker.lease_seconds):
        return "lost"
    return "running"


def silent_seconds(worker: Worker, now: datetime | None = None) -> float:
    return max(0.0, ((now or utcnow()) - worker.heartbeat_at).total_seconds())


def prune(session: Session, now: datetime | None = None) -> int:
    """Forget workers stopped, or lost, for more than a week."""
    cutoff = (now or utcnow()) - KEEP
    # A lost row became lost a lease after its last beat; a lease is at most an hour, so
    # rows silent since before the cutoff are the only candidates.
    candidates = session.execute(
        select(Worker.id, Worker.stopped_at, Worker.heartbeat_at, Worker.lease_seconds).where(
            Worker.heartbeat_at < cutoff
        )
    ).all()
    gone = [
        row.id
        for row in candidates
        if (row.stopped_at or row.heartbeat_at + timedelta(seconds=row.lease_seconds)) < cutoff
    ]
    if gone:
        session.execute(delete(Worker).where(Worker.id.in_(gone)))
    return len(gone)


def check(db: Database, name: str, host: str, now: datetime | None = None) -> tuple[bool, str]:
    """`wabulk worker --check`: (True, "healthy") when the database answers, its schema is
    current, and a worker of this name on this host beats and has not stopped; else
    (False, what is wrong)."""
    where = redact_url(db.engine.url.render_as_string(hide_password=False))
    try:
        current = migrate.is_up_to_date(db.engine)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"The database at {where} is not reachable: {first}"
    if not current:
        return False, (
            f"The database at {where} is not up to date: run `wabulk db upgrade`, then "
            "restart the worker."
        )
    now = now or utcnow()
    with db.session() as session:
        rows = session.scalars(
            select(Worker)
            .where(Worker.name == name, Worker.host == host)
            .order_by(Worker.heartbeat_at.desc())
        ).all()
    if not rows:
        return False, f"No worker named {name!r} has run on {host} (in the last week)."
    running = [row for row in rows if state(row, now) == "running"]
    if any(_process_alive(row.pid) for row in running):
        return True, "healthy"
    if running:
        # Beat less than a lease ago, but its process is gone (killed): not healthy now,
        # whatever its last heartbeat says.
        return False, (
            f"The worker {name!r} on {host} (pid {running[0].pid}) is not running: its "
            "process is gone. Its messages return to the queue when their leases expire."
        )
    latest = rows[0]
    if state(latest, now) == "stopped":
        assert latest.stopped_at is not None
        return False, (
            f"The worker {name!r} on {host} (pid {latest.pid}) stopped at "
            f"{latest.stopped_at:%Y-%m-%d %H:%M:%S} UTC."
        )
    silent = silent_seconds(latest, now)
    return False, (
        f"The worker {name!r} on {host} (pid {latest.pid}) has sent no heartbeat for "
        f"{silent:.0f} s (its lease is {latest.lease_seconds} s): it died or lost the database."
    )


def _process_alive(pid: int) -> bool:
    """Whether a process of this pid runs on this machine (`check` is only asked about
    workers of its own host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process, or no way to tell here: trust the heartbeat
    return True


# --- what the Workers page shows -------------------------------------------------------


@dataclass
class Held:
    """Something a worker holds, by name, for a link on the page."""

    kind: str  # one of HOLD_KINDS
    id: int
    name: str


@dataclass
class WorkerView:
    worker: Worker
    state: State
    silent_seconds: float
    holds: list[Held] = field(default_factory=list)


def current(workers: Sequence[Worker], now: datetime) -> list[tuple[Worker, State]]:
    """The rows worth showing, with their state: a lost or stopped row is left out once a
    worker of its name started after it (the same worker came back). The Workers page and
    /metrics both go by this."""
    newest: dict[str, datetime] = {}
    for worker in workers:
        if worker.name not in newest or worker.started_at > newest[worker.name]:
            newest[worker.name] = worker.started_at
    shown = []
    for worker in workers:
        now_state = state(worker, now)
        if now_state == "running" or worker.started_at >= newest[worker.name]:
            shown.append((worker, now_state))
    return shown


def overview(session: Session, now: datetime | None = None) -> list[WorkerView]:
    """Every worker of the last week (a lost or stopped one only until a worker of its name
    starts again), running ones first, then lost, then stopped, each by
    name; what each holds by name (a sender, campaign or import deleted since is left out)."""
    now = now or utcnow()
    workers = session.scalars(select(Worker).order_by(Worker.name, Worker.id)).all()
    wanted: dict[str, set[int]] = {kind: set() for kind in HOLD_KINDS}
    for worker in workers:
        for kind in HOLD_KINDS:
            wanted[kind].update(_ids((worker.holds or {}).get(kind)))
    names: dict[str, dict[int, str]] = {kind: {} for kind in HOLD_KINDS}
    for kind, model, column in (
        ("senders", Sender, Sender.name),
        ("campaigns", Campaign, Campaign.name),
        ("imports", Import, Import.original_name),
    ):
        if wanted[kind]:
            rows = session.execute(
                select(model.id, column).where(model.id.in_(sorted(wanted[kind])))
            ).all()
            names[kind] = {row[0]: row[1] for row in rows}
    order = {"running": 0, "lost": 1, "stopped": 2}
    views = []
    for worker, shown in current(workers, now):
        # A lost worker's last holds stay shown: what waits for its leases to expire.
        held = [
            Held(kind, item, names[kind][item])
            for kind in HOLD_KINDS
            for item in _ids((worker.holds or {}).get(kind))
            if item in names[kind]
        ]
        views.append(WorkerView(worker, shown, silent_seconds(worker, now), held))
    views.sort(key=lambda v: order[v.state])
    return views


def _ids(raw: Any) -> list[int]:
    return [int(x) for x in raw or [] if isinstance(x, int) or str(x).isdigit()]
