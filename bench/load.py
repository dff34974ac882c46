"""Load: fifty signed-in people browse while a 20,000-message campaign sends, one web
process beside four.

On PostgreSQL (a schema of its own, made and dropped here, in the database given by
--postgres, default the local `test` database): 20,000 contacts in a list, a dry-run sender
without pacing and two draft campaigns to them. Then, in the same run:

- one: `wabulk serve` (waitress, one process, the dispatcher inside);
- four: `wabulk serve --processes 4` (gunicorn) beside one `wabulk worker`.

For each, the clients sign in (each with its own session) and read every page once
(untimed: templates compile and connection pools fill in every process); then one campaign
is launched and for the browsing time every client goes round the Dashboard, Contacts, the
campaign's page and Analytics and polls the live answers those pages poll, 0.1 s apart,
each request on a new connection. Every answer must be a 200; anything else (another
status, a refused or reset connection, a timeout) is an error. The first campaign is
cancelled before the second run so only one sends at a time.

Prints p50/p95 per run; never fails on a slow machine. The last line is the JSON summary
(DESIGN §7) with top-level `errors` (both runs) and `p95_ms_four_processes`.

    .venv/bin/python bench/load.py [--quick] [--postgres URL] [--clients N] [--seconds S]
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pg_schema import schema

BENCH = "load"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RECIPIENTS = 20_000
FULL = {"clients": 50, "seconds": 60.0}
QUICK = {"clients": 10, "seconds": 10.0}
PROCESSES = 4
THINK_SECONDS = 0.1  # between one client's requests: a person clicking, a page polling
TIMEOUT = 120  # seconds one answer may take before it counts as an error
TARGET_P95_MS = 500
EMAIL = "bench@example.com"
PASSWORD = "bench-password-1"  # noqa: S105 (a throwaway database)
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
WABULK = str(Path(sys.executable).with_name("wabulk"))


# ---- setup (not timed) -----------------------------------------------------------------------


def build(url: str) -> dict[str, int]:
    """The audience, a dry-run sender, a user and one draft campaign per run."""
    from sqlalchemy import text

    from wabulk import migrate
    from wabulk.auth.service import create_user
    from wabulk.campaigns.service import DraftInput, save_draft
    from wabulk.contacts.tallies import recount
    from wabulk.db import Database
    from wabulk.models import Role, utcnow
    from wabulk.senders.service import SenderInput, create_sender

    db = Database(url)
    migrate.upgrade(db.engine)
    now = utcnow()
    with db.session() as session:
        list_id = session.execute(
            text(
                "INSERT INTO contact_lists (name, created_at, member_count, is_demo) "
                "VALUES ('Everyone', :now, :n, false) RETURNING id"
            ),
            {"now": now, "n": RECIPIENTS},
        ).scalar_one()
        session.execute(
            text(
                "INSERT INTO contacts (phone, name, attributes, country, timezone, created_at, "
                "updated_at, is_demo) SELECT '+9190' || lpad(i::text, 8, '0'), "
                "'Customer ' || i, '{}', 'IN', 'UTC', :now, :now, false "
                "FROM generate_series(0, :last) AS i"
            ),
            {"now": now, "last": RECIPIENTS - 1},
        )
        session.execute(
            text(
                "INSERT INTO contact_list_members (list_id, contact_id, added_at) "
                "SELECT :list, id, :now FROM contacts"
            ),
            {"list": list_id, "now": now},
        )
        recount(session)
        create_user(session, None, EMAIL, PASSWORD, Role.VIEWER)
        sender = create_sender(session, None, SenderInput(name="Rehearsal")).id
        campaigns = {
            run: save_draft(
                session,
                None,
                DraftInput(
                    name=f"Load, {run}",
                    list_ids=[list_id],
                    sender_ids=[sender],
                    body="Hello {{ name }}, our store has new stock.",
                ),
            ).id
            for run in ("one", "four")
        }
    with db.session() as session:
        session.execute(text("ANALYZE"))
    db.dispose()
    return campaigns


def launch(url: str, campaign_id: int) -> None:
    from wabulk.campaigns import lifecycle
    from wabulk.db import Database

    db = Database(url)
    try:
        with db.session() as session:
            lifecycle.launch(session, None, campaign_id)
    finally:
        db.dispose()


def settle(url: str, campaign_id: int) -> dict[str, Any]:
    """How far the campaign got; cancelled if still sending, so the next run sends alone."""
    from wabulk.campaigns import lifecycle
    from wabulk.db import Database
    from wabulk.models import Campaign, CampaignStatus

    db = Database(url)
    try:
        with db.session() as session:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            done = {"status": str(campaign.status), "sent": campaign.n_sent}
        if done["status"] not in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
            with db.session() as session:
                lifecycle.cancel(session, None, campaign_id)
        return done
    finally:
        db.dispose()


# ---- serving and measuring ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(url: str, instance: Path, processes: int) -> Iterator[str]:
    """`wabulk serve` (and, with several processes, one `wabulk worker` beside it)."""
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WABULK_")},
        "WABULK_DATABASE_URL": url,
        "WABULK_INSTANCE_PATH": str(instance),
        "WABULK_SECRET_KEY": "bench-secret-key-not-for-use",
        "WABULK_LOG_LEVEL": "WARNING",
        "WABULK_LOGIN_ATTEMPTS_PER_MINUTE": "1000",
    }
    commands = [[WABULK, "serve", "--port", str(port), "--processes", str(processes)]]
    if processes > 1:
        commands.append([WABULK, "worker"])
    procs = [
        subprocess.Popen(  # noqa: S603 (our own command)
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for command in commands
    ]
    # Read their error output as it comes, so a full pipe never stalls them.
    errors: list[str] = []
    readers = [
        threading.Thread(target=lambda p=p: errors.extend(p.stderr), daemon=True) for p in procs
    ]
    for r in readers:
        r.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/login", timeout=30).read()  # noqa: S310
                break
            except OSError:  # refused until bound; slow while the processes start
                if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                    raise SystemExit("wabulk serve did not start:\n" + "".join(errors)) from None
                time.sleep(0.2)
        yield base
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        for r in readers:
            r.join(5)
        worrying = [line for line in errors if "Traceback" in line or " ERROR " in line]
        if worrying:
            print(f"  (the servers logged {len(worrying)} errors; first: {worrying[0].strip()})")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


@dataclass
class Client:
    """A browser stand-in: its own session cookie, a new connection per request."""

    base: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect
        )

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(self.base + path, data=data, timeout=TIMEOUT) as answer:
                return answer.status, answer.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            body = err.read().decode(errors="replace")
            err.close()
            return err.code, body
        except (OSError, urllib.error.URLError) as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    def sign_in(self) -> None:
        status, page = self.request("/login")
        token = CSRF_RE.search(page)
        if token is None:
            raise SystemExit(f"no sign-in form (HTTP {status})")
        status, _ = self.request(
            "/login", {"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD}
        )
        if status != 302:
            raise SystemExit(f"signing in failed (HTTP {status})")


def rounds(campaign_id: int) -> list[tuple[str, str]]:
    """(page, path) in the order one client reads them: four pages and their live answers."""
    return [
        ("dashboard", "/"),
        ("live (dashboard)", "/live.json"),
        ("contacts", "/contacts/"),
        ("live (campaigns)", f"/live/campaigns.json?ids={campaign_id}"),
        ("campaign page", f"/campaigns/{campaign_id}"),
        ("live (campaign)", f"/campaigns/{campaign_id}/progress.json"),
        ("analytics", "/analytics"),
        ("analytics data", "/analytics.json"),
    ]


def browse(base: str, url: str, campaign_id: int, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` signed-in clients for `seconds`, the campaign launched as they start."""
    people = [Client(base) for _ in range(clients)]

    def ready(client: Client) -> None:
        client.sign_in()
        # One untimed round first: every process compiles its templates and fills its
        # connection pool before the clock starts, in both runs alike.
        for _, path in rounds(campaign_id):
            client.request(path)

    signers = [threading.Thread(target=ready, args=(c,)) for c in people]
    for t in signers:
        t.start()
    for t in signers:
        t.join()
    times: dict[str, list[float]] = {page: [] for page, _ in rounds(campaign_id)}
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    start_line = threading.Barrier(clients + 1)
    stop = threading.Event()

    def walk(client: Client, offset: int) -> None:
        pages = rounds(campaign_id)
        n = offset  # clients start at different pages, as people do
        start_line.wait()
        while not stop.is_set():
            page, path = pages[n % len(pages)]
            started = time.perf_counter()
            status, body = client.request(path)
            took = time.perf_counter() - started
            with lock:
                times[page].append(took)
                if status != 200:
                    errors[f"{page}: {body[:80] if status == 0 else f'HTTP {status}'}"] += 1
            n += 1
            stop.wait(THINK_SECONDS)

    walkers = [threading.Thread(target=walk, args=(c, i)) for i, c in enumerate(people)]
    for t in walkers:
        t.start()
    launch(url, campaign_id)
    start_line.wait()
    began = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for t in walkers:
        t.join()
    wall = time.perf_counter() - began
    every = sorted(s for page in times.values() for s in page)
    return {
        "answers": len(every),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors.most_common(5)),
        "p50_ms": statistics.median(every) * 1000,
        "p95_ms": _p95(every) * 1000,
        "max_ms": every[-1] * 1000,
        "per_second": len(every) / wall,
        "pages": {page: (_p95(sorted(t)) * 1000 if t else 0.0) for page, t in times.items()},
    }


def _p95(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 clients for 10 s")
    parser.add_argument("--postgres", default=DEFAULT_PG, metavar="URL")
    parser.add_argument("--clients", type=int, help="signed-in clients (50; quick: 10)")
    parser.add_argument("--seconds", type=float, help="browsing time per run (60; quick: 10)")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    clients = int(args.clients or size["clients"])
    seconds = float(args.seconds or size["seconds"])

    runs: dict[str, dict[str, Any]] = {}
    labels = {
        "one": "one process (waitress, dispatcher inside)",
        "four": f"{PROCESSES} processes (gunicorn) + 1 wabulk worker",
    }
    with (
        tempfile.TemporaryDirectory(prefix="wabulk-bench-") as tmp,
        schema(args.postgres, "wabulk_bench_load_") as url,
    ):
        started = time.perf_counter()
        campaigns = build(url)
        print(
            f"built: {RECIPIENTS:,} contacts, a dry-run sender, two campaigns on PostgreSQL "
            f"in {time.perf_counter() - started:.1f} s; {clients} clients x {seconds:g} s a run"
        )
        for run, processes in (("one", 1), ("four", PROCESSES)):
            with running(url, Path(tmp) / f"instance-{run}", processes) as base:
                figures = browse(base, url, campaigns[run], clients, seconds)
            # Once its senders have stopped: cancelling beside a running dispatcher on
            # PostgreSQL met a deadlock once (reported), and nothing is measured here.
            figures["campaign"] = settle(url, campaigns[run])
            runs[run] = figures
            print(
                f"{labels[run]:<44} {figures['answers']:>6} answers "
                f"({figures['per_second']:.0f}/s), {figures['errors']} errors, "
                f"p50 {figures['p50_ms']:.0f} ms, p95 {figures['p95_ms']:.0f} ms, "
                f"max {figures['max_ms']:.0f} ms; campaign {figures['campaign']['status']} "
                f"with {figures['campaign']['sent']:,} sent"
            )
            if figures["errors"]:
                print(f"  errors: {figures['error_kinds']}")

    print(f"\n{'p95 by page':<22} {'one':>9} {'four':>9}")
    for page in runs["one"]["pages"]:
        print(
            f"{page:<22} {runs['one']['pages'][page]:>6.0f} ms "
            f"{runs['four']['pages'][page]:>6.0f} ms"
        )
    one, four = runs["one"], runs["four"]
    errors = one["errors"] + four["errors"]
    met = four["p95_ms"] < TARGET_P95_MS and errors == 0
    print(
        f"\nfour processes: p95 {four['p95_ms']:.0f} ms (target < {TARGET_P95_MS} ms), "
        f"{errors} errors over both runs (target 0)  {'met' if met else 'MISSED'}"
    )
    print(
        json.dumps(
            {
                "bench": BENCH,
                "unit": f"p95 ms of page and live answers, {clients} signed-in clients, "
                f"{seconds:g} s, while a {RECIPIENTS:,}-message campaign sends (PostgreSQL)",
                "product": round(four["p95_ms"], 1),
                "baseline": {"one_process_p95_ms": round(one["p95_ms"], 1)},
                "ratio": {"one_over_four_p95": round(one["p95_ms"] / four["p95_ms"], 2)},
                "target": {"p95_ms_four_processes_max": TARGET_P95_MS, "errors": 0},
                "errors": errors,
                "p95_ms_four_processes": round(four["p95_ms"], 1),
                "runs": {
                    run: {
                        k: (round(v, 1) if isinstance(v, float) else v)
                        for k, v in figures.items()
                        if k not in ("pages", "error_kinds")
                    }
                    for run, figures in runs.items()
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
