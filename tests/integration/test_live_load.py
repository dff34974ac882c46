"""Fifty open dashboards polling a real server do not starve it.

`wabulk serve` (waitress, 8 threads, the dispatcher inside) runs a paced dry-run campaign
over loopback while fifty clients poll the Dashboard's live answer far more often than the
page does. Every answer must be a 200 with well-formed JSON, an ordinary page must still
answer, and the campaign must still complete with every message sent.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from tests.support import run_wabulk, running_server
from wabulk.db import Database

EMAIL, PASSWORD = "watcher@shop.example", "a long pass phrase"
DASHBOARDS = 50
RECIPIENTS = 120
FINISH_WITHIN = 180  # seconds: a safety net for a stuck run, not a speed requirement


def _session_cookie(base: str) -> str:
    """Sign in through the real form; the Cookie header the dashboards then send."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base + "/login", timeout=30) as response:
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.read().decode())
    assert token
    form = urllib.parse.urlencode(
        {"email": EMAIL, "password": PASSWORD, "csrf_token": token.group(1)}
    ).encode()
    with opener.open(base + "/login", data=form, timeout=30) as response:
        assert response.status == 200 and response.url == base + "/"
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def _get(url: str, cookie: str) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers={
            "Cookie": cookie, "Accept": "application/json",
        })  # fmt: skip
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# A load test (fifty pollers): make test-slow.
@pytest.mark.slow
def test_fifty_polling_dashboards_do_not_starve_the_server(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    created = run_wabulk(
        instance, "user", "create", "--email", EMAIL, "--role", "viewer", "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        list_id = make_contacts(db, phones(RECIPIENTS), "Everyone")
        # Paced, so the campaign runs while the dashboards poll and settles one by one.
        sender = make_sender(db, "Rehearsal", min_delay_seconds=0.02, max_delay_seconds=0.05)
        campaign_id = make_campaign(db, [list_id], [sender], name="Load test")
    finally:
        db.dispose()

    answers: list[tuple[int, object]] = []
    lock = threading.Lock()
    stop = threading.Event()

    with running_server(instance) as server:
        cookie = _session_cookie(server.url)

        def dashboard() -> None:
            while not stop.is_set():
                status, body = _get(server.url + "/live.json", cookie)
                try:
                    parsed: object = json.loads(body)
                except ValueError:
                    parsed = body[:200]
                with lock:
                    answers.append((status, parsed))
                time.sleep(0.1)

        pollers = [threading.Thread(target=dashboard, daemon=True) for _ in range(DASHBOARDS)]
        for t in pollers:
            t.start()
        try:
            # An ordinary page while every dashboard polls.
            status, body = _get(server.url + "/campaigns", cookie)
            assert status == 200 and b"Load test" in body
            deadline = time.monotonic() + FINISH_WITHIN
            progress: dict = {}
            while time.monotonic() < deadline:
                status, body = _get(f"{server.url}/live/campaigns.json?ids={campaign_id}", cookie)
                assert status == 200
                progress = json.loads(body)["campaigns"][0]
                if progress["status"] == "completed":
                    break
                time.sleep(0.5)
        finally:
            stop.set()
            for t in pollers:
                t.join(90)
        assert progress["status"] == "completed", progress
        assert progress["sent"] == RECIPIENTS and progress["failed"] == 0

    bad = [(code, body) for code, body in answers if code != 200 or not isinstance(body, dict)]
    assert not bad, bad[:3]
    assert len(answers) >= DASHBOARDS
    assert all(set(b) >= {"live", "today", "running", "scheduled", "senders"} for _, b in answers)  # type: ignore[arg-type]
    # The dashboards saw the campaign move: running with some sent, and today's count growing.
    seen = [b["running"][0]["sent"] for _, b in answers if b["running"]]  # type: ignore[index]
    assert any(0 < n < RECIPIENTS for n in seen), "no dashboard saw the campaign in progress"
    assert max(b["today"]["sent"] for _, b in answers) > 0  # type: ignore[index]
