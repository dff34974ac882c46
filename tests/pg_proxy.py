"""A TCP proxy on loopback in front of PostgreSQL that can play a server restart.

The test server is shared by every test run on the machine, so it cannot be restarted;
what a worker or a web process sees of a restart or a failover can be: every open
connection ends at once, and for a while new ones are refused (nothing listens on the
port), then connections are accepted again on the same address. `PgProxy.outage(seconds)`
does exactly that; in between it forwards bytes both ways untouched. `PgProxy.silent()`
plays a server that takes connections and never answers (a host hung in a failover).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy.engine import make_url

CHUNK = 65536


class PgProxy:
    """Forward 127.0.0.1:<port> to the PostgreSQL server, two threads per connection."""

    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0  # connections taken since start, to show clients came back
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._closed = False
        self._silent = False
        self._held: list[socket.socket] = []  # connections taken in silence, never answered

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> PgProxy:
        self._listen()
        return self

    def close(self) -> None:
        self._closed = True
        self._stop_listening()
        self._cut_all()
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            sock.close()

    def __enter__(self) -> PgProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def url(self, database_url: str) -> str:
        """The same database URL, reached through this proxy."""
        parsed = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return parsed.render_as_string(hide_password=False)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    # --- the outage ------------------------------------------------------------------

    def go_down(self) -> None:
        """Refuse new connections (nothing listens) and end every open one."""
        self._stop_listening()
        self._cut_all()

    def come_back(self) -> None:
        """Listen again on the same port."""
        self._listen()

    @contextmanager
    def down(self) -> Iterator[None]:
        self.go_down()
        try:
            yield
        finally:
            self.come_back()

    def outage(self, seconds: float) -> None:
        with self.down():
            time.sleep(seconds)

    @contextmanager
    def silent(self) -> Iterator[None]:
        """Every open connection ends; new ones are taken and never answered."""
        self._silent = True
        self._cut_all()
        try:
            yield
        finally:
            self._silent = False
            with self._lock:
                held, self._held = self._held, []
            for sock in held:
                sock.close()

    # --- internals -------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # The port was ours a moment ago; another program could take it in between, which
        # would make the test fail here with a clear error rather than talk to a stranger.
        deadline = time.monotonic() + 30
        while True:
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if self.port == 0 or time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.1)
        listener.listen(128)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener,), name="pg-proxy-accept", daemon=True
        )
        self._acceptor.start()

    def _stop_listening(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is None:
            return
        with suppress(OSError):
            # shutdown wakes the thread blocked in accept(); close alone does not on Linux.
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        if self._acceptor is not None:
            self._acceptor.join(5)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: an outage or the end
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    return
                if self._silent:
                    self._held.append(client)
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(src, dst, pair), name="pg-proxy-pump", daemon=True
                ).start()

    def _pump(
        self, src: socket.socket, dst: socket.socket, pair: tuple[socket.socket, socket.socket]
    ) -> None:
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._end(pair)

    def _end(self, pair: tuple[socket.socket, socket.socket]) -> None:
        with self._lock:
            if pair not in self._pairs:
                return
            self._pairs.discard(pair)
        for sock in pair:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _cut_all(self) -> None:
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            self._end(pair)
