"""The high-volume writes of an import, sent straight to the driver's executemany.

SQLAlchemy's per-row parameter processing (JSON and datetime binds) cost more than SQLite's
own work on these statements. Rows arrive as tuples already in the form each statement
takes (the attributes and cells as JSON text, encoded where the row was read); only the
chunk's shared values (timestamps, list, import) are added here. Everything else in the
importer goes through SQLAlchemy as usual.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..db import driver_marks, driver_time

# The order of the values in a row tuple, then the values shared by the whole chunk.
_CONTACT_COLUMNS = (
    "phone",
    "name",
    "attributes",
    "country",
    "timezone",
    "opted_out_at",
    "opt_out_reason",
    "created_at",
    "updated_at",
)
_ISSUE_COLUMNS = ("import_id", "row_number", "rejected", "reason", "cells")
# SQLAlchemy keeps an INSERT's rowcount only when asked; the counters depend on it.
_ROWCOUNT = {"preserve_rowcount": True}


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_contacts(
    session: Session,
    rows: Sequence[tuple[Any, ...]],
    now: datetime,
    opted_out: bool = False,
    reason: str | None = None,
) -> int:
    """INSERT new contacts, skipping any phone that exists; returns how many were inserted.

    Each row is (phone, name, attributes as JSON text, country, timezone); all get `now`
    as their creation time, and as their opt-out time when `opted_out` (with `reason`).
    """
    if not rows:
        return 0
    to_time = driver_time(session)
    # Built from constant column names and placeholders only; values travel as parameters.
    marks = driver_marks(session, len(_CONTACT_COLUMNS))
    if _is_postgresql(session):
        marks[_CONTACT_COLUMNS.index("attributes")] += "::jsonb"
    sql = (
        f"INSERT INTO contacts ({', '.join(_CONTACT_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join(marks)}) ON CONFLICT DO NOTHING"
    )
    stamp = to_time(now)
    shared = (stamp if opted_out else None, reason if opted_out else None, stamp, stamp)
    done = session.connection().exec_driver_sql(
        sql, [row + shared for row in rows], execution_options=_ROWCOUNT
    )
    return int(done.rowcount)


def add_members(session: Session, list_id: int, contact_ids: list[int], now: datetime) -> int:
    """Put contacts in a list; ones already in it stay as they are (ON CONFLICT DO NOTHING).

    Returns how many memberships were inserted, for the list's member_count.
    """
    if not contact_ids:
        return 0
    to_time = driver_time(session)
    stamp = to_time(now)
    # Constant names and placeholders only; values travel as parameters.
    sql = (
        f"INSERT INTO contact_list_members (list_id, contact_id, added_at) "  # noqa: S608
        f"VALUES ({', '.join(driver_marks(session, 3))}) ON CONFLICT DO NOTHING"
    )
    done = session.connection().exec_driver_sql(
        sql, [(list_id, cid, stamp) for cid in contact_ids], execution_options=_ROWCOUNT
    )
    return int(done.rowcount)


def add_members_by_phone(session: Session, list_id: int, phones: list[str], now: datetime) -> int:
    """Put the contacts with these phones in a list, in one INSERT … SELECT (no id round trip).

    The phones travel as one parameter (a JSON array on SQLite, an array on PostgreSQL): no
    limit on their number, and nothing to compile per phone. Returns how many memberships
    were inserted (the ones that existed are skipped), for the list's member_count.
    """
    if not phones:
        return 0
    stamp = driver_time(session)(now)
    if _is_postgresql(session):
        sql = (
            "INSERT INTO contact_list_members (list_id, contact_id, added_at) "
            "SELECT %s, id, %s FROM contacts WHERE phone = ANY(%s) ON CONFLICT DO NOTHING"
        )
        params: tuple[Any, ...] = (list_id, stamp, phones)
    else:
        # The WHERE clause keeps SQLite from reading ON CONFLICT as part of the join.
        sql = (
            "INSERT INTO contact_list_members (list_id, contact_id, added_at) "
            "SELECT ?, c.id, ? FROM json_each(?) AS p JOIN contacts AS c ON c.phone = p.value "
            "WHERE true ON CONFLICT DO NOTHING"
        )
        params = (list_id, stamp, json.dumps(phones))
    done = session.connection().exec_driver_sql(sql, params, execution_options=_ROWCOUNT)
    return int(done.rowcount)


class NotTheNewRows(Exception):
    """add_new_members did not find exactly the new contacts: roll back, write by phones."""


def add_new_members(session: Session, list_id: int, inserted: int, now: datetime) -> int | None:
    """Put the `inserted` contacts this transaction's last insert_contacts created in a list,
    by their ids (a range scan) rather than by their phones (an index lookup each).

    SQLite only: there the transaction holds the write lock from its first INSERT, and a
    table without AUTOINCREMENT numbers new rows from the largest id up, so the new contacts
    are the last `inserted` ids. None (use add_members_by_phone) on PostgreSQL, whose ids
    come from a sequence other sessions share. NotTheNewRows if the count does not come out
    exact (the caller rolls back and writes the chunk the careful way).
    """
    if _is_postgresql(session) or not inserted:
        return None if inserted else 0
    stamp = driver_time(session)(now)
    connection = session.connection()
    (last,) = connection.exec_driver_sql("SELECT max(id) FROM contacts").one()
    done = connection.exec_driver_sql(
        "INSERT INTO contact_list_members (list_id, contact_id, added_at) "
        "SELECT ?, id, ? FROM contacts WHERE id > ? ON CONFLICT DO NOTHING",
        (list_id, stamp, last - inserted),
        execution_options=_ROWCOUNT,
    )
    if done.rowcount != inserted:
        raise NotTheNewRows(f"{done.rowcount} list memberships for {inserted} new contacts")
    return inserted


def insert_issues(session: Session, import_id: int, issues: Sequence[tuple[Any, ...]]) -> None:
    """INSERT an import's issues: (row number, rejected?, reason, cells as JSON text) each."""
    if not issues:
        return
    marks = driver_marks(session, len(_ISSUE_COLUMNS))
    if _is_postgresql(session):
        marks[-1] += "::jsonb"
    sql = (
        f"INSERT INTO import_issues ({', '.join(_ISSUE_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join(marks)})"
    )
    session.connection().exec_driver_sql(sql, [(import_id, *issue) for issue in issues])
