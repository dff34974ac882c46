"""`wabulk serve --processes 4`: four gunicorn processes behave as one web app.

A real server on loopback, over PostgreSQL and over SQLite. Every request goes on a new
connection, so the four processes share the answers; gunicorn's access log names the
process (its pid) that answered each request, found by a marker in the request's query.
Across processes: signing in, a form's CSRF token, the live pages' JSON and signing out
must work alike, because sessions and the numbers shown live in the database and the
cookies are signed with the one secret key the processes share. The dispatcher does not
run inside: a launched campaign stays queued until a `wabulk worker` runs.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests.campaigns_support import (
    make_campaign,
    make_contacts,
    make_sender,
    phones,
    status_counts,
)
from tests.conftest import csrf_from
from tests.load_support import CSRF_RE
from tests.support import Server, running_server
from wabulk.app import create_app
from wabulk.auth import service as users
from wabulk.cli import main
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import MessageStatus, Role, Worker

PROCESSES = 4
EMAIL, PASSWORD = "owner@shop.example", "a long pass phrase"
RECIPIENTS = 30
BURST = 12  # requests sent at once, so idle processes take some of them
DEADLINE = 120  # seconds: a safety net for a starved machine, not a speed requirement
# The access log line: the answering process's pid, the marker in the query, the status.
ACCESS_FORMAT = "served %(p)s %(q)s %(s)s"
SERVED_RE = re.compile(r"served <(\d+)> \S*probe=([0-9a-f]{32})\S* (\d{3})")
SESSION_COOKIE = "session"
NEW_SECRET = re.compile(r'id="new-secret-value"[^>]*value="([^"]+)"')


@dataclass
class Answer:
    status: int
    body: str
    cookies: dict[str, str]
    location: str
    pid: int


class Processes:
    """Requests on fresh connections, each told apart in the access log by its marker."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def _pid(self, marker: str) -> int:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            for line in list(self.server.output):
                m = SERVED_RE.search(line)
                if m and m.group(2) == marker:
                    return int(m.group(1))
            time.sleep(0.05)
        raise AssertionError(f"no access log line for {marker}:\n" + "".join(self.server.output))

    def send(
        self, path: str, cookies: dict[str, str] | None = None, form: dict[str, str] | None = None
    ) -> Answer:
        marker = uuid.uuid4().hex
        url = f"{self.server.url}{path}{'&' if '?' in path else '?'}probe={marker}"
        # One client per request and Connection: close, so no connection is reused.
        with httpx.Client(cookies=cookies or {}, timeout=DEADLINE, trust_env=False) as client:
            headers = {"Connection": "close", "Accept": "text/html,application/json"}
            if form is None:
                response = client.get(url, headers=headers)
            else:
                response = client.post(url, data=form, headers=headers)
            got = {name: value for name, value in response.cookies.items()}
        return Answer(
            response.status_code,
            response.text,
            got,
            response.headers.get("location", ""),
            self._pid(marker),
        )

    def burst(
        self, make: Callable[[], Answer], until: Callable[[list[Answer]], bool]
    ) -> list[Answer]:
        """Rounds of BURST requests at once until `until(all answers so far)` holds."""
        answers: list[Answer] = []
        lock = threading.Lock()
        deadline = time.monotonic() + DEADLINE
        while not until(answers):
            assert time.monotonic() < deadline, sorted({(a.pid, a.status) for a in answers})

            def one() -> None:
                answer = make()
                with lock:
                    answers.append(answer)

            threads = [threading.Thread(target=one) for _ in range(BURST)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(DEADLINE)
        return answers


def _printed(server: Server, last: str) -> str:
    """What the server printed at start, once it printed `last`."""
    deadline = time.monotonic() + DEADLINE
    while last not in (log := "".join(server.output)):
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    return log


def _pids(answers: list[Answer]) -> set[int]:
    return {a.pid for a in answers}


def _csrf(answer: Answer) -> str:
    match = CSRF_RE.search(answer.body)
    assert match, (answer.status, answer.body[:300])
    return match.group(1)


def _numbers(body: str) -> object:
    """The figures of a live answer; the estimated finish moves with the clock, so it goes."""
    data = json.loads(body)
    if isinstance(data, dict):
        for moving in ("eta", "eta_text"):
            data.pop(moving, None)
    return data


@pytest.fixture
def audience(migrated_db: Database) -> int:
    with migrated_db.session() as session:
        users.create_user(session, None, EMAIL, PASSWORD, Role.ADMIN)
    list_id = make_contacts(migrated_db, phones(RECIPIENTS), "Everyone")
    sender = make_sender(migrated_db, "Rehearsal")
    return make_campaign(migrated_db, [list_id], [sender], name="Across processes")


def test_four_processes_share_sign_in_csrf_live_numbers_and_sign_out(
    tmp_path: Path, database_url: str, migrated_db: Database, audience: int
) -> None:
    campaign_id = audience
    env = {
        "WABULK_DATABASE_URL": database_url,
        "WABULK_LOGIN_ATTEMPTS_PER_MINUTE": "1000",
        "GUNICORN_CMD_ARGS": f"--access-logfile - --access-logformat '{ACCESS_FORMAT}'",
    }
    # No WABULK_SECRET_KEY: the processes share the key in the instance folder.
    with running_server(tmp_path / "instance", "--processes", str(PROCESSES), **env) as server:
        log = _printed(server, "reach the sign-in page")
        assert f"with {PROCESSES} web processes" in log
        assert "run at least one beside this server" in log
        assert ("On SQLite" in log) == database_url.startswith("sqlite")
        web = Processes(server)

        # Every process answers some of the requests.
        seen = web.burst(lambda: web.send("/login"), lambda a: len(_pids(a)) >= PROCESSES)
        everyone = _pids(seen)
        assert len(everyone) == PROCESSES and server.process.pid not in everyone

        # The sign-in form of one process is accepted by the others, and signs in.
        form_page = web.send("/login")
        session = form_page.cookies
        signed_in = web.burst(
            lambda: web.send(
                "/login",
                session,
                {"email": EMAIL, "password": PASSWORD, "csrf_token": _csrf(form_page)},
            ),
            lambda a: bool(_pids(a) - {form_page.pid}),
        )
        assert all(a.status == 302 and a.location == "/" for a in signed_in), [
            (a.pid, a.status, a.body[:200]) for a in signed_in if a.status != 302
        ]
        made = next(a for a in signed_in if a.pid != form_page.pid)
        cookie = {SESSION_COOKIE: made.cookies[SESSION_COOKIE]}

        # That session is honoured by every process, and the live answers agree.
        agreed: dict[str, object] = {}
        progress_path = f"/campaigns/{campaign_id}/progress.json"
        for path in (
            "/live.json",
            f"/live/campaigns.json?ids={campaign_id}",
            progress_path,
            "/analytics.json",
        ):
            answers = web.burst(partial(web.send, path, cookie), lambda a: _pids(a) >= everyone)
            assert {a.status for a in answers} == {200}, path
            figures = {json.dumps(_numbers(a.body), sort_keys=True) for a in answers}
            assert len(figures) == 1, (path, figures)
            agreed[path] = _numbers(answers[0].body)
        assert agreed[progress_path]["total"] == RECIPIENTS  # type: ignore[index]
        assert agreed[progress_path]["counts"]["queued"] == RECIPIENTS  # type: ignore[index]

        # A new webhook's signing secret, made in one process, is shown by any other once.
        page = web.send("/settings/webhooks", cookie)
        made_hook = web.send(
            "/settings/webhooks",
            cookie,
            {
                "csrf_token": _csrf(page),
                "name": "Orders flow",
                "url": "https://hooks.example.com/catch/1234567/a1b2c3d4e5",
                "events": "message.status",
            },
        )
        assert made_hook.status == 302, made_hook.body[:500]
        where = made_hook.location.replace(server.url, "")
        shown = web.burst(
            lambda: web.send(where, cookie), lambda a: bool(_pids(a) - {made_hook.pid})
        )
        assert all(NEW_SECRET.search(a.body) for a in shown), [a.pid for a in shown]
        spent = {**cookie, SESSION_COOKIE: shown[0].cookies[SESSION_COOKIE]}
        again = web.burst(lambda: web.send(where, spent), lambda a: _pids(a) >= everyone)
        assert not any(NEW_SECRET.search(a.body) for a in again)

        # Signing out in one process (with the token another one put in its page) ends the
        # session in all of them.
        for _ in range(20):
            page = web.send("/", cookie)
            assert page.status == 200
            out = web.send("/logout", cookie, {"csrf_token": _csrf(page)})
            assert out.status == 302 and out.location == "/login", (out.status, out.body[:300])
            if out.pid != page.pid:
                break
            # Same process both times: sign in again and have another go.
            relogin = web.send("/login", cookie, {"email": EMAIL, "password": PASSWORD,
                                                  "csrf_token": _csrf(form_page)})  # fmt: skip
            assert relogin.status == 302
            cookie = {SESSION_COOKIE: relogin.cookies[SESSION_COOKIE]}
        assert out.pid != page.pid, "every sign-out landed on the process that made its page"
        after = web.burst(lambda: web.send("/live.json", cookie), lambda a: _pids(a) >= everyone)
        assert all(a.status in (302, 401) for a in after), [(a.pid, a.status) for a in after]

    # No dispatcher ran inside: nothing left the queue, and no worker was registered.
    assert status_counts(migrated_db, campaign_id) == {MessageStatus.QUEUED: RECIPIENTS}
    with migrated_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Worker)) == 0


@pytest.mark.parametrize("hops", [0, 1])
def test_forwarded_headers_are_believed_only_behind_a_proxy(
    settings: Settings, database_url: str, migrated_db: Database, hops: int
) -> None:
    """WABULK_PROXY_HOPS=1: the proxy's X-Forwarded-For/Proto/Host/Prefix are the client's
    address and the site's address; 0: they are a client's own headers and are ignored."""
    app = create_app(
        settings, database_url=database_url, proxy_hops=hops, login_attempts_per_minute=2
    )
    app.config["TESTING"] = True
    try:
        with migrated_db.session() as session:
            users.create_user(session, None, EMAIL, PASSWORD, Role.ADMIN)
        client = app.test_client()
        token = csrf_from(client.get("/login").get_data(as_text=True))
        form = {"email": EMAIL, "password": PASSWORD, "csrf_token": token}
        assert client.post("/login", data=form).status_code == 302
        proxied = {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "shop.example.com",
            "X-Forwarded-Prefix": "/wabulk",
        }
        docs = client.get("/api/docs", headers=proxied).get_data(as_text=True)
        base = "https://shop.example.com" if hops else "http://localhost"
        assert f"<code>{base}/api/v1</code>" in docs, re.findall(r"<code>[^<]*api/v1", docs)
        # Behind a path (/wabulk/ on the proxy), the page's own links carry it.
        assert ('src="/wabulk/static/' in docs) == bool(hops)

        client = app.test_client()

        def wrong_password(email: str, address: str) -> int:
            token = csrf_from(client.get("/login").get_data(as_text=True))
            form = {"email": email, "password": "not it", "csrf_token": token}
            answer = client.post("/login", data=form, headers={"X-Forwarded-For": address})
            return answer.status_code

        # Two failures from one address (for two accounts), then a third try: from that
        # address it waits; from another address only when the header is not believed.
        assert wrong_password("a@shop.example", "203.0.113.7") == 400
        assert wrong_password("b@shop.example", "203.0.113.7") == 400
        assert wrong_password("c@shop.example", "203.0.113.7") == 429
        assert wrong_password("d@shop.example", "198.51.100.9") == (400 if hops else 429)
    finally:
        app.extensions["wabulk.db"].dispose()


def test_several_processes_without_gunicorn_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Windows gunicorn is not installed: the command says so instead of a traceback."""
    monkeypatch.setitem(sys.modules, "gunicorn", None)  # what an absent package looks like
    monkeypatch.setitem(sys.modules, "gunicorn.app.base", None)
    monkeypatch.delitem(sys.modules, "wabulk.web_server", raising=False)
    monkeypatch.setenv("WABULK_INSTANCE_PATH", str(tmp_path / "instance"))
    result = CliRunner().invoke(main, ["serve", "--processes", "4", "--port", "0"])
    assert result.exit_code == 1, result.output
    assert "gunicorn, which runs on Linux and macOS only" in result.output
    assert "wabulk serve --processes 1" in result.output
