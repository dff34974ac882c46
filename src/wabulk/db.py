"""Engine and sessions.

- SQLite gets WAL, a busy timeout and foreign keys on every connection, so the web app
  and the in-process dispatcher can write side by side.
- Domain code receives a `Session`; it never reaches for Flask to find one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from .config import ConfigError
from .disk import private_file, tighten

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Seconds a new PostgreSQL connection may take (unless the URL sets connect_timeout). Without
# it, a server that takes the connection and never answers (a host hung in a failover) held
# the request or the worker's loop that asked for it 130 s (psycopg's own limit), each of the
# web's threads in turn; with it they fail soon, answer 503 or retry, and come back soon
# after the server does.
PG_CONNECT_TIMEOUT_SECONDS = 10
PG_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_connection.cursor()
    # 8 KiB pages for a new database (an existing one keeps its own: WAL mode fixes it).
    # Measured on the million-row import (4% faster), dispatch (5%) and the pages: no loss.
    cur.execute("PRAGMA page_size=8192")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    # NORMAL is durable in WAL mode except for the last transactions on power loss.
    cur.execute("PRAGMA synchronous=NORMAL")
    # 64 MB of page cache (default 2 MB): indexes of a million contacts stay in memory, so
    # imports and pages do not slow down as the tables grow.
    cur.execute("PRAGMA cache_size=-65536")
    # Checkpoint the WAL every 10,000 pages (~80 MB) instead of every 1,000: a big import
    # otherwise spends much of its time copying pages back into the database file. Its
    # writer also has a WalCheckpointer do it on another thread.
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    cur.close()


def _private_sqlite(url: URL) -> None:
    """The database holds every customer's number: owner-only, with its WAL and shared
    memory, which SQLite creates with the database file's own mode."""
    name = url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    if not path.parent.is_dir():
        return  # SQLite itself says what is wrong with the folder
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(path.with_name(path.name + suffix))


class WriteGate:
    """This process's turn at one SQLite file's write lock, first come first served.

    - SQLite's busy handler sleeps 1, 2, 5 … then 100 ms between tries, so a writer waiting
      in it loses the lock to writers that take it back-to-back: during a webhook storm the
      receiver's inserts and the receipts worker starved a campaign's lane (6 to 19 of its 80
      messages a second, and settles that waited past the busy timeout). Threads of one
      process instead queue here, and a commit hands the turn to the longest waiter.
    - Only the writers of this process queue; another process's writers still meet SQLite's
      busy handler. A turn not given within the busy timeout is taken without the gate, so
      SQLite's own timeout and error still apply.
    - Reentrant per thread: a thread holding a turn may open another write on a second
      connection (SQLite then decides, as without the gate).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._count = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def acquire(self, timeout: float) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._owner is None or self._owner == me:
                self._owner = me
                self._count += 1
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append((me, turn))
        given = turn.acquire(timeout=timeout)
        with self._mutex:
            if given or self._owner == me:
                return True  # handed over by `release` (maybe just after the timeout)
            self._waiters.remove((me, turn))
            return False

    def release(self) -> None:
        with self._mutex:
            self._count -= 1
            if self._count > 0:
                return
            if self._waiters:
                self._owner, turn = self._waiters.popleft()
                self._count = 1
                turn.release()
            else:
                self._owner = None


_gates: dict[str, WriteGate] = {}
_gates_lock = threading.Lock()
# The statements before which Python's sqlite3 opens a transaction (its `is_dml` rule).
_DML = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _gate_for(path: str) -> WriteGate:
    with _gates_lock:
        return _gates.setdefault(path, WriteGate())


class _GatedCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        connection: _GatedConnection = self.connection  # type: ignore[assignment]
        connection.take_turn(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            connection.turn_ended()

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:  # type: ignore[override]
        connection: _GatedConnection = self.connection  # type: ignore[assignment]
        connection.take_turn(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            connection.turn_ended()


class _GatedConnection(sqlite3.Connection):
    """A sqlite3 connection whose write transactions take their turn at the file's
    `WriteGate` (when their first statement opens them) and give it back when they end."""

    gate: WriteGate | None = None
    holds = False

    def cursor(self, factory: Any = _GatedCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    # The C shortcuts would make a plain cursor and skip the gate.
    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:  # type: ignore[override]
        return self.cursor().executemany(sql, seq_of_parameters)

    def take_turn(self, sql: str) -> None:
        if (
            self.gate is None
            or self.holds
            or self.in_transaction
            or self.isolation_level is None
            or not sql.lstrip()[:7].upper().startswith(_DML)
        ):
            return
        self.holds = self.gate.acquire(SQLITE_BUSY_TIMEOUT_MS / 1000)

    def turn_ended(self) -> None:
        if self.holds and not self.in_transaction:
            self.holds = False
            self.gate.release()  # type: ignore[union-attr]

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.turn_ended()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.turn_ended()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.holds:
                self.holds = False
                self.gate.release()  # type: ignore[union-attr]


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _private_sqlite(parsed)
        name = parsed.database or ""
        gate = None if name in ("", ":memory:") else _gate_for(str(Path(name).resolve()))

        def gated(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            if isinstance(dbapi_connection, _GatedConnection):
                dbapi_connection.gate = gate

        engine = create_engine(
            url,
            connect_args={
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                "factory": _GatedConnection,
            },
        )
        event.listen(engine, "connect", gated)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_driver_name() == "psycopg":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError(
                "WABULK_DATABASE_URL points at PostgreSQL, but its driver is not installed: "
                "run `make install` (or `pip install 'wabulk[postgres]'`)."
            ) from None
    connect_args: dict[str, int] = {}
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_SECONDS
    # TCP keepalives: a connection whose server vanished without a word (a network cut, a
    # failed-over host) is found dead in about a minute instead of the system's two hours,
    # so the worker's loop fails, logs and reconnects. The URL's own values win.
    for key, value in PG_KEEPALIVES.items():
        if key not in parsed.query:
            connect_args[key] = value
    # pool_pre_ping: a connection ended by a server restart is found dead on checkout and
    # replaced, instead of failing the first statement of each pooled connection.
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()

    def checkpointer(self) -> WalCheckpointer | None:
        """A background WAL checkpointer for a long run of big writes (SQLite files only)."""
        url = self.engine.url
        if not self.is_sqlite or url.database in (None, "", ":memory:"):
            return None
        return WalCheckpointer(str(url.database))


class WalCheckpointer:
    """Copies the WAL back into the database file on a thread of its own.

    SQLite checkpoints in the committing connection once the WAL passes
    `wal_autocheckpoint` pages: a big import's writer stalled ~0.5 s each time (the copy
    and two fsyncs, a few times a million rows). Kicked after each commit, this thread does
    it while the writer goes on; a checkpoint that caught up lets the next transaction
    start the WAL afresh, so the autocheckpoint rarely comes due. PASSIVE: it never waits
    for readers or writers, and copies what it can.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        """Start a checkpoint unless one is still running."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._checkpoint, name="wabulk-wal-checkpoint")
        self._thread.daemon = True
        self._thread.start()

    def _checkpoint(self) -> None:
        try:
            connection = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error:
            return  # the writer's own autocheckpoint still applies
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # busy or gone: the next kick, or the autocheckpoint, does it
        finally:
            connection.close()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()


# --- for the few hot writes sent straight to the driver's executemany -----------------
# SQLAlchemy's per-row parameter processing costs more than SQLite's own work on the
# import's and the dispatcher's bulk statements; these prepare values once instead.


def driver_marks(session: Session, n: int) -> list[str]:
    """`n` positional parameter markers in the session's driver style."""
    mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
    return [mark] * n


def driver_time(session: Session) -> Callable[[datetime | None], Any]:
    """How the session's driver takes a datetime for our UTCDateTime columns."""
    if session.get_bind().dialect.name == "postgresql":
        return lambda value: value
    # SQLAlchemy's SQLite DATETIME storage format, in UTC (what UTCDateTime writes).
    return lambda value: (
        None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    )
