"""The SQLite WriteGate under misuse: nested sessions in one thread, a statement failing
mid-transaction, a savepoint rolled back; the turn is never lost or kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from wabulk.db import Database, WriteGate


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    with database.session() as session:
        session.execute(text("CREATE TABLE t (who INTEGER PRIMARY KEY)"))
    yield database
    database.dispose()


def _gate(db: Database) -> WriteGate:
    with db.session() as session:
        gate = session.connection().connection.driver_connection.gate
    assert isinstance(gate, WriteGate)
    return gate


def _other_thread_writes(db: Database, who: int) -> bool:
    done: list[int] = []

    def write() -> None:
        with db.session() as session:
            session.execute(text("INSERT INTO t VALUES (:w)"), {"w": who})
        done.append(who)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(30)  # a deadline, not a timing check: a lost turn would hang here
    return done == [who]


def test_nested_sessions_and_a_failed_statement_give_every_turn_back(db: Database) -> None:
    gate = _gate(db)
    outer = db.sessionmaker()
    outer.execute(text("INSERT INTO t VALUES (1)"))
    assert gate._owner == threading.get_ident() and gate._count == 1
    inner = db.sessionmaker()
    inner.execute(text("SELECT count(*) FROM t")).scalar_one()  # a read takes no turn
    assert gate._count == 1
    with pytest.raises(IntegrityError):
        outer.execute(text("INSERT INTO t VALUES (1)"))  # fails mid-transaction
    assert gate._owner == threading.get_ident()  # the transaction still holds the lock
    outer.rollback()
    inner.close()
    outer.close()
    assert gate._owner is None and gate._count == 0
    assert _other_thread_writes(db, 7)


def test_a_savepoint_rolled_back_keeps_the_turn_until_the_end(db: Database) -> None:
    gate = _gate(db)
    with db.session() as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(IntegrityError), session.begin_nested():
            session.execute(text("INSERT INTO t VALUES (1)"))
        assert gate._owner == threading.get_ident() and gate._count == 1
        session.execute(text("INSERT INTO t VALUES (2)"))
    assert gate._owner is None
    assert _other_thread_writes(db, 3)
    with db.session() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 3
