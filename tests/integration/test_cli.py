"""The `wabulk` command, run as a user runs it: a real process on a fresh instance folder."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

import wabulk

from ..support import WABULK, http_get, run_wabulk, running_server, wabulk_env

PASSWORD = "correct horse battery"
MIGRATIONS = Path(wabulk.__file__).parent / "migrations" / "versions"


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "instance"
    result = run_wabulk(path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    return path


def test_help_explains_every_command(tmp_path) -> None:
    result = run_wabulk(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("serve", "worker", "db", "user", "setup-code"):
        assert command in result.stdout
    serve_help = run_wabulk(tmp_path, "serve", "--help").stdout
    assert "--no-worker" in serve_help
    assert not (tmp_path / "wabulk.db").exists()  # --help touches nothing


def test_db_upgrade_creates_the_database_and_is_repeatable(tmp_path) -> None:
    instance = tmp_path / "fresh"
    first = run_wabulk(instance, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    newest = max(p.name[:4] for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert f"is at revision {newest}." in first.stdout
    assert (instance / "wabulk.db").exists()
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    assert "up to date" in run_wabulk(instance, "db", "current").stdout


def test_db_upgrade_on_postgres_hides_the_password(postgres_database, tmp_path) -> None:
    from sqlalchemy.engine import make_url

    url = (
        make_url(postgres_database).set(password="s3cr3t-pw").render_as_string(hide_password=False)
    )
    result = run_wabulk(tmp_path, "db", "upgrade", WABULK_DATABASE_URL=url)
    assert result.returncode == 0, result.stderr  # trust auth ignores the password
    assert "postgresql+psycopg://" in result.stdout
    assert "s3cr3t-pw" not in result.stdout + result.stderr


def test_user_create_for_scripts(instance) -> None:
    result = run_wabulk(
        instance,
        "user",
        "create",
        "--email",
        "ops@example.com",
        "--role",
        "operator",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Created ops@example.com (operator)." in result.stdout
    again = run_wabulk(
        instance,
        "user",
        "create",
        "--email",
        "OPS@example.com",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert again.returncode != 0
    assert "already exists" in again.stderr
    weak = run_wabulk(
        instance, "user", "create", "--email", "w@example.com", "--password-stdin", input="short\n"
    )
    assert weak.returncode != 0 and "at least 8 characters" in weak.stderr
    bad_role = run_wabulk(
        instance,
        "user",
        "create",
        "--email",
        "x@example.com",
        "--role",
        "owner",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert bad_role.returncode != 0 and "owner" in bad_role.stderr


def test_setup_code_only_while_there_is_no_user(instance) -> None:
    result = run_wabulk(instance, "setup-code")
    assert result.returncode == 0
    assert len(result.stdout.strip()) == 14
    run_wabulk(
        instance,
        "user",
        "create",
        "--email",
        "a@example.com",
        "--role",
        "admin",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    done = run_wabulk(instance, "setup-code")
    assert done.returncode != 0 and "Setup is done already" in done.stderr


def test_commands_refuse_an_unmigrated_database_with_a_clear_message(tmp_path) -> None:
    result = run_wabulk(tmp_path / "empty", "serve", "--port", "0")
    assert result.returncode != 0
    assert "Run `wabulk db upgrade` first." in result.stderr


def test_a_malformed_setting_is_reported_by_name(tmp_path) -> None:
    result = run_wabulk(tmp_path, "db", "upgrade", WABULK_PORT="eighty")
    assert result.returncode != 0
    assert "WABULK_PORT must be a whole number; got 'eighty'" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_prints_the_setup_code_and_keeps_it_out_of_the_log(instance) -> None:
    with running_server(instance) as server:
        assert server.setup_code
        status, headers, _ = http_get(server.url + "/")
        assert status == 302 and headers["Location"] == "/setup"  # no user yet
        status, headers, body = http_get(server.url + "/setup")
        assert status == 200 and "setup code" in body
        assert headers["Server"] == "waitress"  # the production server, not Flask's
        assert "dispatcher on" in "".join(server.output)
    log = (instance / "wabulk.log").read_text()
    assert "dispatcher" in log
    assert server.setup_code not in log
    assert (instance / "secret_key").read_text() not in log + "".join(server.output)
    assert server.process.returncode == 0


def test_serve_without_worker(instance) -> None:
    with running_server(instance, "--no-worker") as server:
        pass
    assert "dispatcher off" in "".join(server.output)
    with running_server(instance, WABULK_WORKER="0") as server:
        pass
    assert "dispatcher off" in "".join(server.output)


def test_worker_runs_until_sigterm(instance) -> None:
    proc = subprocess.Popen(
        [WABULK, "worker"],
        env=wabulk_env(instance),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "wabulk worker" in first and "running" in first
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "stopped" in out


def test_serve_port_0_takes_a_free_port_even_when_the_default_is_busy(tmp_path) -> None:
    """`--port 0` means "any free port", not "the default port"."""
    import socket

    from ..support import run_wabulk as _run
    from ..support import running_server

    instance = tmp_path / "instance"
    assert _run(instance, "db", "upgrade").returncode == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with running_server(instance, "--no-worker", WABULK_PORT=str(taken)) as server:
            assert not server.url.endswith(f":{taken}")
