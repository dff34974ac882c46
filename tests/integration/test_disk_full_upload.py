"""A disk that fills while an upload is stored: a clear sentence, nothing half-written.

The folder uploads go to is a real, tiny filesystem (tmpfs) filled to within a few blocks
of its end, so the first blocks of an upload are written and a later one fails with
ENOSPC, as on a server whose disk ran out. Mounting needs root (CI runs as root); where it
is refused the tests are skipped, saying why.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import PASSWORD, get_csrf
from tests.support import run_wabulk
from wabulk.auth import service as users
from wabulk.auth import tokens
from wabulk.campaigns.media import save_media
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.errors import ValidationError
from wabulk.models import Contact, Import, Media, Role, User

FILLER = "filler"
FREE = 128 * 1024  # room for the first blocks of an upload, not for all of it
SENTENCE = "disk is full"


def _sheet(rows: int = 15_000) -> bytes:
    """A CSV of about 390 KB: three times the room left (and under the 500 KB past which
    the test client spools a request body to a file of its own)."""
    lines = ["Mobile,Name"] + [f"98{i:08d},Customer {i}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def fill(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """fill(folder): a 2 MB filesystem mounted on `folder`, all but FREE bytes used."""
    mounted: list[Path] = []

    def mount(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")
        mounted.append(folder)
        filler = folder / FILLER
        with filler.open("wb") as out:
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass  # full
        os.truncate(filler, filler.stat().st_size - FREE)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != FILLER)


def _imports(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Import)) or 0


def test_web_upload_on_a_full_disk_says_so_and_keeps_nothing(
    app: Flask,
    client: FlaskClient,
    db: Database,
    settings: Settings,
    as_role: Callable[[Role], User],
    fill: Callable[[Path], Path],
) -> None:
    folder = fill(settings.instance_path / "imports")
    as_role(Role.OPERATOR)
    token = get_csrf(client, "/contacts/imports/new")
    answer = client.post(
        "/contacts/imports/new",
        data={"csrf_token": token, "kind": "contacts", "file": (io.BytesIO(_sheet()), "big.csv")},
        content_type="multipart/form-data",
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert SENTENCE in page and "free some space" in page
    assert "Errno" not in page and "ENOSPC" not in page
    assert _left_in(folder) == [] and _imports(db) == 0
    # Still serving; and once space is freed the same file goes through.
    assert client.get("/contacts/").status_code == 200
    (folder / FILLER).unlink()
    token = get_csrf(client, "/contacts/imports/new")
    answer = client.post(
        "/contacts/imports/new",
        data={"csrf_token": token, "kind": "contacts", "file": (io.BytesIO(_sheet()), "big.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302 and _imports(db) == 1


def test_api_upload_on_a_full_disk_is_a_422_sentence_and_keeps_nothing(
    app: Flask, db: Database, settings: Settings, fill: Callable[[Path], Path]
) -> None:
    folder = fill(settings.instance_path / "imports")
    with db.session() as session:
        user = users.create_user(session, None, "api@x.example", PASSWORD, Role.OPERATOR)
        secret = tokens.create_token(session, user, "tests").secret
    answer = app.test_client().post(
        "/api/v1/imports",
        headers={"Authorization": f"Bearer {secret}"},
        data={"kind": "contacts", "file": (io.BytesIO(_sheet()), "big.csv")},
        content_type="multipart/form-data",
    )
    body = answer.get_json()
    assert answer.status_code == 422, body
    assert SENTENCE in body["error"]["message"] and "Errno" not in body["error"]["message"]
    assert _left_in(folder) == [] and _imports(db) == 0


def test_cli_import_on_a_full_disk_says_so_and_imports_nothing(
    tmp_path: Path, fill: Callable[[Path], Path]
) -> None:
    instance = tmp_path / "instance"
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    folder = fill(instance / "imports")
    sheet = tmp_path / "big.csv"
    sheet.write_bytes(_sheet())
    done = run_wabulk(instance, "contacts", "import", str(sheet), "--country", "IN")
    assert done.returncode != 0
    assert SENTENCE in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert _left_in(folder) == []
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        assert _imports(db) == 0
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(Contact)) == 0
    finally:
        db.dispose()


def test_an_attachment_on_a_full_disk_is_refused_with_a_sentence(
    app: Flask, db: Database, settings: Settings, fill: Callable[[Path], Path]
) -> None:
    folder = fill(settings.instance_path / "media")
    with db.session() as session, pytest.raises(ValidationError) as refused:
        save_media(session, io.BytesIO(b"%PDF-1.7\n" * 100_000), "price list.pdf",
                   settings.instance_path, 50 * 1024 * 1024)  # fmt: skip
    assert SENTENCE in str(refused.value) and refused.value.field == "media"
    assert _left_in(folder) == []
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Media)) == 0
