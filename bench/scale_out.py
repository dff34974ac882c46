"""Scale-out: messages per second with 1, 2 and 4 `wabulk worker` processes on PostgreSQL.

Each run gets a PostgreSQL schema of its own (made, migrated and dropped here) and an
instance folder the workers share; the campaign has one sender and 1,500 recipients per
worker (`--quick`: 150), so every run sends for about as long. The workers are started and
registered before the campaign is launched; the rate is messages ÷ seconds from the first
send to the last, as the channel saw them (the dry-run log's times, the fake's receipt
times), so a worker's start-up is not counted.

- dry run: a dry-run sender with 20 ms latency per send and no pacing;
- Cloud API: the fake Graph API (tests/fakes/cloud_api) as its own process on loopback,
  its rate limit off and 20 ms before each answer; a linked Cloud API sender (checked and
  its templates synced as the Senders page does) with its messages per second raised far
  past what is sent, tier unlimited, and a campaign on an approved template.

Each worker's concurrency is fixed: one lane per sender per worker, sending one message at a
time (the Cloud API sender's requests in flight set to 1), so one worker's ceiling is about
50 messages a second and what more workers add is the latency they overlap, not CPU (this
machine has two cores). The baseline of each ratio is the same campaign with one worker.

Every run is checked before it counts: each recipient got exactly one message (the log's or
the fake's records), every row is `sent` and the counters match. A wrong result stops the
script. Prints; never fails on a slow machine. The last line is the JSON summary (see
docs/performance.md). Needs a PostgreSQL server (default: the test server at
127.0.0.1:5432, database `test`); without one it says so and exits 0.

    .venv/bin/python bench/scale_out.py [--quick] [--postgres URL] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from cloud_setup import (  # noqa: E402
    SECRET_KEY,
    Fake,
    linked_sender,
    order_template,
    prepare_fake,
)
from pg_schema import reachable, schema  # noqa: E402
from sqlalchemy import select  # noqa: E402

BENCH = "scale_out"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PER_WORKER = {"full": 1_500, "quick": 150}
LATENCY_SECONDS = 0.020
IN_FLIGHT = 1  # the Cloud API sender's requests in flight per worker
TARGET_FOUR_OVER_ONE = 3.5
# A lane claims what it sends in a quarter of its lease (62 messages at 20 ms): short, so
# the last claims do not leave one worker sending alone at the end of a run.
LEASE_SECONDS = 5
SENDER = "Bench sender"
# Bounds for a stuck run, never a measure of speed.
START_SECONDS = 120
RUN_SECONDS = 900


# ---- setup (not timed) -----------------------------------------------------------------------


def cloud_campaign(db: Any, list_id: int, sender_id: int) -> int:
    from wabulk.campaigns.service import DraftInput, save_draft

    with db.session() as session:
        template = order_template(session)
        campaign = save_draft(
            session,
            None,
            DraftInput(
                name="Bench scale-out", list_ids=[list_id], sender_ids=[sender_id],
                template_id=template.id,
            ),
        )  # fmt: skip
        return campaign.id


# ---- a run -----------------------------------------------------------------------------------


def _times(channel: str, instance: Path, fake: Fake | None) -> list[tuple[int, float]]:
    """(message id, when the channel took it) of every send, from the log or the fake."""
    if channel == "dry_run":
        from tests.scale_support import deliveries

        return [
            (int(line["message_id"]), datetime.fromisoformat(str(line["time"])).timestamp())  # type: ignore[call-overload]
            for line in deliveries(instance, SENDER)
        ]
    assert fake is not None
    return [(int(r["callback"]), float(r["at"])) for r in fake.read("sent")]


def _sent_so_far(channel: str, instance: Path, fake: Fake | None) -> int:
    if channel == "dry_run":
        from tests.scale_support import log_lines

        return log_lines(instance, SENDER)
    assert fake is not None
    return int(fake.read("counters")["sent"])


def run(server: str, channel: str, workers: int, n: int, fake: Fake | None) -> dict[str, Any]:
    from tests.campaigns_support import assert_counters_exact
    from tests.scale_support import (
        add_contacts,
        add_dry_run_sender,
        draft_campaign,
        launch,
        progress,
        registered,
        wait_for,
    )
    from tests.scale_support import workers as worker_group

    from wabulk import migrate
    from wabulk.db import Database
    from wabulk.models import Message, MessageStatus

    env = {"WABULK_SECRET_KEY": SECRET_KEY}
    if fake is not None:
        fake.control("reset")
        prepare_fake(fake)
        fake.control("set_latency", seconds=LATENCY_SECONDS)
        env["WABULK_CLOUD_API_URL"] = fake.url
    with (
        schema(server, "bench_scale_") as url,
        tempfile.TemporaryDirectory(prefix="wabulk-scale-") as tmp,
    ):
        instance = Path(tmp) / "instance"
        instance.mkdir()
        db = Database(url)
        try:
            migrate.upgrade(db.engine)
            list_id = add_contacts(db, n)
            if channel == "dry_run":
                sender_id = add_dry_run_sender(db, SENDER, LATENCY_SECONDS)
                campaign_id = draft_campaign(db, list_id, [sender_id], "Bench scale-out")
            else:
                assert fake is not None
                sender_id = linked_sender(
                    db, fake.url, name=SENDER, timezone="UTC",
                    settings={"max_in_flight": IN_FLIGHT},
                )  # fmt: skip
                campaign_id = cloud_campaign(db, list_id, sender_id)
            with worker_group(instance, url, LEASE_SECONDS, **env) as group:
                for _ in range(workers):
                    group.start()
                pids = {w.pid for w in group.started}
                wait_for(
                    f"{workers} workers to register",
                    lambda: pids <= registered(db),
                    START_SECONDS,
                    group,
                    every=0.1,
                )
                launched_at = time.time()
                if launch(db, campaign_id) != n:
                    raise SystemExit(f"{channel}: the launch did not queue {n:,} messages")
                wait_for(
                    f"{n:,} sends",
                    lambda: _sent_so_far(channel, instance, fake) >= n,
                    RUN_SECONDS,
                    group,
                    every=0.05,
                )
                wait_for(
                    "the campaign to settle",
                    lambda: progress(db, campaign_id).settled >= n,
                    RUN_SECONDS,
                    group,
                    every=0.1,
                )
            times = _times(channel, instance, fake)
            with db.session() as session:
                statuses = Counter(
                    session.scalars(
                        select(Message.status).where(Message.campaign_id == campaign_id)
                    )
                )
            final = progress(db, campaign_id)
            try:
                assert_counters_exact(db, campaign_id)
                counters_wrong = ""
            except AssertionError as exc:
                counters_wrong = str(exc) or "the counters differ from the rows"
        finally:
            db.dispose()
    ids = Counter(mid for mid, _ in times)
    problems = []
    if len(ids) != n or any(c > 1 for c in ids.values()):
        twice = sum(1 for c in ids.values() if c > 1)
        problems.append(f"{len(ids):,} messages reached the channel ({twice:,} twice), not {n:,}")
    if statuses != Counter({MessageStatus.SENT: n}):
        problems.append(f"the rows are {dict(statuses)}")
    if final.sent != n or final.queued or final.sending:
        problems.append(f"the counters are {final}")
    if counters_wrong:
        problems.append(counters_wrong)
    if problems:
        raise SystemExit(f"{channel} with {workers} workers is wrong: " + "; ".join(problems))
    stamps = sorted(t for _, t in times)
    span = stamps[-1] - stamps[0]
    return {
        "channel": channel,
        "workers": workers,
        "messages": n,
        "seconds": span,
        "rate": (n - 1) / span if span > 0 else float("inf"),
        "from_launch": stamps[-1] - launched_at,
    }


# ---- the run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke check")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("WABULK_TEST_POSTGRES_URL", DEFAULT_PG),
        help="the PostgreSQL server (a schema per run is made and dropped there)",
    )
    parser.add_argument(
        "--workers", default="1,2,4", help="worker counts to measure, comma-separated"
    )
    args = parser.parse_args(argv)
    counts = sorted({int(x) for x in args.workers.split(",") if x.strip()})
    per_worker = PER_WORKER["quick" if args.quick else "full"]
    why = reachable(args.postgres)
    if why is not None:
        print(f"PostgreSQL at {args.postgres} is not reachable ({why}); nothing measured.")
        return 0

    results: dict[str, dict[int, dict[str, Any]]] = {"dry_run": {}, "cloud_api": {}}
    fake = Fake()
    try:
        for channel in ("dry_run", "cloud_api"):
            for k in counts:
                result = run(
                    args.postgres,
                    channel,
                    k,
                    per_worker * k,
                    fake if channel == "cloud_api" else None,
                )
                results[channel][k] = result
                print(
                    f"{channel:<10} {k} worker{'s' if k > 1 else ' '} {result['messages']:>6,} msgs"
                    f"  {result['seconds']:7.2f} s  {result['rate']:8.1f} msg/s"
                    f"  ({result['from_launch']:.2f} s from launch)",
                    flush=True,
                )
    finally:
        fake.stop()

    def ratio(channel: str, k: int) -> float | None:
        one, more = results[channel].get(1), results[channel].get(k)
        if one is None or more is None:
            return None
        return round(more["rate"] / one["rate"], 3)

    print(
        f"each worker: one lane, one send at a time, {LATENCY_SECONDS * 1000:.0f} ms a send; "
        "every run checked: each recipient once, rows sent, counters = rows"
    )
    print("speed-up over one worker:")
    for channel in ("dry_run", "cloud_api"):
        parts = [f"{k}: {ratio(channel, k):.2f}x" for k in counts if k > 1 and ratio(channel, k)]
        print(f"  {channel:<10} " + ", ".join(parts))
    four, four_cloud = ratio("dry_run", 4), ratio("cloud_api", 4)
    if four is not None and four_cloud is not None:
        verdict = "met" if min(four, four_cloud) >= TARGET_FOUR_OVER_ONE else "MISSED"
        print(
            f"target: 4 workers >= {TARGET_FOUR_OVER_ONE}x one: dry run {four:.2f}x, "
            f"Cloud API {four_cloud:.2f}x  {verdict}"
            + (" (quick run: sizes are not the issue's)" if args.quick else "")
        )
    baseline: dict[str, Any] = {
        f"{channel}_{k}_workers": round(results[channel][k]["rate"], 1)
        for channel in ("dry_run", "cloud_api")
        for k in counts
    }
    baseline.update(
        {"latency_ms": round(LATENCY_SECONDS * 1000), "messages_per_worker": per_worker}
    )
    summary = {
        "bench": BENCH,
        "unit": "messages/s",
        "product": round(results["dry_run"][max(counts)]["rate"], 1),
        "baseline": baseline,
        "ratio": {
            "four_over_one": four,
            "two_over_one": ratio("dry_run", 2),
            "four_over_one_cloud_api": four_cloud,
            "two_over_one_cloud_api": ratio("cloud_api", 2),
        },
        "target": {
            "four_over_one": TARGET_FOUR_OVER_ONE,
            "four_over_one_cloud_api": TARGET_FOUR_OVER_ONE,
        },
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
