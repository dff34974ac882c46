"""Workers, from their rows: heartbeats, state, pace, and the send counters each one
writes with its heartbeat (dispatch/tally.py `snapshot()`).

- A worker's counters start at zero with its process; Prometheus takes a counter that
  falls as a restart, and the `identity` label (host:pid:random) starts fresh series for a
  new process anyway.
- Which rows: every worker not stopped, unless a later worker of the same name started
  after it went silent (a restarted worker replaces its lost self); stopped ones for a day,
  so they are counted by state. A worker killed and never started again under its name
  stays lost here, which is what an alert on lost workers is for.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..dispatch.registry import current
from ..models.workers import Worker
from .exposition import Family

STOPPED_SHOWN = timedelta(days=1)
STATES = ("running", "lost", "stopped")


def _shown(session: Session, now: datetime) -> list[tuple[Worker, str]]:
    rows = session.scalars(
        select(Worker)
        .where(or_(Worker.stopped_at.is_(None), Worker.stopped_at >= now - STOPPED_SHOWN))
        .order_by(Worker.id)
    ).all()
    return list(current(rows, now))


def worker_families(session: Session, now: datetime) -> list[Family]:
    by_state = Family(
        "wabulk_workers",
        "gauge",
        "Workers by state: running, lost (silent longer than its lease) and stopped "
        "(cleanly, in the last day).",
    )
    heartbeat = Family(
        "wabulk_worker_heartbeat_timestamp_seconds",
        "gauge",
        "When each running or lost worker last reported, in Unix seconds.",
    )
    pace = Family(
        "wabulk_worker_messages_per_minute",
        "gauge",
        "Messages each worker handed to a channel in the minute before its last heartbeat.",
    )
    outcomes = Family(
        "wabulk_worker_sends_total",
        "counter",
        "Send attempts by each worker process per sender and outcome (sent, failed, retry, "
        "unknown, skipped, requeue), since the process started.",
    )
    latency = Family(
        "wabulk_worker_send_duration_seconds",
        "histogram",
        "How long a send took at the channel, per worker process and sender.",
    )
    shown = _shown(session, now)
    counts = dict.fromkeys(STATES, 0)
    for row, state in shown:
        counts[state] = counts.get(state, 0) + 1
        if state == "stopped":
            continue
        who = {"worker": row.name, "identity": row.identity}
        heartbeat.add(row.heartbeat_at.timestamp(), **who)
        pace.add(row.per_minute or 0, **who)
        stats = row.stats if isinstance(row.stats, dict) else {}
        for sender_id, kinds in sorted((stats.get("outcomes") or {}).items()):
            for kind, n in sorted(kinds.items()):
                outcomes.add(n, **who, sender_id=sender_id, outcome=kind)
        bounds = stats.get("bounds") or []
        for sender_id, h in sorted((stats.get("latency") or {}).items()):
            latency.histogram(
                bounds, h["buckets"], h["sum"], h["count"], **who, sender_id=sender_id
            )
    for state, n in counts.items():
        by_state.add(n, state=state)
    return [by_state, heartbeat, pace, outcomes, latency]
