"""`wabulk send` and `wabulk campaign …` as a user runs them: real processes, real files."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from PIL import Image

from wabulk.channels.dry_run import log_path, read_log

from ..support import WABULK, run_wabulk, wabulk_env

SHEET = "Mobile,Name,City\n9876543210,Asha,Pune\n9876543211,Ravi,Delhi\n+1 415 555 2671,Maria,SF\n"


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "instance"
    assert run_wabulk(path, "db", "upgrade").returncode == 0
    sheet = tmp_path / "customers.csv"
    sheet.write_text(SHEET)
    result = run_wabulk(path, "contacts", "import", str(sheet), "--list", "VIP", "--country", "IN")
    assert result.returncode == 0, result.stderr
    return path


def _status(instance, campaign_id: str) -> dict:
    result = run_wabulk(instance, "campaign", "status", campaign_id, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_send_dry_run_wait_delivers_to_everyone(instance, tmp_path) -> None:
    photo = tmp_path / "offer.png"
    Image.new("RGB", (40, 30), "green").save(photo)
    result = run_wabulk(
        instance,
        "send",
        "--list",
        "VIP",
        "--message",
        "Hello {{ name }} from {{ city }} 🎉",
        "--attach",
        str(photo),
        "--dry-run",
        "--wait",
    )
    assert result.returncode == 0, result.stderr
    campaign_id = result.stdout.strip()
    assert campaign_id.isdigit()
    assert "completed: sent 3" in result.stderr
    lines = read_log(log_path(instance, "Dry run"))
    assert sorted(line["text"] for line in lines) == [
        "Hello Asha from Pune 🎉",
        "Hello Maria from SF 🎉",
        "Hello Ravi from Delhi 🎉",
    ]
    assert {line["media"] for line in lines} == {"offer.png"}
    status = _status(instance, campaign_id)
    assert status["status"] == "completed"
    assert status["counts"]["sent"] == 3 and status["total"] == 3


def test_campaign_create_launch_pause_resume_cancel(instance) -> None:
    sender = run_wabulk(
        instance, "send", "--list", "VIP", "--message", "warm-up", "--dry-run", "--wait"
    )
    assert sender.returncode == 0, sender.stderr  # creates the "Dry run" sender
    created = run_wabulk(
        instance,
        "campaign",
        "create",
        "--name",
        "Diwali",
        "--list",
        "VIP",
        "--message",
        "{Hi|Hello} {{ name }}",
        "--sender",
        "Dry run",
        "--delay",
        "30-60",
    )
    assert created.returncode == 0, created.stderr
    cid = created.stdout.strip()
    assert _status(instance, cid)["status"] == "draft"
    assert "is running" in run_wabulk(instance, "campaign", "launch", cid).stdout
    assert _status(instance, cid)["counts"]["queued"] == 3
    assert "is paused" in run_wabulk(instance, "campaign", "pause", cid).stdout
    again = run_wabulk(instance, "campaign", "pause", cid)
    assert again.returncode != 0 and "is paused; you cannot pause it now" in again.stderr
    assert "is running" in run_wabulk(instance, "campaign", "resume", cid).stdout
    assert "is cancelled" in run_wabulk(instance, "campaign", "cancel", cid).stdout
    status = _status(instance, cid)
    assert status["counts"]["skipped"] == 3 and status["status"] == "cancelled"
    listing = run_wabulk(instance, "campaign", "list").stdout
    assert "Diwali" in listing and "cancelled" in listing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--list", "Nobody", "--message", "hi", "--dry-run"], "There is no list called 'Nobody'"),
        (["--list", "VIP", "--message", "hi", "--sender", "Ghost"], "no sender called 'Ghost'"),
        (["--list", "VIP", "--message", "hi"], "Give either --sender NAME or --dry-run"),
        (["--list", "VIP", "--message", "{{ name", "--dry-run"], "Line 1"),
        (["--list", "VIP", "--message", "hi", "--dry-run", "--delay", "9-2"], "MIN-MAX"),
    ],
)
def test_send_refuses_bad_input_clearly(instance, args, message) -> None:
    result = run_wabulk(instance, "send", *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_finishes_the_step_and_gives_everything_back(instance) -> None:
    """A paced campaign, a worker stopped politely: nothing stays held, nothing is lost."""
    run_wabulk(instance, "send", "--list", "VIP", "--message", "warm-up", "--dry-run", "--wait")
    created = run_wabulk(
        instance, "send", "--list", "VIP", "--message", "Paced", "--dry-run", "--delay", "20"
    )
    cid = created.stdout.strip()
    proc = subprocess.Popen(
        [WABULK, "worker"],
        env=wabulk_env(instance),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120  # a bound for a stuck worker, not a speed
    while _status(instance, cid)["counts"]["sent"] < 1:
        assert time.monotonic() < deadline, "the worker sent nothing"
        time.sleep(0.2)
    # Stopped while the next message is claimed and waits out its 20 s delay.
    deadline = time.monotonic() + 120
    while _status(instance, cid)["counts"]["sending"] < 1:
        assert time.monotonic() < deadline, "the worker claimed no next message"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    counts = _status(instance, cid)["counts"]
    assert counts["sending"] == 0
    assert counts["sent"] == 1 and counts["queued"] == 2
