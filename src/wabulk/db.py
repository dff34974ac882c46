"""Engine and sessions.

- SQLite gets WAL, a busy timeout and foreign keys on every connection, so the web app
  and the in-process dispatcher can write side by side.
- Domain code receives a `Session`; it never reaches for Flask to find one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from .disk import private_file, tighten

SQLITE_BUSY_TIMEOUT_MS = 10_000


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


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _private_sqlite(parsed)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


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
