"""Without a PostgreSQL server the PostgreSQL tests skip and say why; under CI=true they fail.

A developer without PostgreSQL still runs the suite (the SQLite twins run, each PostgreSQL
test is skipped with the server's address and the driver's reason); CI has a server, so
there a missing one must fail the run instead of passing it with the PostgreSQL half
quietly skipped. Checked by running real tests of the suite in a pytest of their own with
WABULK_TEST_POSTGRES_URL (tests/conftest.py) pointed at a port nothing listens on.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# One test on the server's own fixture, and one run once per database (its SQLite twin
# must still pass).
TESTS = [
    "tests/integration/test_postgres_reconnect.py::"
    "test_a_request_whose_connection_drops_is_a_503_sentence_and_the_next_one_works",
    "tests/integration/test_migrations.py::test_upgrade_matches_the_models_exactly",
]


def _closed_port() -> int:
    """A loopback port nothing listens on (taken from the OS, then let go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_pytest(ci: str | None) -> subprocess.CompletedProcess[str]:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env = {k: v for k, v in env.items() if not k.startswith(("PYTEST_XDIST", "WABULK_"))}
    env["WABULK_TEST_POSTGRES_URL"] = url
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-rsEf",
         "-q", *TESTS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


# Each runs a child pytest (about 10 s): in make test-slow, to keep make test under 15 minutes.
pytestmark = pytest.mark.slow


def test_without_a_server_the_postgres_tests_skip_saying_why() -> None:
    run = _run_pytest(ci=None)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "1 passed, 2 skipped" in out, out  # the SQLite twin ran; both PostgreSQL tests skipped
    assert out.count("SKIPPED") == 2, out
    assert "PostgreSQL at postgresql+psycopg://postgres@127.0.0.1:" in out, out
    assert "is not reachable" in out and "CI=true" not in out, out


def test_under_ci_a_missing_server_fails_the_run() -> None:
    run = _run_pytest(ci="true")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out  # pytest's "tests failed", not a crash or a usage error
    assert "1 passed, 2 errors" in out, out
    assert "SKIPPED" not in out, out
    assert out.count("(CI=true: PostgreSQL tests must run)") >= 2, out
