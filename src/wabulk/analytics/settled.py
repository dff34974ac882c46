"""The settled past, read once: aggregates of slots older than an hour, kept in memory.

Why: a chart over 30 days at a million messages reads tens of thousands of
`message_stats` rows, however few messages a page shows. Those rows stop changing once
their slot is past: outcomes are counted at the time they happen, so every ordinary write
lands in a recent slot. The few writes that change the past (`rebuild`, `forget_failed`,
a late `bump`, an opt-in, a recount) call `touch`, which gives the data a new random
generation; cached answers carry the generation they were read at and are never served
for another. The generation lives in the database (`tallies`), so every process serving
pages sees the change on its next request.

A query is cut at the start of the slot an hour ago: the part before comes from the cache
(read from the database the first time), the part after is always read afresh. Callers add
up the rows of both parts, so a query whose rows are summed by key needs no other change.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..models import Tally, utcnow
from ..models.stats import slot_of

GENERATION = "stats_generation"
SETTLED_AFTER = timedelta(hours=1)
MAX_ENTRIES = 1024

_cache: OrderedDict[Hashable, list[tuple[Any, ...]]] = OrderedDict()
_lock = threading.Lock()


def touch(session: Session) -> None:
    """The past changed: answers cached before this transaction are not served again."""
    dialect = session.get_bind().dialect.name
    upsert = (postgresql if dialect == "postgresql" else sqlite).insert(Tally)
    upsert = upsert.values(key=GENERATION, n=secrets.randbits(62))
    session.execute(
        upsert.on_conflict_do_update(index_elements=["key"], set_={"n": upsert.excluded.n})
    )


def generation(session: Session) -> int | None:
    """The data's generation; None before anything touched it (then nothing is cached)."""
    return session.scalar(select(Tally.n).where(Tally.key == GENERATION))


def changes_the_past(at: datetime, now: datetime | None = None) -> bool:
    """Whether a write dated `at` lands in a slot a cached answer may already cover."""
    return slot_of(at) < slot_of((now or utcnow()) - SETTLED_AFTER) + timedelta(minutes=15)


def rows(
    session: Session,
    name: str,
    start: datetime,
    end: datetime,
    build: Callable[[datetime, datetime], Select[Any]],
    *key: Hashable,
) -> list[tuple[Any, ...]]:
    """The rows of `build(a, b)` over [start, end): the settled part from the cache.

    - `name` and `key` must identify the query apart from its range (filters, offsets).
    """
    cut = min(max(slot_of(utcnow() - SETTLED_AFTER), start), end)
    found: list[tuple[Any, ...]] = []
    if cut > start:
        gen = generation(session)
        entry = (str(session.get_bind().url), gen, name, start, cut, *key)
        with _lock:
            cached = _cache.get(entry) if gen is not None else None
            if cached is not None:
                _cache.move_to_end(entry)
        if cached is None:
            cached = [tuple(r) for r in session.execute(build(start, cut))]
            if gen is not None:
                with _lock:
                    _cache[entry] = cached
                    while len(_cache) > MAX_ENTRIES:
                        _cache.popitem(last=False)
        found.extend(cached)
    if end > cut:
        found.extend(tuple(r) for r in session.execute(build(cut, end)))
    return found


def clear() -> None:
    """Forget every cached answer (tests that rewrite a database under the same address)."""
    with _lock:
        _cache.clear()
