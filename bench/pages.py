"""Pages: latency at a million contacts and a million messages, beside a thousand.

Builds two SQLite databases of the same shape (migrated with wabulk.migrate):

- big: 1,000,000 contacts in two lists (all of them, and every tenth), two dry-run senders,
  50 campaigns holding 1,000,000 messages between them (49 finished over the last 30
  days at one message a second per sender, with realistic outcomes; the newest one still
  running with part of its queue left), 2,000 events;
- small: the same with 1,000 contacts and 1,000 messages.

The maintained aggregates (message_stats, tallies, list member counts) are computed with
the product's own rebuild functions, as `wabulk analytics rebuild` and `wabulk contacts
recount` would. Then a real `wabulk serve --no-worker` runs on each database, a signed-in
client requests each page alternately on both (so machine noise hits both alike), and the
median and p95 latency of each are printed with the ratio big ÷ small (target ≤ 2: cost
must not grow with the data). Last, 20 concurrent clients poll the live-progress endpoint
of the big database; every answer must be a 200 with JSON.

Prints; never fails on a slow machine. The last line is the JSON summary.

    .venv/bin/python bench/pages.py [--quick] [--requests N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import json
import os
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_setup import CITIES, FIRST, LAST
from sqlite_setup import connect as _connect
from sqlite_setup import stamp as _stamp

BENCH = "pages"
SEED = 20261124
FULL = {"small": 1_000, "big": 1_000_000}
QUICK = {"small": 1_000, "big": 100_000}
CAMPAIGNS = 50
EVENTS = 2_000
TARGET_FACTOR = 2.0
LIVE_CLIENTS = 20
LIVE_REQUESTS_EACH = 25
EMAIL = "bench@example.com"
PASSWORD = "bench-password-1"  # noqa: S105 (a throwaway database)
# (status, share) of a finished campaign's messages; failures carry a code.
OUTCOMES = (
    ("read", 0.42),
    ("delivered", 0.33),
    ("sent", 0.18),
    ("failed", 0.04),
    ("skipped", 0.03),
)
FAIL_CODES = (
    ("not_on_whatsapp", "This number is not on WhatsApp."),
    ("timeout", "WhatsApp Web did not answer in time."),
    ("media_rejected", "WhatsApp refused the attachment."),
)


# ---- setup (not timed) -----------------------------------------------------------------------


def build(path: Path, n: int) -> dict[str, Any]:
    """One database: `n` contacts and `n` messages over CAMPAIGNS campaigns."""
    from wabulk import migrate
    from wabulk.auth.service import create_user
    from wabulk.campaigns.service import DraftInput, save_draft
    from wabulk.db import Database
    from wabulk.models import Role
    from wabulk.senders.service import SenderInput, create_sender

    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    created = _stamp(now - timedelta(days=31))

    con = _connect(path)
    con.execute("BEGIN")
    cities = [
        json.dumps({"city": c, "due_amount": str(100 * (i + 1))}) for i, c in enumerate(CITIES)
    ]
    sql = (
        "INSERT INTO contacts (phone, name, attributes, country, timezone, created_at, "
        "updated_at, is_demo) VALUES (?, ?, ?, 'IN', 'Asia/Kolkata', ?, ?, 0)"
    )
    for lo in range(0, n, 100_000):
        con.executemany(
            sql,
            [
                (
                    f"+91{9_000_000_000 + i}",
                    f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    rng.choice(cities),
                    created,
                    created,
                )
                for i in range(lo, min(n, lo + 100_000))
            ],
        )
    # A few opted out over the month, so the opt-outs chart has something to draw.
    con.execute(
        "UPDATE contacts SET opted_out_at = ?, opt_out_reason = 'Asked to stop' WHERE id % 97 = 0",
        (_stamp(now - timedelta(days=3)),),
    )
    lists = {}
    for name, every in (("Everyone", 1), ("Every tenth", 10)):
        lists[name] = con.execute(
            "INSERT INTO contact_lists (name, created_at, member_count, is_demo) "
            "VALUES (?, ?, 0, 0) RETURNING id",
            (name, created),
        ).fetchone()[0]
        con.execute(
            "INSERT INTO contact_list_members (list_id, contact_id, added_at) "
            "SELECT ?, id, ? FROM contacts WHERE id % ? = 0",
            (lists[name], created, every),
        )
    con.execute("COMMIT")
    con.close()

    with db.session() as session:
        admin = create_user(session, None, EMAIL, PASSWORD, Role.ADMIN)
        admin.timezone = "Asia/Kolkata"
        senders = [
            create_sender(session, None, SenderInput(name=f"Shop phone {k}")).id for k in (1, 2)
        ]
        campaign_ids = [
            save_draft(
                session,
                None,
                DraftInput(
                    name=f"Offer {k:02d}",
                    list_ids=[lists["Everyone"]],
                    sender_ids=senders,
                    body="Hello {{ name }}, our {{ city }} store has new stock.",
                ),
            ).id
            for k in range(1, CAMPAIGNS + 1)
        ]
        session.commit()

    _fill_messages(path, n, campaign_ids, senders, rng, now)
    _fill_events(path, campaign_ids, rng, now)

    from wabulk.analytics.stats import rebuild
    from wabulk.contacts.tallies import recount

    with db.session() as session:
        rebuild(session)
        recount(session)
        session.commit()
    db.dispose()
    return {"campaigns": campaign_ids, "big_campaign": campaign_ids[CAMPAIGNS // 2]}


def _fill_messages(
    path: Path,
    n: int,
    campaign_ids: list[int],
    senders: list[int],
    rng: random.Random,
    now: datetime,
) -> None:
    """`n` messages, an equal share per campaign, each campaign on a day of the last 30."""
    con = _connect(path)
    con.execute("BEGIN")
    per = n // len(campaign_ids)
    sql = (
        "INSERT INTO messages (campaign_id, contact_id, phone, body, status, sender_id, "
        "attempts, next_attempt_at, error_code, error_detail, queued_at, sending_at, sent_at, "
        "delivered_at, read_at, failed_at, replied_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    statuses = [s for s, _ in OUTCOMES]
    weights = [w for _, w in OUTCOMES]
    for k, campaign_id in enumerate(campaign_ids):
        running = k == len(campaign_ids) - 1
        launched = now - timedelta(days=30 * (len(campaign_ids) - 1 - k) / len(campaign_ids))
        if running:
            launched = now - timedelta(seconds=per // 4)
        counts = dict.fromkeys(("queued", *statuses), 0)
        rows = []
        for i in range(per):
            contact_id = 1 + (k * per + i) % n
            queued = running and i >= per // 4
            status = "queued" if queued else rng.choices(statuses, weights)[0]
            counts[status] += 1
            sender = senders[i % 2]
            # One message a second per sender: two senders, two a second.
            sent = launched + timedelta(seconds=i / 2)
            times: dict[str, str | None] = dict.fromkeys(
                ("sending", "sent", "delivered", "read", "failed", "replied")
            )
            code = detail = None
            if status in ("sent", "delivered", "read"):
                times["sending"] = times["sent"] = _stamp(sent)
                if status in ("delivered", "read"):
                    times["delivered"] = _stamp(sent + timedelta(seconds=4))
                if status == "read":
                    times["read"] = _stamp(sent + timedelta(minutes=rng.randint(1, 600)))
                    if rng.random() < 0.08:
                        times["replied"] = _stamp(sent + timedelta(minutes=rng.randint(5, 900)))
            elif status == "failed":
                code, detail = rng.choice(FAIL_CODES)
                times["sending"] = times["failed"] = _stamp(sent)
            elif status == "skipped":
                code, detail = "opted_out", "Opted out"
            rows.append(
                (
                    campaign_id,
                    contact_id,
                    f"+91{9_000_000_000 + contact_id - 1}",
                    None if status in ("queued", "skipped") else "Hello, new stock.",
                    status,
                    None if status in ("queued", "skipped") else sender,
                    0 if status in ("queued", "skipped") else 1,
                    _stamp(launched),
                    code,
                    detail,
                    _stamp(launched),
                    times["sending"],
                    times["sent"],
                    times["delivered"],
                    times["read"],
                    times["failed"],
                    times["replied"],
                    _stamp(launched),
                )
            )
            if len(rows) >= 50_000:
                con.executemany(sql, rows)
                rows.clear()
        con.executemany(sql, rows)
        replied = con.execute(
            "SELECT count(*) FROM messages WHERE campaign_id = ? AND replied_at IS NOT NULL",
            (campaign_id,),
        ).fetchone()[0]
        con.execute(
            "UPDATE campaigns SET status = ?, body = 'Hello, new stock.', total = ?, "
            "n_queued = ?, n_sent = ?, n_delivered = ?, n_read = ?, n_failed = ?, "
            "n_skipped = ?, n_replied = ?, launched_at = ?, finished_at = ? WHERE id = ?",
            (
                "running" if running else "completed",
                per,
                counts["queued"],
                counts["sent"],
                counts["delivered"],
                counts["read"],
                counts["failed"],
                counts["skipped"],
                replied,
                _stamp(launched),
                None if running else _stamp(launched + timedelta(seconds=per / 2)),
                campaign_id,
            ),
        )
    con.execute("COMMIT")
    con.close()


def _fill_events(path: Path, campaign_ids: list[int], rng: random.Random, now: datetime) -> None:
    con = _connect(path)
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO events (at, level, kind, text, campaign_id, data) "
        "VALUES (?, ?, ?, ?, ?, '{}')",
        [
            (
                _stamp(now - timedelta(minutes=EVENTS - i)),
                rng.choice(("info", "info", "info", "warning", "error")),
                "campaign.note",
                f"Bench event {i}",
                rng.choice(campaign_ids),
            )
            for i in range(EVENTS)
        ],
    )
    con.execute("COMMIT")
    con.close()


# ---- serving and measuring ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(path: Path, instance: Path) -> Iterator[str]:
    """A real `wabulk serve` (no dispatcher: nothing should move while we measure)."""
    port = _free_port()
    env = {
        **os.environ,
        "WABULK_DATABASE_URL": f"sqlite:///{path}",
        "WABULK_INSTANCE_PATH": str(instance),
        "WABULK_SECRET_KEY": "bench-secret-key-not-for-use",
        "WABULK_LOG_LEVEL": "WARNING",
        "WABULK_LOGIN_ATTEMPTS_PER_MINUTE": "1000",
    }
    exe = Path(sys.executable).with_name("wabulk")
    proc = subprocess.Popen(  # noqa: S603 (our own command)
        [str(exe), "serve", "--no-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/login", timeout=2).read()  # noqa: S310
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise SystemExit(f"wabulk serve did not start:\n{err}") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Client:
    """A signed-in browser stand-in: cookies, and the time each GET takes."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def sign_in(self) -> None:
        page = self.opener.open(f"{self.base}/login").read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        if token is None:
            raise SystemExit("no CSRF token on the sign-in page")
        form = urllib.parse.urlencode(
            {"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD}
        ).encode()
        answer = self.opener.open(f"{self.base}/login", data=form)
        if answer.geturl().rstrip("/").endswith("/login"):
            raise SystemExit("signing in failed")

    def get(self, path: str) -> tuple[float, int, bytes]:
        start = time.perf_counter()
        try:
            answer = self.opener.open(f"{self.base}{path}", timeout=60)
            body, status = answer.read(), answer.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        return time.perf_counter() - start, status, body


def pages(info: dict[str, Any], deep_before: int) -> dict[str, str]:
    campaign = info["big_campaign"]
    running = info["campaigns"][-1]
    return {
        "dashboard": "/",
        "contacts page 1": "/contacts/",
        "contacts deep page": f"/contacts/?before={deep_before}",
        "campaign page": f"/campaigns/{campaign}",
        "analytics": "/analytics",
        "live (dashboard)": "/live.json",
        "live (campaign)": f"/campaigns/{running}/progress.json",
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(clients: dict[str, Client], paths: dict[str, dict[str, str]], n: int) -> dict:
    """Each page `n` times on each database, alternating, after two warm-up requests."""
    results: dict[str, dict[str, list[float]]] = {}
    for page in paths["small"]:
        times: dict[str, list[float]] = {"small": [], "big": []}
        for i in range(n + 2):
            for size in ("small", "big") if i % 2 == 0 else ("big", "small"):
                seconds, status, _ = clients[size].get(paths[size][page])
                if status != 200:
                    raise SystemExit(f"{page} on {size}: HTTP {status}")
                if i >= 2:
                    times[size].append(seconds)
        results[page] = times
    return results


def live_load(base: str, path: str) -> dict[str, Any]:
    """LIVE_CLIENTS signed-in clients polling at once; counts anything but a JSON 200."""
    clients = [Client(base) for _ in range(LIVE_CLIENTS)]
    for c in clients:
        c.sign_in()
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_line = threading.Barrier(LIVE_CLIENTS)

    def poll(client: Client) -> None:
        start_line.wait()
        for _ in range(LIVE_REQUESTS_EACH):
            seconds, status, body = client.get(path)
            problem = None if status == 200 else f"HTTP {status}"
            if problem is None:
                try:
                    json.loads(body)
                except ValueError:
                    problem = "not JSON"
            with lock:
                times.append(seconds)
                if problem:
                    errors.append(problem)

    threads = [threading.Thread(target=poll, args=(c,)) for c in clients]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "requests": len(times),
        "errors": len(errors),
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": _p95(times) * 1000,
        "per_second": len(times) / wall,
    }


def _first_contact_ids(path: Path) -> int:
    """A cursor near the oldest contacts: the deepest page there is."""
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT min(id) + 60 FROM contacts").fetchone()[0])
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    with tempfile.TemporaryDirectory(prefix="wabulk-bench-") as tmp:
        folder = Path(tmp)
        info, paths, clients = {}, {}, {}
        for size, n in sizes.items():
            start = time.perf_counter()
            path = folder / f"{size}.db"
            info[size] = build(path, n)
            print(
                f"built {size}: {n:,} contacts, {n:,} messages over {CAMPAIGNS} campaigns "
                f"in {time.perf_counter() - start:.1f} s "
                f"({path.stat().st_size / 2**20:.0f} MiB)"
            )
            paths[size] = pages(info[size], _first_contact_ids(path))
        with (
            serve(folder / "small.db", folder / "instance-small") as small_base,
            serve(folder / "big.db", folder / "instance-big") as big_base,
        ):
            clients = {"small": Client(small_base), "big": Client(big_base)}
            for c in clients.values():
                c.sign_in()
            results = measure(clients, paths, args.requests)
            live = live_load(big_base, paths["big"]["live (dashboard)"])

    big_n = sizes["big"]
    print(
        f"\n{'page':<22} {'small median':>13} {'p95':>8} {f'{big_n:,} median':>17} "
        f"{'p95':>8} {'ratio':>7}"
    )
    ratios: dict[str, float] = {}
    figures: dict[str, float] = {}
    baseline: dict[str, float] = {}
    for page, times in results.items():
        small_med = statistics.median(times["small"]) * 1000
        big_med = statistics.median(times["big"]) * 1000
        ratio = big_med / small_med
        ratios[page] = round(ratio, 2)
        figures[page] = round(big_med, 2)
        baseline[page] = round(small_med, 2)
        print(
            f"{page:<22} {small_med:>10.1f} ms {_p95(times['small']) * 1000:>5.1f} ms "
            f"{big_med:>14.1f} ms {_p95(times['big']) * 1000:>5.1f} ms {ratio:>6.2f}x "
            f"{'met' if ratio <= TARGET_FACTOR else 'MISSED'}"
        )
    print(
        f"\nlive endpoint, {LIVE_CLIENTS} concurrent clients x {LIVE_REQUESTS_EACH} requests on "
        f"{big_n:,} rows: {live['requests']} requests, {live['errors']} errors, median "
        f"{live['median_ms']:.1f} ms, p95 {live['p95_ms']:.1f} ms, "
        f"{live['per_second']:.0f} requests/s  {'met' if live['errors'] == 0 else 'MISSED'}"
    )
    worst = max(ratios.values())
    print(
        json.dumps(
            {
                "bench": BENCH,
                "unit": f"median ms per page at {big_n:,} rows (baseline: at {sizes['small']:,})",
                "product": figures,
                "baseline": {"small_database": baseline},
                "ratio": {"small_over_big_worst": round(1 / worst, 3), "big_over_small": ratios},
                "target": {
                    "big_over_small_max": TARGET_FACTOR,
                    "live_errors_with_20_clients": 0,
                },
                "live": {k: round(v, 1) for k, v in live.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
