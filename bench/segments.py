"""Segments: the count at a million contacts beside a thousand, and the launch beside raw SQL.

Builds two databases of the same shape (migrated with wabulk.migrate), set-based (one
INSERT … SELECT over a generated series per table; not timed):

- big: 1,000,000 contacts with imported attributes (`city`, `last_purchase` as an ISO date
  within the last 700 days, `due_amount`), 1% opted out and 1% not on WhatsApp; two lists
  ("Regulars": two thirds of them, "Newsletter": half); one finished campaign "Monday's
  offer" with a message to every contact (1,000,000 messages: 40% read, 30% delivered, 15%
  sent, 10% failed, 5% sent; a twentieth replied);
- small: the same with 1,000 contacts and 1,000 messages.

Three typical segments, saved with the product's `segments.service.create` (which makes the
expression indexes of their attribute conditions). The SQLite files are left unanalysed, as
the product leaves them; PostgreSQL is analysed once, as autovacuum soon would:

- `city_and_list`: City = Pune and in the list Regulars;
- `bought_90_days`: Last Purchase within 90 days;
- `delivered_not_read`: delivered but not read of "Monday's offer".

For each, in the same run:

- count: `segments.service.count` (the builder's live count, capped at 100,000), median of
  alternating runs on both databases; ratio big ÷ small (target: under 2, or under 200 ms
  at a million);
- launch: `campaigns.audience.insert_messages` for a draft with that segment (the product's
  one INSERT … SELECT), beside the same set inserted by a hand-written INSERT … SELECT
  (`raw`); both in a transaction that is rolled back, alternating, median of the runs;
  ratio raw ÷ product (target: at least 0.5, i.e. within 2 times).

`--postgres URL` runs the same on PostgreSQL (two schemas made and dropped in that
database) instead of SQLite files; `--explain` prints each segment's query plan;
`--partial-indexes` counts again with the segments' indexes remade partial (a what-if).

Prints; never fails on a slow machine. The last line is the JSON summary.

    .venv/bin/python bench/segments.py [--quick] [--postgres URL] [--explain]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = "segments"
FULL = {"small": 1_000, "big": 1_000_000}
QUICK = {"small": 1_000, "big": 20_000}
TARGET_COUNT_FACTOR = 2.0
TARGET_COUNT_MS = 200.0
TARGET_LAUNCH_FACTOR = 2.0
CAP = 100_000
CITIES = ("Mumbai", "Delhi", "Bengaluru", "Hyderabad", "Chennai", "Kolkata", "Pune", "Jaipur")
HISTORY_DAYS = 700
OFFER = "Monday's offer"
SEGMENTS = ("city_and_list", "bought_90_days", "delivered_not_read")

# ---- setup (not timed) -----------------------------------------------------------------------


def _series(dialect: str, n: int) -> str:
    """A FROM clause giving i = 1..n, generated inside the database."""
    if dialect == "sqlite":
        return (
            "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < "  # noqa: S608
            f"{int(n)}) SELECT i FROM s) AS s"
        )
    return f"generate_series(CAST(1 AS bigint), {int(n)}) AS s(i)"  # i * 31337 passes 2**31


def _contacts_sql(dialect: str, n: int) -> str:
    # Affine maps of i spread cities and dates without correlating them with the lists
    # (i % 3), the outcomes (i % 20) or each other.
    city = f"(i * 7919) % {len(CITIES)}"
    days = f"(i * 31337) % {HISTORY_DAYS}"
    if dialect == "sqlite":
        cities = json.dumps(list(CITIES))
        attributes = (
            f"json_object('city', json_extract('{cities}', '$[' || ({city}) || ']'), "
            f"'last_purchase', date(:today, '-' || ({days}) || ' days'), "
            "'due_amount', CAST((i * 7) % 50000 AS TEXT))"
        )
        phone = "'+91' || (9000000000 + i)"
    else:
        array = "ARRAY[" + ", ".join(f"'{c}'" for c in CITIES) + "]"
        attributes = (
            f"jsonb_build_object('city', ({array})[({city}) + 1], "
            "'last_purchase', "
            f"to_char(CAST(:today AS date) - CAST({days} AS integer), 'YYYY-MM-DD'), "
            "'due_amount', CAST((i * 7) % 50000 AS text))"
        )
        phone = "'+91' || CAST(9000000000 + i AS text)"
    return (
        # Generated text only (numbers and the constants above): nothing from outside.
        "INSERT INTO contacts (id, phone, name, attributes, country, timezone, opted_out_at, "  # noqa: S608
        "not_on_whatsapp_at, created_at, updated_at, is_demo) "
        f"SELECT i, {phone}, 'Customer ' || i, {attributes}, 'IN', 'Asia/Kolkata', "
        "CASE WHEN i % 97 = 0 THEN :created END, CASE WHEN i % 101 = 0 THEN :created END, "
        f":created, :created, false FROM {_series(dialect, n)}"
    )


MESSAGES_SQL = """
INSERT INTO messages (campaign_id, contact_id, phone, status, attempts, queued_at, sent_at,
    delivered_at, read_at, failed_at, replied_at, error_code, updated_at)
SELECT :campaign, id, phone,
    CASE WHEN id % 20 < 8 THEN 'read' WHEN id % 20 < 14 THEN 'delivered'
         WHEN id % 20 < 17 THEN 'sent' WHEN id % 20 < 19 THEN 'failed' ELSE 'sent' END,
    1, :sent, CASE WHEN id % 20 NOT IN (17, 18) THEN :sent END,
    CASE WHEN id % 20 < 14 THEN :delivered END, CASE WHEN id % 20 < 8 THEN :read END,
    CASE WHEN id % 20 IN (17, 18) THEN :sent END, CASE WHEN id % 20 = 0 THEN :read END,
    CASE WHEN id % 20 IN (17, 18) THEN '131026' END, :read
FROM contacts
"""


def _ts(dialect: str, value: datetime) -> Any:
    """A timestamp as the product stores it (SQLite: UTCDateTime's text form)."""
    if dialect == "sqlite":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


@contextlib.contextmanager
def databases(postgres: str | None, folder: Path) -> Iterator[dict[str, str]]:
    """URLs of two empty databases (small, big): SQLite files, or PostgreSQL schemas."""
    if postgres is None:
        yield {size: f"sqlite:///{folder}/{size}.db" for size in FULL}
        return
    from sqlalchemy import create_engine, make_url, text

    names = {size: f"wabulk_bench_segments_{size}_{uuid.uuid4().hex[:8]}" for size in FULL}
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield {
            size: make_url(postgres)
            .update_query_dict({"options": f"-csearch_path={name}"})
            .render_as_string(hide_password=False)
            for size, name in names.items()
        }
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def build(url: str, n: int, now: datetime) -> dict[str, Any]:
    """One database with `n` contacts and `n` messages; the three segments saved."""
    from sqlalchemy import text

    from wabulk import migrate
    from wabulk.db import Database
    from wabulk.segments import service as segments

    db = Database(url)
    migrate.upgrade(db.engine)
    dialect = db.engine.dialect.name
    created = _ts(dialect, now - timedelta(days=400))
    launched = now - timedelta(days=7)
    with db.engine.begin() as conn:
        conn.execute(
            text(_contacts_sql(dialect, n)), {"today": now.date().isoformat(), "created": created}
        )
        lists = {}
        for name, rule in (("Regulars", "id % 3 <> 0"), ("Newsletter", "id % 2 = 0")):
            lists[name] = conn.execute(
                text(
                    "INSERT INTO contact_lists (name, created_at, member_count, is_demo) "
                    "VALUES (:name, :created, 0, false) RETURNING id"
                ),
                {"name": name, "created": created},
            ).scalar_one()
            added = conn.execute(
                text(
                    "INSERT INTO contact_list_members (list_id, contact_id, added_at) "  # noqa: S608
                    f"SELECT :list, id, :created FROM contacts WHERE {rule}"
                ),
                {"list": lists[name], "created": created},
            ).rowcount
            conn.execute(
                text("UPDATE contact_lists SET member_count = :n WHERE id = :list"),
                {"n": added, "list": lists[name]},
            )
        offer = conn.execute(
            text(
                "INSERT INTO campaigns (name, status, body, pacing, max_attempts, "
                "text_before_document, total, n_queued, n_sending, n_sent, n_delivered, "
                "n_read, n_failed, n_skipped, n_unknown, n_replied, created_at, launched_at, "
                "finished_at, is_demo) VALUES (:name, 'completed', 'New stock is in.', '{}', "
                "3, false, :n, 0, 0, 0, 0, 0, 0, 0, 0, 0, :at, :at, :done, false) RETURNING id"
            ),
            {
                "name": OFFER,
                "n": n,
                "at": _ts(dialect, launched),
                "done": _ts(dialect, launched + timedelta(hours=3)),
            },
        ).scalar_one()
        conn.execute(
            text(MESSAGES_SQL),
            {
                "campaign": offer,
                "sent": _ts(dialect, launched + timedelta(minutes=5)),
                "delivered": _ts(dialect, launched + timedelta(minutes=6)),
                "read": _ts(dialect, launched + timedelta(hours=1)),
            },
        )
        if dialect == "postgresql":
            # Rows inserted with explicit ids leave the sequence behind.
            conn.execute(text("SELECT setval('contacts_id_seq', :n)"), {"n": n})
    terms = segment_terms(lists["Regulars"], offer)
    ids = {}
    with db.session() as session:
        for key, value in terms.items():
            ids[key] = segments.create(session, None, key.replace("_", " "), None, value).id
    if dialect == "postgresql":
        # What autovacuum does soon after such inserts (and the new expression indexes need
        # it for their statistics). SQLite is left as the product leaves it: never analysed.
        with db.engine.connect() as conn:
            # Only the bench's own tables: a database-wide ANALYZE deadlocks against tests
            # dropping their schemas in the same database.
            tables = "contacts, contact_list_members, contact_lists, messages, campaigns, segments"
            conn.execute(text(f"ANALYZE {tables}"))
            conn.commit()
    db.dispose()
    return {"n": n, "regulars": lists["Regulars"], "offer": offer, "segments": ids, "url": url}


def segment_terms(regulars: int, offer: int) -> dict[str, dict[str, Any]]:
    return {
        "city_and_list": {
            "match": "all",
            "conditions": [
                {"field": "attribute", "key": "city", "op": "eq", "value": "Pune"},
                {"field": "list", "op": "in", "value": [regulars]},
            ],
        },
        "bought_90_days": {
            "match": "all",
            "conditions": [
                {"field": "attribute", "key": "last_purchase", "op": "within_days", "value": 90}
            ],
        },
        "delivered_not_read": {
            "match": "all",
            "conditions": [
                {
                    "field": "outcome",
                    "campaign_id": offer,
                    "op": "delivered_not_read",
                    "value": None,
                }
            ],
        },
    }


def raw_select(dialect: str, key: str) -> str:
    """The same set as each segment, written by hand: (id, phone) of reachable contacts.

    Attributes are read with the very expressions the product indexes (segments/compile.py),
    so the hand-written query may use the same expression indexes.
    """
    from wabulk.segments.compile import attribute_sql

    def attr(name: str, kind: str) -> str:
        return attribute_sql(dialect, "c.attributes", name, kind)

    where = {
        "city_and_list": f"{attr('city', 'lower')} = 'pune' AND c.id IN (SELECT contact_id "  # noqa: S608
        "FROM contact_list_members WHERE list_id = :regulars)",
        "bought_90_days": f"{attr('last_purchase', 'date')} BETWEEN :since AND :today",
        "delivered_not_read": "c.id IN (SELECT contact_id FROM messages WHERE campaign_id = "
        ":offer AND status = 'delivered' AND replied_at IS NULL)",
    }[key]
    return (
        "SELECT c.id, c.phone FROM contacts c WHERE c.opted_out_at IS NULL "  # noqa: S608
        f"AND c.not_on_whatsapp_at IS NULL AND {where}"
    )


def raw_params(info: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "regulars": info["regulars"],
        "offer": info["offer"],
        "since": (now.date() - timedelta(days=90)).isoformat(),
        "today": now.date().isoformat(),
    }


# ---- measurements ----------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000, out


def measure_counts(dbs: dict[str, Any], infos: dict[str, Any], repeat: int, now: datetime) -> dict:
    """Each segment's product count on both databases, alternating, after one warm-up."""
    from wabulk.models import Segment
    from wabulk.segments import service as segments

    out: dict[str, dict[str, Any]] = {}
    for key in SEGMENTS:
        times: dict[str, list[float]] = {"small": [], "big": []}
        found: dict[str, tuple[int, bool]] = {}
        for i in range(repeat + 1):
            for size in ("small", "big") if i % 2 == 0 else ("big", "small"):
                with dbs[size].sessionmaker() as session:
                    terms = session.get(Segment, infos[size]["segments"][key]).terms
                    ms, found[size] = _timed(
                        lambda s=session, t=terms: segments.count(s, t, now=now, cap=CAP)
                    )
                    session.rollback()
                if i:
                    times[size].append(ms)
        out[key] = {"times": times, "found": found}
    return out


def _draft(session: Any, segment_id: int) -> Any:
    from wabulk.models import Campaign, CampaignStatus

    campaign = Campaign(
        name="Bench launch",
        status=CampaignStatus.DRAFT,
        body="Hello",
        pacing={},
        segment_id=segment_id,
    )
    session.add(campaign)
    session.flush()
    return campaign


def measure_launches(db: Any, info: dict[str, Any], repeat: int, now: datetime) -> dict:
    """Each segment's launch insert, product beside raw, alternating; rolled back each time."""
    from sqlalchemy import text

    from wabulk.campaigns import audience

    dialect = db.engine.dialect.name
    due = now
    raw_insert = (
        "INSERT INTO messages (campaign_id, contact_id, phone, status, next_attempt_at, "
        "queued_at, updated_at, attempts) SELECT :campaign, r.id, r.phone, 'queued', :due, "
        ":due, :due, 0 FROM ({select}) AS r"
    )
    params = raw_params(info, now) | {"due": _ts(dialect, due)}
    out: dict[str, dict[str, Any]] = {}
    for key in SEGMENTS:
        times: dict[str, list[float]] = {"product": [], "raw": []}
        rows: dict[str, int] = {}
        sql = text(raw_insert.format(select=raw_select(dialect, key)))
        for i in range(repeat + 1):
            for way in ("product", "raw") if i % 2 == 0 else ("raw", "product"):
                with db.sessionmaker() as session:
                    campaign = _draft(session, info["segments"][key])
                    if way == "product":
                        ms, n = _timed(
                            lambda s=session, c=campaign: audience.insert_messages(s, c, due)
                        )
                    else:
                        ms, result = _timed(
                            lambda s=session, c=campaign, q=sql: s.execute(
                                q, params | {"campaign": c.id}
                            )
                        )
                        n = result.rowcount
                    session.rollback()
                rows[way] = n
                if i:
                    times[way].append(ms)
        out[key] = {"times": times, "rows": rows}
    return out


def explain(db: Any, info: dict[str, Any], now: datetime) -> None:
    """The plan of each segment's count and launch query (the product's compiled SQL)."""
    from sqlalchemy import func, select

    from wabulk.models import Segment
    from wabulk.segments import compile as compiled

    prefix = "EXPLAIN QUERY PLAN " if db.engine.dialect.name == "sqlite" else "EXPLAIN "
    with db.sessionmaker() as session:
        for key in SEGMENTS:
            terms = session.get(Segment, info["segments"][key]).terms
            # The very query segments.service.count runs.
            ids = compiled.reachable_columns(terms, now, compiled.contacts.c.id)
            counted = ids.limit(CAP + 1).subquery()
            stmt = select(func.count()).select_from(counted)
            sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
            print(f"\n-- {key}: {sql}")
            for row in session.connection().exec_driver_sql(prefix + sql):
                print("   ", " | ".join(str(v) for v in row))


def partial_indexes(db: Any, info: dict[str, Any]) -> list[str]:
    """What-if (`--partial-indexes`): each saved segment's expression index remade partial,
    over the contacts a segment can reach (not opted out, on WhatsApp), so a count reads the
    index alone. Not what the product does today; printed beside its figures."""
    from sqlalchemy import text

    from wabulk.models import Segment
    from wabulk.segments import indexes
    from wabulk.segments.compile import index_needs

    with db.sessionmaker() as session:
        needs = {
            need
            for segment_id in info["segments"].values()
            for need in index_needs(session.get(Segment, segment_id).terms)
        }
    made = []
    with db.engine.begin() as conn:
        for key, kind in sorted(needs):
            name = indexes.index_name(key, kind)
            conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
            conn.execute(
                text(
                    indexes.ddl(conn.dialect.name, key, kind)
                    + " WHERE opted_out_at IS NULL AND not_on_whatsapp_at IS NULL"
                )
            )
            made.append(name)
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE contacts"))
    return made


# ---- the run ---------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 contacts, not 1,000,000")
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL database")
    parser.add_argument("--repeat", type=int, default=0, help="timed runs of each count")
    parser.add_argument("--explain", action="store_true", help="print each segment's plan")
    parser.add_argument(
        "--partial-indexes",
        action="store_true",
        help="then count again with the segment indexes remade partial (a what-if)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    count_repeat = args.repeat or (5 if args.quick else 9)
    launch_repeat = 2 if args.quick else 3
    now = datetime.now(UTC)

    from wabulk.db import Database

    with (
        tempfile.TemporaryDirectory(prefix="wabulk-bench-") as tmp,
        databases(args.postgres, Path(tmp)) as urls,
    ):
        infos, dbs = {}, {}
        for size, n in sizes.items():
            start = time.perf_counter()
            infos[size] = build(urls[size], n, now)
            print(
                f"built {size}: {n:,} contacts, {n:,} messages in "
                f"{time.perf_counter() - start:.1f} s"
            )
            dbs[size] = Database(urls[size])
        dialect = dbs["big"].engine.dialect.name
        if args.explain:
            explain(dbs["big"], infos["big"], now)
        counts = measure_counts(dbs, infos, count_repeat, now)
        launches = measure_launches(dbs["big"], infos["big"], launch_repeat, now)
        what_if = None
        if args.partial_indexes:
            for size in sizes:
                partial_indexes(dbs[size], infos[size])
            if args.explain:
                explain(dbs["big"], infos["big"], now)
            what_if = measure_counts(dbs, infos, count_repeat, now)
        for db in dbs.values():
            db.dispose()

    big_n = sizes["big"]
    print(
        f"\n{dialect}: count (capped at {CAP:,}) at {sizes['small']:,} and {big_n:,} contacts; "
        f"launch at {big_n:,} beside a hand-written INSERT … SELECT"
    )
    print(
        f"{'segment':<20} {'found':>9} {'small ms':>9} {'big ms':>9} {'ratio':>6}   "
        f"{'rows':>8} {'product ms':>11} {'raw ms':>8} {'raw/prod':>8}"
    )
    big_over_small, count_ms, small_ms, launch_ratio, launch_ms, raw_ms = {}, {}, {}, {}, {}, {}
    mismatches = []
    for key in SEGMENTS:
        c, launch = counts[key], launches[key]
        small, big = _median(c["times"]["small"]), _median(c["times"]["big"])
        product, raw = _median(launch["times"]["product"]), _median(launch["times"]["raw"])
        big_over_small[key] = round(big / small, 2)
        count_ms[key], small_ms[key] = round(big, 2), round(small, 2)
        launch_ratio[key] = round(raw / product, 3)
        launch_ms[key], raw_ms[key] = round(product, 1), round(raw, 1)
        if launch["rows"]["product"] != launch["rows"]["raw"]:
            mismatches.append(f"{key}: product {launch['rows']} rows")
        n, capped = c["found"]["big"]
        met = big / small <= TARGET_COUNT_FACTOR or big <= TARGET_COUNT_MS
        print(
            f"{key:<20} {('≥' if capped else '') + format(n, ','):>9} {small:>9.1f} {big:>9.1f} "
            f"{big / small:>5.1f}x {'met' if met else 'MISSED':<6}"
            f"{launch['rows']['product']:>8,} {product:>11.0f} {raw:>8.0f} {raw / product:>8.2f} "
            f"{'met' if raw / product >= 1 / TARGET_LAUNCH_FACTOR else 'MISSED'}"
        )
    partial_ms = {}
    if what_if is not None:
        print("\nwhat-if: the same counts with the segment indexes partial (reachable contacts)")
        for key in SEGMENTS:
            small = _median(what_if[key]["times"]["small"])
            big = _median(what_if[key]["times"]["big"])
            partial_ms[key] = round(big, 2)
            print(f"{key:<20} {small:>9.1f} ms {big:>9.1f} ms {big / small:>6.1f}x")
    for line in mismatches:
        print(f"WARNING: the product and the hand-written query found different sets: {line}")
    print(
        json.dumps(
            {
                "bench": BENCH,
                "unit": f"ms: segment count at {big_n:,} contacts (baseline: at "
                f"{sizes['small']:,}); launch insert at {big_n:,} (baseline: raw INSERT … SELECT)",
                "database": dialect,
                "product": {"count_ms": count_ms, "launch_ms": launch_ms},
                "baseline": {"small_count_ms": small_ms, "raw_launch_ms": raw_ms},
                "count_ms": count_ms,
                "ratio": {
                    "big_over_small": big_over_small,
                    "launch_raw_over_product": launch_ratio,
                },
                "target": {
                    "big_over_small_max": TARGET_COUNT_FACTOR,
                    "or_count_ms_max": TARGET_COUNT_MS,
                    "launch_raw_over_product_min": round(1 / TARGET_LAUNCH_FACTOR, 2),
                },
                "rows": {k: launches[k]["rows"]["product"] for k in SEGMENTS},
                "same_sets": not mismatches,
                **({"what_if_partial_indexes_count_ms": partial_ms} if partial_ms else {}),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
