"""Running the real `wabulk` command in tests: subprocesses on a temporary instance."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wabulk.config import Settings
    from wabulk.db import Database

WABULK = str(Path(sys.executable).parent / "wabulk")
SETUP_CODE_RE = re.compile(r"Setup code: ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})")
SERVING_RE = re.compile(r"serving on (http://\S+)")


def wabulk_env(instance: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WABULK_")}
    env.update({"WABULK_INSTANCE_PATH": str(instance), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def run_wabulk(
    instance: Path, *args: str, input: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WABULK, *args],
        env=wabulk_env(instance, **extra),
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Server:
    url: str
    setup_code: str | None
    process: subprocess.Popen[str]
    output: list[str]


def new_instance(instance: Path, email: str, password: str, role: str) -> None:
    """A migrated instance with one user, made through the command line as an admin would."""
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    created = run_wabulk(
        instance,
        "user",
        "create",
        "--email",
        email,
        "--role",
        role,
        "--password-stdin",
        input=password + "\n",
    )
    assert created.returncode == 0, created.stderr


@contextmanager
def running_server(instance: Path, *args: str, **extra: str) -> Iterator[Server]:
    """`wabulk serve --port 0` until it prints its address; SIGTERM afterwards."""
    proc = subprocess.Popen(
        [WABULK, "serve", "--port", "0", *args],
        env=wabulk_env(instance, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    code = url = None
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while url is None:
        line = proc.stdout.readline()
        if not line:
            proc.wait(5)
            proc.stdout.close()
            raise AssertionError("wabulk serve exited early:\n" + "".join(lines))
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(5)
            proc.stdout.close()
            raise AssertionError("wabulk serve did not start:\n" + "".join(lines))
        lines.append(line)
        if m := SETUP_CODE_RE.search(line):
            code = m.group(1)
        if m := SERVING_RE.search(line):
            url = m.group(1)
    # Keep reading output so the server never blocks on a full pipe.
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        yield Server(url=url, setup_code=code, process=proc, output=lines)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        reader.join(5)
        proc.stdout.close()


def http_get(url: str) -> tuple[int, dict[str, str], str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        body = err.read().decode()
        err.close()
        return err.code, dict(err.headers), body


def serving_database(db: Database, settings: Settings) -> AbstractContextManager[Server]:
    """`wabulk serve` (no worker) on a test's own database, instance and secret key."""
    return running_server(
        Path(settings.instance_path),
        "--no-worker",
        WABULK_DATABASE_URL=db.engine.url.render_as_string(hide_password=False),
        WABULK_SECRET_KEY=settings.secret_key,
    )
