"""SQLite writers of one process take turns at the write lock, first come first served."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text

from wabulk.db import Database, WriteGate


def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    with database.session() as session:
        session.execute(text("CREATE TABLE t (who INTEGER)"))
    yield database
    database.dispose()


def _queued(gate: WriteGate, n: int) -> bool:
    return len(gate._waiters) == n


def _gate(db: Database) -> WriteGate:
    with db.session() as session:
        gate = session.connection().connection.driver_connection.gate
    assert isinstance(gate, WriteGate)
    return gate


def test_waiting_writers_get_the_lock_in_the_order_they_asked(db: Database) -> None:
    gate = _gate(db)
    order: list[int] = []
    holder = db.sessionmaker()
    holder.execute(text("INSERT INTO t VALUES (0)"))  # holds the turn until it commits

    def write(who: int) -> None:
        with db.session() as session:
            session.execute(text("INSERT INTO t VALUES (:who)"), {"who": who})
            order.append(who)

    threads = []
    for who in (1, 2, 3):
        thread = threading.Thread(target=write, args=(who,))
        thread.start()
        threads.append(thread)
        _until(partial(_queued, gate, who))
    holder.commit()
    holder.close()
    for thread in threads:
        thread.join(10)
    assert order == [1, 2, 3]
    with db.session() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 4
    assert gate._owner is None


def test_reads_and_failed_writes_leave_the_turn_free(db: Database) -> None:
    gate = _gate(db)
    with db.session() as session:
        session.execute(text("SELECT count(*) FROM t")).scalar_one()
        assert gate._owner is None
        with pytest.raises(Exception, match="no such table"):
            session.execute(text("INSERT INTO missing VALUES (1)"))
        session.rollback()
    assert gate._owner is None
    with db.session() as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        assert gate._owner == threading.get_ident()
    assert gate._owner is None


def test_a_rolled_back_or_abandoned_write_gives_the_turn_back(db: Database) -> None:
    gate = _gate(db)
    session = db.sessionmaker()
    session.execute(text("INSERT INTO t VALUES (1)"))
    session.rollback()
    assert gate._owner is None
    session.execute(text("INSERT INTO t VALUES (2)"))
    session.close()  # back to the pool, which rolls it back
    assert gate._owner is None
    with db.session() as other:
        assert other.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
