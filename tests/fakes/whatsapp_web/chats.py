"""What the stand-in shows after a send: ticks, customers' replies, contacts, banners.

Mixed into FakeState (server.py), whose lock, outgoing messages and config it shares:
- an outgoing message's `status` moves sent -> delivered -> read by the test's hand
  (`tick`) or by itself (`auto_deliver_after` / `auto_read_after`, counted from the moment
  the page shows its single tick);
- a customer writes with `reply`: the chat goes to the top of the list with an unread
  badge until a page opens it (a row click or /send?phone=), which marks it read, as on
  the phone, and notes it in `opened_chats`;
- `version` grows on every change a page could show, so its poll only re-reads the chat
  list and the open chat when something moved.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, jsonify, request

STATUSES = ("sent", "delivered", "read")
REPLY_KINDS = ("text", "image", "video", "voice", "document")
MAX_ROWS = 30  # the real list is virtualised: only what fits (and a little more) is in the DOM
PREVIEW_CHARS = 60
LABELS = {"image": "Photo", "video": "Video", "voice": "Voice message"}
CLIENT_ID = re.compile(r"^[0-9A-F]{16,32}$")


def digits(phone: Any) -> str:
    return "".join(ch for ch in str(phone) if ch.isdigit())


# How WhatsApp Web prints numbers of the countries our users message most: each "#" is
# the next digit after the country code. Anything else gets groups of three.
_MASKS: dict[tuple[str, int], str] = {
    ("91", 12): "+91 ##### #####",
    ("1", 11): "+1 (###) ###-####",
    ("44", 12): "+44 #### ######",
    ("55", 13): "+55 ## #####-####",
    ("55", 12): "+55 ## ####-####",
    ("971", 12): "+971 ## ### ####",
    ("62", 13): "+62 ###-####-####",
    ("34", 11): "+34 ### ## ## ##",
}
_TWO_DIGIT_CODES = frozenset(
    re.findall(
        r"\d\d",
        "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "
        "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98",
    )
)


def shown_number(phone: Any) -> str:
    """The number as the chat list shows an unsaved contact, e.g. "+91 98765 43210"."""
    number = digits(phone)
    cut = 1 if number[:1] in ("1", "7") else 2 if number[:2] in _TWO_DIGIT_CODES else 3
    if number[:3] == "971":
        cut = 3
    mask = _MASKS.get((number[:cut], len(number)))
    rest = number[cut:]
    if mask:
        national = iter(rest)
        return "".join(next(national) if ch == "#" else ch for ch in mask)
    groups = [rest[i : i + 3] for i in range(0, len(rest), 3)]
    if len(groups) > 1 and len(groups[-1]) == 1:  # no lone digit at the end
        groups[-2:] = [groups[-2] + groups[-1]]
    return " ".join([f"+{number[:cut]}", *groups])


def _optional_seconds(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if number < 0:
        raise ValueError("must be >= 0 or null")
    return number


CHAT_CONFIG = {"auto_deliver_after": _optional_seconds, "auto_read_after": _optional_seconds}
CHAT_DEFAULTS: dict[str, Any] = {"auto_deliver_after": None, "auto_read_after": None}


def _preview(message: dict[str, Any]) -> str:
    first = (message.get("text") or "").strip().split("\n")[0]
    if not first:
        kind = message["shown_kind"]
        first = message.get("filename") or "" if kind == "document" else LABELS.get(kind, "")
    return first if len(first) <= PREVIEW_CHARS else first[: PREVIEW_CHARS - 1] + "…"


class ChatsMixin:
    """Needs `lock`, `messages` (outgoing, oldest first), `config` and `sessions`."""

    lock: Any
    messages: list[dict[str, Any]]
    config: dict[str, Any]
    sessions: dict[str, str]
    version = 0

    def reset_chats(self) -> None:
        with self.lock:
            self.contacts: dict[str, str] = {}  # digits -> saved name
            self.incoming: list[dict[str, Any]] = []
            self.opened: list[str] = []
            self.banner_text: str | None = None
            self.shown: dict[str, tuple[float, datetime]] = {}  # id -> when its tick showed
            self.order: dict[str, int] = {}  # id -> position in time, both directions
            self.changed()  # never back to an old number: a page's poll must see the reset

    def changed(self) -> None:
        self.version += 1

    def _stamp(self, message: dict[str, Any]) -> None:
        self.order[message["id"]] = len(self.order)

    # outgoing --------------------------------------------------------------------------

    def note_sent(self, message: dict[str, Any], ack_delay: float) -> None:
        """Called (under the lock) as a message is recorded: it shows its tick after ack_delay."""
        message["status"] = "failed" if message["failed"] else "sent"
        message["data_id"] = f"true_{digits(message['phone'])}@c.us_{message['id']}"
        message.update(delivered_at=None, read_at=None)
        self.shown[message["id"]] = (
            time.monotonic() + ack_delay,
            datetime.now(UTC) + timedelta(seconds=ack_delay),
        )
        self._stamp(message)
        self.changed()

    @staticmethod
    def client_id(value: Any) -> str | None:
        """The page makes a message's id before sending it, as WhatsApp Web does."""
        return value if isinstance(value, str) and CLIENT_ID.match(value) else None

    def advance(self) -> None:
        """Move the ticks that auto_deliver_after / auto_read_after say are due."""
        with self.lock:
            deliver, read = self.config["auto_deliver_after"], self.config["auto_read_after"]
            if deliver is None and read is None:
                return
            now = time.monotonic()
            for message in self.messages:
                if message["status"] not in ("sent", "delivered"):
                    continue
                mono, wall = self.shown[message["id"]]
                if read is not None and now - mono >= read:
                    if deliver is not None and message["status"] == "sent":
                        first = min(deliver, read)
                        self._set(message, "delivered", wall + timedelta(seconds=first))
                    self._set(message, "read", wall + timedelta(seconds=read))
                elif deliver is not None and now - mono >= deliver and message["status"] == "sent":
                    self._set(message, "delivered", wall + timedelta(seconds=deliver))

    def _set(self, message: dict[str, Any], status: str, at: datetime | None = None) -> None:
        message["status"] = status
        stamp = (at or datetime.now(UTC)).isoformat()
        if status in ("delivered", "read") and message["delivered_at"] is None:
            message["delivered_at"] = stamp
        if status == "read":
            message["read_at"] = stamp
        self.changed()

    def tick(
        self, message_id: str | None = None, phone: str | None = None, status: str = "delivered"
    ) -> dict[str, Any]:
        """Show `status` for one outgoing message: by its id, or the latest one to `phone`."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        with self.lock:
            if message_id is not None:
                found = [m for m in self.messages if m["id"] == message_id]
            elif phone is not None:
                found = [m for m in self.messages if digits(m["phone"]) == digits(phone)][-1:]
            else:
                raise ValueError("give message_id or phone")
            if not found:
                raise LookupError(f"no message {message_id or 'to ' + str(phone)}")
            message = found[0]
            if message["failed"]:
                raise ValueError("a failed message shows no ticks")
            self._set(message, status)
            return dict(message)

    # incoming --------------------------------------------------------------------------

    def _account_for(self, number: str) -> str:
        """The account a customer writes to: the one that last wrote to them, else the one
        linked last, else the default."""
        for message in reversed(self.messages):
            if digits(message["phone"]) == number:
                return message["account"]
        if self.sessions:
            return list(self.sessions.values())[-1]
        return "+919876543210"

    def reply(
        self,
        phone: str,
        text: str = "",
        kind: str = "text",
        name: str | None = None,
        filename: str | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        if kind not in REPLY_KINDS:
            raise ValueError(f"kind must be one of {REPLY_KINDS}")
        if kind == "text" and not text:
            raise ValueError("a text reply needs text")
        number = digits(phone)
        if not number:
            raise ValueError("phone has no digits")
        with self.lock:
            if name:
                self.contacts[number] = name
            mine = "+" + digits(account) if account else self._account_for(number)
            ident = secrets.token_hex(10).upper()
            message = {
                "id": ident,
                "data_id": f"false_{number}@c.us_{ident}",
                "account": mine,
                "phone": "+" + number,
                "kind": kind,
                "text": text,
                "filename": (filename or "document.pdf") if kind == "document" else None,
                "read": False,
                "at": datetime.now(UTC).isoformat(),
            }
            self.incoming.append(message)
            self._stamp(message)
            self.changed()
            return dict(message)

    def save_contact(self, phone: str, name: str | None) -> None:
        with self.lock:
            if name:
                self.contacts[digits(phone)] = name
            else:
                self.contacts.pop(digits(phone), None)
            self.changed()

    def set_banner(self, text: str | None) -> None:
        with self.lock:
            self.banner_text = text or None
            self.changed()

    def opened_chats(self) -> list[str]:
        with self.lock:
            return list(self.opened)

    def open_chat(self, account: str, phone: str) -> None:
        """A page shows this chat: its unread messages are read from now on."""
        number = digits(phone)
        with self.lock:
            if number not in self.opened:
                self.opened.append(number)
            unread = [
                m
                for m in self.incoming
                if m["account"] == account and digits(m["phone"]) == number and not m["read"]
            ]
            for message in unread:
                message["read"] = True
            if unread:
                self.changed()

    # what a page shows -----------------------------------------------------------------

    def title(self, phone: str) -> str:
        number = digits(phone)
        return self.contacts.get(number) or shown_number(number)

    def _shown(self, message: dict[str, Any], out: bool) -> dict[str, Any]:
        kind = message["kind"]
        if out and kind == "media":
            kind = "video" if (message.get("mime") or "").startswith("video/") else "image"
        return {
            "id": message["id"],
            "data_id": message["data_id"],
            "out": out,
            "kind": kind,
            "shown_kind": kind,
            "text": message["text"],
            "filename": message.get("filename"),
            "status": message["status"] if out else None,
            "at": message["at"],
            "who": self.title(message["account"] if out else message["phone"]),
        }

    def chat_messages(self, account: str, phone: str) -> list[dict[str, Any]]:
        number = digits(phone)
        with self.lock:
            both = [
                (m, True)
                for m in self.messages
                if m["account"] == account and digits(m["phone"]) == number
            ] + [
                (m, False)
                for m in self.incoming
                if m["account"] == account and digits(m["phone"]) == number
            ]
            both.sort(key=lambda pair: self.order[pair[0]["id"]])
            return [self._shown(m, out) for m, out in both]

    def chat_rows(self, account: str) -> list[dict[str, Any]]:
        with self.lock:
            last: dict[str, tuple[int, dict[str, Any], bool]] = {}
            unread: dict[str, int] = {}
            for message, out in [(m, True) for m in self.messages] + [
                (m, False) for m in self.incoming
            ]:
                if message["account"] != account:
                    continue
                number = digits(message["phone"])
                position = self.order[message["id"]]
                if number not in last or last[number][0] < position:
                    last[number] = (position, message, out)
                if not out and not message["read"]:
                    unread[number] = unread.get(number, 0) + 1
            rows = []
            for number, (_, message, out) in sorted(last.items(), key=lambda kv: -kv[1][0]):
                shown = self._shown(message, out)
                rows.append(
                    {
                        "chat": number,
                        "title": self.title(number),
                        "ours": out,
                        "status": shown["status"],
                        "preview": _preview(shown),
                        "unread": unread.get(number, 0),
                    }
                )
            return rows[:MAX_ROWS]

    def page_state(self, account: str, since: int | None, open_phone: str | None) -> dict[str, Any]:
        """What a logged-in page's poll needs; the chat list and open chat only if changed."""
        self.advance()
        with self.lock:
            if open_phone:
                self.open_chat(account, open_phone)
            answer: dict[str, Any] = {"version": self.version, "banner": self.banner_text}
            if since != self.version:
                answer["rows"] = self.chat_rows(account)
                if open_phone:
                    answer["open"] = self.chat_messages(account, open_phone)
            return answer


def add_chat_routes(app: Flask, state: Any) -> None:
    """Control endpoints for what the stand-in shows after a send (tests, benchmarks)."""

    def body() -> dict[str, Any]:
        return request.get_json(force=True, silent=True) or {}

    def answer(call: Any) -> Response | tuple[Response, int]:
        try:
            return jsonify(call())
        except LookupError as exc:
            return jsonify(error=str(exc)), 404
        except (TypeError, ValueError) as exc:
            return jsonify(error=str(exc)), 400

    @app.post("/_control/tick")
    def control_tick() -> Response | tuple[Response, int]:
        return answer(lambda: state.tick(**body()))

    @app.post("/_control/reply")
    def control_reply() -> Response | tuple[Response, int]:
        return answer(lambda: state.reply(**body()))

    @app.post("/_control/contact")
    def control_contact() -> Response | tuple[Response, int]:
        return answer(lambda: state.save_contact(**body()) or {"ok": True})

    @app.post("/_control/banner")
    def control_banner() -> Response | tuple[Response, int]:
        return answer(lambda: state.set_banner(body().get("text")) or {"ok": True})

    @app.get("/_control/opened_chats")
    def control_opened() -> Response:
        return jsonify(state.opened_chats())

    @app.get("/_control/chats")
    def control_chats() -> Response | tuple[Response, int]:
        account = request.args.get("account") or state._account_for("")
        return answer(lambda: state.chat_rows("+" + digits(account)))


class ChatControls:
    """The same controls on FakeWhatsAppWeb, for tests that hold the object."""

    state: Any

    def tick(
        self, message_id: str | None = None, phone: str | None = None, status: str = "delivered"
    ) -> dict[str, Any]:
        """Show `status` ("sent" | "delivered" | "read") on one outgoing message, by the
        stand-in's id (`messages()[i]["id"]`) or the latest one to `phone`; returns it."""
        return self.state.tick(message_id, phone, status)

    def reply(
        self,
        phone: str,
        text: str = "",
        kind: str = "text",
        name: str | None = None,
        filename: str | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """The customer at `phone` writes; `name` also saves them as a contact. Returns the
        incoming message (its `data_id` is the bubble's data-id)."""
        return self.state.reply(phone, text, kind, name, filename, account)

    def save_contact(self, phone: str, name: str | None) -> None:
        self.state.save_contact(phone, name)

    def banner(self, text: str | None) -> None:
        self.state.set_banner(text)

    def opened_chats(self) -> list[str]:
        return self.state.opened_chats()

    def chats(self, account: str | None = None) -> list[dict[str, Any]]:
        """The chat list rows as the page shows them (newest first, at most 30)."""
        self.state.advance()
        with self.state.lock:
            mine = "+" + digits(account) if account else self.state._account_for("")
            return self.state.chat_rows(mine)

    def incoming(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(m) for m in self.state.incoming]
