"""Signed-in clients of a real `wabulk serve`, and a big audience made in one statement.

The load and contention tests drive the server the way browsers do: each client has its
own session cookie, reads pages, and posts forms with the page's CSRF token. Redirects are
not followed, so a 302 is counted as what it is; anything that is not an answer (a refused
or reset connection, a timeout) is recorded as an error, never retried.
"""

from __future__ import annotations

import http.cookiejar
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.support import run_wabulk

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
TIMEOUT = 120  # seconds a client waits for one answer: a net for a hung server, not a bound


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


@dataclass
class Answer:
    status: int  # 0: no answer at all (the connection failed)
    body: str
    path: str


@dataclass
class Client:
    base: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect
        )

    def request(self, path: str, form: dict[str, str] | None = None) -> Answer:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(self.base + path, data=data, timeout=TIMEOUT) as response:
                return Answer(response.status, response.read().decode(errors="replace"), path)
        except urllib.error.HTTPError as err:
            body = err.read().decode(errors="replace")
            err.close()
            return Answer(err.code, body, path)
        except (OSError, urllib.error.URLError) as exc:
            return Answer(0, f"{type(exc).__name__}: {exc}", path)

    def csrf(self, path: str) -> str:
        page = self.request(path)
        match = CSRF_RE.search(page.body)
        assert match, f"{path} answered {page.status} without a form"
        return match.group(1)

    def post(self, path: str, form: dict[str, str], token_from: str) -> Answer:
        return self.request(path, {**form, "csrf_token": self.csrf(token_from)})


def sign_in(base: str, email: str, password: str) -> Client:
    client = Client(base)
    answer = client.post("/login", {"email": email, "password": password}, "/login")
    assert answer.status == 302, (answer.status, answer.body[:500])
    return client


def add_user(instance: Path, email: str, password: str, role: str) -> None:
    done = run_wabulk(
        instance, "user", "create", "--email", email, "--role", role, "--password-stdin",
        input=password + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def bulk_contacts(database: Path, n: int, list_name: str, first: int = 0) -> int:
    """`n` contacts in a new list, written in one transaction (as the benchmarks build
    theirs): 20,000 through the web or the ORM one by one would be most of a test's time."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    con = sqlite3.connect(database, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        list_id = con.execute(
            "INSERT INTO contact_lists (name, created_at, member_count, is_demo) "
            "VALUES (?, ?, ?, 0) RETURNING id",
            (list_name, now, n),
        ).fetchone()[0]
        con.executemany(
            "INSERT INTO contacts (phone, name, attributes, country, timezone, created_at, "
            "updated_at, is_demo) VALUES (?, ?, '{}', 'IN', 'UTC', ?, ?, 0)",
            [(f"+9190{i:08d}", f"Customer {i}", now, now) for i in range(first, first + n)],
        )
        con.execute(
            "INSERT INTO contact_list_members (list_id, contact_id, added_at) "
            "SELECT ?, id, ? FROM contacts WHERE phone >= ? AND phone < ?",
            (list_id, now, f"+9190{first:08d}", f"+9190{first + n:08d}"),
        )
        con.execute("COMMIT")
        return int(list_id)
    finally:
        con.close()
