"""The dispatcher loop: small steps, drain then sleep, stop cleanly on request.

- `run_step()` does one round of work and says whether it found any; the loop repeats
  at once while there is work and sleeps `poll_seconds` when there is none.
- An error in a step is logged and the loop carries on after a pause: one bad row must
  not crash-loop the process.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from ..config import Settings
from ..db import Database
from .recovery import expire_stale_leases

log = logging.getLogger(__name__)


def worker_identity() -> str:
    """Unique per process, readable in the lease columns: host:pid:random."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.identity = worker_identity()
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def run_step(self) -> bool:
        with self.db.session() as session:
            recovered = expire_stale_leases(session)
        return recovered > 0

    def run(self) -> None:
        log.info("dispatcher %s started", self.identity)
        while not self.stop_event.is_set():
            try:
                found = self.run_step()
            except Exception:
                log.exception("dispatcher step failed; retrying after a pause")
                found = False
            if not found:
                self.stop_event.wait(self.settings.worker_poll_seconds)
        log.info("dispatcher %s stopped", self.identity)

    def start_thread(self) -> threading.Thread:
        """Run in the background of the web process (the embedded default)."""
        self._thread = threading.Thread(target=self.run, name="wabulk-dispatcher", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)
