"""A local stand-in for https://web.whatsapp.com: Flask app, in-memory state, control API.

The browser side (app.js) reproduces the DOM hooks listed in
/work/shared/whatsapp-web-dom.md; this module keeps what the real service keeps on its
side (linked sessions, QR codes waiting for a scan, every message received) and lets a
test switch faults on (slow or hanging loads, logouts, "Use here", renderer crashes).

Nothing here needs auth: it only ever listens on loopback, for tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request, send_file
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.fakes.whatsapp_web.chats import (
    CHAT_CONFIG,
    CHAT_DEFAULTS,
    ChatControls,
    ChatsMixin,
    add_chat_routes,
    digits,
)
from tests.fakes.whatsapp_web.crashes import kill_browser, kill_renderers

from . import pairing

HERE = Path(__file__).resolve().parent
VARIANTS = ("current", "older", "v2026")
DEFAULT_PHONE = "+919876543210"
# A QR whose page stopped polling this long ago is no longer on any screen.
QR_SEEN_WINDOW = 3.0
HANG_LIMIT = 600.0


# --- config -----------------------------------------------------------------------------


def _seconds(value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must be >= 0")
    return number


def _positive(value: Any) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError("must be > 0")
    return number


def _flag(value: Any) -> bool:
    # JSON gives real booleans; refusing strings avoids bool("false") being True.
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise ValueError("must be a boolean")


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError("must be a positive integer or null")
    return int(value)


def _variant(value: Any) -> str:
    if value not in VARIANTS:
        raise ValueError(f"must be one of {VARIANTS}")
    return str(value)


def _numbers(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple | set):
        raise ValueError("must be a list of phone numbers")
    return [digits(item) for item in value]


def _optional_text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


COERCE: dict[str, Callable[[Any], Any]] = {
    "variant": _variant,
    "load_delay": _seconds,
    "session_delay": _seconds,
    "hang": _flag,
    "ack_delay": _seconds,
    "qr_refresh_seconds": _positive,
    "fail_send": _flag,
    "unregistered": _numbers,
    "logout_after": _count,
    "use_here": _flag,
    "use_here_after": _count,
    "faults_after_tick": _flag,
    "kill_renderer_after": _count,
    "kill_browser_after": _count,
    "kill_profile": _optional_text,
    **CHAT_CONFIG,
}
# Faults that fire once, after the Nth message recorded from the moment they were set.
COUNTERS = ("logout_after", "use_here_after", "kill_renderer_after", "kill_browser_after")
# With faults_after_tick these wait until the page shows that message's tick, and the page
# changes screen in the very next task: WhatsApp confirmed it, then at once took the
# session away. Without it they fire as the message is recorded, and the page may notice
# before or after its tick.
TICK_FAULTS = ("logout_after", "use_here_after")


def default_config(variant: str) -> dict[str, Any]:
    return {
        "variant": variant,
        "load_delay": 0.0,
        "session_delay": 0.0,
        "hang": False,
        "ack_delay": 0.2,
        "qr_refresh_seconds": 20.0,
        "fail_send": False,
        "unregistered": [],
        "logout_after": None,
        "use_here": False,
        "use_here_after": None,
        "faults_after_tick": False,
        "kill_renderer_after": None,
        "kill_browser_after": None,
        "kill_profile": None,
        **CHAT_DEFAULTS,
    }


# --- state ------------------------------------------------------------------------------


class FakeState(ChatsMixin):
    """Everything the fake service remembers; every method takes the lock."""

    def __init__(self, variant: str = "current") -> None:
        self.initial_variant = _variant(variant)
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.config = default_config(self.initial_variant)
            self.targets: dict[str, int] = {}  # counter fault -> message count that fires it
            self.sessions: dict[str, str] = {}  # token -> account phone (E.164)
            self.qrs: dict[str, dict[str, Any]] = {}
            self.messages: list[dict[str, Any]] = []
            self.reset_chats()
            self.pairings: dict[str, dict[str, Any]] = {}  # code -> number typed (pairing.py)

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate everything first, so a bad key changes nothing."""
        unknown = sorted(set(changes) - set(COERCE))
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            try:
                clean[key] = COERCE[key](value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{key}: {exc}") from exc
        with self.lock:
            self.config.update(clean)
            for key in COUNTERS:
                if key in clean:
                    self.targets.pop(key, None)
                    if clean[key] is not None:
                        self.targets[key] = len(self.messages) + clean[key]
            return self.config_copy()

    def config_copy(self) -> dict[str, Any]:
        """A copy callers may change: the list of unregistered numbers is copied too."""
        with self.lock:
            return {**self.config, "unregistered": list(self.config["unregistered"])}

    def get(self, key: str) -> Any:
        with self.lock:
            return self.config[key]

    # QR codes ------------------------------------------------------------------------

    def new_qr(self, previous: str | None) -> str:
        ref = "2@" + secrets.token_urlsafe(30)
        now = time.monotonic()
        with self.lock:
            self._forget_old_qrs(now)
            if previous in self.qrs and self.qrs[previous]["token"] is None:
                self.qrs[previous]["gone"] = True
            self.qrs[ref] = {"created": now, "seen": now, "token": None, "gone": False}
        return ref

    def _forget_old_qrs(self, now: float) -> None:
        for ref in [r for r, qr in self.qrs.items() if now - qr["seen"] > 600]:
            del self.qrs[ref]

    def poll_qr(self, ref: str) -> dict[str, Any]:
        with self.lock:
            qr = self.qrs.get(ref)
            if qr is None or qr["gone"]:
                return {"status": "unknown"}
            if qr["token"] is not None:
                phone = self.sessions.get(qr["token"])
                if phone is None:  # scanned, then logged out before the page noticed
                    return {"status": "unknown"}
                return {"status": "scanned", "token": qr["token"], "phone": phone}
            qr["seen"] = time.monotonic()
            return {"status": "pending"}

    def qr_gone(self, ref: str) -> None:
        with self.lock:
            if ref in self.qrs and self.qrs[ref]["token"] is None:
                self.qrs[ref]["gone"] = True

    def pending_qr(self) -> list[str]:
        now = time.monotonic()
        with self.lock:
            live = [
                (qr["created"], ref)
                for ref, qr in self.qrs.items()
                if qr["token"] is None and not qr["gone"] and now - qr["seen"] < QR_SEEN_WINDOW
            ]
        return [ref for _, ref in sorted(live)]

    def scan(self, phone: str = DEFAULT_PHONE, ref: str | None = None) -> bool:
        with self.lock:
            pending = self.pending_qr()
            if ref is None:
                ref = pending[-1] if pending else None
            if ref is None or ref not in pending:
                return False
            token = secrets.token_urlsafe(24)
            self.sessions[token] = "+" + digits(phone)
            self.qrs[ref]["token"] = token
            return True

    # sessions ------------------------------------------------------------------------

    def account(self, token: str | None) -> str | None:
        with self.lock:
            return self.sessions.get(token or "")

    def logout(self) -> None:
        with self.lock:
            self.sessions.clear()

    def use_here_taken(self) -> None:
        with self.lock:
            self.config["use_here"] = False

    # chats and messages --------------------------------------------------------------

    def is_registered(self, phone: str) -> bool:
        number = digits(phone)
        with self.lock:
            unregistered = number in self.config["unregistered"]
        return bool(number) and not unregistered and not number.endswith("0000")

    def record(
        self, account: str, phone: str, kind: str, text: str, upload: Any, ident: Any = None
    ) -> tuple[dict[str, Any], list[str], str | None, float, list[str]]:
        """Store one message; returns it, the one-shot faults it set off, and those of them
        the page is to set off itself once it shows the tick."""
        message: dict[str, Any] = {
            "id": self.client_id(ident) or "3EB0" + secrets.token_hex(8).upper(),
            "account": account,
            "phone": phone,
            "kind": kind,
            "text": text,
            "filename": None,
            "size": None,
            "sha256": None,
            "mime": None,
            "failed": False,
            "at": datetime.now(UTC).isoformat(),
        }
        if upload is not None:
            data = upload.read()
            message.update(
                filename=upload.filename,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                mime=upload.mimetype,
            )
        with self.lock:
            message["failed"] = self.config["fail_send"]
            if any(m["id"] == message["id"] for m in self.messages):
                message["id"] = "3EB0" + secrets.token_hex(8).upper()
            self.note_sent(message, self.config["ack_delay"])
            self.messages.append(message)
            fired = [k for k, n in self.targets.items() if len(self.messages) >= n]
            for key in fired:
                del self.targets[key]
                self.config[key] = None
            after_tick = [k for k in fired if k in TICK_FAULTS and self.config["faults_after_tick"]]
            for key in fired:
                if key not in after_tick:
                    self.fire(key)
            profile = self.config["kill_profile"]
            ack_delay = self.config["ack_delay"]
        return dict(message), fired, profile, ack_delay, after_tick

    def fire(self, fault: str) -> None:
        with self.lock:
            if fault == "logout_after":
                self.sessions.clear()
            if fault == "use_here_after":
                self.config["use_here"] = True

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "variant": self.config["variant"],
                "config": self.config_copy(),
                "sessions": sorted(set(self.sessions.values())),
                "pending_qr": self.pending_qr(),
                "messages": len(self.messages),
            }


# --- the web app --------------------------------------------------------------------------


def _page(name: str, mimetype: str) -> Response:
    response = send_file(HERE / name, mimetype=mimetype, max_age=0)
    response.headers["Cache-Control"] = "no-store"  # a changed fake must never be stale
    return response


def create_app(state: FakeState) -> Flask:
    app = Flask(__name__)
    shell = (HERE / "index.html").read_text(encoding="utf-8")

    def render_shell() -> Response:
        html = shell.replace("{{variant}}", state.get("variant"))
        return Response(html, mimetype="text/html", headers={"Cache-Control": "no-store"})

    @app.get("/")
    def home() -> Response:
        return render_shell()

    @app.get("/send")
    def send() -> Response:
        # Held on the server so that ChromeDriver's page load really waits.
        if state.get("hang"):
            deadline = time.monotonic() + HANG_LIMIT
            while state.get("hang") and time.monotonic() < deadline:
                if state.stopping.wait(0.1):
                    break
        else:
            state.stopping.wait(state.get("load_delay"))
        return render_shell()

    @app.get("/app.js")
    def script() -> Response:
        return _page("app.js", "text/javascript")

    @app.get("/chats.js")
    def chats_script() -> Response:
        return _page("chats.js", "text/javascript")

    @app.get("/media.js")
    def media_script() -> Response:
        return _page("media.js", "text/javascript")

    @app.get("/app.css")
    def style() -> Response:
        return _page("app.css", "text/css")

    pairing.register(app, state)  # linking by phone number

    @app.get("/favicon.ico")
    def favicon() -> tuple[str, int]:
        return "", 204

    # Called by the page ----------------------------------------------------------------

    @app.get("/_api/session")
    def session() -> Response:
        # The real page sits on its loading screen for a while as it restores a session.
        state.stopping.wait(state.get("session_delay"))
        account = state.account(request.args.get("token"))
        if account is None:
            return jsonify(valid=False)
        # The chat list and any banner come with the first answer: a page just loaded by
        # /send shows them before its chat opens, as the real one does from its cache.
        shown = state.page_state(account, None, None)
        return jsonify(valid=True, phone=account, use_here=state.get("use_here"), **shown)

    @app.get("/_api/state")
    def page_state() -> Response:
        account = state.account(request.args.get("token"))
        if account is None:
            return jsonify(logged_in=False, use_here=False)
        if state.get("use_here"):
            return jsonify(logged_in=True, use_here=True)
        since = request.args.get("since", type=int)
        shown = state.page_state(account, since, request.args.get("open") or None)
        return jsonify(logged_in=True, use_here=False, **shown)

    @app.post("/_api/qr")
    def new_qr() -> Response:
        previous = (request.get_json(silent=True) or {}).get("previous")
        ref = state.new_qr(previous)
        return jsonify(ref=ref, refresh_seconds=state.get("qr_refresh_seconds"))

    @app.get("/_api/qr/<ref>")
    def poll_qr(ref: str) -> Response:
        return jsonify(state.poll_qr(ref))

    @app.post("/_api/qr/<ref>/gone")
    def qr_gone(ref: str) -> tuple[str, int]:
        state.qr_gone(ref)
        return "", 204

    @app.get("/_api/contact")
    def contact() -> Response | tuple[Response, int]:
        account = state.account(request.args.get("token"))
        if account is None:
            return jsonify(error="logged out"), 401
        phone = request.args.get("phone", "")
        if not state.is_registered(phone):
            return jsonify(registered=False)
        state.advance()
        state.open_chat(account, phone)  # opening a chat reads it, on the phone too
        return jsonify(
            registered=True,
            title=state.title(phone),
            me=state.title(account),
            messages=state.chat_messages(account, phone),
        )

    @app.post("/_api/use-here")
    def use_here() -> Response | tuple[Response, int]:
        token = (request.get_json(silent=True) or {}).get("token")
        if state.account(token) is None:
            return jsonify(error="logged out"), 401
        state.use_here_taken()
        return jsonify(ok=True)

    @app.post("/_api/messages")
    def receive() -> Response | tuple[Response, int]:
        if request.is_json:
            body = request.get_json()
            upload, kind, text = None, "text", str(body.get("text", ""))
        else:
            body = request.form
            upload, kind = request.files.get("file"), body.get("kind", "document")
            # multipart/form-data turns every line break of a field into CRLF (HTML spec);
            # the caption box never holds a CR, so this gives back what the user typed.
            text = body.get("caption", "").replace("\r\n", "\n")
            if upload is None or kind not in ("media", "document"):
                return jsonify(error="media needs a file and kind media|document"), 400
        account = state.account(body.get("token"))
        if account is None:
            return jsonify(error="logged out"), 401
        if kind == "text" and not text:
            return jsonify(error="empty text"), 400
        phone = str(body.get("phone", ""))
        message, fired, profile, ack_delay, after_tick = state.record(
            account, phone, kind, text, upload, body.get("id")
        )
        # Before answering: the message is in, but the page never hears back.
        if "kill_renderer_after" in fired:
            kill_renderers(profile)
        if "kill_browser_after" in fired:
            kill_browser(profile)
        return jsonify(
            id=message["id"], failed=message["failed"], ack_delay=ack_delay, after_tick=after_tick
        )

    @app.post("/_api/fault")
    def fault() -> tuple[str, int]:
        # Sent by the page (as a beacon) once it shows the tick of a faults_after_tick message.
        body = request.get_json(force=True, silent=True) or {}
        if body.get("fault") not in TICK_FAULTS or state.account(body.get("token")) is None:
            return "", 400
        state.fire(body["fault"])
        return "", 204

    # Control API (tests, benchmarks) ---------------------------------------------------

    @app.route("/_control/config", methods=["GET", "POST"])
    def config() -> Response | tuple[Response, int]:
        if request.method == "GET":
            return jsonify(state.snapshot()["config"])
        try:
            return jsonify(state.configure(request.get_json(force=True) or {}))
        except ValueError as exc:
            return jsonify(error=str(exc)), 400

    @app.post("/_control/scan")
    def scan() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        if state.scan(body.get("phone") or DEFAULT_PHONE, body.get("ref")):
            return jsonify(ok=True)
        return jsonify(error="no QR code is waiting to be scanned"), 409

    @app.post("/_control/logout")
    def logout() -> Response:
        state.logout()
        return jsonify(ok=True)

    @app.post("/_control/reset")
    def reset() -> Response:
        state.reset()
        return jsonify(ok=True)

    @app.get("/_control/state")
    def snapshot() -> Response:
        return jsonify(state.snapshot())

    @app.get("/_control/messages")
    def messages() -> Response:
        state.advance()
        with state.lock:
            return jsonify(list(state.messages))

    @app.get("/_control/pending_qr")
    def pending() -> Response:
        return jsonify(state.pending_qr())

    add_chat_routes(app, state)

    return app


class _QuietHandler(WSGIRequestHandler):
    """One log line per request would drown the test output; errors still show."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class FakeWhatsAppWeb(ChatControls):
    """The stand-in served over real HTTP on loopback, in a daemon thread."""

    def __init__(self, variant: str = "current", host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = FakeState(variant)
        self.app = create_app(self.state)
        self.host, self.port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeWhatsAppWeb:
        self.state.stopping.clear()
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=_QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-whatsapp-web", daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set(self, **faults: Any) -> dict[str, Any]:
        return self.state.configure(faults)

    def reset(self) -> None:
        self.state.reset()

    def scan(self, phone: str = DEFAULT_PHONE, ref: str | None = None) -> bool:
        return self.state.scan(phone, ref)

    def accept_pairing(self, code: str | None = None, phone: str | None = None) -> bool:
        """The phone types the pairing code shown (the newest, or `code`, or for `phone`)."""
        return pairing.accept(self.state, code, phone)

    def logout(self) -> None:
        self.state.logout()

    def messages(self) -> list[dict[str, Any]]:
        self.state.advance()  # auto ticks due by now show in the answer
        with self.state.lock:
            return [dict(m) for m in self.state.messages]

    def pending_qr(self) -> list[str]:
        return self.state.pending_qr()

    def snapshot(self) -> dict[str, Any]:
        return self.state.snapshot()

    def stop(self) -> None:
        self.state.stopping.set()  # releases hung and delayed page loads
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeWhatsAppWeb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
