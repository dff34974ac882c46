"""Dispatch: messages settled per second, beside the floor; launch seconds, beside raw SQL.

Builds one SQLite database (migrated with wabulk.migrate) holding 1,000,000 contacts, a list
of every tenth contact (100,000) and a list of all of them, a dry-run sender with zero latency
and no pacing, and two draft campaigns ("Hello {{ name }}, your code is {{ phone }}").
Every measurement then runs on its own copy of that file, so each does the same work:

- product: launch the 100,000-recipient campaign (not timed), then call `Lane.step()` until
  it goes idle with nothing queued; messages settled (n_sent) ÷ wall seconds;
- floor: on an identical copy of the launched database, the same claims and writes in plain
  `sqlite3`: claim a batch (UPDATE … RETURNING over a LIMITed sub-select), read phone and
  name, render with `str.format`, store the text and move the counters, commit; one JSON
  line per message appended to a file; settle with one executemany UPDATE and the counter
  update, commit;
- launch: `lifecycle.launch` of the 1,000,000-recipient campaign, beside one raw
  `INSERT … SELECT` of the same rows into `messages` on another copy.

Both dispatch runs are checked at the end (every message sent exactly once in the JSONL log,
with the right text; counters equal to the rows; product and floor end in the same rows);
a wrong result stops the script. Prints; never fails on a slow machine. The last line is
the JSON summary (see docs/performance.md).

    .venv/bin/python bench/dispatch.py [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_setup import CITIES, FIRST, LAST
from sqlite_setup import connect as _connect
from sqlite_setup import stamp as _stamp

BENCH = "dispatch"
SEED = 20261125
FULL = {"dispatch": 100_000, "launch": 1_000_000}
QUICK = {"dispatch": 10_000, "launch": 100_000}
TARGET_MESSAGES_PER_S = 5_000
TARGET_FLOOR_FACTOR = 2.0
TARGET_LAUNCH_FACTOR = 2.0

BODY = "Hello {{ name }}, your code is {{ phone }}"
FLOOR_BODY = "Hello {name}, your code is {phone}"
SENDER = "Bench dry run"
OWNER = "bench:1"
LEASE_SECONDS = 120

# Word lists stay as text (noqa SIM905): as list literals the formatter spreads them out.


def _copy(src: Path, dst: Path) -> Path:
    """Copy a closed database: checkpoint its WAL into the main file first."""
    con = sqlite3.connect(src)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    shutil.copyfile(src, dst)
    return dst


# ---- setup (not timed) -----------------------------------------------------------------------


def build(folder: Path, sizes: dict[str, int]) -> dict[str, Any]:
    """The base database: contacts, two lists, a dry-run sender, two draft campaigns."""
    from wabulk import migrate
    from wabulk.campaigns.service import DraftInput, save_draft
    from wabulk.db import Database
    from wabulk.senders.service import SenderInput, create_sender

    path = folder / "base.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    db.dispose()

    n, every = sizes["launch"], sizes["launch"] // sizes["dispatch"]
    rng = random.Random(SEED)
    now = _stamp(datetime.now(UTC))
    con = _connect(path)
    con.execute("BEGIN")
    sql = (
        "INSERT INTO contacts (phone, name, attributes, country, timezone, created_at, "
        "updated_at) VALUES (?, ?, ?, 'IN', 'Asia/Kolkata', ?, ?)"
    )
    cities = [json.dumps({"city": c}) for c in CITIES]
    for lo in range(0, n, 100_000):
        con.executemany(
            sql,
            [
                (
                    f"+91{9_000_000_000 + i}",
                    f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    rng.choice(cities),
                    now,
                    now,
                )
                for i in range(lo, min(n, lo + 100_000))
            ],
        )
    lists = {}
    for name in ("Dispatch", "Everyone"):
        lists[name] = con.execute(
            "INSERT INTO contact_lists (name, created_at) VALUES (?, ?) RETURNING id", (name, now)
        ).fetchone()[0]
    members = (
        "INSERT INTO contact_list_members (list_id, contact_id, added_at) "
        "SELECT ?, id, ? FROM contacts WHERE id % ? = 0"
    )
    con.execute(members, (lists["Dispatch"], now, every))
    con.execute(members, (lists["Everyone"], now, 1))
    con.execute("COMMIT")
    con.close()

    db = Database(f"sqlite:///{path}")
    with db.session() as session:
        sender = create_sender(
            session,
            None,
            SenderInput(name=SENDER, pacing={"min_delay_seconds": 0, "max_delay_seconds": 0}),
        )
        ids = {"sender": sender.id}
        for key, list_name in (("dispatch", "Dispatch"), ("launch", "Everyone")):
            campaign = save_draft(
                session,
                None,
                DraftInput(
                    name=f"Bench {key}",
                    list_ids=[lists[list_name]],
                    sender_ids=[sender.id],
                    body=BODY,
                ),
            )
            ids[key] = campaign.id
    db.dispose()
    return {"path": path, **ids}


# ---- launch ----------------------------------------------------------------------------------


def launch_product(path: Path, campaign_id: int) -> tuple[float, int]:
    """`lifecycle.launch` in its own transaction, as the web and CLI call it."""
    from sqlalchemy import text

    from wabulk.campaigns import lifecycle
    from wabulk.db import Database

    db = Database(f"sqlite:///{path}")
    with db.session() as session:  # connect (pragmas) before the clock starts
        session.execute(text("SELECT 1"))
    start = time.perf_counter()
    with db.session() as session:
        n = lifecycle.launch(session, None, campaign_id).total
    seconds = time.perf_counter() - start
    db.dispose()
    return seconds, n


def launch_raw(path: Path, campaign_id: int, list_id: int) -> tuple[float, int]:
    """The same rows with one plain INSERT … SELECT and a commit."""
    con = _connect(path)
    due = _stamp(datetime.now(UTC))
    start = time.perf_counter()
    con.execute("BEGIN")
    n = con.execute(
        "INSERT INTO messages (campaign_id, contact_id, phone, status, next_attempt_at, "
        "queued_at, updated_at, attempts) "
        "SELECT ?, c.id, c.phone, 'queued', ?, ?, ?, 0 "
        "FROM contact_list_members m JOIN contacts c ON c.id = m.contact_id "
        "WHERE m.list_id = ? AND c.opted_out_at IS NULL",
        (campaign_id, due, due, due, list_id),
    ).rowcount
    con.execute("COMMIT")
    seconds = time.perf_counter() - start
    con.close()
    return seconds, n


def _launched_rows(path: Path, campaign_id: int) -> tuple[int, int, int]:
    con = sqlite3.connect(path)
    found = con.execute(
        "SELECT count(*), sum(contact_id), count(DISTINCT phone) FROM messages "
        "WHERE campaign_id = ? AND status = 'queued'",
        (campaign_id,),
    ).fetchone()
    con.close()
    return tuple(found)


def _list_id(path: Path, name: str) -> int:
    con = sqlite3.connect(path)
    found = con.execute("SELECT id FROM contact_lists WHERE name = ?", (name,)).fetchone()[0]
    con.close()
    return found


# ---- dispatch --------------------------------------------------------------------------------


def dispatch_product(path: Path, instance: Path, sender_id: int, campaign_id: int) -> dict:
    """Drive one lane until it goes idle with nothing left queued."""
    from sqlalchemy import text

    from wabulk.db import Database
    from wabulk.dispatch.lane import Lane
    from wabulk.models import Campaign

    db = Database(f"sqlite:///{path}")
    with db.session() as session:
        session.execute(text("SELECT 1"))
    lane = Lane(db, sender_id, OWNER, instance, lease_seconds=LEASE_SECONDS)
    steps = waits = 0
    start = time.perf_counter()
    while True:
        wait = lane.step()
        steps += 1
        if wait is None:
            with db.session() as session:
                campaign = session.get(Campaign, campaign_id)
                assert campaign is not None
                queued, sent = campaign.n_queued, campaign.n_sent
            if queued == 0:
                break
            raise SystemExit(f"product: the lane went idle with {queued:,} messages queued")
        if wait > 0:
            waits += 1
            time.sleep(min(wait, 1.0))
        if steps > 1_000_000:
            raise SystemExit("product: the lane did not finish")
    seconds = time.perf_counter() - start
    lane.close()
    db.dispose()
    return {"seconds": seconds, "sent": sent, "steps": steps, "waits": waits}


CLAIM = (
    "UPDATE messages SET status = 'sending', lease_owner = ?, lease_until = ?, sending_at = ?, "
    "sender_id = ?, updated_at = ? WHERE id IN (SELECT id FROM messages WHERE campaign_id = ? "
    "AND status = 'queued' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?) "
    "RETURNING id"
)
SETTLE = (
    "UPDATE messages SET status = 'sent', sent_at = ?, provider_message_id = ?, "
    "attempts = attempts + 1, error_code = NULL, error_detail = NULL, lease_owner = NULL, "
    "lease_until = NULL, updated_at = ? WHERE id = ? AND status = 'sending' AND lease_owner = ?"
)


def dispatch_floor(path: Path, log: Path, sender_id: int, campaign_id: int, batch: int) -> dict:
    """The same claims and writes with plain sqlite3, a str.format and os.write."""
    con = _connect(path)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    lease = timedelta(seconds=LEASE_SECONDS)
    counters = "UPDATE campaigns SET n_{0} = n_{0} - ?, n_{1} = n_{1} + ? WHERE id = ?"
    sent = batches = 0
    start = time.perf_counter()
    while True:
        now = datetime.now(UTC)
        stamp = _stamp(now)
        con.execute("BEGIN")
        ids = [
            row[0]
            for row in con.execute(
                CLAIM,
                (OWNER, _stamp(now + lease), stamp, sender_id, stamp, campaign_id, stamp, batch),
            )
        ]
        if not ids:
            con.execute("COMMIT")
            break
        batches += 1
        # Placeholders only; the ids travel as parameters.
        marks = ", ".join("?" * len(ids))
        rows = con.execute(
            "SELECT m.id, c.phone, c.name FROM messages m JOIN contacts c "  # noqa: S608
            f"ON c.id = m.contact_id WHERE m.id IN ({marks}) ORDER BY m.id",
            ids,
        ).fetchall()
        texts = [FLOOR_BODY.format(name=name, phone=phone) for _, phone, name in rows]
        con.executemany(
            "UPDATE messages SET body = ? WHERE id = ?",
            [(text, row[0]) for text, row in zip(texts, rows, strict=True)],
        )
        con.execute(counters.format("queued", "sending"), (len(ids), len(ids), campaign_id))
        con.execute("COMMIT")  # the claim is durable before anything is sent
        for (mid, phone, _), text in zip(rows, texts, strict=True):
            line = json.dumps(
                {
                    "phone": phone,
                    "text": text,
                    "media": None,
                    "message_id": mid,
                    "time": datetime.now(UTC).isoformat(timespec="microseconds"),
                },
                ensure_ascii=False,
            )
            os.write(fd, (line + "\n").encode())
        stamp = _stamp(datetime.now(UTC))
        con.execute("BEGIN")
        n = con.executemany(
            SETTLE, [(stamp, f"dry-{mid}", stamp, mid, OWNER) for mid, _, _ in rows]
        ).rowcount
        con.execute(counters.format("sending", "sent"), (n, n, campaign_id))
        con.execute("COMMIT")
        sent += n
    seconds = time.perf_counter() - start
    os.close(fd)
    con.close()
    return {"seconds": seconds, "sent": sent, "batches": batches}


def verify(label: str, path: Path, log: Path, campaign_id: int, n: int) -> list[tuple]:
    """Stop the script unless every message went out exactly once with the right text."""
    from wabulk.channels.dry_run import read_log

    problems = []
    con = sqlite3.connect(path)
    rows = con.execute(
        "SELECT m.id, m.status, m.attempts, m.body, m.lease_owner, c.phone, c.name "
        "FROM messages m JOIN contacts c ON c.id = m.contact_id WHERE m.campaign_id = ? "
        "ORDER BY m.id",
        (campaign_id,),
    ).fetchall()
    by_status = dict(
        con.execute(
            "SELECT status, count(*) FROM messages WHERE campaign_id = ? GROUP BY status",
            (campaign_id,),
        ).fetchall()
    )
    con.row_factory = sqlite3.Row
    campaign = con.execute("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    con.close()
    statuses = ("queued", "sending", "sent", "delivered", "read", "failed", "skipped", "unknown")
    counters = {s: campaign[f"n_{s}"] for s in statuses}
    expected = {s: by_status.get(s, 0) for s in statuses}
    if counters != expected:
        problems.append(f"counters {counters} differ from the rows {expected}")
    if len(rows) != n or campaign["total"] != n or by_status.get("sent") != n:
        problems.append(f"{len(rows):,} rows, total {campaign['total']:,}, sent {by_status}")
    lines = read_log(log)
    sent_ids = [line["message_id"] for line in lines]
    if len(sent_ids) != len(set(sent_ids)):
        problems.append(f"{len(sent_ids) - len(set(sent_ids)):,} messages sent more than once")
    if set(sent_ids) != {row[0] for row in rows}:
        problems.append(f"the log holds {len(set(sent_ids)):,} ids, not the campaign's {n:,}")
    texts = {line["message_id"]: line["text"] for line in lines}
    wrong = [
        row[0]
        for row in rows
        if row[1] != "sent"
        or row[2] != 1
        or row[4] is not None
        or row[3] != FLOOR_BODY.format(name=row[6], phone=row[5])
        or texts.get(row[0]) != row[3]
    ]
    if wrong:
        problems.append(f"{len(wrong):,} messages with a wrong state or text, e.g. #{wrong[0]}")
    if problems:
        raise SystemExit(f"{label} is wrong: " + "; ".join(problems))
    return [(row[0], row[1], row[2], row[3]) for row in rows]


# ---- profile ---------------------------------------------------------------------------------

# (label, file suffix, function name) of the parts of a step, from the profile's cumulative times.
PARTS = [
    ("step (all)", "dispatch/lane.py", "step"),
    ("claim (queue.claim)", "dispatch/queue.py", "claim"),
    ("  render (CompiledBody.render)", "campaigns/rendering.py", "render"),
    ("  context_for", "campaigns/rendering.py", "context_for"),
    ("  campaigns read (Lane._campaigns)", "dispatch/lane.py", "_campaigns"),
    ("channel (DryRunChannel.send)", "channels/dry_run.py", "send"),
    ("settle (queue.settle)", "dispatch/queue.py", "settle"),
    ("commits (Session.commit)", "orm/session.py", "commit"),
]


def profile_product(path: Path, instance: Path, sender_id: int, campaign_id: int, n: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    result = dispatch_product(path, instance, sender_id, campaign_id)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    print(f"profile of the product run ({n:,} messages, {result['seconds']:.1f} s under cProfile):")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
    found: dict[str, float] = {}
    entries: dict[tuple, tuple] = stats.stats  # type: ignore[attr-defined]
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in entries.items():
        for label, suffix, name in PARTS:
            if func == name and file.endswith(suffix):
                found[label] = found.get(label, 0.0) + ct
    step = found.get("step (all)", 0.0)
    print("per message, from cumulative times (cProfile inflates every call, so compare shares):")
    for label, _suffix, _name in PARTS:
        seconds = found.get(label, 0.0)
        share = seconds / step if step else 0.0
        print(f"  {label:<36} {seconds / n * 1e6:7.1f} µs  {share:6.1%}")
    parts = ("claim (queue.claim)", "channel (DryRunChannel.send)", "settle (queue.settle)")
    rest = step - sum(found.get(p, 0.0) for p in parts) - found.get("commits (Session.commit)", 0)
    print(f"  {'rest of step (lane bookkeeping)':<36} {rest / n * 1e6:7.1f} µs  {rest / step:6.1%}")


# ---- the run ---------------------------------------------------------------------------------


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke check")
    parser.add_argument(
        "--profile", action="store_true", help="also profile one product run (cProfile, top 25)"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    n, big = sizes["dispatch"], sizes["launch"]

    from wabulk.dispatch.lane import MAX_BATCH

    with tempfile.TemporaryDirectory(prefix="wabulk-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        base = build(folder, sizes)
        print(
            f"built {big:,} contacts, lists of {n:,} and {big:,}, a dry-run sender and two "
            f"draft campaigns in {time.perf_counter() - start:.1f} s "
            f"({base['path'].stat().st_size / 2**20:.0f} MiB)"
        )

        # Launch: product and raw on two copies of the same database.
        everyone = _list_id(base["path"], "Everyone")
        raw_path = _copy(base["path"], folder / "launch-raw.db")
        product_path = _copy(base["path"], folder / "launch-product.db")
        launch_raw_s, raw_n = launch_raw(raw_path, base["launch"], everyone)
        launch_s, launched = launch_product(product_path, base["launch"])
        if not launched == raw_n == big:
            raise SystemExit(f"launch: product {launched:,}, raw {raw_n:,}, expected {big:,}")
        if _launched_rows(product_path, base["launch"]) != _launched_rows(raw_path, base["launch"]):
            raise SystemExit("launch: the product's rows differ from the raw statement's")
        raw_path.unlink()
        product_path.unlink()

        # Dispatch: launch the smaller campaign once, then identical copies for each run.
        dispatch_path = _copy(base["path"], folder / "dispatch-product.db")
        small_launch_s, launched = launch_product(dispatch_path, base["dispatch"])
        if launched != n:
            raise SystemExit(f"dispatch launch: {launched:,} messages, expected {n:,}")
        floor_path = _copy(dispatch_path, folder / "dispatch-floor.db")
        if args.profile:
            profile_path = _copy(dispatch_path, folder / "dispatch-profile.db")
        instance = folder / "instance"
        instance.mkdir()
        from wabulk.channels.dry_run import log_path

        floor_log = folder / "floor.jsonl"
        floor = dispatch_floor(floor_path, floor_log, base["sender"], base["dispatch"], MAX_BATCH)
        product = dispatch_product(dispatch_path, instance, base["sender"], base["dispatch"])
        product_rows = verify(
            "product", dispatch_path, log_path(instance, SENDER), base["dispatch"], n
        )
        floor_rows = verify("floor", floor_path, floor_log, base["dispatch"], n)
        if product_rows != floor_rows:
            raise SystemExit("the floor's messages differ from the product's (same work?)")

        if args.profile:
            profile_instance = folder / "instance-profile"
            profile_instance.mkdir()
            profile_product(profile_path, profile_instance, base["sender"], base["dispatch"], n)

    product_rate = _rate(product["sent"], product["seconds"])
    floor_rate = _rate(floor["sent"], floor["seconds"])
    floor_over_product = floor["seconds"] / product["seconds"]
    raw_over_launch = launch_raw_s / launch_s

    print(
        f"{f'dispatch product ({n:,} msgs)':<32} {product['seconds']:8.2f} s  "
        f"{product_rate:>9,.0f} msg/s  ({product['steps']:,} steps, {product['waits']} waits)"
    )
    print(
        f"{f'dispatch floor   ({n:,} msgs)':<32} {floor['seconds']:8.2f} s  "
        f"{floor_rate:>9,.0f} msg/s  ({floor['batches']:,} batches of up to {MAX_BATCH})"
    )
    print(f"{f'launch product ({big:,})':<32} {launch_s:8.2f} s  (lifecycle.launch)")
    print(f"{f'launch raw     ({big:,})':<32} {launch_raw_s:8.2f} s  (INSERT … SELECT)")
    print(f"{f'launch product ({n:,})':<32} {small_launch_s:8.2f} s  (the dispatch campaign)")
    print("both dispatch runs checked: every message sent once, right text, counters = rows")
    print("targets:")
    print(
        f"  >= {TARGET_MESSAGES_PER_S:,} messages/s settled: {product_rate:,.0f}"
        f"  {_verdict(product_rate >= TARGET_MESSAGES_PER_S)}"
    )
    print(
        f"  within {TARGET_FLOOR_FACTOR:g}x of the floor: "
        f"{product['seconds'] / floor['seconds']:.2f}x"
        f"  {_verdict(floor_over_product >= 1 / TARGET_FLOOR_FACTOR)}"
    )
    print(
        f"  launch within {TARGET_LAUNCH_FACTOR:g}x of the raw INSERT … SELECT: "
        f"{launch_s / launch_raw_s:.2f}x"
        f"  {_verdict(raw_over_launch >= 1 / TARGET_LAUNCH_FACTOR)}"
        + ("" if sizes is FULL else " (quick run: sizes are not the issue's)")
    )
    summary = {
        "bench": BENCH,
        "unit": "messages/s",
        "product": round(product_rate),
        "baseline": {
            "floor": round(floor_rate),
            "launch_seconds": round(launch_s, 3),
            "launch_raw_seconds": round(launch_raw_s, 3),
            "product_seconds": round(product["seconds"], 3),
            "floor_seconds": round(floor["seconds"], 3),
            "messages": n,
            "launch_recipients": big,
        },
        "ratio": {
            "floor_over_product": round(floor_over_product, 3),
            "launch_raw_over_product": round(raw_over_launch, 3),
        },
        "target": {
            "product": TARGET_MESSAGES_PER_S,
            "floor_over_product": round(1 / TARGET_FLOOR_FACTOR, 3),
            "launch_raw_over_product": round(1 / TARGET_LAUNCH_FACTOR, 3),
        },
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
