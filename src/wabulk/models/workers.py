"""Running worker processes (`wabulk worker`, and the dispatcher inside `wabulk serve`).

PostgreSQL is the only coordination point between machines (DESIGN §5): each process keeps
one row here fresh with a heartbeat, so the Workers page, `wabulk worker --check` and the
metrics can say who runs, where, holding what, and which ones went silent. A row only
describes: leases on messages, senders and imports stay the source of truth for who may
act on what.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, utcnow


class Worker(Base):
    __tablename__ = "workers"
    __table_args__ = (Index("ix_workers_name", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # host:pid:random, the value its leases carry in `lease_owner` columns.
    identity: Mapped[str] = mapped_column(String(100), unique=True)
    # What an operator calls it (`--name`, default the host name); `--check` looks for it.
    name: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int]
    version: Mapped[str] = mapped_column(String(40))
    # The worker's labels (`--label`); a sender with a `worker_label` runs only where it is.
    labels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # `--senders NAME…`: the only senders this worker sends for (None: any it may).
    only_senders: Mapped[list[str] | None] = mapped_column(JSONType)
    # True for the dispatcher inside the web process (`wabulk serve`).
    embedded: Mapped[bool] = mapped_column(default=False)
    lease_seconds: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]  # a clean stop; silent past its lease: lost
    # {"senders": [ids], "campaigns": [ids], "imports": [ids]} as of the last heartbeat.
    holds: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Messages handed to a channel in the minute before the last heartbeat.
    per_minute: Mapped[int] = mapped_column(default=0)
    # Counters since the process started (dispatch/tally.py `snapshot()`), for /metrics.
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
