"""The two high-volume writes of an import, sent straight to the driver's executemany.

SQLAlchemy's per-row parameter processing (JSON and datetime binds) cost more than SQLite's
own work on these statements. Values are prepared here once, in the form each driver
stores natively; everything else in the importer goes through SQLAlchemy as usual.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..db import driver_marks, driver_time

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


def insert_contacts(session: Session, rows: list[dict[str, Any]]) -> None:
    """INSERT new contacts: dicts with every column of _CONTACT_COLUMNS, but the attributes
    as JSON text under "attributes_json" (encoded where the row was read)."""
    if not rows:
        return
    to_time = driver_time(session)
    # Built from constant column names and placeholders only; values travel as parameters.
    marks = driver_marks(session, len(_CONTACT_COLUMNS))
    if session.get_bind().dialect.name == "postgresql":
        marks[_CONTACT_COLUMNS.index("attributes")] += "::jsonb"
    sql = (
        f"INSERT INTO contacts ({', '.join(_CONTACT_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join(marks)})"
    )
    # A chunk's rows share one or two timestamps: format each once, not once per row.
    times: dict[Any, Any] = {None: None}

    def stamp(value: datetime | None) -> Any:
        if value not in times:
            times[value] = to_time(value)
        return times[value]

    params = [
        (
            r["phone"],
            r["name"],
            r["attributes_json"],
            r["country"],
            r["timezone"],
            stamp(r["opted_out_at"]),
            r["opt_out_reason"],
            stamp(r["created_at"]),
            stamp(r["updated_at"]),
        )
        for r in rows
    ]
    session.connection().exec_driver_sql(sql, params)


def add_members(session: Session, list_id: int, contact_ids: list[int], now: datetime) -> None:
    """Put contacts in a list; ones already in it stay as they are (ON CONFLICT DO NOTHING)."""
    if not contact_ids:
        return
    to_time = driver_time(session)
    stamp = to_time(now)
    # Constant names and placeholders only; values travel as parameters.
    sql = (
        f"INSERT INTO contact_list_members (list_id, contact_id, added_at) "  # noqa: S608
        f"VALUES ({', '.join(driver_marks(session, 3))}) ON CONFLICT DO NOTHING"
    )
    session.connection().exec_driver_sql(sql, [(list_id, cid, stamp) for cid in contact_ids])


def add_members_by_phone(session: Session, list_id: int, phones: list[str], now: datetime) -> None:
    """Put the contacts with these phones in a list, in one INSERT … SELECT (no id round trip)."""
    if not phones:
        return
    to_time = driver_time(session)
    mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
    # Constant names and placeholders only; values travel as parameters. The WHERE clause also
    # keeps SQLite from reading ON CONFLICT as part of the SELECT.
    sql = (
        "INSERT INTO contact_list_members (list_id, contact_id, added_at) "  # noqa: S608
        f"SELECT {mark}, id, {mark} FROM contacts "
        f"WHERE phone IN ({', '.join(driver_marks(session, len(phones)))}) "
        "ON CONFLICT DO NOTHING"
    )
    session.connection().exec_driver_sql(sql, (list_id, to_time(now), *phones))
