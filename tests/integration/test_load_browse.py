"""Fifty signed-in people browse while a 20,000-message campaign sends.

`wabulk serve` on SQLite (waitress, 8 threads, the dispatcher inside) sends an unpaced
dry-run campaign to 20,000 recipients. Fifty clients, each signed in with a session of its
own, go round the Dashboard, Contacts, the campaign's page and Analytics and poll the live
answers those pages poll, for a fixed time. Every answer must be a page or a redirect
(none refused, reset, timed out or 5xx), and the campaign must then finish with every
message settled once and its counters equal to the messages table.

The browsing time is `WABULK_LOAD_SECONDS` (60, the issue's figure) in the `slow` variant,
and `WABULK_LOAD_QUICK_SECONDS` (15) in `make test`. Each run prints its figures (answers,
their times, the server's peak memory) for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.campaigns_support import assert_each_sent_once, make_campaign, make_sender
from tests.load_support import Answer, add_user, bulk_contacts, sign_in
from tests.support import run_wabulk, running_server
from wabulk.campaigns import lifecycle
from wabulk.db import Database

PASSWORD = "a long pass phrase"
EMAIL = "watcher@shop.example"
CLIENTS = 50
RECIPIENTS = 20_000
THINK_SECONDS = 0.1  # between one client's requests, as a person clicking and a page polling
FINISH_WITHIN = 600  # seconds: a safety net for a stuck run, not a speed requirement
QUICK_SECONDS = float(os.environ.get("WABULK_LOAD_QUICK_SECONDS", "15"))
LONG_SECONDS = float(os.environ.get("WABULK_LOAD_SECONDS", "60"))


def _rounds(campaign_id: int) -> list[str]:
    """What one client reads in turn: the four pages and the live answers they poll."""
    return [
        "/",
        "/live.json",
        "/contacts/",
        f"/live/campaigns.json?ids={campaign_id}",
        f"/campaigns/{campaign_id}",
        f"/campaigns/{campaign_id}/progress.json",
        "/analytics",
        "/analytics.json",
    ]


def _peak_rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


@pytest.mark.parametrize(
    "browse_seconds",
    [
        pytest.param(QUICK_SECONDS, id="quick"),
        pytest.param(LONG_SECONDS, id="long", marks=pytest.mark.slow),
    ],
)
def test_fifty_clients_browse_a_20000_message_campaign_without_an_error(
    tmp_path: Path, browse_seconds: float
) -> None:
    instance = tmp_path / "instance"
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    add_user(instance, EMAIL, PASSWORD, "viewer")
    path = instance / "wabulk.db"
    audience = bulk_contacts(path, RECIPIENTS, "Everyone")
    db = Database(f"sqlite:///{path}")
    try:
        sender = make_sender(db, "Rehearsal")
        campaign_id = make_campaign(db, [audience], [sender], name="Load", launch=False)
    finally:
        db.dispose()

    answers: list[tuple[Answer, float]] = []
    lock = threading.Lock()
    signed_in = threading.Barrier(CLIENTS + 1)
    stop = threading.Event()

    with running_server(instance) as server:

        def browse() -> None:
            client = sign_in(server.url, EMAIL, PASSWORD)
            signed_in.wait()
            pages = _rounds(campaign_id)
            n = 0
            # Every page at least once, however slow a busy machine makes the round: the
            # assertions below count pages, not seconds.
            while not stop.is_set() or n < len(pages):
                started = time.perf_counter()
                answer = client.request(pages[n % len(pages)])
                with lock:
                    answers.append((answer, time.perf_counter() - started))
                n += 1
                if not stop.is_set():
                    stop.wait(THINK_SECONDS)

        clients = [threading.Thread(target=browse, daemon=True) for _ in range(CLIENTS)]
        for t in clients:
            t.start()
        signed_in.wait(timeout=FINISH_WITHIN)
        # Launched once everyone browses, so the pages are read while it sends.
        db = Database(f"sqlite:///{path}")
        try:
            with db.session() as session:
                lifecycle.launch(session, None, campaign_id)
        finally:
            db.dispose()
        stop.wait(browse_seconds)
        stop.set()
        for t in clients:
            t.join(FINISH_WITHIN)

        watcher = sign_in(server.url, EMAIL, PASSWORD)
        progress: dict = {}
        deadline = time.monotonic() + FINISH_WITHIN
        while time.monotonic() < deadline:
            answer = watcher.request(f"/live/campaigns.json?ids={campaign_id}")
            assert answer.status == 200, answer
            progress = json.loads(answer.body)["campaigns"][0]
            if progress["status"] == "completed":
                break
            time.sleep(0.5)
        peak = _peak_rss_mb(server.process.pid)
        log = "".join(server.output)

    bad = [(a.status, a.path, a.body[:300]) for a, _ in answers if not 200 <= a.status < 400]
    assert not bad, (len(bad), Counter((s, p) for s, p, _ in bad), bad[:3])
    by_page = Counter(a.path.split("?")[0] for a, _ in answers)
    assert len(by_page) == len(_rounds(campaign_id)) and min(by_page.values()) >= CLIENTS
    # The clients saw the campaign sending, not only before or after it.
    live = [
        json.loads(a.body)["campaigns"][0]
        for a, _ in answers
        if a.path.startswith("/live/campaigns.json")
    ]
    assert any(c["status"] == "running" and 0 < c["sent"] < RECIPIENTS for c in live)

    assert progress.get("status") == "completed", (progress, log[-3000:])
    assert progress["sent"] == RECIPIENTS and progress["failed"] == 0
    db = Database(f"sqlite:///{path}")
    try:
        assert_each_sent_once(db, campaign_id, instance, "Rehearsal")
    finally:
        db.dispose()

    seconds = sorted(s for _, s in answers)
    print(  # the figures docs/reliability.md quotes
        f"\nload: {CLIENTS} clients, {browse_seconds:g} s, {len(answers)} answers, "
        f"median {statistics.median(seconds) * 1000:.0f} ms, "
        f"p95 {seconds[int(len(seconds) * 0.95)] * 1000:.0f} ms, "
        f"max {seconds[-1] * 1000:.0f} ms, server peak RSS {peak or 0:.0f} MB"
    )
