"""Logging to stderr and a rotating file in the instance folder.

One line per event; records that carry `campaign_id` / `message_id` (passed as `extra`)
show them, so `grep campaign=12` follows one campaign through the log.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from .disk import tighten

LOG_FILE = "wabulk.log"
_HANDLER_MARK = "_wabulk_handler"


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ids = [
            f"{name}={value}"
            for name, value in (
                ("campaign", getattr(record, "campaign_id", None)),
                ("message", getattr(record, "message_id", None)),
            )
            if value is not None
        ]
        record.context = f" [{' '.join(ids)}]" if ids else ""
        # Tracebacks stay on following lines; everything else is one line per record.
        record.msg = str(record.msg).replace("\n", "\\n")
        return redact(super().format(record))


# API tokens never reach a log, even through a message or library that quotes a header.
_SECRETS = re.compile(r"(?i)(\bbearer\s+)\S+|\bwab_[A-Za-z0-9_-]{20,}")


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """The log names customers' numbers and campaigns: owner-only, like the database.

    - Each file is opened with mode 0600, the first and every one after a rollover (the
      backups are renames of it, so they keep it).
    - Several processes write the one file (web processes under gunicorn, workers beside
      them on one machine). A process that finds the file renamed under it (another one
      rolled it over) reopens the new one instead of writing on into a backup, and a
      rollover is taken under a lock file and only when the file is still full: without
      this each process rolled over on its own count, renaming away lines another had just
      written.
    """

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)

    def _follow(self) -> bool:
        """Reopen when the file at our path is no longer the one we hold; True if so."""
        if self.stream is None:
            return False
        try:
            at_path = os.stat(self.baseFilename)
        except FileNotFoundError:
            at_path = None
        held = os.fstat(self.stream.fileno())
        if at_path is None or (at_path.st_dev, at_path.st_ino) != (held.st_dev, held.st_ino):
            self.stream.close()
            self.stream = self._open()
            return True
        return False

    def shouldRollover(self, record: logging.LogRecord) -> int:
        self._follow()
        return super().shouldRollover(record)

    def doRollover(self) -> None:
        folder, name = os.path.split(self.baseFilename)
        with _rollover_lock(os.path.join(folder, f".{name}.lock")):
            if self._follow():
                return  # another process rolled it over a moment ago: write on in the new one
            super().doRollover()


@contextlib.contextmanager
def _rollover_lock(path: str) -> Iterator[None]:
    """An exclusive lock between processes (POSIX); elsewhere one process writes anyway."""
    try:
        import fcntl
    except ImportError:  # Windows: `wabulk serve` is one process there
        yield
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s %(message)s"


def configure(instance_path: Path, level: str) -> None:
    """Install our handlers on the root logger once per process (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
            handler.close()
    formatter = ContextFormatter(FORMAT)
    stderr = logging.StreamHandler(sys.stderr)
    instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Logs an older version left readable by others are tightened first.
    for old in instance_path.glob(LOG_FILE + "*"):
        tighten(old)
    rotating = PrivateRotatingFileHandler(
        instance_path / LOG_FILE, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    for handler in (stderr, rotating):
        handler.setFormatter(formatter)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    # waitress logs every queue warning at WARNING; its access lines are not ours to keep.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    # Alembic announces its dialect each time the schema revision is checked at start-up.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
