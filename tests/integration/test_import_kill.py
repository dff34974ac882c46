"""A real `wabulk contacts import` killed with SIGKILL: its reader process goes with it, and
running the command again leaves what one unbroken run leaves."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from wabulk.db import Database
from wabulk.models import Import, ImportStatus

from ..importing import contacts, exact, members
from ..support import WABULK, run_wabulk, wabulk_env

# Well past PARALLEL_MIN_ROWS: the sheet is read in a second process.
ROWS = 120_000


def _sheet(path: Path, rows: int) -> Path:
    """Customers with Indian mobiles: some written twice (other name), some too short."""
    rng = random.Random(7)
    phones: list[str] = []
    with path.open("w", encoding="utf-8") as out:
        out.write("Name,Mobile,City\n")
        for n in range(rows):
            if phones and rng.random() < 0.02:
                phone = rng.choice(phones)
            elif rng.random() < 0.01:
                phone = str(rng.randrange(10**4, 10**5))
            else:
                phone = f"9{rng.randrange(10**9):09d}"
                phones.append(phone)
            out.write(f"Customer {n},{phone},City {n % 40}\n")
    return path


def _instance(tmp_path: Path, name: str) -> tuple[Path, Database]:
    instance = tmp_path / name
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    return instance, Database(f"sqlite:///{instance / 'wabulk.db'}")


IMPORT = ("contacts", "import", "--list", "Big", "--country", "IN")


def _import(instance: Path, sheet: Path) -> subprocess.CompletedProcess[str]:
    return run_wabulk(instance, *IMPORT, str(sheet))


def _start_import(instance: Path, sheet: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [WABULK, *IMPORT, str(sheet)],
        env=wabulk_env(instance),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _newest(db: Database) -> tuple[int, int]:
    """The newest import's (id, rows committed), (0, 0) before the first."""
    with db.session() as session:
        row = session.execute(
            select(Import.id, Import.rows_done).order_by(Import.id.desc()).limit(1)
        ).first()
        return (row[0], row[1]) if row else (0, 0)


def _start_and_wait(instance: Path, db: Database, sheet: Path) -> subprocess.Popen[bytes]:
    """Start an import of `sheet`; return once it has committed a chunk, still running."""
    before, _ = _newest(db)
    process = _start_import(instance, sheet)
    deadline = time.monotonic() + 60
    while True:
        newest, done = _newest(db)
        if newest > before and done > 0:
            return process
        assert process.poll() is None, "the import ended before it could be killed"
        assert time.monotonic() < deadline, "the import wrote nothing in 60 s"
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits on whoever adopted it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _kill(process: subprocess.Popen[bytes]) -> list[int]:
    """SIGKILL the import; the pids of the processes it had started."""
    started = _children(process.pid)
    process.kill()
    process.wait(10)
    return started


def _wait_gone(pids: list[int], seconds: float = 10) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := [p for p in pids if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _same_as_one_clean_run(tmp_path: Path, db: Database, sheet: Path) -> None:
    clean_instance, clean = _instance(tmp_path, "clean")
    assert _import(clean_instance, sheet).returncode == 0
    assert contacts(db) == contacts(clean)
    assert members(db, "Big") == members(clean, "Big")
    assert exact(db) == exact(clean)


# A kill and a rerun of a large import (about 30 s): make test-slow, beside the five-kill case.
@pytest.mark.slow
def test_a_killed_import_takes_its_reader_along_and_a_rerun_completes_it(tmp_path: Path) -> None:
    sheet = _sheet(tmp_path / "customers.csv", ROWS)
    instance, db = _instance(tmp_path, "instance")
    process = _start_and_wait(instance, db, sheet)
    started = _kill(process)
    assert started, "the import had no reader process"
    assert _wait_gone(started) == [], "the reader outlived the import it read for"
    with db.session() as session:
        (killed,) = session.scalars(select(Import)).all()
        assert killed.status == ImportStatus.RUNNING
        assert 0 < killed.rows_done < ROWS + 1
    again = _import(instance, sheet)
    assert again.returncode == 0, again.stderr
    assert f"{ROWS:,} rows read" in again.stdout
    _same_as_one_clean_run(tmp_path, db, sheet)


@pytest.mark.slow
def test_killed_five_times_at_random_moments_then_rerun_equals_one_clean_run(
    tmp_path: Path,
) -> None:
    sheet = _sheet(tmp_path / "customers.csv", 800_000)
    instance, db = _instance(tmp_path, "instance")
    rng = random.Random(11)
    for _ in range(5):
        # Each run starts over in a new import; killed somewhere in its first ~300,000 rows.
        process = _start_and_wait(instance, db, sheet)
        time.sleep(rng.uniform(0, 2.5))
        if process.poll() is not None:
            break  # finished before the kill: the rerun below must still change nothing
        assert _wait_gone(_kill(process)) == []
    again = _import(instance, sheet)
    assert again.returncode == 0, again.stderr
    _same_as_one_clean_run(tmp_path, db, sheet)
