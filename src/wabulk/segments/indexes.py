"""Expression indexes for the attribute conditions of saved segments.

An attribute lives in a JSON column, so "Due Amount > 500" would read every contact. When a
segment is saved, each attribute condition an index can serve ("is", number and date
comparisons) gets an index on exactly the expression `compile.py` writes for it, so the
database's planner matches the two (both SQLite and PostgreSQL match an index by its
expression).

- Made after the segment's own transaction commits, on a connection of its own: the save
  never waits on, or fails with, an index. At a million contacts building one takes a few
  seconds (once per attribute and kind; later saves find it there), during which writes
  to contacts (an import, an opt-out) wait; sends do not. Not CONCURRENTLY on PostgreSQL:
  an interrupted concurrent build leaves an invalid index that IF NOT EXISTS would then
  keep forever. PostgreSQL gives up after `LOCK_TIMEOUT` rather than queue behind a long
  import (the next save of a segment tries again).
- Bounded: at most `MAX_INDEXES` such indexes in a database, each small (one value per
  contact). Past that, conditions still work, by reading the contacts.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from .compile import attribute_sql, index_needs

log = logging.getLogger(__name__)

MAX_INDEXES = 24
PREFIX = "ix_seg_"
LOCK_TIMEOUT = "5s"


# A kind whose expression changed gets a new name, so IF NOT EXISTS builds the new one;
# `ensure` drops the old name's index (PostgreSQL's old "number" one overflowed on a long
# number cell and so failed that contact's write).
VERSIONS = {"number": 3}  # 3: numbers written with a decimal comma ("23,70")


def index_name(key: str, kind: str, version: int | None = None) -> str:
    version = VERSIONS.get(kind, 1) if version is None else version
    tag = kind if version == 1 else f"{kind}/{version}"
    digest = hashlib.sha256(f"{tag}:{key}".encode()).hexdigest()[:12]
    return f"{PREFIX}{kind}_{digest}"


def _older(key: str, kind: str) -> list[str]:
    return [index_name(key, kind, v) for v in range(1, VERSIONS.get(kind, 1))]


def existing(conn: Any) -> set[str]:
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = 'contacts' AND indexname LIKE 'ix\\_seg\\_%%'"
            )
        )
    else:
        rows = conn.execute(
            text(
                "SELECT name FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'contacts' AND name LIKE 'ix\\_seg\\_%' ESCAPE '\\'"
            )
        )
    return {row[0] for row in rows}


def ddl(dialect: str, key: str, kind: str) -> str:
    expression = attribute_sql(dialect, "attributes", key, kind)
    name = index_name(key, kind)
    if dialect == "postgresql":
        return f"CREATE INDEX IF NOT EXISTS {name} ON contacts (({expression}))"
    # The flags every segment query checks ride along, so a count is read from the index
    # alone (the id is SQLite's rowid, in every index).
    return (
        f"CREATE INDEX IF NOT EXISTS {name} ON contacts "
        f"({expression}, opted_out_at, not_on_whatsapp_at)"
    )


def ensure(engine: Engine, terms: dict[str, Any]) -> list[str]:
    """Create the missing indexes the terms can use (up to the bound); their names."""
    wanted = index_needs(terms)
    if not wanted:
        return []
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
        try:
            return _make(conn, wanted)
        finally:
            if postgres:
                # A session setting outlives this checkout: without the reset the pool's
                # next borrower would give up on any lock after LOCK_TIMEOUT too.
                conn.execute(text("RESET lock_timeout"))


def _make(conn: Any, wanted: list[tuple[str, str]]) -> list[str]:
    made: list[str] = []
    have = existing(conn)
    for key, kind in wanted:
        name = index_name(key, kind)
        for old in _older(key, kind):
            if old in have:
                try:
                    conn.execute(text(f"DROP INDEX IF EXISTS {old}"))
                    have.discard(old)
                except Exception:
                    log.warning("could not drop old segment index %s", old, exc_info=True)
        if name in have:
            continue
        if len(have) >= MAX_INDEXES:
            log.info("segment index %s not made: %d exist already", name, len(have))
            break
        try:
            conn.execute(text(ddl(conn.dialect.name, key, kind)))
        except Exception:  # an index is an optimisation: never fail the caller for it
            log.warning("could not create segment index %s", name, exc_info=True)
            continue
        have.add(name)
        made.append(name)
    if made and conn.dialect.name == "postgresql":
        # PostgreSQL keeps statistics of an indexed expression only from the next
        # ANALYZE; until then it guesses how many match and may pick a bad plan.
        # A sample of 30,000 rows: about a second at a million contacts, after an
        # index build of several (SQLite is left unanalysed, as everywhere).
        try:
            conn.execute(text("ANALYZE contacts"))
        except Exception:
            log.warning("could not analyse contacts after new segment indexes", exc_info=True)
    return made


def ensure_after_commit(session: Session, terms: dict[str, Any]) -> None:
    """Run `ensure` once the session's transaction has committed (never if it rolls back)."""
    if not index_needs(terms):
        return
    pending = session.info.setdefault(_PENDING, [])
    pending.append(terms)
    if len(pending) == 1 and not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)


_PENDING = "wabulk.segment_index_terms"
_LISTENING = "wabulk.segment_index_listening"


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    if not pending:
        return
    engine = session.get_bind()
    try:
        for terms in pending:
            ensure(engine, terms)  # type: ignore[arg-type]
    except Exception:  # the segment is saved; an index is only an optimisation
        log.warning("could not make segment indexes", exc_info=True)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
