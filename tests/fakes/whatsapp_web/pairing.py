"""Linking by phone number on the stand-in: the 8-character code typed on the phone.

- On the QR screen the page offers "Link with phone number" (pairing.js); the number typed
  there is sent to `/_api/pairing`, which answers with a code such as "K7Q2M9XA" (the
  alphabet WhatsApp uses: no 0, O, I or U) or, for a number that cannot be one, an error
  the page shows under the field.
- `accept_pairing` plays the phone typing the code in Linked devices: the account becomes
  a session exactly as a QR scan makes one, and the page polling the code logs in.
- Codes live in `FakeState.pairings`, so a reset forgets them like it forgets QR codes.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request, send_file

if TYPE_CHECKING:  # server.py imports this module: no import back at run time
    from .server import FakeState

HERE = Path(__file__).resolve().parent
# A code whose page stopped polling this long ago is no longer on any screen.
SEEN_WINDOW = 3.0
ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
# What WhatsApp's number field takes: an optional "+", digits, spaces, dashes, brackets.
_TYPED = re.compile(r"^\+?[\d\s()\-]+$")


def digits(phone: str) -> str:
    return "".join(ch for ch in str(phone) if ch.isdigit())


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(8))


def ask(state: FakeState, typed: str) -> tuple[str | None, str]:
    """A code for the number typed, or None and the words the page shows."""
    number = digits(typed)
    if not _TYPED.match(typed.strip()) or not 8 <= len(number) <= 15:
        return None, "Invalid phone number. Enter the number with its country code."
    now = time.monotonic()
    code = new_code()
    with state.lock:
        state.pairings[code] = {"phone": "+" + number, "seen": now, "token": None}
    return code, ""


def poll(state: FakeState, code: str) -> dict[str, Any]:
    with state.lock:
        pairing = state.pairings.get(code)
        if pairing is None:
            return {"status": "unknown"}
        if pairing["token"] is not None:
            phone = state.sessions.get(pairing["token"])
            if phone is None:  # accepted, then logged out before the page noticed
                return {"status": "unknown"}
            return {"status": "linked", "token": pairing["token"], "phone": phone}
        pairing["seen"] = time.monotonic()
        return {"status": "pending"}


def pending(state: FakeState) -> list[str]:
    """Codes on a screen right now (their page polled lately), oldest first."""
    now = time.monotonic()
    with state.lock:
        return [
            code
            for code, p in state.pairings.items()
            if p["token"] is None and now - p["seen"] < SEEN_WINDOW
        ]


def accept(state: FakeState, code: str | None = None, phone: str | None = None) -> bool:
    """The phone types `code` (default: the newest shown, for `phone` when given)."""
    with state.lock:
        shown = pending(state)
        if phone is not None:
            shown = [c for c in shown if state.pairings[c]["phone"] == "+" + digits(phone)]
        if code is None:
            code = shown[-1] if shown else None
        code = (code or "").replace("-", "").upper()
        if code not in shown:
            return False
        token = secrets.token_urlsafe(24)
        state.sessions[token] = state.pairings[code]["phone"]
        state.pairings[code]["token"] = token
        return True


def register(app: Flask, state: FakeState) -> None:
    """The page's and the tests' endpoints for linking by phone number."""

    @app.get("/pairing.js")
    def pairing_script() -> Response:
        response = send_file(HERE / "pairing.js", mimetype="text/javascript", max_age=0)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/_api/pairing")
    def ask_code() -> Response | tuple[Response, int]:
        code, error = ask(state, str((request.get_json(silent=True) or {}).get("phone", "")))
        if code is None:
            return jsonify(error=error), 400
        return jsonify(code=code)

    @app.get("/_api/pairing/<code>")
    def poll_code(code: str) -> Response:
        return jsonify(poll(state, code))

    @app.post("/_control/accept_pairing")
    def accept_code() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        if accept(state, body.get("code"), body.get("phone")):
            return jsonify(ok=True)
        return jsonify(error="no pairing code is waiting to be typed"), 409

    @app.get("/_control/pending_pairing")
    def pending_codes() -> Response:
        return jsonify(pending(state))
