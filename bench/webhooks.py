"""Webhooks: signed Cloud API statuses applied per second, and the receiver's answer time.

Builds a SQLite instance with N messages (50,000; `--quick` 5,000) of a template campaign on
one Cloud API sender (made, checked and synced against the fake Graph API as the Senders
page does), launched, then marked `sent` with a wamid each set-based (the send itself is
`bench/cloud_api.py`'s business). A second campaign to the same customers is launched with
the sender's pace at Meta's default 80 messages/s, so a campaign runs while the webhooks
arrive, sending to the fake (its own process). Then, in the same run:

- product: `wabulk serve` on that instance (waitress, 8 threads, the embedded worker on,
  sending the running campaign; the POSTs start once it has sent its first message).
  8 client threads POST Meta-shaped status webhooks signed with the sender's app secret:
  3 statuses a message (sent with pricing, delivered, read), 20 statuses a POST, shuffled
  within a window of 300 so some arrive out of order, ~2% repeated in a later POST. Each
  POST's answer time is measured; one not answered 200 is posted again a second later,
  as Meta retries (counted as `not_200`). Statuses ÷ wall seconds from the first POST
  until the worker has applied every stored delivery;
- floor: the same POSTs from the same clients to a WSGI app on the same server (waitress,
  8 threads) that only checks the signature and stores the body in SQLite (WAL, one
  commit a POST), as the receiver does before it answers. Statuses ÷ wall seconds of the
  posting; its answer times.

The product is checked before the figures are printed: every message is `read` with its
sent, delivered and read times and its billed category, no delivery failed, and the
campaign's counters are exact. `lost` counts the messages whose final state is wrong.
Prints; never fails on a slow machine. The last line is the JSON summary
(see docs/performance.md).

    .venv/bin/python bench/webhooks.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from cloud_setup import (  # noqa: E402
    APP_SECRET,
    PNID,
    SECRET_KEY,
    WABA,
    Fake,
    Instance,
    build,
    connect,
    phone,
    prepare_fake,
    stamp,
)

BENCH = "webhooks"
FULL, QUICK = 50_000, 5_000
PER_POST = 20
WINDOW = 300
DUPLICATES = 0.02
CLIENTS = 8
RETRIES = 5
THREADS = 8
TARGET_STATUSES_PER_S = 3_000
TARGET_P99_MS = 250
SEED = 20261205
SERVING = re.compile(r"serving on (http://\S+)")


# ---- data (not timed) ------------------------------------------------------------------------


def mark_sent(inst: Instance, sent_at: datetime) -> dict[int, str]:
    """Every message `sent` once with a wamid, the counters and the sent statistics moved to
    match, as the dispatcher's settle leaves them; {message id: wamid}."""
    from wabulk.analytics import stats
    from wabulk.db import Database

    con = connect(inst.path)
    at = stamp(sent_at)
    con.execute("BEGIN")
    con.execute(
        "UPDATE messages SET status = 'sent', attempts = 1, sender_id = ?, sending_at = ?, "
        "sent_at = ?, provider_message_id = 'wamid.HBgMOTE' || printf('%08d', id) || 'FQIAERgS', "
        "lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE campaign_id = ?",
        (inst.sender_id, at, at, at, inst.campaign_id),
    )
    con.execute(
        "UPDATE campaigns SET n_queued = n_queued - ?, n_sent = n_sent + ? WHERE id = ?",
        (inst.n, inst.n, inst.campaign_id),
    )
    con.execute("COMMIT")
    wamids = dict(
        con.execute(
            "SELECT id, provider_message_id FROM messages WHERE campaign_id = ?",
            (inst.campaign_id,),
        ).fetchall()
    )
    con.close()
    db = Database(inst.url)
    with db.session() as session:
        stats.bump(session, [("sent", inst.campaign_id, inst.sender_id, sent_at, None, inst.n)])
    db.dispose()
    return wamids


def launch_running(inst: Instance) -> int:
    """A second campaign to the same customers with the same template, launched (all queued),
    and the sender's pace back to Meta's default 80 messages/s: the worker sends it while the
    webhooks arrive, as a shop's next campaign would. Its id."""
    from wabulk.campaigns import lifecycle
    from wabulk.campaigns.service import DraftInput, save_draft
    from wabulk.db import Database
    from wabulk.models import Campaign, Sender
    from wabulk.senders.pace import CLOUD_RATE

    db = Database(inst.url)
    with db.session() as session:
        first = session.get(Campaign, inst.campaign_id)
        sender = session.get(Sender, inst.sender_id)
        assert first is not None and sender is not None
        sender.max_per_second = CLOUD_RATE
        campaign = save_draft(
            session,
            None,
            DraftInput(
                name="Bench running campaign",
                list_ids=[lst.id for lst in first.lists],
                sender_ids=[inst.sender_id],
                template_id=first.template_id,
            ),
        )
        campaign_id = campaign.id
    with db.session() as session:
        lifecycle.launch(session, None, campaign_id)
    db.dispose()
    return campaign_id


def running_sent(inst: Instance, campaign_id: int) -> tuple[int, int]:
    """(messages of the running campaign sent, those failed or unknown)."""
    con = connect(inst.path)
    sent, bad = con.execute(
        "SELECT n_sent + n_delivered + n_read, n_failed + n_unknown FROM campaigns WHERE id = ?",
        (campaign_id,),
    ).fetchone()
    con.close()
    return sent, bad


def posts(wamids: dict[int, str], start: datetime) -> tuple[list[bytes], int]:
    """The signed bodies to POST, in posting order, and how many distinct statuses they hold.

    Meta's timestamps are whole seconds: message k is sent at start + k/1000 s, delivered
    2 s and read 5 s later. The stream in time order is shuffled within a window, and 2% of
    the statuses are posted a second time a little later (in another body).
    """
    rng = random.Random(SEED)
    base = int(start.timestamp())
    events: list[tuple[float, dict[str, Any]]] = []
    for k, (mid, wamid) in enumerate(sorted(wamids.items())):
        sent = base + k // 1000
        recipient = phone(k).removeprefix("+")
        for status, delay in (("sent", 0), ("delivered", 2), ("read", 5)):
            record: dict[str, Any] = {
                "id": wamid,
                "status": status,
                "timestamp": str(sent + delay),
                "recipient_id": recipient,
                "biz_opaque_callback_data": str(mid),
            }
            if status != "read":
                record["pricing"] = {
                    "billable": True,
                    "pricing_model": "PMP",
                    "type": "regular",
                    "category": "marketing",
                }
            events.append((sent + delay + k % 1000 / 1000, record))
    events.sort(key=lambda e: e[0])
    distinct = len(events)
    order = [i + rng.uniform(0, WINDOW) for i in range(distinct)]
    repeats = [
        (i + rng.uniform(WINDOW, 3 * WINDOW), events[i][1])
        for i in rng.sample(range(distinct), int(distinct * DUPLICATES))
    ]
    placed = [(at, e[1]) for at, e in zip(order, events, strict=True)]
    stream = [r for _, r in sorted([*placed, *repeats], key=_first)]
    bodies = []
    for lo in range(0, len(stream), PER_POST):
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
            "statuses": stream[lo : lo + PER_POST],
        }
        envelope = {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA, "changes": [{"value": value, "field": "messages"}]}],
        }
        bodies.append(json.dumps(envelope, separators=(",", ":")).encode())
    return bodies, distinct


def _first(item: tuple[float, Any]) -> float:
    return item[0]


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


# ---- posting ---------------------------------------------------------------------------------


def post_all(url: str, path: str, bodies: list[bytes]) -> dict[str, Any]:
    """CLIENTS threads, each on one kept-alive connection, POST the bodies in turn."""
    host, port = url.removeprefix("http://").split(":")
    pending = iter(enumerate(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    refused: dict[int, int] = {}
    signed = [signature(body) for body in bodies]

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine = []
        while True:
            with lock:
                item = next(pending, None)
            if item is None:
                break
            i, body = item
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signed[i]}
            # As Meta does, a delivery that is not answered 200 is posted again (Meta waits
            # longer between tries; one second keeps the run short).
            for attempt in range(RETRIES):
                started = time.perf_counter()
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - started)
                if response.status == 200:
                    break
                with lock:
                    refused[response.status] = refused.get(response.status, 0) + 1
                if attempt == RETRIES - 1:
                    failures.append(f"POST {i}: HTTP {response.status} {RETRIES} times")
                time.sleep(1.0)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures):,} POSTs failed, e.g. {failures[0]}")
    latencies.sort()
    return {"start": start, "seconds": seconds, "latencies": latencies, "refused": refused}


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


# ---- the product -----------------------------------------------------------------------------


def serve(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(  # noqa: S603 (our own commands)
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            stop(proc)
            raise SystemExit("the server did not start:\n" + "".join(lines))
        lines.append(line)
        if found := SERVING.search(line):
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    return proc, found.group(1)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_applied(path: Path, expected: int, timeout: float) -> tuple[float, int]:
    """Poll until `expected` deliveries are stored and every one is processed; the
    perf_counter time that was first seen, and how many needed a second try."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            stored, open_, given_up = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE processed_at IS NULL), "
                "count(*) FILTER (WHERE processed_at IS NULL AND attempts >= 10) "
                "FROM webhook_receipts"
            ).fetchone()
            if stored >= expected and open_ == 0:
                seen = time.perf_counter()
                retried = con.execute(
                    "SELECT count(*) FROM webhook_receipts WHERE attempts > 0"
                ).fetchone()[0]
                return seen, retried
            if given_up:
                raise SystemExit(f"{given_up:,} deliveries could not be applied")
            if time.monotonic() > deadline:
                raise SystemExit(f"not applied in {timeout:.0f} s: {stored} stored, {open_} open")
            time.sleep(0.02)
    finally:
        con.close()


def check(inst: Instance) -> dict[str, Any]:
    con = connect(inst.path)
    lost = con.execute(
        "SELECT count(*) FROM messages WHERE campaign_id = ? AND NOT (status = 'read' AND "
        "sent_at IS NOT NULL AND delivered_at IS NOT NULL AND read_at IS NOT NULL AND "
        "billed_category = 'marketing' AND attempts = 1)",
        (inst.campaign_id,),
    ).fetchone()[0]
    counters = con.execute(
        "SELECT total, n_queued, n_sending, n_sent, n_delivered, n_read, n_failed, n_unknown "
        "FROM campaigns WHERE id = ?",
        (inst.campaign_id,),
    ).fetchone()
    slots = dict(
        con.execute(
            "SELECT kind, sum(n) FROM message_stats WHERE campaign_id = ? GROUP BY kind",
            (inst.campaign_id,),
        ).fetchall()
    )
    con.close()
    problems = []
    if counters != (inst.n, 0, 0, 0, 0, inst.n, 0, 0):
        problems.append(
            "counters (total, queued, sending, sent, delivered, read, failed, unknown) = "
            f"{counters}"
        )
    want = {"sent": inst.n, "delivered": inst.n, "read": inst.n, "billed": inst.n}
    if {k: slots.get(k) for k in want} != want:
        problems.append(f"message_stats {slots}, expected {want}")
    return {"lost": lost, "problems": problems}


def wait_sending(inst: Instance, running: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while running_sent(inst, running)[0] == 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"the running campaign sent nothing in {timeout:.0f} s")
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux; 0 elsewhere): on a shared
    machine, what a run cost, whatever else ran beside it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def product(inst: Instance, bodies: list[bytes], fake_url: str, running: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WABULK_")}
    env.update(
        WABULK_CLOUD_API_URL=fake_url,
        WABULK_INSTANCE_PATH=str(inst.instance),
        WABULK_SECRET_KEY=SECRET_KEY,
        WABULK_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    wabulk = str(Path(sys.executable).parent / "wabulk")
    served = time.perf_counter()
    proc, url = serve([wabulk, "serve", "--port", "0", "--threads", str(THREADS)], env)
    try:
        # The storm starts once the campaign is sending (a quick run is over in seconds).
        wait_sending(inst, running)
        posted = post_all(url, f"/webhooks/whatsapp/{inst.sender_id}", bodies)
        done, retried = wait_applied(inst.path, len(bodies), timeout=900)
        cpu = cpu_seconds(proc.pid)
    finally:
        stop(proc)
        stopped = time.perf_counter()
    return {
        **posted,
        "applied_seconds": done - posted["start"],
        "retried": retried,
        "served_seconds": stopped - served,
        "cpu_seconds": cpu,
    }


# ---- the floor -------------------------------------------------------------------------------


def floor_app(path: str) -> Any:
    """A WSGI app that checks the signature and stores the body, nothing else."""
    local = threading.local()
    key = APP_SECRET.encode()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        con = getattr(local, "con", None)
        if con is None:
            con = local.con = sqlite3.connect(path, isolation_level=None, timeout=30)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, environ.get("HTTP_X_HUB_SIGNATURE_256", "")):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"Signature refused."]
        con.execute(
            "INSERT OR IGNORE INTO bodies (sha, body, at) VALUES (?, ?, ?)",
            (hashlib.sha256(body).hexdigest(), body, time.time()),
        )
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"OK"]

    return app


def serve_floor(path: str) -> None:
    """`webhooks.py --serve-floor DB`: the floor app on waitress until terminated."""
    import signal

    from waitress import create_server

    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE IF NOT EXISTS bodies (sha TEXT PRIMARY KEY, body BLOB, at REAL)")
    con.close()
    server: Any = create_server(floor_app(path), host="127.0.0.1", port=0, threads=THREADS)
    print(f"serving on http://127.0.0.1:{server.effective_port}", flush=True)

    def _terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def floor(folder: Path, bodies: list[bytes]) -> dict[str, Any]:
    path = folder / "floor.db"
    proc, url = serve([sys.executable, __file__, "--serve-floor", str(path)], dict(os.environ))
    try:
        posted = post_all(url, "/webhooks/whatsapp/1", bodies)
    finally:
        stop(proc)
    con = sqlite3.connect(path)
    stored = con.execute("SELECT count(*) FROM bodies").fetchone()[0]
    con.close()
    if stored != len(bodies):
        raise SystemExit(f"floor: {stored:,} bodies stored of {len(bodies):,}")
    return posted


# ---- the run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 messages for a smoke check")
    parser.add_argument("--serve-floor", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_floor:
        serve_floor(args.serve_floor)
        return 0
    n = QUICK if args.quick else FULL

    with tempfile.TemporaryDirectory(prefix="wabulk-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        fake = Fake()
        try:
            prepare_fake(fake)
            inst = build(folder, n, fake.url)
            now = datetime.now(UTC).replace(microsecond=0)
            wamids = mark_sent(inst, now - timedelta(minutes=5))
            running = launch_running(inst)
            bodies, statuses = posts(wamids, now - timedelta(minutes=4))
            print(
                f"built {n:,} sent messages of a Cloud API template campaign, a second campaign "
                f"of {n:,} launched to run meanwhile, and {len(bodies):,} signed bodies "
                f"({statuses:,} statuses + {sum(map(len, bodies)) / 2**20:.0f} MiB) "
                f"in {time.perf_counter() - start:.1f} s"
            )
            base = floor(folder, bodies)
            made = product(inst, bodies, fake.url, running)
        finally:
            fake.stop()
        result = check(inst)
        ran, ran_bad = running_sent(inst, running)
    if result["problems"]:
        raise SystemExit("the product is wrong: " + "; ".join(result["problems"]))
    if ran_bad or not ran:
        raise SystemExit(f"the running campaign sent {ran:,}, {ran_bad:,} failed or unknown")

    rate = statuses / made["applied_seconds"]
    floor_rate = statuses / base["seconds"]
    p50, p99 = percentile(made["latencies"], 0.5), percentile(made["latencies"], 0.99)
    f50, f99 = percentile(base["latencies"], 0.5), percentile(base["latencies"], 0.99)
    print(
        f"product: {len(bodies):,} POSTs answered in {made['seconds']:.2f} s "
        f"({len(bodies) / made['seconds']:,.0f}/s), p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {made['latencies'][-1] * 1000:.0f} ms; answers other than 200 (posted "
        f"again): {made['refused'] or 'none'}"
    )
    print(
        f"product: {statuses:,} statuses applied {made['applied_seconds']:.2f} s after the "
        f"first POST: {rate:,.0f} statuses/s; lost {result['lost']}; "
        f"{made['retried']} deliveries applied on a second try"
    )
    print(
        f"floor (check + store only): {base['seconds']:.2f} s, {floor_rate:,.0f} statuses/s "
        f"({len(bodies) / base['seconds']:,.0f} POSTs/s), p50 {f50:.1f} ms, p99 {f99:.1f} ms"
    )
    print(
        f"the server used {made['cpu_seconds']:.1f} CPU seconds "
        f"({statuses / made['cpu_seconds']:,.0f} statuses per CPU second, sending included)"
        if made["cpu_seconds"]
        else "the server's CPU time is not known here"
    )
    print(
        f"meanwhile the running campaign sent {ran:,} messages in the {made['served_seconds']:.1f} "
        f"s the server ran ({ran / made['served_seconds']:,.0f}/s; its sender's pace: 80/s)"
    )
    print("checked: every message read with its times and billing, counters and stats exact")
    print("targets:")
    verdict = {True: "met", False: "MISSED"}
    print(
        f"  >= {TARGET_STATUSES_PER_S:,} statuses/s applied: {rate:,.0f}  "
        f"{verdict[rate >= TARGET_STATUSES_PER_S]}"
        + ("" if n == FULL else " (quick run: not the issue's size)")
    )
    print(f"  p99 answer < {TARGET_P99_MS} ms: {p99:.1f} ms  {verdict[p99 < TARGET_P99_MS]}")
    print(f"  lost 0: {result['lost']}  {verdict[result['lost'] == 0]}")
    summary = {
        "bench": BENCH,
        "unit": "statuses/s",
        "product": round(rate),
        "baseline": {
            "store_only": round(floor_rate),
            "store_only_p50_ms": round(f50, 1),
            "store_only_p99_ms": round(f99, 1),
        },
        "ratio": {
            "product_over_store_only": round(rate / floor_rate, 3),
            "store_only_p99_over_product_p99": round(f99 / p99, 3),
        },
        "target": {"product": TARGET_STATUSES_PER_S, "p99_ms": TARGET_P99_MS, "lost": 0},
        "p99_ms": round(p99, 1),
        "p50_ms": round(p50, 1),
        "not_200": sum(made["refused"].values()),
        "running_campaign_sent_per_s": round(ran / made["served_seconds"], 1),
        "server_cpu_s": round(made["cpu_seconds"], 1),
        "lost": result["lost"],
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
