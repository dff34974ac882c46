"""Issue 14, item 5: the database, its WAL, the log and uploaded sheets are readable by
wabulk's own user only (0600, like the secret key), however permissive the umask."""

from __future__ import annotations

import io
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.importing import upload
from tests.support import http_get, run_wabulk, running_server
from wabulk import logs, migrate
from wabulk.app import create_app
from wabulk.campaigns.media import media_path, save_media
from wabulk.channels.base import ChannelConfig, OutgoingMessage
from wabulk.channels.dry_run import DryRunChannel, log_path
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import Import


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _permissive_umask() -> Iterator[None]:
    """The usual 022: files anyone on the machine may read unless we say otherwise."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def _fresh(tmp_path: Path) -> Settings:
    return Settings(instance_path=tmp_path / "fresh" / "instance", worker=False)


def test_a_fresh_instance_keeps_everything_to_its_owner(tmp_path: Path) -> None:
    settings = _fresh(tmp_path)
    app = create_app(settings)
    db: Database = app.extensions["wabulk.db"]
    try:
        migrate.upgrade(db.engine)
        logging.getLogger("wabulk.test").warning("a line for the log")
        with db.engine.connect():  # the WAL and shared memory exist while it is open
            instance = settings.instance_path
            assert mode(instance) == 0o700
            for name in ("wabulk.db", "wabulk.db-wal", "wabulk.db-shm", "wabulk.log"):
                assert mode(instance / name) == 0o600, name
            assert mode(instance / "secret_key") == 0o600
    finally:
        db.dispose()


def test_files_an_older_version_left_open_are_tightened_at_start(tmp_path: Path) -> None:
    instance = tmp_path / "old"
    instance.mkdir()
    names = ("wabulk.db", "wabulk.db-wal", "wabulk.db-shm", "wabulk.log", "wabulk.log.1")
    for name in names:
        (instance / name).write_bytes(b"")
        (instance / name).chmod(0o644)
    for folder in ("imports", "media", "screenshots", "browsers", "dry_run"):
        (instance / folder).mkdir(mode=0o755)
    (instance / "secret_key").write_text("a key from an older install")
    (instance / "secret_key").chmod(0o644)
    names = (*names, "secret_key")
    (instance / "wabulk.db-wal").unlink()  # an empty WAL file is not one SQLite accepts
    (instance / "wabulk.db-shm").unlink()
    app = create_app(Settings(instance_path=instance, worker=False))
    db: Database = app.extensions["wabulk.db"]
    try:
        migrate.upgrade(db.engine)
        for name in names:
            assert mode(instance / name) == 0o600, name
        for folder in ("imports", "media", "screenshots", "browsers", "dry_run"):
            assert mode(instance / folder) == 0o700, folder
    finally:
        db.dispose()


def test_a_rotated_log_and_its_successor_stay_private(tmp_path: Path) -> None:
    path = tmp_path / "wabulk.log"
    handler = logs.PrivateRotatingFileHandler(path, maxBytes=200, backupCount=2)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "x" * 150, None, None)
    try:
        for _ in range(4):
            handler.emit(record)
    finally:
        handler.close()
    files = sorted(tmp_path.glob("wabulk.log*"))
    assert [p.name for p in files] == ["wabulk.log", "wabulk.log.1", "wabulk.log.2"]
    assert all(mode(p) == 0o600 for p in files)


def test_an_uploaded_sheet_is_stored_owner_only(migrated_db: Database, tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    sheet = tmp_path / "customers.csv"
    sheet.write_text("phone,name\n9876543210,Asha\n", encoding="utf-8")
    import_id = upload(migrated_db, instance, sheet)
    with migrated_db.session() as session:
        stored = instance / session.get(Import, import_id).stored_path
    assert mode(stored) == 0o600
    assert mode(stored.parent) == 0o700


def test_the_command_line_and_the_server_create_a_private_database_and_log(
    tmp_path: Path,
) -> None:
    instance = tmp_path / "cli"
    done = run_wabulk(instance, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    with running_server(instance, "--no-worker") as server:
        assert http_get(server.url + "/login")[0] in (200, 302)
        assert mode(instance) == 0o700
        for name in ("wabulk.db", "wabulk.db-wal", "wabulk.db-shm", "wabulk.log", "secret_key"):
            assert mode(instance / name) == 0o600, name


def test_a_dry_run_senders_delivery_log_is_owner_only(tmp_path: Path) -> None:
    channel = DryRunChannel(ChannelConfig(sender_name="Rehearsal", instance_path=tmp_path))
    channel.send(OutgoingMessage(message_id=1, phone="+919876543210", text="Hello Asha"))
    channel.close()
    assert mode(log_path(tmp_path, "Rehearsal")) == 0o600


def test_an_attachment_is_stored_owner_only(migrated_db: Database, tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    with migrated_db.session() as session:
        media = save_media(
            session, io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "prices.pdf", instance, 1 << 20
        )
        stored = media_path(instance, media)
    assert mode(stored) == 0o600


def test_a_read_only_database_stays_read_only_for_its_owner(tmp_path: Path) -> None:
    """Tightening takes from group and others only, and never stops wabulk from starting."""
    path = tmp_path / "copy.db"
    writer = Database(f"sqlite:///{path}")
    with writer.engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
        conn.commit()
    writer.dispose()
    path.chmod(0o444)
    reader = Database(f"sqlite:///{path}")
    try:
        assert mode(path) == 0o400
        with reader.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    finally:
        reader.dispose()
        path.chmod(0o600)
