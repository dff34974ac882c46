"""Several real `wabulk worker` processes on one PostgreSQL schema, for the scale-out test and
bench/scale_out.py.

- Workers share one instance folder, so every dry-run delivery lands in the same log
  (`<instance>/dry_run/<sender>.jsonl`, one `write` per line on an O_APPEND descriptor, so
  lines from several processes never interleave) and every worker reads the same secret key.
- Each worker's output goes to a file of its own beside the instance folder, to read when a
  test fails. Who sent how much is read from the workers' rows, by pid: each heartbeat
  writes the process's send counters (dispatch/tally.py), since a settled message keeps no
  trace of the worker that sent it.
- A campaign's contacts are inserted in one statement, not one by one: 20,000 round trips
  to PostgreSQL took longer than the sending.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

from sqlalchemy import insert, select

from wabulk.campaigns import lifecycle
from wabulk.campaigns.service import DraftInput, save_draft
from wabulk.channels.dry_run import log_path, read_log
from wabulk.contacts.bulk import add_members
from wabulk.db import Database
from wabulk.models import Campaign, CampaignStatus, Contact, ContactList, utcnow
from wabulk.models.workers import Worker
from wabulk.senders.service import SenderInput, create_sender

WABULK = str(Path(sys.executable).parent / "wabulk")
T = TypeVar("T")


def worker_env(
    instance: Path, database_url: str, name: str, lease_seconds: int, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WABULK_")}
    env.update(
        WABULK_INSTANCE_PATH=str(instance),
        WABULK_DATABASE_URL=database_url,
        WABULK_WORKER_NAME=name,
        # Short, so a killed worker's leases on messages and senders expire within seconds.
        WABULK_LEASE_SECONDS=str(lease_seconds),
        WABULK_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    output: Path
    _file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 2000) -> str:
        self._file.flush()
        return self.output.read_text(errors="replace")[-chars:]


@dataclass
class Workers:
    """`wabulk worker` processes on one database and instance folder; `stop_all` at the end."""

    instance: Path
    database_url: str
    lease_seconds: int = 5
    # More WABULK_* variables for every worker (the bench's Cloud API address, secret key).
    env: dict[str, str] = field(default_factory=dict)
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, name: str | None = None) -> WorkerProcess:
        name = name or f"worker-{len(self.started) + 1}"
        output = self.instance.parent / f"{name}.log"
        handle = output.open("ab")
        process = subprocess.Popen(
            [WABULK, "worker"],
            env=worker_env(self.instance, self.database_url, name, self.lease_seconds, **self.env),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        worker = WorkerProcess(name, process, output, handle)
        self.started.append(worker)
        return worker

    def running(self) -> list[WorkerProcess]:
        return [w for w in self.started if w.alive()]

    def kill(self, worker: WorkerProcess) -> None:
        """SIGKILL: no clean-up at all, as a crash or an OOM kill."""
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait()

    def check_alive(self, killed: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        """Fail when a worker this test did not kill has ended on its own."""
        for worker in self.started:
            if worker.pid not in killed and not worker.alive():
                raise AssertionError(
                    f"{worker.name} (pid {worker.pid}) ended on its own with code "
                    f"{worker.process.returncode}:\n{worker.tail()}"
                )

    def by_pid(self) -> dict[int, str]:
        return {w.pid: w.name for w in self.started}

    def stop_all(self, timeout: float = 30.0) -> None:
        for worker in self.started:
            if worker.alive():
                worker.process.terminate()
        for worker in self.started:
            try:
                worker.process.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            worker._file.close()


@contextmanager
def workers(
    instance: Path, database_url: str, lease_seconds: int = 5, **env: str
) -> Iterator[Workers]:
    group = Workers(instance, database_url, lease_seconds, env)
    try:
        yield group
    finally:
        group.stop_all()


# --- the campaign ---------------------------------------------------------------------------


def phone(i: int) -> str:
    return f"+9177{i:08d}"


def add_contacts(db: Database, n: int, list_name: str = "Everyone") -> int:
    """n new contacts (phones from `phone(i)`) in a new list, in a few statements; the list id."""
    now = utcnow()
    with db.session() as session:
        lst = ContactList(name=list_name)
        session.add(lst)
        session.flush()
        rows = [
            {"phone": phone(i), "name": f"Person {i}", "attributes": {}, "timezone": "UTC"}
            for i in range(n)
        ]
        session.execute(insert(Contact), rows)
        # Only these contacts (the schema may hold others): the phones are ours.
        ids = list(
            session.scalars(
                select(Contact.id)
                .where(Contact.phone.in_([r["phone"] for r in rows]))
                .order_by(Contact.id)
            )
        )
        add_members(session, lst.id, ids, now)
        return lst.id


def add_dry_run_sender(db: Database, name: str, latency_seconds: float) -> int:
    """A dry-run sender with no pacing: the latency is the only wait per message."""
    with db.session() as session:
        sender = create_sender(
            session,
            None,
            SenderInput(
                name=name,
                timezone="UTC",
                pacing={"min_delay_seconds": 0, "max_delay_seconds": 0},
                settings={"latency_seconds": latency_seconds},
            ),
        )
        return sender.id


def draft_campaign(db: Database, list_id: int, sender_ids: list[int], name: str) -> int:
    with db.session() as session:
        campaign = save_draft(
            session,
            None,
            DraftInput(name=name, list_ids=[list_id], sender_ids=sender_ids, body="Hi {{ name }}"),
        )
        return campaign.id


def launch(db: Database, campaign_id: int) -> int:
    with db.session() as session:
        return lifecycle.launch(session, None, campaign_id).total


@dataclass
class Progress:
    status: CampaignStatus
    queued: int
    sending: int
    sent: int
    unknown: int
    failed: int

    @property
    def settled(self) -> int:
        return self.sent + self.unknown + self.failed


def progress(db: Database, campaign_id: int) -> Progress:
    with db.session() as session:
        c = session.get(Campaign, campaign_id)
        assert c is not None
        return Progress(c.status, c.n_queued, c.n_sending, c.n_sent, c.n_unknown, c.n_failed)


def settled_past(db: Database, campaign_id: int, at: int) -> Callable[[], bool]:
    """A condition for `wait_for`: more than `at` messages of the campaign are settled."""
    return lambda: progress(db, campaign_id).settled > at


def wait_for(
    what: str,
    condition: Callable[[], bool],
    seconds: float,
    group: Workers | None = None,
    killed: set[int] = frozenset(),  # type: ignore[assignment]
    every: float = 0.05,
) -> None:
    """Poll until `condition()`; fail after `seconds` (a bound for a stuck run, not a speed
    check) or as soon as a worker not killed on purpose has died."""
    deadline = time.monotonic() + seconds
    while not condition():
        if group is not None:
            group.check_alive(killed)
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:.0f} s for {what}")
        time.sleep(every)


def wait_until_done(
    db: Database,
    campaign_id: int,
    group: Workers,
    killed: set[int] = frozenset(),  # type: ignore[assignment]
    stall_seconds: float = 180.0,
) -> Progress:
    """Wait while the campaign runs; fail when nothing settled for `stall_seconds` (a stuck
    run, with the workers' output), not after a total time: a busy machine is only slower."""
    last = progress(db, campaign_id)
    moved = time.monotonic()
    while last.status == CampaignStatus.RUNNING:
        group.check_alive(killed)
        time.sleep(0.25)
        now = progress(db, campaign_id)
        if (now.settled, now.sending) != (last.settled, last.sending):
            moved = time.monotonic()
        elif time.monotonic() - moved > stall_seconds:
            tails = "\n".join(f"--- {w.name}:\n{w.tail(800)}" for w in group.started)
            raise AssertionError(f"nothing moved for {stall_seconds:.0f} s: {now}\n{tails}")
        last = now
    return last


# --- what happened --------------------------------------------------------------------------


def deliveries(instance: Path, sender_name: str) -> list[dict[str, object]]:
    """The dry-run log's complete lines (a line torn by a kill is not a delivery)."""
    return read_log(log_path(instance, sender_name))


def log_lines(instance: Path, sender_name: str) -> int:
    """Lines written so far, a torn last one included (cheap: counts newlines)."""
    path = log_path(instance, sender_name)
    return path.read_bytes().count(b"\n") if path.exists() else 0


def doubled(values: Iterable[T]) -> dict[T, int]:
    return {v: n for v, n in Counter(values).items() if n > 1}


def registered(db: Database) -> set[int]:
    """Pids of the workers whose row says they run (registered, not stopped)."""
    with db.session() as session:
        return set(session.scalars(select(Worker.pid).where(Worker.stopped_at.is_(None))))


def sent_by_worker(db: Database, sender_id: int) -> dict[int, int]:
    """Messages each worker process (by pid) sent for a sender, from the counters its
    heartbeat last wrote to its row (dispatch/tally.py)."""
    with db.session() as session:
        rows = session.execute(select(Worker.pid, Worker.stats)).all()
    out: dict[int, int] = {}
    for pid, stats in rows:
        kinds = ((stats or {}).get("outcomes") or {}).get(str(sender_id)) or {}
        out[pid] = out.get(pid, 0) + int(kinds.get("sent", 0))
    return out
