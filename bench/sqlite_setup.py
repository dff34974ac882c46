"""What the benchmarks share to build their SQLite databases outside the timed part."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

FIRST = (  # noqa: SIM905
    "Aarav Vivaan Aditya Arjun Sai Rohan Rahul Amit Priya Ananya Diya Kavya Neha Meera"
).split()
LAST = (  # noqa: SIM905
    "Sharma Verma Gupta Singh Kumar Patel Shah Reddy Rao Nair Iyer Menon Das"
).split()
CITIES = "Mumbai Delhi Bengaluru Hyderabad Chennai Kolkata Pune Jaipur".split()  # noqa: SIM905


def stamp(value: datetime) -> str:
    """How SQLAlchemy stores our UTCDateTime on SQLite (see contacts/bulk.py)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def connect(path: Path) -> sqlite3.Connection:
    """A plain connection with the product's pragmas (WAL, foreign keys, cache...)."""
    from wabulk.db import _sqlite_pragmas

    con = sqlite3.connect(path, isolation_level=None)
    _sqlite_pragmas(con, None)
    return con
