"""The dry-run channel: a real channel that delivers to a file instead of WhatsApp.

Users rehearse a campaign with it; tests and benchmarks run the whole engine through it.
Each delivered message is one JSON line in `<instance>/dry_run/<sender name>.jsonl`
(phone, text, media file name, our message id, time), written with a single `write` on
an O_APPEND descriptor so a killed process never leaves half a line behind, and so
`reconcile` can prove from the file whether a message went out.

Settings (per sender): `latency_seconds` per message, `failure_rate` (share of numbers
that fail permanently, the same numbers every time, reported as not on WhatsApp so the
contact is flagged as a real sender would flag it) and `transient_rate` (share of
attempts that fail and are retried).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from ..words import N_, said
from .base import (
    NOT_ON_WHATSAPP,
    ChannelConfig,
    OutgoingMessage,
    PermanentError,
    Reconciled,
    SendResult,
    TransientError,
)

_UNSAFE = re.compile(r"[^\w.\- ]+")


def log_path(instance_path: Path, sender_name: str) -> Path:
    """Where a dry-run sender's deliveries go; the name is cleaned, never used as a path."""
    safe = _UNSAFE.sub("_", sender_name).strip(" .") or "sender"
    return instance_path / "dry_run" / f"{safe}.jsonl"


def read_log(path: Path) -> list[dict[str, object]]:
    """Every complete line of a dry-run log (tests, the kill test and the bench read it)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


# setting → (what a person calls it, largest value); every one is a number from 0.
SETTINGS = {
    "latency_seconds": (N_("Latency"), 600.0),
    "failure_rate": (N_("Failure rate"), 1.0),
    "transient_rate": (N_("Temporary failure rate"), 1.0),
}


class SettingError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def clean_settings(raw: dict[str, object]) -> dict[str, float]:
    """The settings as numbers; blanks dropped; a bad one raises SettingError naming it."""
    clean: dict[str, float] = {}
    for key, value in raw.items():
        if key not in SETTINGS:
            raise SettingError(key, said("Unknown dry-run setting %(key)s.", key=repr(key)))
        if value in (None, ""):
            continue
        label, top = SETTINGS[key]
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SettingError(key, said("%(what)s must be a number.", what=label)) from None
        if not 0 <= number <= top:
            raise SettingError(
                key, said("%(what)s must be between 0 and %(top)s.", what=label, top=f"{top:g}")
            )
        clean[key] = number
    return clean


class DryRunChannel:
    def __init__(self, config: ChannelConfig) -> None:
        self.path = log_path(config.instance_path, config.sender_name)
        settings = clean_settings(config.settings)
        self.latency = settings.get("latency_seconds", 0.0)
        self.failure_rate = settings.get("failure_rate", 0.0)
        self.transient_rate = settings.get("transient_rate", 0.0)
        self._fd: int | None = None
        self._seen: set[int] = set()
        self._read_upto = 0
        self._lock = threading.Lock()

    def _descriptor(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Owner-only: it holds customers' numbers and the texts sent to them.
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def prepare(self, message: OutgoingMessage) -> None:
        return None

    def send(self, message: OutgoingMessage) -> SendResult:
        if self.latency:
            time.sleep(self.latency)
        # Seeded by the message id, so the same numbers fail on every attempt, as a
        # number that is not on WhatsApp would.
        if self.failure_rate and random.Random(message.message_id).random() < self.failure_rate:
            # As a real sender reports a number with no WhatsApp account, so a rehearsal
            # flags the contact and later campaigns skip it, as they would for real.
            raise PermanentError(
                N_("Dry run: simulated failure (this number is treated as not on WhatsApp)."),
                code=NOT_ON_WHATSAPP,
                effect="not_on_whatsapp",
            )
        if self.transient_rate and random.random() < self.transient_rate:
            raise TransientError(
                N_("Dry run: simulated temporary failure."), code="dry_run_transient"
            )
        now = datetime.now(UTC)
        line = json.dumps(
            {
                "phone": message.phone,
                "text": message.text,
                "media": message.media_name,
                "message_id": message.message_id,
                "time": now.isoformat(timespec="microseconds"),
            },
            ensure_ascii=False,
        )
        os.write(self._descriptor(), (line + "\n").encode())
        return SendResult(provider_message_id=f"dry-{message.message_id}")

    def reconcile(self, message: OutgoingMessage) -> Reconciled:
        with self._lock:
            self._catch_up()
            return "sent" if message.message_id in self._seen else "not_sent"

    def _catch_up(self) -> None:
        """Read what was appended since the last look (the log only ever grows)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            fh.seek(self._read_upto)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        for line in data[:end].splitlines():
            try:
                self._seen.add(int(json.loads(line)["message_id"]))
            except (ValueError, KeyError, TypeError):
                continue
        self._read_upto += end

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
