"""`wabulk serve --processes N`: the web app in N gunicorn processes (Linux and macOS).

- Pre-fork: the master binds the address and forks the processes; each builds its own app
  (database engine, pools, threads) after the fork, so no connection or thread crosses it.
- Sync workers, one request at a time per process: bench/load.py measured gthread workers
  (2 and 4 threads) at two to three times the p95 of sync ones on a two-core machine, and
  more CPU per request (a process's threads contend for its one interpreter lock). More
  requests at once means more processes. A streamed export to a slow client holds its
  process until done, which a buffering reverse proxy in front avoids (docs/deployment.md).
  `--threads N` (N > 1) chooses gthread workers with N threads each.
- The dispatcher never runs here: campaigns are sent by `wabulk worker` processes.
- `GUNICORN_CMD_ARGS` tunes the rest (access log, timeouts) as with any gunicorn server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from .config import Settings

THREADS = 1
# A sync process cannot tell the master it is alive while it answers, and a streamed export
# of a big list may take minutes; past this gunicorn takes the process for stuck and
# replaces it.
TIMEOUT = 600
GRACEFUL = 20


class WebServer(BaseApplication):  # type: ignore[misc]
    """gunicorn's arbiter around `create_app(settings)`, built once in every process;
    `serve()` runs it."""

    def __init__(
        self,
        settings: Settings,
        *,
        host: str,
        port: int,
        processes: int,
        threads: int = THREADS,
        ready: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.processes = processes
        self.threads = threads
        self.ready = ready
        super().__init__()

    def load_config(self) -> None:
        defaults: dict[str, Any] = {
            "bind": [self.bind],
            "workers": self.processes,
            "worker_class": "gthread" if self.threads > 1 else "sync",
            "threads": self.threads,
            "timeout": TIMEOUT,
            "graceful_timeout": GRACEFUL,
            "proc_name": "wabulk-web",
            # Built in each process after the fork, never in the master.
            "preload_app": False,
            "when_ready": self._when_ready,
            # gunicorn's runtime control socket sits at one path per user: two servers (or
            # tests) on a machine would take each other's, and wabulk has no use for it.
            "control_socket_disable": True,
        }
        for name, value in defaults.items():
            self.cfg.set(name, value)
        extra = self.cfg.get_cmd_args_from_env()
        if extra:
            parsed = self.cfg.parser().parse_args(extra)
            for name, value in vars(parsed).items():
                if value is not None and name != "args":
                    self.cfg.set(name.lower(), value)

    def _when_ready(self, arbiter: Any) -> None:
        if self.ready is not None:
            self.ready(int(arbiter.LISTENERS[0].sock.getsockname()[1]))

    def load(self) -> Any:
        from .app import create_app

        return create_app(self.settings)

    def serve(self) -> int:
        """Run until SIGTERM or Ctrl+C; the exit status gunicorn's master ended with."""
        master = os.getpid()
        try:
            self.run()
        except SystemExit as stop:  # the arbiter exits the interpreter when it halts
            if os.getpid() != master:
                raise  # a web process ending: it returns through the master's frames, not to them
            return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        return 0
