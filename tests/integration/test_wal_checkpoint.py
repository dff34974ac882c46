"""A big import's WAL is copied back into the database file off the writer's path."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import func, select

from wabulk import migrate
from wabulk.contacts import import_run
from wabulk.contacts.import_read import Chunk
from wabulk.db import Database
from wabulk.models import Contact, Import, ImportKind, ImportStatus

ROWS = 4_000


def _sqlite(tmp_path: Path) -> tuple[Database, Path]:
    path = tmp_path / "w.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    # Everything so far into the file: what follows is in the WAL until checkpointed.
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, path


def _running_import(db: Database) -> int:
    with db.session() as session:
        imp = Import(
            kind=ImportKind.CONTACTS,
            status=ImportStatus.RUNNING,
            original_name="big.csv",
            stored_path="imports/x.csv",
            sha256="0" * 64,
            mapping={"phone": "Phone", "name": [], "attributes": {}, "columns": ["Phone"]},
            default_country="IN",
            lease_owner="w",
        )
        session.add(imp)
        session.flush()
        return imp.id


def _chunk(start: int) -> Chunk:
    rows = [
        (f"+9198{n:08d}", f"Person {n}", '{"note": "' + "x" * 200 + '"}', "IN", "Asia/Kolkata")
        for n in range(start, start + ROWS)
    ]
    numbers = list(range(start + 1, start + ROWS + 1))
    return Chunk(rows, [], read=ROWS, last=start + ROWS, numbers=numbers)


def test_the_writer_has_the_wal_checkpointed_in_the_background(tmp_path: Path) -> None:
    db, path = _sqlite(tmp_path)
    import_id = _running_import(db)
    size_before = path.stat().st_size
    writer = import_run.Writer(db, import_id, "w", {})
    assert writer.checkpointer is not None

    writer.commit(_chunk(0))
    writer.commit(_chunk(ROWS))
    writer.checkpointer.wait()

    # ~2 MB of contacts, far below wal_autocheckpoint: only our checkpoint copies them.
    assert path.stat().st_size > size_before + 1_000_000
    with sqlite3.connect(path) as connection:
        busy, in_wal, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and copied == in_wal
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 2 * ROWS
    db.dispose()


def test_only_sqlite_files_get_a_checkpointer(postgres_database: str) -> None:
    memory = Database("sqlite://")
    postgres = Database(postgres_database)
    assert memory.checkpointer() is None
    assert postgres.checkpointer() is None
    memory.dispose()
    postgres.dispose()
